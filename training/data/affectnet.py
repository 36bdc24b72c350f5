"""AffectNet with LibreFace AU intensities -> the generic format, with the paper's filters and corrections.

Input: a CSV with one row per image: the image name, a caption, LibreFace's 12 AU outputs on a
0..1 scale (``AU1_rec`` ... ``AU26_rec`` by default, as the official code reads them), and
optionally the image size and the BLIP-2 photo checks (``IsPhoto``, ``IsReal``).

Each constant below is the paper's (supplementary, "dataset processing"); where the official
code differs, its value is in the comment and the option takes it.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from fineface_core.aus import AU_ORDER

from .generic import write_metadata
from .report import DataReport


@dataclass
class AffectNetOptions:
    column: str = "{au}_rec"  # LibreFace's column per AU
    image_column: str = "ImageName"
    caption_column: str = "TextDescription"
    min_size: int = 512  # keep images whose width and height are >= this
    photo_columns: tuple = ("IsPhoto", "IsReal")  # BLIP-2 checks; rows where any is false are dropped (absent: not checked)
    min_intensity: float = 0.2  # drop samples whose intensity is under this (0..1 scale) ...
    intensity_of: str = "sum"  # ... summed over the AUs (paper); the official code takes the "max"
    down_aus: tuple = ("AU1", "AU4")  # predicted too high: x ** down_gamma
    down_gamma: float = 1.8
    up_aus: tuple = ("AU15", "AU17", "AU20")  # predicted too low: x ** up_gamma
    up_gamma: float = 0.8
    up_gain: float = 1.0  # the official code multiplies the raised AUs by 1.8 afterwards
    scale: float = 5.0  # 0..1 -> FACS 0..5
    zero_below: float = 1.0  # intensities under this (0..5 scale) set to 0 (official code: 1.1)
    clip_max: float = 5.0  # the official gain can push past 5; clip to the trained range
    default_caption: str = "a photo of a person"  # where the CSV has no caption


def corrected(values: np.ndarray, o: AffectNetOptions) -> np.ndarray:
    """The AU corrections on a [N, 12] array (0..1 scale) of the samples kept -> 0..5 intensities.

    Power transforms are min-max rescaled back to each column's original range, as the official code does.
    """
    out = values.astype(np.float64).copy()
    for aus, gamma, gain in ((o.down_aus, o.down_gamma, 1.0), (o.up_aus, o.up_gamma, o.up_gain)):
        for code in aus:
            i = AU_ORDER.index(code)
            col = out[:, i]
            top = col.max()
            powered = np.power(col, gamma)
            span = powered.max() - powered.min()
            out[:, i] = ((powered - powered.min()) / span * top if span > 0 else col) * gain
    out *= o.scale
    out[out < o.zero_below] = 0.0
    return np.minimum(out, o.clip_max)


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "1.0")


def _size(row, image_path):
    try:
        return int(float(row["ImageResolutionX"])), int(float(row["ImageResolutionY"]))
    except (KeyError, TypeError, ValueError):
        with Image.open(image_path) as im:
            return im.size


def prepare_affectnet(csv_path: str, image_root: str, out_folder: str, options: AffectNetOptions | None = None) -> DataReport:
    o = options or AffectNetOptions()
    report = DataReport(source=csv_path)
    os.makedirs(out_folder, exist_ok=True)
    kept_rows, values = [], []
    with open(csv_path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            report.rows += 1
            where = f"line {n}"
            name = row.get(o.image_column)
            if not name:
                report.skip("missing_value", f"{where}: no {o.image_column}")
                continue
            aus = []
            for code in AU_ORDER:
                raw = row.get(o.column.format(au=code))
                if raw in (None, ""):
                    report.skip("missing_value", f"{where}: no {o.column.format(au=code)}")
                    break
                try:
                    v = float(raw)
                except ValueError:
                    report.skip("not_a_number", f"{where}: {code}={raw!r}")
                    break
                if not math.isfinite(v):
                    report.skip("not_finite", f"{where}: {code}={v}")
                    break
                if not 0 <= v <= 1:
                    report.skip("out_of_range", f"{where}: {code}={v:g} outside LibreFace's 0..1")
                    break
                aus.append(v)
            else:
                image = os.path.join(image_root, name)
                if not os.path.isfile(image):
                    report.skip("missing_file", f"{where}: {name}")
                    continue
                if any(c in row and not _truthy(row[c]) for c in o.photo_columns):
                    report.skip("filtered", f"{where}: not a real photo ({'/'.join(o.photo_columns)})")
                    continue
                try:
                    w, h = _size(row, image)
                except Exception:
                    report.skip("corrupt_image", f"{where}: {name}")
                    continue
                if min(w, h) < o.min_size:
                    report.skip("filtered", f"{where}: {w}x{h} smaller than {o.min_size}")
                    continue
                total = sum(aus) if o.intensity_of == "sum" else max(aus)
                if total < o.min_intensity:
                    report.skip("filtered", f"{where}: AU {o.intensity_of} {total:.2f} under {o.min_intensity}")
                    continue
                caption = row.get(o.caption_column) or o.default_caption
                kept_rows.append({"file": os.path.relpath(image, out_folder), "caption": caption})
                values.append(aus)
    if kept_rows:
        fixed = corrected(np.asarray(values), o)
        for r, v in zip(kept_rows, fixed):
            r.update({code: float(x) for code, x in zip(AU_ORDER, v)})
    report.kept = len(kept_rows)
    write_metadata(out_folder, kept_rows)
    return report



