"""``python -m fineface_core convert | inspect``."""
from __future__ import annotations

import argparse
import sys

# torch and the weight readers are imported once the arguments are read: --help and a mistyped option
# answer at once instead of after seconds of importing.
from ..errors import FineFaceError

DTYPES = {"keep": None, "fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # torch's names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fineface_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    conv = sub.add_parser("convert", help="official release folder (or any FineFace weights) -> one .safetensors file")
    conv.add_argument("source", help="official release folder, or a FineFace .safetensors file")
    conv.add_argument("out", help="output .safetensors path")
    conv.add_argument("--variant", default="auto", choices=["auto", "sd21", "sd15"],
                      help="which release variant to read when the folder holds both (default: auto)")
    conv.add_argument("--drop-au-to-k", action="store_true",
                      help="omit the AU key projections (unused at inference; halves the adapter's size)")
    conv.add_argument("--dtype", default="keep", choices=sorted(DTYPES),
                      help="store tensors in this precision (default: keep, which is lossless)")
    conv.add_argument("--overwrite", action="store_true",
                      help="replace the output file if it exists (never one of the files being converted)")

    insp = sub.add_parser("inspect", help="print what a FineFace file or release folder holds")
    insp.add_argument("path")
    insp.add_argument("--variant", default="auto", choices=["auto", "sd21", "sd15"])

    args = parser.parse_args(argv)
    if args.command == "convert" and not args.out.endswith(".safetensors"):
        parser.error("the output file name must end in .safetensors")
    import torch

    from .loading import describe, load_weights
    from .single_file import save_fineface

    try:
        if args.command == "convert":
            weights = load_weights(args.source, args.variant)
            dtype = getattr(torch, DTYPES[args.dtype]) if DTYPES[args.dtype] else None
            save_fineface(weights, args.out, include_au_to_k=not args.drop_au_to_k, dtype=dtype,
                          overwrite=args.overwrite)
            if weights.ignored:
                print(f"not converted: {len(weights.ignored)} keys ({next(iter(weights.ignored.values()))})")
            print(describe(load_weights(args.out)))
            print(f"wrote {args.out}")
        else:
            print(describe(load_weights(args.path, args.variant)))
    except FineFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
