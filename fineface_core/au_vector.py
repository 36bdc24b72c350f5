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
