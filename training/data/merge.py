"""Several dataset folders -> one (the paper trains on DISFA and AffectNet together)."""
from __future__ import annotations

import os

from fineface_core.aus import AU_ORDER

from .generic import METADATA_FILES, drop_duplicates, read_metadata, write_metadata
from .report import DataReport

OUT_NAME = "metadata.jsonl"


def check_output(out_folder: str, folders: list[str], overwrite: bool = False):
    """Merging writes ``out_folder/metadata.jsonl``: never into an input folder (that would rewrite the input's
    own rows, or shadow its metadata.csv), through a link onto an input's metadata, or over another dataset's
    metadata unless ``overwrite``. ValueError saying which."""
    out_real = os.path.realpath(out_folder)
    target = os.path.realpath(os.path.join(out_folder, OUT_NAME))
    for folder in folders:
        inputs = [os.path.realpath(os.path.join(folder, name)) for name in METADATA_FILES]
        if os.path.realpath(folder) == out_real or target in inputs:
            raise ValueError(f"the output folder {out_folder} is the input folder {folder}: merging would rewrite "
                             f"that input's {OUT_NAME}. Give a new output folder (--overwrite never writes onto an input)")
    existing = [name for name in METADATA_FILES if os.path.lexists(os.path.join(out_folder, name))]
    if existing and not overwrite:
        raise ValueError(f"{out_folder} already holds {' and '.join(existing)} (another dataset's rows); give a new "
                         f"output folder, or pass --overwrite to replace its {OUT_NAME}")


def merge_folders(out_folder: str, folders: list[str], overwrite: bool = False) -> DataReport:
    """Write ``out_folder/metadata.jsonl`` with the usable rows of every folder, their ``file`` paths
    made relative to ``out_folder`` and a ``source`` column naming the folder they came from. Images
    are not copied; rows that read_metadata rejects are counted, not carried over, and so are images
    that two folders label differently (``drop_duplicates``). Nothing is written into an input folder
    (``check_output``)."""
    check_output(out_folder, folders, overwrite)
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
