"""The generic dataset format anyone can produce, and the torch Dataset the trainer reads it with.

A folder with ``metadata.jsonl`` (or ``metadata.csv``), one row per image:

* ``file``: the image path, relative to the folder (absolute paths work too);
* ``caption``: the text prompt for the image (the paper uses BLIP-2 captions; may be empty);
* ``AU1`` ... ``AU26``: the 12 AU intensities named exactly as ``fineface_core.aus.AU_ORDER``,
  FACS scale 0..5 (floats).

Other columns are ignored. Rows with a missing image, a missing / non-numeric / NaN / out-of-range
value, and images that do not open are skipped and counted in a :class:`DataReport`; so are images
listed more than once (see :func:`drop_duplicates`).
"""
from __future__ import annotations

import csv
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from PIL import Image, ImageOps

from fineface_core.aus import AU_ORDER

from .report import DataReport

METADATA_FILES = ("metadata.jsonl", "metadata.csv")  # looked for in this order
COLUMNS = ("file", "caption", *AU_ORDER)
AU_RANGE = (0.0, 5.0)  # FACS intensities; the trainer's smoothing clips to the same range
# Caption for images that have none, in the style of the paper's and official prompts
# ("A close-up of Barack Obama", "a closeup of a boy in a park").
FALLBACK_CAPTION = "a closeup of a person"


@dataclass(frozen=True)
class Record:
    file: str  # absolute path
    caption: str
    aus: tuple[float, ...]  # 12 intensities in AU_ORDER


def metadata_path(folder: str) -> str:
    for name in METADATA_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{folder} has no {' or '.join(METADATA_FILES)}: a dataset folder holds one row per "
                            f"image with file, caption and {', '.join(AU_ORDER)} (see training/README.md, section Data)")


def iter_rows(path: str):
    """(line number, dict or None for an unreadable line) for each row of a .jsonl or .csv file."""
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)  # Python's json also reads NaN / Infinity, which we then report
                except json.JSONDecodeError:
                    row = None
                yield n, row if isinstance(row, dict) else None
    else:
        with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: spreadsheet programs add a BOM
            for n, row in enumerate(csv.DictReader(f), 2):  # line 1 is the header
                yield n, row


