"""What the front end needs to know about AUs, as plain JSON data taken from ``aus``.

The face drawn on the AU Vector node reads its AU names, regions, presets and ranges from here
(served by the pack), so nothing about AUs is written a second time in JavaScript.
"""
from __future__ import annotations

from .aus import (ACTION_UNITS, AU_ORDER, DEFAULT_INTENSITY, INTENSITY_LETTERS, PRESETS, SAFE_MAX, SAFE_MIN,
                  format_aus)

# FACS intensities 1..5 (A..E) are what the model was trained on; past these the movement is extrapolated.
TRAINED_MIN, TRAINED_MAX = 0.0, 5.0


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
        "letters": dict(INTENSITY_LETTERS),
        "default_intensity": DEFAULT_INTENSITY,
        "trained_range": [TRAINED_MIN, TRAINED_MAX],
        "safe_range": [SAFE_MIN, SAFE_MAX],
    }


# -- AU Intensity Sweep: one AU from a start to an end intensity, on a base vector ----------------------
# A section of its own (the AU Vector spec above is edited apart from it); its imports are its own.

import torch  # noqa: E402

from .aus import AU_BY_CODE  # noqa: E402
from .conditioning import AUVectors  # noqa: E402
from .errors import AUSpecError  # noqa: E402


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
