"""Build or check the latent cache.

    python -m training.cache build --latent_cache DIR <the trainer's options>    # one process
    accelerate launch -m training.cache build --latent_cache DIR <options>       # each process its share
    python -m training.cache verify DIR

``build`` takes the very options of ``python -m training.train`` (the same command line works, and
the cache it builds is the one that run will accept); it computes what DIR lacks, resuming an
interrupted build. ``verify`` checks every shard against the manifest (size, sha256, header).
"""
from __future__ import annotations

import logging
import sys

import torch

from ..errors import TrainingError


def load_frozen(args):
    """VAE, text encoder(s) and tokenizer(s) of the base model (not the UNet's weights: the cache does not need
    them; its config tells SDXL, whose second encoder and tokenizer are loaded too)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from .ensure import Frozen

    name, rev, variant = args.pretrained_model_name_or_path, args.revision, args.variant
    vae_path = getattr(args, "pretrained_vae_model_name_or_path", None)
    vae = (AutoencoderKL.from_pretrained(vae_path) if vae_path else
           AutoencoderKL.from_pretrained(name, subfolder="vae", revision=rev, variant=variant))
    text_encoder = CLIPTextModel.from_pretrained(name, subfolder="text_encoder", revision=rev, variant=variant)
    tokenizer = CLIPTokenizer.from_pretrained(name, subfolder="tokenizer", revision=rev)
    text_encoder_2 = tokenizer_2 = None
    if UNet2DConditionModel.load_config(name, subfolder="unet", revision=rev).get("cross_attention_dim") == 2048:
        text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(name, subfolder="text_encoder_2", revision=rev,
                                                                     variant=variant)
        tokenizer_2 = CLIPTokenizer.from_pretrained(name, subfolder="tokenizer_2", revision=rev)
    for m in (vae, text_encoder, text_encoder_2):
        if m is not None:
            m.requires_grad_(False).eval()
    return Frozen.of(vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2)


def _console_log(main_process: bool) -> None:
    logger = logging.getLogger("training")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    for handler in logger.handlers:
        handler.setLevel(logging.INFO if main_process else logging.WARNING)


def build_command(argv: list[str]) -> int:
    from accelerate import Accelerator

    from ..config import parse_args
    from ..preflight import check_base_model, check_data_dir, load_checked_dataset
    from .ensure import ensure_cache, precheck

    args = parse_args(argv)
    if not args.latent_cache:
        print("error: give the cache folder with --latent_cache DIR", file=sys.stderr)
        return 2
    problems: list[str] = []
    check_base_model(args.pretrained_model_name_or_path, problems)
    check_data_dir(args.train_data_dir, problems)
    if problems:
        raise TrainingError("; ".join(problems))
    precheck(args)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    _console_log(accelerator.is_main_process)
    dataset = load_checked_dataset(args)
    frozen = load_frozen(args)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    for m in (frozen.vae, frozen.text_encoder):
        m.to(accelerator.device, dtype=dtype)
    cache, _, _ = ensure_cache(accelerator, frozen, args, dataset.records, dtype)
    if accelerator.is_main_process:
        m = cache.manifest
        size = sum(s["size"] for s in m["shards"].values())
        print(f"latent cache {args.latent_cache}: {len(m['images'])} images, {len(m['captions'])} captions, "
              f"{len(m['shards'])} shards, {size / 2**20:.1f} MiB, {m['settings']['dtype']}, "
              f"{m['settings']['resolution']} px{', flipped too' if m['settings']['random_flip'] else ''}")
    accelerator.end_training()
    return 0


def verify_command(argv: list[str]) -> int:
    import argparse

    from accelerate import PartialState

    from .ensure import _verify
    from .store import read_manifest

    p = argparse.ArgumentParser(prog="python -m training.cache verify")
    p.add_argument("folder")
    folder = p.parse_args(argv).folder
    manifest = read_manifest(folder)
    if manifest is None:
        raise TrainingError(f"{folder} holds no latent cache (no manifest.json; an unfinished build resumes with "
                            "`python -m training.cache build`)")
    problems = _verify(PartialState(), folder, manifest)
    for _, p in problems:
        print(f"damaged: {p}")
    print(f"{len(manifest['shards']) - len(problems)} of {len(manifest['shards'])} shards intact")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"build": build_command, "verify": verify_command}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](argv[1:])
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the shards finished so far are kept; run the same command again to go on from "
              "there", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
