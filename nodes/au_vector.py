from fineface_core.au_vector import au_vectors, parse_lines
from fineface_core.aus import ACTION_UNITS, PRESETS, SAFE_MAX, SAFE_MIN
from fineface_core.errors import AUSpecError

from .types import AU_VECTOR, CATEGORY

SPEC_HELP = (
    "Optional AU spec added to the sliders: AU terms joined by + (AU6@2.5 + AU12@4, AU12D with a FACS letter "
    "A-E = 1-5, AU12 alone = 3) and/or preset names (happiness, surprise@4). Later terms override earlier ones. "
    "Several lines make a batch: one AU vector per line (one per image of the latent batch), each with the "
    "preset and the sliders added."
)


def intensity_input(au):
    return ("FLOAT", {
        "default": 0.0, "min": SAFE_MIN, "max": SAFE_MAX, "step": 0.1,
        "tooltip": f"{au.code} {au.name} ({au.region}): {au.movement}. 0 = absent, 1-5 = FACS A (trace) to "
                   "E (maximum); above 5 exaggerates, negative gives the opposite movement.",
    })


class FineFaceAUVector:
    DESCRIPTION = ("AU intensity vectors (one per image): the 12 FACS action units FineFace controls. "
                   "One spec line gives one vector; several lines give a batch.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {au.code: intensity_input(au) for au in ACTION_UNITS},
            "optional": {
                "preset": (["none", *PRESETS], {"default": "none", "tooltip": "An expression made of these 12 AUs (basic emotions after EMFACS, compound ones after Du et al. 2014); the sliders and the spec add to it."}),
                "spec": ("STRING", {"default": "", "multiline": True, "dynamicPrompts": False, "tooltip": SPEC_HELP}),
                "append_to": (AU_VECTOR, {"tooltip": "Append these vectors to an existing batch: one AU vector per image of the latent batch."}),
                "base": (AU_VECTOR, {"tooltip": "AU vectors the preset, spec and sliders are added to (e.g. the AUs AU From Image read off a photo). One base vector goes with every spec line; a batch of bases with one spec line gives one vector per base; otherwise as many bases as lines, in pairs."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, spec=""):
        # Runs when the prompt is queued: the front end marks the node before anything runs. Only the spec
        # is taken (an input named here skips ComfyUI's own checks of it); a spec linked from another node
        # has no value yet and is checked when the node runs.
        if not isinstance(spec, str):
            return True
        try:
            parse_lines(spec)
        except AUSpecError as err:
            return str(err)
        return True

    RETURN_TYPES = (AU_VECTOR, "STRING")
    RETURN_NAMES = ("aus", "label")
    OUTPUT_TOOLTIPS = ("AU vector(s), one per image, with labels.", "The vectors' labels, one per line (AU6@2.5 + AU12@4; happiness: AU6@3 + AU12@3 where a preset was named).")
    FUNCTION = "build"
    CATEGORY = CATEGORY

    def build(self, preset="none", spec="", append_to=None, base=None, **sliders):
        vectors = au_vectors(preset, spec, sliders, base, append_to)
        return (vectors, vectors.text)
