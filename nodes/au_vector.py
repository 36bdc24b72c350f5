from fineface_core.au_vector import au_vectors, parse_lines
from fineface_core.aus import ACTION_UNITS, PRESETS, SAFE_MAX, SAFE_MIN

from .queue_checks import text_answer
from .types import AU_VECTOR, CATEGORY

SPEC_HELP = (
    "Optional AU spec. One rule, in reading order: base (if linked) + preset + these terms + sliders, everything "
    "adds. Terms joined by +: AU12@2 adds 2 to AU12 (relative to a linked base; without one, intensity 2), AU12D "
    "with a FACS letter A-E = 1-5, AU12 alone = 3; presets (happiness, surprise@4) and plain words (smile = AU12, "
    "frown = AU4, open mouth = AU25+AU26, raise brows = AU1+AU2, happy = happiness ...). AU12=0 sets one AU "
    "whatever came before; 'neutral' clears everything before it, the base included ('neutral + surprise@3' is "
    "surprise whatever the photo shows). Several lines make a batch: one AU vector per line (one per image)."
)
# Hands set 0..5 in a few clicks: one arrow click is half a FACS step. A drag moves 1 per 40 px (web/au_drag.js:
# the front ends would move a number widget by `step` per pixel dragged).
STEP = 0.5


def intensity_input(au):
    return ("FLOAT", {
        "default": 0.0, "min": SAFE_MIN, "max": SAFE_MAX, "step": STEP,
        "tooltip": f"{au.code} {au.name} ({au.region}): {au.movement}. 0 = absent, 1-5 = FACS A (trace) to "
                   "E (maximum); above 5 exaggerates, negative gives the opposite movement. Added last, to the "
                   "base, preset and spec; a sum outside 0..5 turns the face orange and is marked in the label.",
    })


class FineFaceAUVector:
    DESCRIPTION = ("Facial expression as AU intensity vectors (one per image): the 12 FACS action units FineFace "
                   "controls, set by sliders, an emotion preset, plain words (smile, frown) or an AU spec, added to "
                   "a linked base. One spec line gives one vector; several lines give a batch.")
    # Newer ComfyUI serves these as the node's search_aliases: the pack is found by what a newcomer looks for.
    SEARCH_ALIASES = ["expression", "facial expression", "emotion", "face expression", "smile", "action units",
                      "FACS", "AU", "FineFace"]

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {au.code: intensity_input(au) for au in ACTION_UNITS},
            "optional": {
                "preset": (["none", *PRESETS], {"default": "none", "tooltip": "An expression made of these 12 AUs (basic emotions after EMFACS, compound ones after Du et al. 2014). It adds to the linked base; the spec and the sliders add to it ('neutral' in the spec clears it)."}),
                "spec": ("STRING", {"default": "", "multiline": True, "dynamicPrompts": False, "tooltip": SPEC_HELP}),
                "append_to": (AU_VECTOR, {"tooltip": "Append these vectors to an existing batch: one AU vector per image of the latent batch."}),
                "base": (AU_VECTOR, {"tooltip": "AU vectors the preset, spec and sliders add to (e.g. the AUs AU From Image read off a photo): AU12@2 in the spec is then the photo's AU12 + 2, AU4=0 removes the photo's AU4, 'neutral' drops the base. One base vector goes with every spec line; a batch of bases with one spec line gives one vector per base; otherwise as many bases as lines, in pairs."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, spec=""):
        # Only the spec is taken: an input named here skips ComfyUI's own checks of it.
        return text_answer(parse_lines, spec)

    RETURN_TYPES = (AU_VECTOR, "STRING")
    RETURN_NAMES = ("aus", "label")
    OUTPUT_TOOLTIPS = ("AU vector(s), one per image, with labels.", "The vectors' labels, one per line (AU6@2.5 + AU12@4; happiness: AU6@3 + AU12@3 where a preset or word was named; '(outside the trained 0..5: AU12)' where a sum left the trained range).")
    FUNCTION = "build"
    CATEGORY = CATEGORY

    def build(self, preset="none", spec="", append_to=None, base=None, **sliders):
        vectors = au_vectors(preset, spec, sliders, base, append_to)
        return (vectors, vectors.text)
