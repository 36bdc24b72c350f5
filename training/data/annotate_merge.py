"""The shards of an annotation run -> the dataset the trainer reads: metadata.jsonl, report, pictures.

Records come out in the collection's order (photos by path, faces left to right), whichever process or run made
them. LibreFace's readings are corrected here, over all faces at once, with the paper's per-AU corrections
(affectnet.corrected; the same options as ``python -m training.data affectnet``), and nearly neutral faces are
dropped as the paper drops them.
"""
from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np

from fineface_core.aus import AU_ORDER
from fineface_core.faces.libreface import MAX_INTENSITY
from fineface_core.files.safe_write import write_bytes

from .affectnet import AffectNetOptions, corrected, intensity_total
from .au_plots import write_plots
from .face_stages import NO_FACE, PHOTO_TOO_SMALL
from .generic import COLUMNS
from .photos import Photo
from .report import PROBLEMS, DataReport
from .shards import read_shards

METADATA, REPORT_TEXT, REPORT_JSON = "metadata.jsonl", "report.txt", "report.json"


def _photo_outcome(photo: Photo, entry: dict, report: DataReport, conversions: Counter, examples: dict) -> list:
    """Count one photo's outcome; its kept faces as (photo, face record)."""
    status = entry["status"]
    if status in PROBLEMS:
        report.skip(status, f"{photo.rel} ({entry.get('detail', '')})")
        return []
    if status in (NO_FACE, PHOTO_TOO_SMALL):
        report.drop(status, f"{photo.rel} ({entry.get('detail', '')})")
        return []
    for note in entry.get("notes", []):
        conversions[note] += 1
        examples.setdefault(note, photo.rel)
    for face in entry["dropped"]:
        report.drop(face["reason"], f"{photo.rel} face {face['face']}: {face['detail']}")
    return [(photo, face) for face in entry["faces"]]


def collect(photos: list[Photo], out: str, report: DataReport) -> list:
    """(photo, face record) for every kept face, in order; counts everything else into ``report``."""
    done, damaged = read_shards(out)
    conversions, examples = Counter(), {}
    kept = []
    for photo in photos:
        kept += _photo_outcome(photo, done[photo.key], report, conversions, examples)
    for note, n in sorted(conversions.items()):
        report.note(f"{n} photo(s) {note} (e.g. {examples[note]})")
    current = {p.key for p in photos}
    stale = sum(1 for k in done if k not in current)
    if stale:
        report.note(f"{stale} photo(s) annotated earlier are no longer in the folder, or changed since (their "
                    "faces are left out; a changed photo was annotated again)")
    if damaged:
        report.note(f"{len(damaged)} unreadable shard(s) left in place: {', '.join(damaged[:3])}")
    return kept


def label(kept: list, corrections: AffectNetOptions | None, report: DataReport) -> tuple[list, np.ndarray]:
    """The faces that stay and their AU labels [N, 12] on 0..5: LibreFace's readings corrected as the paper's
    AffectNet labels were (``corrections``), or as LibreFace gives them (None)."""
    raw = np.array([face["raw_aus"] for _, face in kept], dtype=np.float64).reshape(-1, len(AU_ORDER))
    if corrections is None:
        return kept, raw
    unit = raw / MAX_INTENSITY
    o = corrections
    strong = np.array([intensity_total(v, o) >= o.min_intensity for v in unit], dtype=bool)
    for (photo, face), ok, v in zip(kept, strong, unit):
        if not ok:
            report.drop(f"AU {o.intensity_of} under {o.min_intensity:g}",
                        f"{photo.rel} face {face['face']}: {intensity_total(v, o):.3f}")
    kept = [k for k, ok in zip(kept, strong) if ok]
    return kept, (corrected(unit[strong], o) if kept else unit[strong])


def _row(photo: Photo, face: dict, values) -> dict:
    row = {"file": face["file"], "caption": face["caption"], **{c: float(v) for c, v in zip(AU_ORDER, values)},
           "photo": photo.rel, "face": face["face"], "box": face["box"]}
    return {k: row[k] for k in (*COLUMNS, "photo", "face", "box")}


def summary_text(report: DataReport) -> str:
    return report.summary().replace(" rows,", " photos,").replace(" usable samples,", " faces kept,", 1)


def merge_dataset(photos: list[Photo], out: str, corrections: AffectNetOptions | None, others: int = 0,
                  source: str = "photos") -> DataReport:
    """Write out/metadata.jsonl, report.txt, report.json and the AU pictures from the shards of ``photos`` (every one
    of them annotated). ValueError (after the report is written) when no face is usable."""
    report = DataReport(source=source)
    report.rows = len(photos)
    if others:
        report.note(f"{others} file(s) in the folder are not photos by their name and were not read")
    kept, values = label(collect(photos, out, report), corrections, report)
    report.kept = len(kept)
    report.note("AU labels: LibreFace readings " + ("with the paper's per-AU corrections" if corrections else
                                                   "as LibreFace gives them (--no-corrections)"))
    rows = [_row(photo, face, v) for (photo, face), v in zip(kept, values)]
    text = summary_text(report)
    write_bytes(os.path.join(out, REPORT_TEXT), (text + "\n").encode())
    summary = {"photos": report.rows, "faces_kept": report.kept, "problems": dict(report.problems),
               "dropped": dict(report.filtered), "examples": report.examples, "notes": report.notes}
    write_bytes(os.path.join(out, REPORT_JSON), json.dumps(summary, indent=1).encode())
    if not rows:
        raise ValueError(f"no usable face in the photos:\n{text}")
    body = "".join(json.dumps(r) + "\n" for r in rows)
    write_bytes(os.path.join(out, METADATA), body.encode())
    write_plots(values, out)
    return report
