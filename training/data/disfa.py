"""DISFA -> the generic format.

DISFA labels every video frame of 27 subjects with the intensity (0..5) of exactly the 12 AUs
FineFace controls, one file per subject and AU::

    <labels>/SN001/SN001_au1.txt      lines "frame,intensity" (frame numbers from 1)

Frames extracted from the videos are expected as ``<frames>/<subject>/<frame - frame_offset,
zero-padded>.<ext>`` (``SN001/00000.jpg`` for frame 1 by default, as the official code reads them).

The paper keeps every frame with an active AU and about 10% as many frames with none (the
official code: 8,305 of them), so that the model still sees neutral faces.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

from fineface_core.aus import AU_ORDER

from .generic import write_metadata
from .report import DataReport


@dataclass
class DisfaOptions:
    neutral_fraction: float = 0.1  # neutral frames kept, as a fraction of the frames with an active AU (paper: ~10%)
    neutral_count: int | None = None  # a fixed number instead (the official code: 8305)
    frame_offset: int = 1  # label frame number - offset = image number (labels count from 1, images from 0)
    frame_digits: int = 5
    frame_ext: str = ".jpg"
    caption: str = "a closeup of a person"  # used where no caption file gives one (the paper captions with BLIP-2)
    seed: int = 0


def _read_labels(path: str, report: DataReport) -> dict[int, float]:
    labels = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = [p for p in line.replace(",", " ").replace("\t", " ").split() if p]
            if not parts:
                continue
            try:
                frame, value = int(parts[0]), float(parts[1])
            except (IndexError, ValueError):
                report.skip("not_a_number", f"{os.path.basename(path)} line {n}: {line.strip()!r}")
                continue
            labels[frame] = value
    return labels


def subject_rows(labels_root: str, subject: str, report: DataReport) -> dict[int, list[float | None]]:
    """frame -> 12 intensities (None where an AU's file has no line for the frame)."""
    frames: dict[int, list] = {}
    for i, code in enumerate(AU_ORDER):
        path = os.path.join(labels_root, subject, f"{subject}_{code.lower()}.txt")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"DISFA label file missing: {path} (expected <labels>/<subject>/<subject>_au<N>.txt)")
        for frame, value in _read_labels(path, report).items():
            frames.setdefault(frame, [None] * len(AU_ORDER))[i] = value
    return frames


def _captions(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    import csv
    import json

    with open(path, encoding="utf-8") as f:
        if path.endswith(".jsonl"):
            rows = [json.loads(line) for line in f if line.strip()]
        else:
            rows = list(csv.DictReader(f))
    return {str(r["file"]): str(r["caption"]) for r in rows}


def prepare_disfa(labels_root: str, frames_root: str, out_folder: str, options: DisfaOptions | None = None,
                  captions: str | None = None) -> DataReport:
    """Write ``out_folder/metadata.jsonl`` whose ``file`` entries point at DISFA's frames.

    ``captions``: an optional CSV/JSONL with ``file`` (as written here, relative to out_folder)
    and ``caption`` columns, e.g. from BLIP-2; other frames get ``options.caption``.
    """
    o = options or DisfaOptions()
    report = DataReport(source=labels_root)
    subjects = sorted(d for d in os.listdir(labels_root) if os.path.isdir(os.path.join(labels_root, d)))
    if not subjects:
        raise FileNotFoundError(f"no subject folders (SN001, ...) in {labels_root}")
    os.makedirs(out_folder, exist_ok=True)
    caption_of = _captions(captions)
    active, neutral = [], []
    for subject in subjects:
        for frame, values in sorted(subject_rows(labels_root, subject, report).items()):
            report.rows += 1
            where = f"{subject} frame {frame}"
            if any(v is None for v in values):
                report.skip("missing_value", f"{where}: no label for {AU_ORDER[values.index(None)]}")
                continue
            bad = [(c, v) for c, v in zip(AU_ORDER, values) if not 0 <= v <= 5]
            if bad:
                report.skip("out_of_range", f"{where}: {bad[0][0]}={bad[0][1]:g}")
                continue
            image = os.path.join(frames_root, subject, f"{frame - o.frame_offset:0{o.frame_digits}d}{o.frame_ext}")
            if not os.path.isfile(image):
                report.skip("missing_file", f"{where}: {image}")
                continue
            file = os.path.relpath(image, out_folder)
            row = {"file": file, "caption": caption_of.get(file, o.caption), **dict(zip(AU_ORDER, values))}
            (active if sum(values) > 0 else neutral).append(row)
    keep = o.neutral_count if o.neutral_count is not None else round(o.neutral_fraction * len(active))
    keep = min(keep, len(neutral))
    kept_neutral = random.Random(o.seed).sample(neutral, keep)
    for row in neutral:
        if row not in kept_neutral:
            report.skip("filtered", "neutral frame beyond the neutral share")
    rows = active + kept_neutral
    report.kept = len(rows)
    write_metadata(out_folder, rows)
    return report
