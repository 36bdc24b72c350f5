"""python -m training.data {annotate, disfa, affectnet, merge, check}: build and check training data folders.

Every filter and correction constant is an option; its default is the paper's, and --official
switches to the official code's values (the help of each option names both where they differ).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from fineface_core.aus import AU_ORDER

from .affectnet import AffectNetOptions, prepare_affectnet
from .annotate_cli import add_annotate_parser, run_annotate
from .disfa import DisfaOptions, prepare_disfa
from .generic import load_records
from .merge import merge_folders

def annotate_corrections():
    from .annotate import CORRECTION_FIELDS

    return CORRECTION_FIELDS


CHOICES = {"neutral_of": ("active", "neutral"), "intensity_of": ("sum", "max")}


def _add_options(parser: argparse.ArgumentParser, cls, names=None, title="options (defaults: the paper's)") -> None:
    """One flag per dataclass field (or per field in ``names``). Flags default to None, meaning the preset's value
    (paper or --official)."""
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = f.metadata["help"].replace("%", "%%")
        shown = ",".join(f.default) if isinstance(f.default, tuple) else f.default
        kwargs = {"default": None, "help": f"{text} (default: {shown!r})"}
        if isinstance(f.default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(f.default, tuple):
            kwargs["type"] = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())
            kwargs["metavar"] = "A,B"
        else:
            kwargs["type"] = int if f.default is None else type(f.default)
            kwargs["choices"] = CHOICES.get(f.name)
        group.add_argument(flag, **kwargs)
    group.add_argument("--official", action="store_true",
                       help="start from the official code's values instead of the paper's (single flags still win)")


def _options(cls, args):
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
    return cls.official(**changes) if args.official else cls(**changes)


def au_table(records) -> str:
    """Per AU: the share of samples where it is active, and its mean intensity there."""
    n = len(records)
    cells = []
    for i, code in enumerate(AU_ORDER):
        active = [r.aus[i] for r in records if r.aus[i] > 0]
        mean = sum(active) / len(active) if active else 0.0
        cells.append((code, f"{100 * len(active) / n:.0f}%", f"{mean:.2f}"))
    return "\n".join("  " + label.ljust(14) + " ".join(c[k].rjust(5) for c in cells)
                     for k, label in ((0, "AU"), (1, "active"), (2, "mean if active")))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_annotate_parser(sub, lambda p: _add_options(p, AffectNetOptions, annotate_corrections(),
                                                    "LibreFace's AU corrections (defaults: the paper's)"))

    d = sub.add_parser("disfa", help="DISFA labels + extracted frames -> OUT/metadata.jsonl",
                       description="DISFA labels + extracted frames -> OUT/metadata.jsonl (frames stay in place). "
                                   "Layout: DISFA_ROOT/<labels-dir>/SN001/SN001_au1.txt and "
                                   "DISFA_ROOT/<frames-dir>/SN001/<frame-name>.")
    d.add_argument("disfa_root", help="DISFA folder")
    d.add_argument("out", help="output folder")
    _add_options(d, DisfaOptions)

    a = sub.add_parser("affectnet", help="AffectNet images + LibreFace AU CSV -> OUT/metadata.jsonl",
                       description="AffectNet images + a CSV of LibreFace AU intensities -> OUT/metadata.jsonl, "
                                   "with the paper's filters and AU corrections (images stay in place).")
    a.add_argument("csv", help="CSV with image names, captions and LibreFace AU columns")
    a.add_argument("image_root", help="folder the image names are relative to")
    a.add_argument("out", help="output folder")
    _add_options(a, AffectNetOptions)

    m = sub.add_parser("merge", help="several dataset folders -> one OUT/metadata.jsonl",
                       description="Merge dataset folders (e.g. DISFA's and AffectNet's) into one for training.")
    m.add_argument("out", help="output folder")
    m.add_argument("folders", nargs="+", help="dataset folders")
    m.add_argument("--overwrite", action="store_true",
                   help="replace OUT/metadata.jsonl if OUT is already a dataset folder (never an input folder)")

    c = sub.add_parser("check", help="read a dataset folder as training would; print what is usable and why not",
                       description="Read a dataset folder as training would and print the report: rows kept, "
                                   "rows skipped by kind with examples, and per-AU statistics. Exit 1 if nothing "
                                   "is usable.")
    c.add_argument("folder", help="folder with metadata.jsonl or metadata.csv")
    c.add_argument("--quick", action="store_true",
                   help="only verify image files (as training does) instead of decoding every pixel")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "annotate":
        return run_annotate(args, _options(AffectNetOptions, args))
    try:
        if args.command == "disfa":
            report = prepare_disfa(args.disfa_root, args.out, _options(DisfaOptions, args))
        elif args.command == "affectnet":
            report = prepare_affectnet(args.csv, args.image_root, args.out, _options(AffectNetOptions, args))
        elif args.command == "merge":
            report = merge_folders(args.out, args.folders, args.overwrite)
        else:
            records, report = load_records(args.folder, verify_images=True if args.quick else "decode")
            print(report.summary())
            print(au_table(records))
            return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"wrote {args.out}/metadata.jsonl")
    return 0
