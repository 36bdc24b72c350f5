"""Export trained FineFace weights as this project's single ``.safetensors`` file.

    python -m training.export runs/fineface/checkpoint-20000 models/fineface/my_fineface.safetensors
    python -m training.export runs/fineface OUT.safetensors           # the final weights of a finished run

The file records the family (sd21 / sd15), the AU encoder's kind and config, the LoRA rank and
alpha, and lambda_AU; the ComfyUI loader, ``fineface_core.weightfiles.loading.load_weights`` and
``FineFacePipeline`` read it. ``au_to_k`` is left out unless asked for: with one AU token the
attention over it is exactly its value, so ``au_to_k`` never changes the output.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from fineface_core.errors import FineFaceError
from fineface_core.weightfiles.loading import describe
from fineface_core.weightfiles.single_file import load_fineface, save_fineface

from .config import RUN_CONFIG_FILE, TRAINABLE_FILE
from .errors import TrainingError
from .finite import check_weights_finite, weight_tensors

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def source_label(run_config: dict) -> str:
    base = run_config.get("base_model", "?")
    step = run_config.get("global_step", "?")
    return f"FineFace trained with training/ on {base}, step {step}"


def export_weights(weights, out_path: str, run_config: dict, *, include_au_to_k: bool = False,
                   dtype: torch.dtype | None = None, overwrite: bool = True) -> str:
    """Write ``weights`` as a FineFace file; TrainingError (naming the tensor) if any holds NaN or inf."""
    check_weights_finite(weights, out_path)
    if dtype is not None and dtype != torch.float32:
        cast = {name: t.to(dtype) for name, t in weight_tensors(weights).items() if t.is_floating_point()}
        bad = [name for name, t in cast.items() if not torch.isfinite(t).all()]
        if bad:
            raise TrainingError(f"refusing to write {out_path}: {len(bad)} tensors overflow {dtype} (first: {bad[0]}); "
                                "export in fp32 or bf16")
    weights.source = source_label(run_config)
    return save_fineface(weights, out_path, include_au_to_k=include_au_to_k, dtype=dtype, overwrite=overwrite)


def export_checkpoint(folder: str, out_path: str, *, include_au_to_k: bool = False, dtype: str = "fp32",
                      overwrite: bool = False) -> str:
    """A checkpoint folder (or a finished run's output folder) -> one FineFace .safetensors file."""
    trainable = os.path.join(folder, TRAINABLE_FILE)
    if not os.path.isfile(trainable):
        raise FileNotFoundError(f"{folder} holds no {TRAINABLE_FILE}: give a checkpoint-N folder or a finished run's "
                                "output folder")
    run_config = {}
    config_path = os.path.join(folder, RUN_CONFIG_FILE)
    if os.path.isfile(config_path):
        with open(config_path) as f:
            run_config = json.load(f)
    weights = load_fineface(trainable)
    weights.encoder.float()  # stored in fp32; cast on save if asked
    return export_weights(weights, out_path, run_config, include_au_to_k=include_au_to_k, dtype=DTYPES[dtype],
                          overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint_dir", help="checkpoint-N folder, or the --output_dir of a finished run")
    p.add_argument("out", help="the .safetensors file to write")
    p.add_argument("--include_au_to_k", action="store_true", help="keep au_to_k (unused at inference, ~50 MB for SD 2.1)")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES), help="tensor precision of the file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output file if it exists (never the checkpoint's own file)")
    args = p.parse_args(argv)
    if not args.out.endswith(".safetensors"):
        p.error("the output file must end in .safetensors")
    try:
        path = export_checkpoint(args.checkpoint_dir, args.out, include_au_to_k=args.include_au_to_k, dtype=args.dtype,
                                 overwrite=args.overwrite)
    except (TrainingError, FineFaceError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    print(describe(load_fineface(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
