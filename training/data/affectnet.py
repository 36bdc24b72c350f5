"""AffectNet with LibreFace AU intensities -> the generic format, with the paper's filters and AU corrections.

Input: a CSV with one row per image: the image path under IMAGE_ROOT, a caption (BLIP-2 in the
paper), LibreFace's 12 AU intensities on a 0..1 scale (``AU1_rec`` ... ``AU26_rec``, the official
code's names) and, when present, the image size, BLIP-2's photo checks (``IsPhoto``, ``IsReal``) and
a face flag (``HasFace``, which the official code requires non-empty).

Each constant is an option whose default is the paper's (supplementary, "dataset processing");
where the official code (fineface/au_dataset.py, load_affectnet) differs, the help text gives its
value and ``AffectNetOptions.official()`` takes them all (but two comparisons: the official code keeps
height > 512 and max > 0.2 where we keep >= for both). Steps, in the paper's order:

1. keep photos (BLIP-2 checks) at least ``min_size`` px on both sides, with a face found;
2. drop samples whose total intensity (sum over the 12 AUs, 0..1 scale) is under ``min_intensity``;
3. AU1, AU4 (LibreFace predicts them too high): ``x ** 1.8``; AU15, AU17, AU20 (too low): ``x ** 0.8``;
   each min-max rescaled back to [0, the column's max] over the kept samples, as the official code does
   (the paper says "min-max normalization is used" without the target range);
4. ``x 5`` to the FACS 0..5 scale; intensities under 1 set to 0 (DISFA's manual labels teach the
   low range); clipped to 5.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from fineface_core.aus import AU_ORDER

from .generic import FALLBACK_CAPTION, Record, drop_duplicates, parse_intensity, write_metadata
from .report import DataReport


def _opt(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class AffectNetOptions:
    image_column: str = _opt("ImageName", "column with the image path under IMAGE_ROOT")
    caption_column: str = _opt("TextDescription", "column with the caption (the paper: BLIP-2)")
    au_column: str = _opt("{au}_rec", "column name of each AU's LibreFace intensity; {au} is AU1 ... AU26")
    width_column: str = _opt("ImageResolutionX", "image width column (absent or empty: read from the image)")
    height_column: str = _opt("ImageResolutionY", "image height column (absent or empty: read from the image)")
    input_scale: float = _opt(1.0, "the AU columns' full scale: 1 for LibreFace's 0..1 output, 5 if already 0..5; "
                              "values are divided by it, and rows outside 0..input_scale are skipped")
    clip_input: bool = _opt(False, "clip AU values into 0..input_scale instead of skipping the row")
    photo_columns: tuple = _opt(("IsPhoto", "IsReal"), "BLIP-2 checks ('Is this photo real?'); a row where one "
                                "is not true is dropped (an absent column is not checked)")
    face_column: str = _opt("HasFace", "a row where this column is empty or false is dropped (as the "
                            "official code does: no face found); '' or an absent column: not checked")
    min_size: int = _opt(512, "keep images at least this wide and high (paper: 512; the official code "
                         "asks height > 512)")
    min_intensity: float = _opt(0.2, "drop samples whose AU intensity (0..1 scale) is under this (paper: 0.2; "
                                "the official code keeps max > 0.2)")
    intensity_of: str = _opt("sum", "'sum' of the 12 AUs (paper: 'total intensity from all AUs combined') or "
                             "'max' (official code)")
    down_aus: tuple = _opt(("AU1", "AU4"), "AUs LibreFace predicts too high")
    down_gamma: float = _opt(1.8, "their power transform x**gamma (paper: 1.8)")
    up_aus: tuple = _opt(("AU15", "AU17", "AU20"), "AUs predicted too low")
    up_gamma: float = _opt(0.8, "their power transform (paper: 0.8)")
    up_gain: float = _opt(1.0, "multiply the raised AUs by this after rescaling (paper: none, 1; official code: 1.8)")
    au15_max_from_au17: bool = _opt(False, "rescale AU15 to AU17's max instead of its own (the official code does, "
                                    "a likely typo)")
    scale: float = _opt(5.0, "0..1 -> FACS 0..5 (paper: 5)")
    zero_below: float = _opt(1.0, "intensities under this (0..5 scale) become 0 (paper: 1; official code: 1.1)")
    clip_max: float = _opt(5.0, "upper clip after the corrections; only the official gain reaches past 5 (the "
                           "official training's label smoothing clips to 5 too)")
    default_caption: str = _opt(FALLBACK_CAPTION, "caption where the CSV has none")

    @classmethod
    def official(cls, **changes) -> "AffectNetOptions":
        """The official code's values where they differ from the paper's."""
        base = cls(intensity_of="max", up_gain=1.8, au15_max_from_au17=True, zero_below=1.1)
        return dataclasses.replace(base, **changes)


def check_options(o: AffectNetOptions) -> None:
    unknown = [c for c in (*o.down_aus, *o.up_aus) if c not in AU_ORDER]
    if unknown:
        raise ValueError(f"down_aus / up_aus: {', '.join(unknown)} not among {', '.join(AU_ORDER)}")
    if o.intensity_of not in ("sum", "max"):
        raise ValueError(f"intensity_of is 'sum' or 'max', not {o.intensity_of!r}")
    if o.input_scale <= 0:
        raise ValueError(f"input_scale must be > 0, not {o.input_scale}")


def intensity_total(values, o: AffectNetOptions) -> float:
    """What ``min_intensity`` is compared with: the sum or the max of a sample's 12 AUs (0..1 scale)."""
    return float(sum(values)) if o.intensity_of == "sum" else float(max(values))


