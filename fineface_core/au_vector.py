"""What AU Vector computes and what its face shows: the spec's lines as AU vectors, and the AU facts as JSON.

A spec line is one AU vector (one image of the batch). One rule combines the inputs, in reading order:
base (the linked AU vectors) + preset + the line's terms + sliders, everything adding, except that a
``neutral`` term clears what comes before it (the base included) and ``AU12=v`` sets one AU
(fineface_core.aus). A value that lands outside the trained 0..5 is kept, not clipped, and flagged in the
label (and on the face, which colours it). The face drawn on the AU Vector node reads its AU names, regions,
presets and ranges from ``au_schema`` (served by the pack), and asks the server for ``preview``, so nothing
about AUs is written a second time in JavaScript.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from .aus import (ACTION_UNITS, AU_BY_CODE, AU_ORDER, DEFAULT_INTENSITY, INTENSITY_LETTERS, N_AUS, PRESETS, SAFE_MAX,
                  SAFE_MIN, WORDS, SpecEffect, expression_title, format_aus, parse_spec, split_specs,
                  validate_intensities)
from .conditioning import AUVectors
from .errors import AUSpecError, quoted

# FACS intensities 1..5 (A..E) are what the model was trained on; past these the movement is extrapolated.
TRAINED_MIN, TRAINED_MAX = 0.0, 5.0

# A spec is checked when the prompt is queued, on ComfyUI's server thread (which accepts 100 MB prompts): its size is
# bounded before its lines are read. One line is one image, and ComfyUI's latent batches hold at most 4096 images.
MAX_SPEC_CHARS = 64 * 1024
MAX_SPEC_LINES = 4096
# The face on the node shows line 1 and counts the lines; the server previews at most this many per request.
PREVIEW_LINES = 64


class SpecLine(NamedTuple):
    effect: SpecEffect  # the preset and the line, as what they do to the base
    title: str  # what the user wrote where it names a preset or a word ("happiness + AU12@1"), else ""
    written: str  # the preset and the line as one spec


def spec_lines(spec: str) -> list[str]:
    """The spec's non-empty lines, stripped; no line is one empty spec (which adds nothing).
    A spec longer than MAX_SPEC_CHARS or with more than MAX_SPEC_LINES lines is refused before any is read."""
    if len(spec) > MAX_SPEC_CHARS:
        raise AUSpecError(f"the spec {quoted(spec, 40)} is too long: AU Vector takes at most {MAX_SPEC_CHARS:,} "
                          f"characters, one line per image of the batch; for an animation use AU Keyframes")
    lines = split_specs(spec, "\n") or [""]
    if len(lines) > MAX_SPEC_LINES:
        raise AUSpecError(f"the spec has {len(lines):,} lines: AU Vector takes at most {MAX_SPEC_LINES:,}, one line "
                          f"per image of the batch; for an animation use AU Keyframes")
    return lines


def parse_lines(spec: str, preset: str = "none") -> list[SpecLine]:
    """Per spec line: the preset followed by the line, read as one spec (what it does to the base)."""
    lines = spec_lines(spec)
    rows = []
    for n, line in enumerate(lines, 1):
        written = " + ".join(s for s in ((preset if preset != "none" else ""), line) if s)
        try:
            rows.append(SpecLine(parse_spec(written), expression_title(written), written))
        except AUSpecError as err:
            raise AUSpecError(f"spec line {n}: {err}" if len(lines) > 1 else str(err)) from err
    return rows


def with_base(rows: list[SpecLine], base: AUVectors | None) -> list[tuple[torch.Tensor, str]]:
    """(vector, title) per output: each spec line applied to the base vectors -- one base for every line, every
    base for one line, or pairs; without a base, to zeros."""
    if base is None:
        zero = torch.zeros(N_AUS)
        return [(row.effect.apply(zero), row.title) for row in rows]
    n, m = len(base), len(rows)
    if n != 1 and m != 1 and n != m:
        raise AUSpecError(f"{n} base AU vectors and {m} spec lines: give one base vector, one spec line, or as many "
                          "spec lines as base vectors (they are added in pairs)")
    out = []
    for i in range(max(n, m)):
        row = rows[i if m > 1 else 0]
        b = i if n > 1 else 0
        title = row.title
        # a base titled by its preset keeps it in front of what is written here (unless a neutral term clears it)
        if base.titles[b]:
            title = expression_title(" + ".join(t for t in (base.titles[b], row.written) if t))
        out.append((row.effect.apply(base.values[b]), title))
    return out


def outside_trained(vec: torch.Tensor) -> list[str]:
    """The AUs of one vector outside the trained 0..5 (to the label's 2 decimals): kept, but flagged."""
    return [code for code, v in zip(AU_ORDER, vec.tolist()) if not TRAINED_MIN <= round(v, 2) <= TRAINED_MAX]


def flagged_label(vec: torch.Tensor) -> str:
    """The vector's label, marked where an AU lies outside the trained 0..5: "AU6@3 + AU12@7 (outside the
    trained 0..5: AU12)"."""
    outside = outside_trained(vec)
    label = format_aus(vec)
    return f"{label} (outside the trained 0..5: {', '.join(outside)})" if outside else label


def with_sliders(rows: list[tuple[torch.Tensor, str]], sliders: dict[str, float], *, based: bool) -> AUVectors:
    """The vectors with the sliders (one intensity per AU code) added last, checked against the safe range and
    labelled, flagged where outside the trained range."""
    offset = torch.tensor([float(sliders[au.code]) for au in ACTION_UNITS])
    values = []
    for n, (row, _) in enumerate(rows, 1):
        try:
            values.append(validate_intensities(row + offset))
        except AUSpecError as err:
            where = f"vector {n} (base + spec)" if based else f"spec line {n}"
            raise AUSpecError(f"{where} with the sliders: {err}" if len(rows) > 1 else f"with the sliders: {err}") from err
    return AUVectors(torch.stack(values), labels=tuple(flagged_label(v) for v in values),
                     titles=tuple(title for _, title in rows))


def au_vectors(preset: str, spec: str, sliders: dict[str, float], base: AUVectors | None = None,
               append_to: AUVectors | None = None) -> AUVectors:
    """What AU Vector outputs: per spec line the base, the preset, the line and the sliders, after ``append_to``."""
    vectors = with_sliders(with_base(parse_lines(spec, preset), base), sliders, based=base is not None)
    return vectors if append_to is None else append_to.concat(vectors)


def preview(preset: str, spec: str, sliders: dict[str, float]) -> dict:
    """What the face on the node shows: the preset and spec as vectors, one per spec line (the front end adds
    the sliders as they move, as ``au_vectors`` does), and the message the node would fail with, if any.
    ``outside``: per line, the AUs outside the trained 0..5 with the sliders added (the face colours them);
    ``clears_base``: per line, whether a ``neutral`` term clears a linked base (the face is then exact).
    At most PREVIEW_LINES lines: the answer and its work stay small whatever a request holds."""
    try:
        lines = len(spec_lines(spec))
        if lines > PREVIEW_LINES:
            return {"base": None, "titles": None, "outside": None, "clears_base": None, "error": (
                f"the face previews specs of at most {PREVIEW_LINES} lines; this one has {lines:,} (one per image "
                "of the batch): they are checked when the prompt is queued")}
        rows = parse_lines(spec, preset)
    except AUSpecError as err:
        return {"base": None, "titles": None, "outside": None, "clears_base": None, "error": str(err)}
    vectors = [vector for vector, _ in with_base(rows, None)]
    try:
        with_sliders([(v, "") for v in vectors], sliders, based=False)
        error = None
    except AUSpecError as err:
        error = str(err)
    offset = torch.tensor([float(sliders[au.code]) for au in ACTION_UNITS])
    return {"base": [v.tolist() for v in vectors], "titles": [_cut(row.title) for row in rows],
            "outside": [outside_trained(v + offset) for v in vectors],
            "clears_base": [row.effect.clears_all for row in rows], "error": error}


def _cut(title: str, limit: int = 100) -> str:
    """A title as a caption shows it: what a 64-term line writes is not sent back whole."""
    return title if len(title) <= limit else title[:limit - 1] + "…"


def au_schema() -> dict:
    """The 12 AUs (in vector order), their regions, the presets and the ranges, JSON-serialisable."""
    regions: dict[str, list[str]] = {}
    for au in ACTION_UNITS:
        regions.setdefault(au.region, []).append(au.code)
    return {
        "order": list(AU_ORDER),
        "aus": [{"code": au.code, "number": au.number, "index": au.index, "name": au.name,
                 "region": au.region, "movement": au.movement} for au in ACTION_UNITS],
        "regions": regions,
        "presets": {name: {"aus": dict(p.aus), "label": format_aus(p.aus), "source": p.source, "note": p.note}
                    for name, p in PRESETS.items()},
        # plain words the spec takes ("smile"), with what each expands to
        "words": {name: {"aus": dict(w.aus), "label": format_aus(w.aus), "source": w.source} for name, w in WORDS.items()},
        "letters": dict(INTENSITY_LETTERS),
        "default_intensity": DEFAULT_INTENSITY,
        "trained_range": [TRAINED_MIN, TRAINED_MAX],
        "safe_range": [SAFE_MIN, SAFE_MAX],
    }


# -- AU Intensity Sweep: one AU from a start to an end intensity, on a base vector ----------------------


def sweep_vectors(code: str, start: float, end: float, cells: int, base: AUVectors | None = None) -> AUVectors:
    """``cells`` AU vectors with ``code`` (e.g. "AU12") from ``start`` to ``end``, the other AUs those of
    ``base`` (one vector; default neutral). Each cell's label is the base's other AUs, then the swept AU even
    at 0 (``AU6@2 + AU12@0``, as the paper's sweep figures read); each keeps the base's title."""
    au = AU_BY_CODE.get(code)
    if au is None:
        raise AUSpecError(f"unknown AU {code!r}; choose one of {', '.join(AU_ORDER)}")
    if base is not None and len(base) != 1:
        raise AUSpecError(f"the sweep's base must be one AU vector, got a batch of {len(base)}")
    if cells < 1:
        raise AUSpecError(f"a sweep needs at least one cell, got {cells}")
    values = (base.values if base is not None else torch.zeros(1, len(AU_ORDER))).repeat(cells, 1)
    intensities = torch.linspace(float(start), float(end), cells)
    values[:, au.index] = intensities
    others = values[0].clone()
    others[au.index] = 0.0
    rest = format_aus(others)
    labels = tuple(f"{code}@{float(v):g}" if rest == "neutral" else f"{rest} + {code}@{float(v):g}" for v in intensities)
    titles = (base.titles[0],) * cells if base is not None else ()
    return AUVectors(values, labels, titles)