def _missing(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_intensity(value):
    """float, or the problem kind: 'missing_value', 'not_a_number' or 'not_finite'."""
    if _missing(value):
        return "missing_value"
    if isinstance(value, bool):  # JSON true/false would otherwise pass as 1.0 / 0.0
        return "not_a_number"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "not_a_number"
    return v if math.isfinite(v) else "not_finite"


def parse_row(folder: str, row: dict | None, au_range=AU_RANGE):
    """A Record, or (problem kind, detail)."""
    if row is None:
        return "bad_row", "not a JSON object"
    missing = [c for c in ("file", *AU_ORDER) if _missing(row.get(c))]
    if row.get("caption") is None:  # an empty caption is allowed, an absent one is a mistake
        missing.append("caption")
    if missing:
        return "missing_value", f"no {', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}"
    values = []
    for code in AU_ORDER:
        v = parse_intensity(row[code])
        if isinstance(v, str):
            return v, f"{code}={row[code]!r}"
        if not au_range[0] <= v <= au_range[1]:
            return "out_of_range", f"{code}={v:g} outside {au_range[0]:g}..{au_range[1]:g}"
        values.append(v)
    path = os.path.join(folder, str(row["file"]))
    if not os.path.isfile(path):
        return "missing_file", str(row["file"])
    return Record(os.path.abspath(path), str(row["caption"]), tuple(values))


def _absent_columns_note(missing_counts, rows, seen_keys) -> str | None:
    """Name the columns no row had, with near misses (au12 for AU12), since then every row is skipped."""
    absent = [c for c in COLUMNS if missing_counts[c] == rows]
    if not rows or not absent:
        return None
    near = {c: k for c in absent for k in seen_keys if k != c and k.lower().replace("_", "") == c.lower()}
    hint = f"; found {', '.join(f'{k!r} (write {c!r})' for c, k in near.items())}" if near else ""
    return f"column(s) {', '.join(absent)} in no row: names must be exactly {', '.join(COLUMNS)}{hint}"


def _differences(a, b) -> str:
    diffs = [f"{code} {x:g} vs {y:g}" for code, x, y in zip(AU_ORDER, a, b) if x != y]
    return ", ".join(diffs[:3]) + (", ..." if len(diffs) > 3 else "")


def drop_duplicates(items: list[tuple[str, Record]], report: DataReport, folder: str = "") -> list[tuple[str, Record]]:
    """One image, one set of labels. ``items`` are (where, Record) in file order; returns those kept.

    - An image listed with *different* AU labels: every row of it is dropped (``conflicting_labels``),
      since nothing tells which label is right, and keeping one would be an arbitrary choice.
    - A row repeating an earlier one (same image, AUs and caption): kept once (``duplicate_row``).
    - Same image and AUs with different captions: every row kept, each a sample (a note says how many).
    """
    groups: dict[str, list[tuple[str, Record]]] = {}
    for where, r in items:
        groups.setdefault(r.file, []).append((where, r))
    conflicting, captioned = set(), 0
    for file, group in groups.items():
        if len(group) == 1:
            continue
        name = os.path.relpath(file, folder) if folder else file
        (w1, r1) = group[0]
        other = next((g for g in group if g[1].aus != r1.aus), None)
        if other is not None:
            conflicting.add(file)
            report.skip("conflicting_labels", f"{name}: {w1} and {other[0]} ({_differences(r1.aus, other[1].aus)})",
                        count=len(group))
            continue
        firsts: dict[str, str] = {}
        repeats = []
        for where, r in group:
            if r.caption in firsts:
                repeats.append(f"{where} repeats {firsts[r.caption]}")
            else:
                firsts[r.caption] = where
        if repeats:
            report.skip("duplicate_row", f"{name}: {repeats[0]}", count=len(repeats))
        captioned += len(firsts) > 1
    if captioned:
        report.note(f"{captioned} images have several rows with the same AUs and different captions: every such "
                    "row is kept as a sample")
    kept, seen = [], set()
    for where, r in items:
        if r.file in conflicting or (r.file, r.caption) in seen:
            continue
        seen.add((r.file, r.caption))
        kept.append((where, r))
    return kept


def read_metadata(folder: str, au_range=AU_RANGE) -> tuple[list[Record], DataReport]:
    """The usable rows of ``folder``'s metadata, and a report of the others. Images are not opened here."""
    path = metadata_path(folder)
    report = DataReport(source=path)
    items = []
    missing_counts = {c: 0 for c in COLUMNS}
    seen_keys: set = set()
    for line, row in iter_rows(path):
        report.rows += 1
        if row is not None:
            seen_keys.update(k for k in row if isinstance(k, str))
            for c in COLUMNS:
                missing_counts[c] += row.get(c) is None
        result = parse_row(folder, row, au_range)
        if isinstance(result, Record):
            items.append((f"line {line}", result))
        else:
            report.skip(result[0], f"line {line}: {result[1]}")
    note = _absent_columns_note(missing_counts, report.rows, seen_keys)
    if note:
        report.note(note)
    records = [r for _, r in drop_duplicates(items, report, folder)]
    report.kept = len(records)
    return records, report


def _plain(value):
    """numpy scalars -> Python numbers for json."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to metadata")


def write_metadata(folder: str, rows, name: str = "metadata.jsonl") -> str:
    """Write ``rows`` (dicts with file, caption, the 12 AU columns, and any extra columns) as
    ``folder/name`` (.jsonl or .csv); returns the path."""
    if not name.endswith((".jsonl", ".csv")):
        raise ValueError(f"metadata is .jsonl or .csv, not {name}")
    os.makedirs(folder, exist_ok=True)
    rows = list(rows)
    extras = sorted({k for r in rows for k in r if k not in COLUMNS})
    fields = [*COLUMNS, *extras]
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8", newline="") as f:
        if name.endswith(".jsonl"):
            for r in rows:
                f.write(json.dumps({k: r.get(k) for k in fields if k in COLUMNS or k in r}, default=_plain) + "\n")
        else:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows({k: _plain(v) if hasattr(v, "item") else v for k, v in r.items()} for r in rows)
    return path


def image_problem(path: str, decode: bool = False) -> str | None:
    """None if the image opens, else why not. ``verify`` checks the file's structure cheaply; only
    ``decode`` (reading every pixel) also catches truncated JPEG data."""
    try:
        with Image.open(path) as im:
            im.verify()
        if decode:
            with Image.open(path) as im:
                im.load()
        return None
    except Exception as exc:  # PIL raises many kinds for broken files
        return f"{type(exc).__name__}: {exc}"


def drop_unreadable(records: list[Record], folder: str, report: DataReport, decode: bool = False) -> list[Record]:
    """``records`` whose image opens; the others are counted as corrupt_image. Threads: PIL releases the
    GIL while reading, and a full dataset has ~180k images."""
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(lambda r: image_problem(r.file, decode), records))
    good = []
    for record, problem in zip(records, problems):
        if problem is None:
            good.append(record)
        else:
            report.skip("corrupt_image", f"{os.path.relpath(record.file, folder)} ({problem[:80]})")
    report.kept = len(good)
    return good


def load_records(folder: str, verify_images: bool | str = True, au_range=AU_RANGE) -> tuple[list[Record], DataReport]:
    """What training uses of ``folder`` (see AUImageDataset's ``verify_images``), and the report.
    Raises ValueError naming the folder and the counts when nothing is usable."""
    records, report = read_metadata(folder, au_range)
    if verify_images:
        records = drop_unreadable(records, folder, report, decode=verify_images == "decode")
    if not records:
        raise ValueError(f"no usable samples in {folder}:\n{report.summary()}")
    return records, report


def pixel_transform(resolution: int, center_crop: bool = True, random_flip: bool = False):
    """PIL image -> float32 [3, R, R] in [-1, 1]: resize the short side, crop a square, maybe flip.
    The latent cache (training/cache) encodes the same pixels, through this same function."""
    from torchvision import transforms

    steps = [transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
             transforms.CenterCrop(resolution) if center_crop else transforms.RandomCrop(resolution)]
    if random_flip:  # AU labels are symmetric, so a mirrored face keeps its labels
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])]
    return transforms.Compose(steps)


# Single-channel modes of more than 8 bits (16-bit grayscale PNG, TIFF): PIL's convert("RGB") clips their
# values at 255 instead of scaling them, so such an image would train as nearly white.
WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def upright_rgb(im: Image.Image) -> Image.Image:
    """An opened image as 8-bit RGB the way it is meant to be seen: turned by its EXIF orientation (phone photos
    store rotation there), wide single-channel modes scaled to 8 bits, CMYK / palette / gray converted."""
    im = ImageOps.exif_transpose(im)
    if im.mode in WIDE_MODES:
        import numpy as np

        wide = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.rint(wide * 255 / WIDE_MODES[im.mode]), 0, 255).astype(np.uint8))
    return im.convert("RGB")


def read_rgb(path: str, folder: str = "") -> Image.Image:
    try:
        with Image.open(path) as im:
            return upright_rgb(im)
    except Exception as exc:
        raise RuntimeError(f"cannot read {path} ({exc}); find all such images with "
                           f"`python -m training.data check {folder or os.path.dirname(path)}`") from exc


class AUImageDataset(torch.utils.data.Dataset):
    """The trainer's view of a dataset folder.

    Items: ``pixel_values`` float32 [3, R, R] in [-1, 1] (the VAE's input range), ``aus`` float32
    [12] in AU_ORDER, ``caption`` str. Images are resized on the short side and cropped to a square.
    ``verify_images``: True opens and verifies every image first (fast); "decode" reads every pixel
    (slow, also catches truncated JPEGs); False checks nothing (an unreadable image then stops
    training when it is reached). Raises ValueError when no usable sample remains.
    """

    def __init__(self, folder: str, resolution: int = 512, center_crop: bool = True, random_flip: bool = False,
                 verify_images: bool | str = True, au_range=AU_RANGE):
        self.folder = folder
        self.records, self.report = load_records(folder, verify_images, au_range)
        self.transform = pixel_transform(resolution, center_crop, random_flip)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        return {"pixel_values": self.transform(read_rgb(r.file, self.folder)),
                "aus": torch.tensor(r.aus, dtype=torch.float32), "caption": r.caption}
