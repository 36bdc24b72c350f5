"""Command-line options of the trainer. Defaults are the paper's (supplementary, Sec. 7) or, where
the paper is silent, the official training script's (train.sh), each noted in its help text."""
from __future__ import annotations

import argparse
import math

from fineface_core.aus import parse_aus, split_specs
from fineface_core.encoders import DEFAULT_ENCODER, ENCODER_CHOICES
from fineface_core.errors import AUSpecError

DEFAULT_BASE_MODEL = "stabilityai/stable-diffusion-2-1-base"
DEFAULT_VALIDATION_AUS = "neutral; AU12@5 + AU6@3; AU1@3 + AU2@3 + AU5@3 + AU26@3; AU4@4; AU15@4 + AU17@3; AU25@5 + AU26@5"
TRAINABLE_FILE = "fineface_trainable.safetensors"
RUN_CONFIG_FILE = "fineface_run.json"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train FineFace (AU encoder + AU adapter + LoRA) on a frozen Stable Diffusion 2.1, 1.5 or SDXL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("model")
    g.add_argument("--pretrained_model_name_or_path", default=DEFAULT_BASE_MODEL,
                   help="diffusers folder or hub id of the base model (paper: SD 2.1 base)")
    g.add_argument("--revision", default=None, help="hub revision of the base model")
    g.add_argument("--variant", default=None, help="weight variant of the base model files (e.g. fp16)")
    g.add_argument("--family", default="auto", choices=("auto", "sd21", "sd15", "sdxl"),
                   help="base model family; auto detects it from the UNet's cross_attention_dim (1024 / 768 / 2048). "
                        "For --dry_run on the real SDXL architecture without downloading: --pretrained_model_name_or_path "
                        "builtin:sdxl-base-1.0")
    g.add_argument("--pretrained_vae_model_name_or_path", default=None,
                   help="another VAE (folder or hub id). SDXL's own overflows in fp16: under --mixed_precision fp16 it "
                        "stays fp32 unless you name a fixed one, e.g. madebyollin/sdxl-vae-fp16-fix")
    g.add_argument("--encoder", default=DEFAULT_ENCODER, choices=ENCODER_CHOICES,
                   help="AU encoder (paper Table 2); res_mlp64 is the paper's 'Res + MLP64'; the SD 1.5 release uses res_mlp")
    g.add_argument("--encoder_hidden_dim", type=int, default=None,
                   help="hidden size of res_mlp / res_3mlp (None: the encoder's own)")
    g.add_argument("--lora_rank", type=int, default=32,
                   help="LoRA rank on to_q/to_k/to_v/to_out.0 of every UNet attention; 0 = no LoRA (the SD 1.5 release)")
    g.add_argument("--lora_alpha", type=float, default=8.0,
                   help="LoRA alpha (scale alpha/rank); the paper keeps peft's default 8. Recorded in the export")
    g.add_argument("--lambda_au", type=float, default=1.0, help="AU branch weight lambda_AU (paper: 1.0 in training and inference)")
    g.add_argument("--prediction_type", default=None, choices=(None, "epsilon", "v_prediction"),
                   help="override the scheduler's prediction type (default: the base model's scheduler config)")

    g = p.add_argument_group("data")
    g.add_argument("--train_data_dir", default=None,
                   help="folder with images and metadata.jsonl rows {file, caption, AU1..AU26} (see training/data)")
    g.add_argument("--resolution", type=int, default=512, help="training resolution (paper: 512)")
    g.add_argument("--center_crop", action=argparse.BooleanOptionalAction, default=True,
                   help="center crop to a square (passed to AUImageDataset)")
    g.add_argument("--random_flip", action="store_true",
                   help="random horizontal flips (AU labels are symmetric); the official code does not flip")
    g.add_argument("--no_verify_images", action="store_true",
                   help="skip opening every image once before training (faster start on huge folders)")
    g.add_argument("--caption_dropout_prob", type=float, default=0.0,
                   help="probability of replacing a caption with the empty prompt; the paper does not use it (0)")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="data loading worker processes")

    g = p.add_argument_group("latent cache (training/cache; see training/README.md)")
    g.add_argument("--latent_cache", default=None, metavar="DIR",
                   help="read the VAE's latent distributions and the text embeddings from this cache instead of "
                        "computing them every step (same results, ~1.5x less compute at 512 px); what it lacks is "
                        "built first, an interrupted build resumes. Also: python -m training.cache build")
    g.add_argument("--rebuild_latent_cache", action="store_true",
                   help="when --latent_cache was built for other settings or models, build it anew; when shards are "
                        "damaged, compute them again (without it both are refused)")
    g.add_argument("--cache_text", action=argparse.BooleanOptionalAction, default=True,
                   help="cache the caption embeddings too: ~154 KiB per distinct caption (SD 2.1, fp16), most of the "
                        "cache's size, for ~1.4%% of a step's compute at 512 px; --no-cache_text runs the text encoder "
                        "every step instead")
    g.add_argument("--cache_batch_size", type=int, default=16, help="images per VAE call while building the cache")
    g.add_argument("--cache_shard_size", type=int, default=1024,
                   help="images (or captions) per cache shard file (~130 MB at 512 px in fp16 with --random_flip)")

    g = p.add_argument_group("distribution smoothing (paper Sec. 4.3)")
    g.add_argument("--au_noise_std", type=float, default=0.2,
                   help="std of the Gaussian label noise (official code: 0.2; the paper writes sigma^2 = 0.2)")
    g.add_argument("--au_clip_min", type=float, default=0.0, help="lower clip of the smoothed AUs")
    g.add_argument("--au_clip_max", type=float, default=5.0, help="upper clip of the smoothed AUs")
    g.add_argument("--au_round_prob", type=float, default=0.2, help="probability of rounding the AUs to integers")
    g.add_argument("--au_round_per", default="batch", choices=("batch", "sample"),
                   help="draw the rounding once per batch (official code) or per sample")

    g = p.add_argument_group("optimisation")
    g.add_argument("--train_batch_size", type=int, default=16,
                   help="batch per device (paper: 16 in total; use train_batch_size x processes x accumulation = 16)")
    g.add_argument("--gradient_accumulation_steps", type=int, default=1)
    g.add_argument("--max_train_steps", type=int, default=20000, help="optimizer steps (official train.sh: 20000)")
    g.add_argument("--learning_rate", type=float, default=1e-4, help="AdamW learning rate (paper: 1e-4)")
    g.add_argument("--scale_lr", action="store_true", help="multiply lr by batch x accumulation x processes")
    g.add_argument("--lr_scheduler", default="constant",
                   choices=("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"),
                   help="learning-rate schedule (official: constant)")
    g.add_argument("--lr_warmup_steps", type=int, default=0)
    g.add_argument("--adam_beta1", type=float, default=0.9)
    g.add_argument("--adam_beta2", type=float, default=0.999)
    g.add_argument("--adam_weight_decay", type=float, default=1e-2)
    g.add_argument("--adam_epsilon", type=float, default=1e-8)
    g.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping (official: 1.0)")
    g.add_argument("--snr_gamma", type=float, default=None, help="min-SNR loss weighting gamma (off in the paper)")
    g.add_argument("--noise_offset", type=float, default=0.0, help="offset noise scale (off in the paper)")
    g.add_argument("--seed", type=int, default=0, help="seed of weights init, noise, timesteps, smoothing and data order")

    g = p.add_argument_group("running")
    g.add_argument("--output_dir", default="fineface-run")
    g.add_argument("--mixed_precision", default=None, choices=(None, "no", "fp16", "bf16"),
                   help="frozen models in this dtype, trainable weights in fp32 (default: accelerate config)")
    g.add_argument("--gradient_checkpointing", action="store_true", help="recompute UNet activations in backward")
    g.add_argument("--allow_tf32", action="store_true", help="TF32 matmuls on Ampere+ GPUs")
    g.add_argument("--enable_xformers_memory_efficient_attention", action="store_true",
                   help="accepted for familiarity; FineFace's processors use torch SDPA (memory-efficient already)")
    g.add_argument("--checkpointing_steps", type=int, default=5000, help="save a resumable checkpoint every N steps")
    g.add_argument("--checkpoints_total_limit", type=int, default=None, help="keep at most this many checkpoints")
    g.add_argument("--resume_from_checkpoint", default=None,
                   help="'latest' (newest complete checkpoint in --output_dir; none: a new run) or a checkpoint folder")
    g.add_argument("--overwrite_output_dir", action="store_true",
                   help="start a new run in an --output_dir that holds another run's checkpoints or weights: they are "
                        "moved (not deleted) into OUTPUT_DIR/replaced-<date-time>/ first. Without it such a run is "
                        "refused, unless resuming")
    g.add_argument("--report_to", default="tensorboard", choices=("tensorboard", "none"))
    g.add_argument("--logging_dir", default="logs", help="TensorBoard folder, relative to --output_dir")
    g.add_argument("--tracker_project_name", default="fineface")
    g.add_argument("--dry_run", action="store_true",
                   help="print trainable parameter counts and a memory / throughput estimate, then exit")
    g.add_argument("--dry_run_latent_sizes", default="8,16",
                   help="latent sizes at which --dry_run measures activations to extrapolate to --resolution")

    g = p.add_argument_group("validation")
    g.add_argument("--validation_steps", type=int, default=2000, help="render the AU sweep every N steps (0: never)")
    g.add_argument("--validation_prompt", default="a closeup photo of a person")
    g.add_argument("--validation_aus", default=DEFAULT_VALIDATION_AUS,
                   help="AU specs separated by ';' (fineface_core.aus syntax), one grid cell each")
    g.add_argument("--validation_inference_steps", type=int, default=20)
    g.add_argument("--validation_guidance_scale", type=float, default=7.5)
    g.add_argument("--validation_resolution", type=int, default=None, help="default: --resolution")
    g.add_argument("--validation_seed", type=int, default=0)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    nonfinite = [f"--{name} must be a finite number, not {value}" for name, value in vars(args).items()
                 if isinstance(value, float) and not math.isfinite(value)]
    if nonfinite:
        parser.error("; ".join(nonfinite))
    problems = []
    if not args.dry_run and not args.train_data_dir:
        problems.append("--train_data_dir is required (unless --dry_run)")
    if args.lora_rank < 0:
        problems.append("--lora_rank must be >= 0")
    if args.lora_alpha <= 0:
        problems.append("--lora_alpha must be > 0")
    for name in ("caption_dropout_prob", "au_round_prob"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            problems.append(f"--{name} must be in [0, 1]")
    if args.au_noise_std < 0:
        problems.append("--au_noise_std must be >= 0")
    if args.au_clip_min > args.au_clip_max:
        problems.append("--au_clip_min must be <= --au_clip_max")
    if args.latent_cache and not args.center_crop:
        problems.append("--latent_cache needs --center_crop: a random crop differs every step, the cache holds one "
                        "crop per image; train without the cache for random crops")
    if args.rebuild_latent_cache and not args.latent_cache:
        problems.append("--rebuild_latent_cache needs --latent_cache DIR")
    for name in ("train_batch_size", "gradient_accumulation_steps", "max_train_steps", "checkpointing_steps",
                 "cache_batch_size", "cache_shard_size"):
        if getattr(args, name) < 1:
            problems.append(f"--{name} must be >= 1")
    if args.checkpoints_total_limit is not None and args.checkpoints_total_limit < 1:
        problems.append("--checkpoints_total_limit must be >= 1")
    if args.resolution % 8:
        problems.append("--resolution must be a multiple of 8")
    if args.validation_resolution is not None and (args.validation_resolution < 8 or args.validation_resolution % 8):
        problems.append("--validation_resolution must be a positive multiple of 8")
    if not 0 < args.learning_rate <= 1:  # AdamW moves each weight by about the lr per step: > 1 is a typo
        problems.append(f"--learning_rate {args.learning_rate:g} must be in (0, 1] (the paper's is 1e-4)")
    if not args.adam_epsilon > 0:
        problems.append("--adam_epsilon must be > 0 (0 divides by zero on parameters without gradient)")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0.0 <= getattr(args, name) < 1.0:
            problems.append(f"--{name} must be in [0, 1)")
    for name in ("adam_weight_decay", "max_grad_norm", "noise_offset", "lr_warmup_steps", "dataloader_num_workers",
                 "validation_steps", "validation_guidance_scale"):
        if getattr(args, name) < 0:
            problems.append(f"--{name} must be >= 0")
    if args.snr_gamma is not None and not args.snr_gamma > 0:
        problems.append("--snr_gamma must be > 0")
    if args.encoder_hidden_dim is not None and args.encoder_hidden_dim < 1:
        problems.append("--encoder_hidden_dim must be >= 1")
    if args.validation_steps and args.validation_inference_steps < 1:
        problems.append("--validation_inference_steps must be >= 1")
    specs = split_specs(args.validation_aus)
    if not specs:
        problems.append("--validation_aus holds no AU spec ('neutral' is one)")
    for i, spec in enumerate(specs, 1):  # here, not at the first validation thousands of steps later
        try:
            parse_aus(spec)
        except AUSpecError as exc:
            problems.append(f"--validation_aus spec {i} of {len(specs)} ({spec!r}): {exc}")
    if problems:
        parser.error("; ".join(problems))
    if args.validation_resolution is None:
        args.validation_resolution = args.resolution
    return args
