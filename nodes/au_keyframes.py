from fineface_core.keyframes import EASINGS, MAX_FRAMES, keyframe_vectors, parse_keyframes

from .queue_checks import text_answer
from .shown_text import with_text
from .types import AU_VECTOR, CATEGORY

KEYFRAMES_HELP = (
    "One keyframe per line: '<frame>: <AU spec>' (frames counted from 0, in increasing order), the spec as in AU "
    "Vector: AU terms joined by + (AU6@2.5 + AU12@4), presets (happiness@4) and words (smile), adding up; 'neutral' for no AU. Frames "
    "before the first keyframe hold it, frames after the last hold the last; a keyframe at frame = frames marks the "
    "end of the clip (reached just after the last frame, for loops)."
)
EASING_HELP = (
    "How the AUs move between two keyframes: linear (constant speed), ease-in-out (a sine ease: starts and stops "
    "gently), hold (each keyframe holds until the next one: a cut)."
)


class FineFaceAUKeyframes:
    DESCRIPTION = (
        "AU keyframes -> one AU vector per frame of an animation, interpolated in AU space (never between "
        "embeddings: the AU encoder is not linear). Feed AU Batch Latent (all frames from one noise) and AU Encoder; "
        "with AnimateDiff the frames also move consistently."
    )

    SEARCH_ALIASES = ["expression animation", "emotion animation", "facial animation", "expression keyframes", "FACS",
                      "FineFace"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "keyframes": ("STRING", {"default": "0: neutral\n8: happiness@4\n15: AU1@3 + AU2@3 + AU26@4", "multiline": True,
                                     "dynamicPrompts": False, "tooltip": KEYFRAMES_HELP}),
            "frames": ("INT", {"default": 16, "min": 1, "max": MAX_FRAMES, "tooltip": "Number of frames of the animation (one AU vector each)."}),
            "easing": (list(EASINGS), {"default": "ease-in-out", "tooltip": EASING_HELP}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, keyframes=""):
        # Syntax, specs, order and repeats; the frame count is checked when the node runs (an input named here
        # would skip ComfyUI's own range checks).
        return text_answer(parse_keyframes, keyframes)

    RETURN_TYPES = (AU_VECTOR, "STRING")
    RETURN_NAMES = ("aus", "label")
    OUTPUT_TOOLTIPS = ("One AU vector per frame, with labels.", "One line per frame: its number (and the keyframe's preset where one is named) and its AUs.")
    FUNCTION = "build"
    CATEGORY = CATEGORY

    def build(self, keyframes, frames, easing):
        vectors = keyframe_vectors(keyframes, frames, easing)
        return with_text((vectors, vectors.text), vectors.text, aus=vectors)