def corrected(values: np.ndarray, options: AffectNetOptions | None = None) -> np.ndarray:
    """Steps 3-4 on the [N, 12] intensities (0..1 scale, AU_ORDER) of the samples kept -> FACS 0..5.
    A column with a single value (e.g. all 0) is left as it is, where the official code gives NaN."""
    o = options or AffectNetOptions()
    check_options(o)
    x = np.asarray(values, dtype=np.float64)
    out = x.copy()
    for aus, gamma, gain in ((o.down_aus, o.down_gamma, 1.0), (o.up_aus, o.up_gamma, o.up_gain)):
        for code in aus:
            i = AU_ORDER.index(code)
            top_of = "AU17" if code == "AU15" and o.au15_max_from_au17 else code
            top = x[:, AU_ORDER.index(top_of)].max()  # the max before any correction
            powered = x[:, i] ** gamma
            span = powered.max() - powered.min()
            rescaled = (powered - powered.min()) / span * top if span > 0 else x[:, i]  # one distinct value: as is
            out[:, i] = rescaled * gain
    out *= o.scale
    out[out < o.zero_below] = 0.0
    return np.minimum(out, o.clip_max)


def _true(value) -> bool:
    return str(value).strip().lower() in ("1", "1.0", "true", "t", "yes", "y")


def _has_face(value) -> bool:
    """The official code drops rows where HasFace is null (pandas reads an empty cell as NaN)."""
    text = (value or "").strip().lower()
    return text not in ("", "nan", "none", "0", "0.0", "false", "f", "no")


def _size_from_columns(row, o):
    try:
        return int(float(row[o.width_column])), int(float(row[o.height_column]))
    except (KeyError, TypeError, ValueError):
        return None


def _read_aus(row, o):
    """12 values on the 0..1 scale, or (problem kind, detail)."""
    values = []
    for code in AU_ORDER:
        column = o.au_column.format(au=code)
        raw = row.get(column)
        v = parse_intensity(raw)
        if isinstance(v, str):
            return v, f"{column}={raw!r}"
        if not 0 <= v <= o.input_scale:
            if not o.clip_input:
                return "out_of_range", f"{column}={v:g} outside 0..{o.input_scale:g} (see input_scale)"
            v = min(max(v, 0.0), o.input_scale)
        values.append(v / o.input_scale)
    return values


