import torch

from fineface_core.aus import (ACTION_UNITS, PRESETS, SAFE_MAX, SAFE_MIN, is_neutral, parse_aus, split_specs,
                                validate_intensities)
from fineface_core.conditioning import AUVectors
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


def spec_lines(spec: str) -> list[str]:
    """The spec's non-empty lines ("neutral" adds nothing to the preset); no line is one empty spec."""
    lines = split_specs(spec, "\n") or [""]
    return ["" if is_neutral(line) else line for line in lines]


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
            },
        }

    RETURN_TYPES = (AU_VECTOR, "STRING")
    RETURN_NAMES = ("aus", "label")
    OUTPUT_TOOLTIPS = ("AU vector(s), one per image, with labels.", "The vectors' labels (e.g. AU6@2.5 + AU12@4), one per line.")
    FUNCTION = "build"
    CATEGORY = CATEGORY

    def build(self, preset="none", spec="", append_to=None, **sliders):
        offset = torch.tensor([float(sliders[au.code]) for au in ACTION_UNITS])
        lines = spec_lines(spec)
        rows = []
        for n, line in enumerate(lines, 1):
            try:
                base = parse_aus(" + ".join(s for s in ((preset if preset != "none" else ""), line) if s))
                rows.append(validate_intensities(base + offset))
            except AUSpecError as err:
                raise AUSpecError(f"spec line {n}: {err}" if len(lines) > 1 else str(err)) from err
        vectors = AUVectors(torch.stack(rows))
        if append_to is not None:
            vectors = append_to.concat(vectors)
        return (vectors, "\n".join(vectors.labels))
