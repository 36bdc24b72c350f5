"""``python -m training.data disfa | affectnet | check``."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from .affectnet import AffectNetOptions, prepare_affectnet
from .disfa import DisfaOptions, prepare_disfa
from .generic import AUImageDataset

HELP = {
    "neutral_fraction": "neutral frames kept, as a fraction of the frames with an active AU (paper: about 10%%)",
    "neutral_count": "keep this many neutral frames instead (the official code: 8305)",
    "frame_offset": "label frame number minus this = image number (DISFA labels count from 1, frames from 0)",
    "frame_digits": "zero padding of the frame image names",
    "frame_ext": "frame image extension",
    "caption": "caption for frames without one in --captions",
    "seed": "seed for choosing the neutral frames",
    "column": "LibreFace column name per AU ({au} = AU1 ... AU26)",
    "image_column": "CSV column with the image path under IMAGE_ROOT",
    "caption_column": "CSV column with the caption (BLIP-2 in the paper)",
    "min_size": "keep images whose width and height are at least this (paper: 512)",
    "photo_columns": "BLIP-2 photo checks; rows where one is false are dropped (comma separated; absent columns are not checked)",
    "min_intensity": "drop samples whose AU intensity (0..1) is under this (paper: 0.2)",
    "intensity_of": "'sum' over the AUs (paper) or 'max' (official code)",
    "down_aus": "AUs LibreFace predicts too high (comma separated)",
    "down_gamma": "their power transform x**gamma (paper: 1.8)",
    "up_aus": "AUs predicted too low (comma separated)",
    "up_gamma": "their power transform (paper: 0.8)",
    "up_gain": "multiply the raised AUs by this afterwards (paper: 1; official code: 1.8)",
    "scale": "from LibreFace's 0..1 to FACS 0..5",
    "zero_below": "intensities under this (0..5) become 0 (paper: 1; official code: 1.1)",
    "clip_max": "upper clip after the corrections",
    "default_caption": "caption where the CSV has none",
}


def _add_options(parser, cls):
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, tuple):
            parser.add_argument(flag, default=",".join(f.default), help=HELP[f.name] + f" (default {','.join(f.default)})")
        else:
            kind = type(f.default) if f.default is not None else int
            parser.add_argument(flag, type=kind, default=f.default, help=HELP[f.name] + f" (default {f.default})")


def _options(cls, args):
    values = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name)
        values[f.name] = tuple(x for x in v.split(",") if x) if isinstance(f.default, tuple) else v
    return cls(**values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("disfa", help="DISFA label files + extracted frames -> OUT/metadata.jsonl")
    d.add_argument("labels", help="folder with <subject>/<subject>_au<N>.txt")
    d.add_argument("frames", help="folder with <subject>/<frame>.jpg")
    d.add_argument("out", help="output folder (metadata.jsonl; the images stay where they are)")
    d.add_argument("--captions", help="CSV/JSONL with file and caption columns (e.g. from BLIP-2)")
    _add_options(d, DisfaOptions)
    a = sub.add_parser("affectnet", help="AffectNet images + LibreFace AU CSV -> OUT/metadata.jsonl")
    a.add_argument("csv", help="CSV with image names, captions and LibreFace AU columns")
    a.add_argument("images", help="folder the image names are relative to")
    a.add_argument("out", help="output folder")
    _add_options(a, AffectNetOptions)
    c = sub.add_parser("check", help="read a dataset folder as training would and print what is usable")
    c.add_argument("folder")
    c.add_argument("--no-verify-images", action="store_true", help="skip decoding every image")
    args = parser.parse_args(argv)

    if args.command == "disfa":
        report = prepare_disfa(args.labels, args.frames, args.out, _options(DisfaOptions, args), captions=args.captions)
    elif args.command == "affectnet":
        report = prepare_affectnet(args.csv, args.images, args.out, _options(AffectNetOptions, args))
    else:
        try:
            report = AUImageDataset(args.folder, resolution=8, verify_images=not args.no_verify_images).report
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
    print(report.summary())
    return 0
