"""The generic dataset format anyone can produce, and the torch Dataset that trains on it.

A folder with the images and ``metadata.jsonl`` (or ``metadata.csv``): one row per image with
``file`` (path relative to the folder), ``caption`` and the 12 AU columns named as
``fineface_core.aus.AU_ORDER`` (``AU1`` ... ``AU26``), intensities 0..5. Rows with a missing
file, a missing / non-numeric / NaN / out-of-range value, and images that do not decode are
skipped and counted in a :class:`DataReport`.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass

import torch
from PIL import Image

from fineface_core.aus import AU_ORDER

from .report import DataReport

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
COLUMNS = ("file", "caption", *AU_ORDER)


@dataclass(frozen=True)
class Record:
    file: str  # absolute path
    caption: str
    aus: tuple  # 12 floats in AU_ORDER


def metadata_path(folder: str) -> str:
    for name in METADATA_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{folder} has no {' or '.join(METADATA_FILES)}; see training/README.md, 'Data'")


def _raw_rows(path: str):
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                yield n, row if isinstance(row, dict) else None
    else:
        with open(path, encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.DictReader(f), 2):  # line 1 is the header
                yield n, row


def _parse_row(folder, row, where, report, au_range):
    if row is None:
        report.skip("missing_value", f"{where}: not a JSON object")
        return None
    missing = [c for c in COLUMNS if row.get(c) in (None, "")]
    if missing:
        report.skip("missing_value", f"{where}: no {', '.join(missing[:3])}")
        return None
    values = []
    for code in AU_ORDER:
        try:
            v = float(row[code])
        except (TypeError, ValueError):
            report.skip("not_a_number", f"{where}: {code}={row[code]!r}")
            return None
        if not math.isfinite(v):
            report.skip("not_finite", f"{where}: {code}={v}")
            return None
        if not au_range[0] <= v <= au_range[1]:
            report.skip("out_of_range", f"{where}: {code}={v:g} outside {au_range[0]:g}..{au_range[1]:g}")
            return None
        values.append(v)
    path = os.path.join(folder, str(row["file"]))
    if not os.path.isfile(path):
        report.skip("missing_file", f"{where}: {row['file']}")
        return None
    return Record(os.path.abspath(path), str(row["caption"]), tuple(values))


def read_metadata(folder: str, au_range=(0.0, 5.0)) -> tuple[list[Record], DataReport]:
    """The usable rows of ``folder``'s metadata, and a report of the others."""
    path = metadata_path(folder)
    report = DataReport(source=path)
    records = []
    for line, row in _raw_rows(path):
        report.rows += 1
        record = _parse_row(folder, row, f"line {line}", report, au_range)
        if record is not None:
            records.append(record)
    report.kept = len(records)
    return records, report


def write_metadata(folder: str, rows, name: str = "metadata.jsonl") -> str:
    """Write rows (dicts with ``file``, ``caption`` and the 12 AU columns) as the folder's metadata."""
    path = os.path.join(folder, name)
    rows = list(rows)
    if name.endswith(".jsonl"):
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps({c: row.get(c) for c in COLUMNS}) + "\n")
    elif name.endswith(".csv"):
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"metadata is .jsonl or .csv, not {name}")
    return path


def image_is_readable(path: str) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()  # checks the file's structure
        with Image.open(path) as im:
            im.load()  # verify() misses truncated pixel data
        return True
    except Exception:  # PIL raises many kinds for broken files
        return False


class AUImageDataset(torch.utils.data.Dataset):
    """Items: ``pixel_values`` [3, R, R] in [-1, 1], ``aus`` [12] float32, ``caption``."""

    def __init__(self, folder: str, resolution: int = 512, center_crop: bool = True, random_flip: bool = False,
                 verify_images: bool = True, au_range=(0.0, 5.0)):
        from torchvision import transforms

        records, self.report = read_metadata(folder, au_range)
        if verify_images:
            good = []
            for r in records:
                if image_is_readable(r.file):
                    good.append(r)
                else:
                    self.report.skip("corrupt_image", os.path.relpath(r.file, folder))
            records = good
            self.report.kept = len(records)
        if not records:
            raise ValueError(f"no usable samples in {folder}: {self.report.summary()}")
        self.records = records
        crop = transforms.CenterCrop(resolution) if center_crop else transforms.RandomCrop(resolution)
        steps = [transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BILINEAR), crop]
        if random_flip:
            steps.append(transforms.RandomHorizontalFlip())
        self.transform = transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        r = self.records[i]
        with Image.open(r.file) as im:
            image = im.convert("RGB")
        return {"pixel_values": self.transform(image), "aus": torch.tensor(r.aus, dtype=torch.float32),
                "caption": r.caption}