def prepare_affectnet(csv_path: str, image_root: str, out_folder: str, options: AffectNetOptions | None = None,
                      **changes) -> DataReport:
    """Write ``out_folder/metadata.jsonl`` for the AffectNet rows that pass; returns the report.

    ``changes`` override single options: ``prepare_affectnet(csv, root, out, zero_below=1.1)``.
    Raises ValueError when no row passes.
    """
    o = dataclasses.replace(options or AffectNetOptions(), **changes)
    check_options(o)
    report = DataReport(source=csv_path)
    items = []  # (where, Record with the raw 0..1 AUs)
    uncaptioned = 0
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = set(reader.fieldnames or ())
        for name, what in ((o.face_column, "face"), *((c, "photo") for c in o.photo_columns)):
            if name and name not in header:
                report.note(f"no {name} column: the {what} check is skipped")
        photo_columns = [c for c in o.photo_columns if c in header]
        face_column = o.face_column if o.face_column in header else None
        for n, row in enumerate(reader, 2):  # line 1 is the header
            report.rows += 1
            where = f"line {n}"
            name = row.get(o.image_column)
            if not name or not name.strip():
                report.skip("missing_value", f"{where}: no {o.image_column}")
                continue
            where = f"{where} ({name})"
            aus = _read_aus(row, o)
            if isinstance(aus, tuple):
                report.skip(aus[0], f"{where}: {aus[1]}")
                continue
            if face_column and not _has_face(row.get(face_column)):
                report.drop(f"no face found ({face_column})", where)
                continue
            if not all(_true(row.get(c)) for c in photo_columns):
                report.drop(f"not a real photo ({' and '.join(photo_columns)})", where)
                continue
            total = intensity_total(aus, o)
            if total < o.min_intensity:
                report.drop(f"AU {o.intensity_of} under {o.min_intensity:g}", f"{where}: {total:.3f}")
                continue
            size = _size_from_columns(row, o)
            if size and min(size) < o.min_size:
                report.drop(f"smaller than {o.min_size} px", f"{where}: {size[0]}x{size[1]}")
                continue
            image = os.path.join(image_root, name)
            if not os.path.isfile(image):
                report.skip("missing_file", f"{where}: {image}")
                continue
            if size is None:
                try:
                    with Image.open(image) as im:  # reads the header only
                        size = im.size
                except Exception as exc:
                    report.skip("corrupt_image", f"{where}: {type(exc).__name__}")
                    continue
                if min(size) < o.min_size:
                    report.drop(f"smaller than {o.min_size} px", f"{where}: {size[0]}x{size[1]}")
                    continue
            caption = (row.get(o.caption_column) or "").strip()
            if not caption:
                caption = o.default_caption
                uncaptioned += 1
            items.append((where, Record(os.path.abspath(image), caption, tuple(aus))))
    if uncaptioned:
        report.note(f"{uncaptioned} rows without a {o.caption_column} got the caption {o.default_caption!r}")
    # An image listed twice: compared on LibreFace's raw values, before the corrections use column statistics.
    survivors = [r for _, r in drop_duplicates(items, report, image_root)]
    kept = [{"file": os.path.relpath(r.file, out_folder), "caption": r.caption} for r in survivors]
    values = [r.aus for r in survivors]
    report.kept = len(kept)
    if not kept:
        raise ValueError(f"no usable AffectNet row in {csv_path}:\n{report.summary()}")
    fixed = corrected(np.asarray(values), o)
    for row, v in zip(kept, fixed):
        row.update({code: float(x) for code, x in zip(AU_ORDER, v)})
    neutral = int((fixed.sum(1) == 0).sum())
    if neutral:  # not dropped: the paper keeps them; they teach the neutral face like DISFA's neutral frames
        report.note(f"{neutral} kept samples have every AU 0 after zero_below {o.zero_below:g}")
    write_metadata(out_folder, kept)
    return report
