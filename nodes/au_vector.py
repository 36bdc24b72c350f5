import torch

from fineface_core.aus import (ACTION_UNITS, PRESETS, SAFE_MAX, SAFE_MIN, expression_title, is_neutral, parse_aus,
                                split_specs, validate_intensities)
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


def parse_lines(spec: str, preset: str = "none") -> list[tuple[torch.Tensor, str, str]]:
    """Per spec line: the preset and the line as one AU vector, the title the user wrote, and what was written."""
    lines = spec_lines(spec)
    rows = []
    for n, line in enumerate(lines, 1):
        written = " + ".join(s for s in ((preset if preset != "none" else ""), line) if s)
        try:
            rows.append((parse_aus(written), expression_title(written), written))
        except AUSpecError as err:
            raise AUSpecError(f"spec line {n}: {err}" if len(lines) > 1 else str(err)) from err
    return rows


def with_base(rows: list[tuple[torch.Tensor, str, str]], base: AUVectors | None) -> list[tuple[torch.Tensor, str]]:
    """(vector, title) per output: the spec lines added to the base vectors -- one base for every line, every
    base for one line, or pairs."""
    if base is None:
        return [(row, title) for row, title, _ in rows]
    n, m = len(base), len(rows)
    if n != 1 and m != 1 and n != m:
        raise AUSpecError(f"{n} base AU vectors and {m} spec lines: give one base vector, one spec line, or as many "
                          "spec lines as base vectors (they are added in pairs)")
    out = []
    for i in range(max(n, m)):
        row, title, written = rows[i if m > 1 else 0]
        b = i if n > 1 else 0
        # a base titled by its preset keeps it in front of what is written here
        if base.titles[b]:
            title = expression_title(" + ".join(t for t in (base.titles[b], written) if t))
        out.append((base.values[b] + row, title))
    return out


def preview(preset: str, spec: str, sliders: dict[str, float]) -> dict:
    """What the face on the node shows: the preset and spec as vectors, one per spec line (the front end adds
    the sliders as they move, as ``build`` does), and the message this node would fail with, if any."""
    try:
        rows = parse_lines(spec, preset)
    except AUSpecError as err:
        return {"base": None, "titles": None, "error": str(err)}
    try:
        FineFaceAUVector().build(preset=preset, spec=spec, **sliders)
        error = None
    except AUSpecError as err:
        error = str(err)
    return {"base": [row.tolist() for row, _, _ in rows], "titles": [title for _, title, _ in rows], "error": error}


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
        offset = torch.tensor([float(sliders[au.code]) for au in ACTION_UNITS])
        rows = with_base(parse_lines(spec, preset), base)
        values = []
        for n, (row, _) in enumerate(rows, 1):
            try:
                values.append(validate_intensities(row + offset))
            except AUSpecError as err:
                where = f"spec line {n}" if base is None else f"vector {n} (base + spec)"
                raise AUSpecError(f"{where} with the sliders: {err}" if len(rows) > 1 else f"with the sliders: {err}") from err
        vectors = AUVectors(torch.stack(values), titles=tuple(title for _, title in rows))
        if append_to is not None:
            vectors = append_to.concat(vectors)
        return (vectors, vectors.text)
