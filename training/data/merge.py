"""Several dataset folders -> one (the paper trains on DISFA and AffectNet together)."""
from __future__ import annotations

import os

from fineface_core.aus import AU_ORDER

from .generic import drop_duplicates, read_metadata, write_metadata
from .report import DataReport


def merge_folders(out_folder: str, folders: list[str]) -> DataReport:
    """Write ``out_folder/metadata.jsonl`` with the usable rows of every folder, their ``file`` paths
    made relative to ``out_folder`` and a ``source`` column naming the folder they came from. Images
    are not copied; rows that read_metadata rejects are counted, not carried over, and so are images
    that two folders label differently (``drop_duplicates``)."""
    report = DataReport(source=" + ".join(folders))
    items = []
    for folder in folders:
        records, part = read_metadata(folder)
        report.rows += part.rows
        for kind, n in part.problems.items():
            report.problems[kind] += n
            for example in part.examples.get(kind, []):
                report._example(kind, f"{folder} {example}")
        report.notes += [f"{folder}: {t}" for t in part.notes]
        items += [(folder, r) for r in records]
    rows = [{"file": os.path.relpath(r.file, out_folder), "caption": r.caption, **dict(zip(AU_ORDER, r.aus)),
             "source": os.path.basename(os.path.normpath(folder))} for folder, r in drop_duplicates(items, report)]
    report.kept = len(rows)
    if not rows:
        raise ValueError(f"nothing usable to merge:\n{report.summary()}")
    write_metadata(out_folder, rows)
    return report
