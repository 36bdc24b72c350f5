"""DISFA -> the generic format (``metadata.jsonl`` pointing at the frames, which stay where they are).

DISFA (Mavadati et al. 2013) labels every video frame of 27 subjects with the intensity (0..5) of
exactly FineFace's 12 AUs, one text file per subject and AU, lines ``frame,intensity`` with frames
counted from 1. It ships videos, not images: extract the frames first (the official code trained
on aligned face crops, 5-digit names counted from 0). Expected layout, every part an option::

    DISFA_ROOT/ActionUnit_Labels/SN001/SN001_au1.txt ... SN001_au26.txt     (labels_dir)
    DISFA_ROOT/Images/SN001/00000.jpg  <- label frame 1                      (frames_dir, frame_name)

Paper (supplementary, dataset processing): no AU corrections for DISFA; the frames with no active
AU are mostly left out, "around 10%" kept so the model still sees neutral faces (what guidance
uses). Captions come from BLIP-2 in the paper: give them with ``captions_file``.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
from dataclasses import dataclass, field

from fineface_core.aus import ACTION_UNITS, AU_ORDER

from .generic import AU_RANGE, FALLBACK_CAPTION, parse_intensity, write_metadata
from .report import DataReport

DISFA_AU_NUMBERS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)  # DISFA's labelled AUs
# DISFA labels exactly FineFace's AUs, in the same order: one label file per column.
assert DISFA_AU_NUMBERS == tuple(au.number for au in ACTION_UNITS)

# The official code keeps this many neutral frames (its comment: "8305 (10%)").
OFFICIAL_NEUTRAL_COUNT = 8305


def _opt(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class DisfaOptions:
    labels_dir: str = _opt("ActionUnit_Labels", "label folder, relative to DISFA_ROOT or absolute: "
                           "<labels_dir>/<subject>/<subject>_au<N>.txt")
    frames_dir: str = _opt("Images", "frame image folder, relative to DISFA_ROOT or absolute: "
                           "<frames_dir>/<subject>/<frame_name> (the official code's is 'aligned')")
    frame_name: str = _opt("{index:05d}.jpg", "frame image name; fields {subject}, {frame} (label frame number, "
                           "from 1) and {index} (frame - 1). ffmpeg's %05d.png from 1 is '{frame:05d}.png'")
    subjects: tuple = _opt((), "subjects to use (comma separated); empty: every folder in labels_dir")
    frame_step: int = _opt(1, "use every n-th labelled frame (paper and official code: 1, every frame)")
    neutral_fraction: float = _opt(0.1, "neutral frames (no active AU) kept, as a fraction of the frames counted "
                                   "by neutral_of (paper: around 10%)")
    neutral_of: str = _opt("active", "'active': the fraction counts frames with an active AU (matches the paper's "
                           "~90,000 DISFA samples and the official comment '8305 (10%)'); 'neutral': of the "
                           "neutral frames (the paper's wording read literally)")
    neutral_count: int | None = _opt(None, f"keep exactly this many neutral frames instead (official code: "
                                     f"{OFFICIAL_NEUTRAL_COUNT})")
    captions_file: str | None = _opt(None, "CSV or JSONL with 'file' (frame path relative to frames_dir, e.g. "
                                     "SN001/00000.jpg) and 'caption' (the paper: BLIP-2 captions)")
    caption: str = _opt(FALLBACK_CAPTION, "caption for frames not in captions_file; field {subject}")
    seed: int = _opt(0, "seed for choosing the neutral frames (the official code draws unseeded)")

    @classmethod
    def official(cls, **changes) -> "DisfaOptions":
        """The official code's values where they differ from the paper's."""
        return dataclasses.replace(cls(neutral_count=OFFICIAL_NEUTRAL_COUNT), **changes)


def _resolve(root: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(root, path)


def _key(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def read_captions(path: str | None, frames_root: str) -> dict[str, str]:
    """frame path relative to frames_root -> caption."""
    if not path:
        return {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [json.loads(line) for line in f if line.strip()] if path.endswith(".jsonl") else list(csv.DictReader(f))
    if rows and not {"file", "caption"} <= set(rows[0]):
        raise ValueError(f"{path}: a captions file needs 'file' and 'caption' columns, found {sorted(rows[0])}")
    out = {}
    for r in rows:
        file = str(r["file"])
        out[_key(os.path.relpath(file, frames_root) if os.path.isabs(file) else file)] = str(r["caption"])
    return out


def read_subject(labels_root: str, subject: str, report: DataReport) -> dict[int, list]:
    """frame -> 12 entries in AU_ORDER: a float, or (problem kind, text) for a bad label, or None
    where that AU's file has no line for the frame. A frame with two different lines in one file gets
    ``conflicting_labels`` (the frame is dropped); a repeated identical line is harmless."""
    frames: dict[int, list] = {}
    for i, code in enumerate(AU_ORDER):
        path = os.path.join(labels_root, subject, f"{subject}_{code.lower()}.txt")
        lines: dict[int, int] = {}  # frame -> line number of its first label in this file
        if not os.path.isfile(path):
            raise FileNotFoundError(f"DISFA label file missing: {path} (expected "
                                    f"<labels_dir>/<subject>/<subject>_au<N>.txt for AUs {DISFA_AU_NUMBERS})")
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.replace(",", " ").split()
                if not parts:
                    continue
                try:
                    frame = int(float(parts[0]))
                except ValueError:  # no frame number: the line cannot be put on a frame
                    report.rows += 1
                    report.skip("bad_row", f"{os.path.basename(path)} line {n}: {line.strip()!r}")
                    continue
                v = parse_intensity(parts[1] if len(parts) > 1 else None)
                row = frames.setdefault(frame, [None] * len(AU_ORDER))
                if row[i] is None:
                    row[i] = v if isinstance(v, float) else (v, f"{code}={line.strip()!r}")
                    lines[frame] = n
                elif isinstance(row[i], float) and row[i] != v:  # the same frame labelled twice, differently
                    row[i] = ("conflicting_labels", f"{os.path.basename(path)} lines {lines[frame]} and {n} give "
                                                    f"{row[i]:g} and {parts[1] if len(parts) > 1 else '-'}")
    return frames


def _label_problem(values: list):
    for code, v in zip(AU_ORDER, values):
        if v is None:
            return "missing_value", f"no {code} label"
        if isinstance(v, tuple):
            return v
        if not AU_RANGE[0] <= v <= AU_RANGE[1]:
            return "out_of_range", f"{code}={v:g} outside DISFA's 0..5"
    return None


def prepare_disfa(disfa_root: str, out_folder: str, options: DisfaOptions | None = None, **changes) -> DataReport:
    """Write ``out_folder/metadata.jsonl`` for DISFA's frames; returns the report.

    ``changes`` override single options: ``prepare_disfa(root, out, neutral_count=8305)``. Raises
    FileNotFoundError for a wrong layout and ValueError when no frame is usable.
    """
    o = dataclasses.replace(options or DisfaOptions(), **changes)
    if o.neutral_of not in ("active", "neutral"):
        raise ValueError(f"neutral_of is 'active' or 'neutral', not {o.neutral_of!r}")
    if o.frame_step < 1 or o.neutral_fraction < 0 or (o.neutral_count or 0) < 0:
        raise ValueError(f"frame_step must be >= 1 and the neutral share >= 0 (got frame_step {o.frame_step}, "
                         f"neutral_fraction {o.neutral_fraction}, neutral_count {o.neutral_count})")
    labels_root, frames_root = _resolve(disfa_root, o.labels_dir), _resolve(disfa_root, o.frames_dir)
    if not os.path.isdir(labels_root):
        raise FileNotFoundError(f"no DISFA label folder {labels_root} (set labels_dir)")
    subjects = list(o.subjects) or sorted(d for d in os.listdir(labels_root)
                                          if os.path.isdir(os.path.join(labels_root, d)))
    if not subjects:
        raise FileNotFoundError(f"no subject folders (SN001, ...) in {labels_root}")
    report = DataReport(source=labels_root)
    captions = read_captions(o.captions_file, frames_root)
    active, neutral = [], []
    for subject in subjects:
        labels = read_subject(labels_root, subject, report)
        first = min(labels, default=0)
        for frame, values in sorted(labels.items()):
            report.rows += 1
            where = f"{subject} frame {frame}"
            problem = _label_problem(values)
            if problem:
                report.skip(problem[0], f"{where}: {problem[1]}")
                continue
            if (frame - first) % o.frame_step:
                report.drop(f"frame_step {o.frame_step}: the frames in between")
                continue
            name = o.frame_name.format(subject=subject, frame=frame, index=frame - 1)
            image = os.path.join(frames_root, subject, name)
            if not os.path.isfile(image):
                report.skip("missing_file", f"{where}: {image}")
                continue
            caption = captions.get(_key(os.path.join(subject, name)))
            row = {"file": os.path.relpath(image, out_folder),
                   "caption": o.caption.format(subject=subject) if caption is None else caption,
                   **dict(zip(AU_ORDER, values)), "subject": subject, "frame": frame, "_fallback": caption is None}
            (active if sum(values) > 0 else neutral).append(row)
    if o.neutral_count is not None:
        want, rule = o.neutral_count, f"neutral_count {o.neutral_count}"
    else:
        base = len(active) if o.neutral_of == "active" else len(neutral)
        want, rule = round(o.neutral_fraction * base), f"{o.neutral_fraction:g} x {base} {o.neutral_of} frames"
    keep = min(want, len(neutral))
    if keep < want:
        report.note(f"only {len(neutral)} neutral frames for the {want} asked ({rule})")
    chosen = random.Random(o.seed).sample(range(len(neutral)), keep)
    report.drop(f"neutral frame over the neutral share ({rule})", count=len(neutral) - keep)
    report.note(f"{len(active)} frames with an active AU, {keep} of {len(neutral)} neutral frames kept ({rule})")
    rows = sorted(active + [neutral[i] for i in chosen], key=lambda r: (r["subject"], r["frame"]))
    uncaptioned = sum(r.pop("_fallback") for r in rows)
    if uncaptioned:
        report.note(f"{uncaptioned} of {len(rows)} kept frames got the caption {o.caption!r}: "
                    + ("not in captions_file" if o.captions_file else "no captions_file given (the paper: BLIP-2)"))
    report.kept = len(rows)
    if not rows:
        raise ValueError(f"no usable DISFA frame under {disfa_root}:\n{report.summary()}")
    write_metadata(out_folder, rows)
    return report
