"""Train FineFace on a frozen Stable Diffusion 2.1 (default), 1.5 or SDXL (training/sdxl.py).

    accelerate launch -m training.train --train_data_dir DATA --output_dir runs/fineface
    python -m training.train --train_data_dir DATA --output_dir runs/fineface      # one process
    python -m training.train --dry_run                                             # counts + estimates

Loss: ``|| eps_theta(z_t, t, text(caption), encoder(smooth(aus))) - target ||^2`` with the target
from the noise scheduler's prediction type (epsilon for SD 2.1 base, v for SD 2.1 768).
See training/README.md for the options and multi-GPU commands.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from .checkpoints import TrainingRandom, register_hooks, save_checkpoint, save_trainable, to_weights, unwrap
from .config import parse_args
from .errors import TrainingError
from .finite import loss_error, params_error
from .preflight import move_aside, preflight
from .sdxl import (WithTimeIds, XLText, check_xl_options, drop_captions, empty_caption, encode_text, is_xl,
                   make_collate_xl, move_text, vae_stays_fp32, validation_pipeline)
from .smoothing import SmoothingConfig, smooth_aus

logger = logging.getLogger("training")


# -- data -----------------------------------------------------------------------------------------

class EpochSampler(torch.utils.data.Sampler):
    """A seeded shuffle: epoch ``e`` yields ``randperm(n)`` from seed ``seed + e``.

    The order depends on nothing but (seed, epoch), so a resumed run (epoch set by the trainer, the
    batches already done skipped with ``accelerator.skip_first_batches``) sees exactly the batches
    an uninterrupted run would. It has no ``set_epoch`` on purpose: accelerate's data loader would
    otherwise reset it to its own iteration count, which restarts at 0 after a resume."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def __len__(self):
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def make_collate(tokenizer):
    def collate(examples):
        captions = [e["caption"] for e in examples]
        ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        return {
            "pixel_values": torch.stack([e["pixel_values"] for e in examples]).float().contiguous(),
            "aus": torch.stack([torch.as_tensor(e["aus"], dtype=torch.float32) for e in examples]),
            "input_ids": ids,
        }

    return collate


def report_dataset(dataset) -> str:
    report = getattr(dataset, "report", None)
    summary = report.summary() if report is not None and hasattr(report, "summary") else "no report"
    if not isinstance(summary, str):
        summary = json.dumps(summary, sort_keys=True, default=str)
    return summary


# -- one training step ----------------------------------------------------------------------------

def training_target(noise_scheduler, latents, noise, timesteps):
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction type {kind!r} (epsilon or v_prediction)")


def diffusion_loss(model, noise_scheduler, latents, encoder_hidden_states, aus, noise, timesteps,
                   snr_gamma: float | None = None):
    """MSE between the model's prediction and the scheduler's target (optionally min-SNR weighted)."""
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    target = training_target(noise_scheduler, latents, noise, timesteps)
    pred = model(noisy, timesteps, encoder_hidden_states, aus)
    if snr_gamma is None:
        return F.mse_loss(pred.float(), target.float(), reduction="mean")
    from diffusers.training_utils import compute_snr

    snr = compute_snr(noise_scheduler, timesteps)
    # Min-SNR weighting (Hang et al. 2023); v-prediction divides by snr + 1.
    denominator = snr + 1 if noise_scheduler.config.prediction_type == "v_prediction" else snr
    weights = torch.clamp(snr, max=snr_gamma) / denominator
    loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    return (loss * weights).mean()


def sample_latents(mean, std, generator):
    """A draw from the VAE's latent distribution, as diffusers' ``DiagonalGaussianDistribution.sample``
    makes it; cached and computed distributions go through this one function, so both draw alike."""
    return mean + std * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)


@torch.no_grad()
def batch_inputs(batch, base, args, rng: TrainingRandom, weight_dtype, empty_text):
    """Latents, text states, smoothed AUs, noise and timesteps for a batch, in a fixed draw order
    from the training generator (VAE sample, noise, offset noise, timesteps, smoothing, caption dropout).
    A batch from the latent cache holds ``latent_mean`` / ``latent_std`` / ``text`` instead of pixels
    and token ids, and draws the same numbers in the same order."""
    g = rng.generator
    vae = base.vae
    if "latent_mean" in batch:  # read from the latent cache (training/cache) instead of computed
        mean, std = (batch[k].to(g.device, weight_dtype) for k in ("latent_mean", "latent_std"))
    else:  # in the VAE's own dtype (SDXL's stays float32 under fp16: it overflows)
        dist = vae.encode(batch["pixel_values"].to(vae.device, vae.dtype)).latent_dist
        mean, std = dist.mean.to(weight_dtype), dist.std.to(weight_dtype)
    latents = sample_latents(mean, std, g) * vae.config.scaling_factor
    if getattr(vae.config, "shift_factor", None):
        latents = latents - vae.config.shift_factor * vae.config.scaling_factor
    bsz = latents.shape[0]
    noise = torch.randn(latents.shape, generator=g, device=latents.device, dtype=latents.dtype)
    if args.noise_offset:
        noise = noise + args.noise_offset * torch.randn((bsz, latents.shape[1], 1, 1), generator=g,
                                                        device=latents.device, dtype=latents.dtype)
    timesteps = torch.randint(0, base.noise_scheduler.config.num_train_timesteps, (bsz,), generator=g,
                              device=latents.device).long()
    aus = smooth_aus(batch["aus"].to(latents.device), SmoothingConfig.from_args(args), generator=g)
    if "text" in batch:
        text = batch["text"].to(latents.device, weight_dtype)
        if "pooled" in batch:  # SDXL from the cache
            text = XLText(text, batch["pooled"].to(latents.device, weight_dtype), batch["time_ids"].to(latents.device))
    else:
        text = encode_text(base, batch, latents.device)
    if args.caption_dropout_prob > 0:
        drop = torch.rand((bsz,), generator=g, device=latents.device) < args.caption_dropout_prob
        text = drop_captions(text, drop, empty_text)
    return latents, text, aus, noise, timesteps


# -- validation -----------------------------------------------------------------------------------

@torch.no_grad()
def run_validation(model, base, args, global_step: int, weight_dtype, device, accelerator=None) -> str:
    """Render the AU sweep (same prompt and seed, one cell per AU spec) with the current weights."""
    from diffusers import DPMSolverMultistepScheduler
    from PIL import Image
    import numpy as np

    from fineface_core.aus import format_aus, parse_au_batch, split_specs
    from fineface_core.conditioning import guided_batch
    from fineface_core.grid import labelled_grid

    inner = unwrap(model)
    specs = split_specs(args.validation_aus)
    aus = parse_au_batch(specs)
    was_training = inner.training
    inner.eval()
    scheduler = DPMSolverMultistepScheduler.from_config(base.noise_scheduler.config)
    pipe = validation_pipeline(base, inner.unet, scheduler)
    pipe.set_progress_bar_config(disable=True)
    enc_device = next(inner.au_encoder.parameters(), torch.zeros(1, device=device)).device
    emb = guided_batch(inner.au_encoder, aus.to(enc_device), cfg=args.validation_guidance_scale > 1)
    generators = [torch.Generator(device=device).manual_seed(args.validation_seed) for _ in specs]
    autocast = (torch.autocast(device.type, dtype=weight_dtype) if weight_dtype != torch.float32 else nullcontext())
    try:
        with autocast:
            images = pipe(prompt=[args.validation_prompt] * len(specs), height=args.validation_resolution,
                          width=args.validation_resolution, num_inference_steps=args.validation_inference_steps,
                          guidance_scale=args.validation_guidance_scale, generator=generators, output_type="np",
                          cross_attention_kwargs={"au_embedding": emb.to(device, weight_dtype),
                                                  "au_scale": inner.lambda_au}).images
    finally:
        inner.train(was_training)
    grid = labelled_grid(np.asarray(images, dtype=np.float32), [format_aus(a) for a in aus])
    folder = os.path.join(args.output_dir, "validation")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"step-{global_step:06d}.png")
    try:
        Image.fromarray((np.clip(grid, 0, 1) * 255).round().astype("uint8")).save(path)
    except OSError as exc:
        if os.path.exists(path):
            os.remove(path)  # a grid cut short
        from .checkpoints import save_failed

        raise save_failed(args.output_dir, f"the validation grid {path}", exc) from exc
    if accelerator is not None and args.report_to == "tensorboard":
        try:
            tracker = accelerator.get_tracker("tensorboard", unwrap=True)
            tracker.add_image("validation/au_sweep", grid, global_step, dataformats="HWC")
        except Exception as e:  # logging must never stop a run
            logger.warning("could not log the validation grid to TensorBoard: %s", e)
    logger.info("validation grid: %s", path)
    return path


# -- logging --------------------------------------------------------------------------------------

def setup_logging(output_dir: str, main_process: bool):
    logger.setLevel(logging.INFO)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    console.setLevel(logging.INFO if main_process else logging.WARNING)
    logger.addHandler(console)
    if main_process:
        os.makedirs(output_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(output_dir, "train_log.txt"))
        fh.setFormatter(fmt)
        logger.addHandler(fh)


# -- dry run --------------------------------------------------------------------------------------

def dry_run(args) -> dict:
    """Build the model from the base model's configs (random weights: nothing big is downloaded or
    loaded), print trainable parameters per part and a memory / compute estimate, and exit."""
    from .model import count_check, estimate, format_estimate, load_base_model_configs

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    base = load_base_model_configs(args.pretrained_model_name_or_path, family=args.family, revision=args.revision)
    from .model import attach_trainable

    if next(base.unet.parameters()).is_meta:  # the built-in SDXL: traced on the meta device, never allocated
        device = torch.device("meta")
    model = attach_trainable(base.unet, base.family, encoder=args.encoder, encoder_hidden_dim=args.encoder_hidden_dim,
                             lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, lambda_au=args.lambda_au)
    model.to(device)
    for frozen in base.frozen_modules():
        frozen.to(device)
    num_processes = int(os.environ.get("WORLD_SIZE", "1"))
    est = estimate(model, base, args, num_processes=num_processes)
    check = count_check(model)
    if check["trainable"] != est["trainable"]:
        raise RuntimeError(f"parameter count mismatch: {check['trainable']} requires_grad vs {est['trainable']} by part")
    print(f"base model: {args.pretrained_model_name_or_path} ({base.family}), "
          f"prediction type {base.noise_scheduler.config.prediction_type if base.noise_scheduler else 'unknown'}")
    print(format_estimate(est, args))
    sys.stdout.flush()
    return {"dry_run": True, **est}


# -- main -----------------------------------------------------------------------------------------

def log_to_file(message: str) -> None:
    """Put an error that ends the run into train_log.txt too (the console gets it on stderr)."""
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None))


def main(argv: list[str] | None = None) -> dict:
    """Train; a problem the user can fix raises TrainingError (``cli`` prints it and exits 1)."""
    args = parse_args(argv)
    if args.dry_run:
        return dry_run(args)
    # Options, folders, the checkpoint to resume and the data, before any model is built or loaded.
    plan = preflight(args, num_processes=int(os.environ.get("WORLD_SIZE", "1")))
    if args.latent_cache:
        from .cache.ensure import precheck

        precheck(args)

    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    from .folder_lock import RUN_LOCK, held

    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=args.output_dir,
                                            logging_dir=os.path.join(args.output_dir, args.logging_dir)),
    )
    busy = (f"--output_dir {args.output_dir} is in use by another training run (the two would remove and replace "
            "each other's checkpoints): wait until it has finished, or give another --output_dir")
    with held(accelerator, args.output_dir, RUN_LOCK, busy):
        return _train(args, argv, plan, accelerator)


def _train(args, argv, plan, accelerator) -> dict:
    """The run, once its output folder is this process's alone."""
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    from .model import attach_trainable, load_base_model

    if accelerator.is_main_process and plan.move_aside:
        dest = move_aside(args.output_dir, plan.move_aside)
        plan.notes.append(f"--overwrite_output_dir: moved the earlier run's {', '.join(plan.move_aside)} into {dest} "
                          "(delete it when no longer needed)")
    accelerator.wait_for_everyone()
    setup_logging(args.output_dir, accelerator.is_main_process)
    logger.info("command: %s", " ".join(sys.argv if argv is None else ["training.train", *argv]))
    for note in plan.notes:
        logger.info("%s", note)
    for warning in plan.warnings:
        logger.warning("%s", warning)
    logger.info("%s", accelerator.state)
    set_seed(args.seed)  # same initial weights on every process
    if args.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
    if args.enable_xformers_memory_efficient_attention:
        logger.info("--enable_xformers_memory_efficient_attention: not needed, FineFace's attention processors use "
                    "torch's scaled_dot_product_attention (flash / memory-efficient kernels)")

    # Models.
    base = load_base_model(args.pretrained_model_name_or_path, family=args.family, revision=args.revision,
                           variant=args.variant, vae_path=args.pretrained_vae_model_name_or_path)
    if is_xl(base):
        check_xl_options(args)
    if args.prediction_type is not None:
        base.noise_scheduler.register_to_config(prediction_type=args.prediction_type)
    # Fingerprints of the VAE's and text encoder's weights as loaded, before the cast below.
    frozen_parts = None
    if args.latent_cache:
        from .cache import Frozen

        frozen_parts = Frozen.of(base.vae, base.text_encoder, base.tokenizer, base.text_encoder_2, base.tokenizer_2)
    model = attach_trainable(base.unet, base.family, encoder=args.encoder, encoder_hidden_dim=args.encoder_hidden_dim,
                             lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, lambda_au=args.lambda_au,
                             seed=args.seed)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    device = accelerator.device
    for frozen in base.frozen_modules():
        if weight_dtype == torch.float32 or (frozen is base.vae and vae_stays_fp32(
                base, accelerator.mixed_precision, args.pretrained_vae_model_name_or_path)):
            frozen.to(device)
        else:
            frozen.to(device, dtype=weight_dtype)
    model.to(device)
    for p in model.parameters():  # frozen weights in the mixed precision dtype, trainable ones stay fp32
        if not p.requires_grad:
            p.data = p.data.to(weight_dtype)
    if args.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    counts = model.parameter_counts()
    logger.info("trainable parameters: %s", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    logger.info("base model %s: %s, prediction type %s", args.pretrained_model_name_or_path, base.family,
                base.noise_scheduler.config.prediction_type)

    # Data (read and checked by preflight).
    dataset = plan.dataset
    summary = report_dataset(dataset)
    logger.info("dataset %s: %d usable samples; problems: %s", args.train_data_dir, len(dataset), summary)
    collate = make_collate(base.tokenizer)
    if is_xl(base):  # the second tokenizer's ids and each image's size / crop numbers
        dataset = WithTimeIds(dataset, args.resolution)
        collate = make_collate_xl(collate, base.tokenizer_2)
    cache = None
    if args.latent_cache:
        from .cache import CachedDataset, ensure_cache, make_collate_cached

        cache, image_keys, text_keys = ensure_cache(accelerator, frozen_parts, args, dataset.records, weight_dtype)
        dataset = CachedDataset(dataset.records, image_keys, text_keys, cache, args.random_flip, dataset.report)
        collate = make_collate_cached(base.tokenizer, base.tokenizer_2)
        logger.info("training from the latent cache %s (%d images, %d captions): %s", args.latent_cache,
                    len(cache.manifest["images"]), len(cache.manifest["captions"]),
                    "the VAE and the text encoder do not run per step" if args.cache_text else
                    "the VAE does not run per step, the text encoder does (--no-cache_text)")
        if not args.validation_steps:  # only validation still needs them: free their device memory
            base.vae.to("cpu")
            if args.cache_text:
                base.text_encoder.to("cpu")
    sampler = EpochSampler(len(dataset), args.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.train_batch_size, sampler=sampler,
                                         collate_fn=collate,
                                         num_workers=args.dataloader_num_workers, drop_last=False)

    # Optimisation.
    lr = args.learning_rate
    if args.scale_lr:
        lr *= args.gradient_accumulation_steps * args.train_batch_size * accelerator.num_processes
    params = model.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(args.adam_beta1, args.adam_beta2),
                                  weight_decay=args.adam_weight_decay, eps=args.adam_epsilon)
    lr_scheduler = get_scheduler(args.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=args.max_train_steps * accelerator.num_processes)
    model, optimizer, loader, lr_scheduler = accelerator.prepare(model, optimizer, loader, lr_scheduler)
    params = unwrap(model).trainable_parameters()
    rng = TrainingRandom(args.seed, device, accelerator.process_index)

    run_config = {
        "base_model": args.pretrained_model_name_or_path, "family": base.family.key,
        "encoder": unwrap(model).au_encoder.config(), "lora_rank": args.lora_rank,
        "lora_alpha": args.lora_alpha if args.lora_rank else None, "lambda_au": args.lambda_au,
        "prediction_type": base.noise_scheduler.config.prediction_type, "resolution": args.resolution,
        "global_step": 0, "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))},
    }
    register_hooks(accelerator, lambda: dict(run_config), rng)

    updates_per_epoch = math.ceil(len(loader) / args.gradient_accumulation_steps)
    num_epochs = math.ceil(args.max_train_steps / updates_per_epoch)
    total_batch = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    if accelerator.is_main_process and args.report_to != "none":
        accelerator.init_trackers(args.tracker_project_name, config={k: v for k, v in run_config["args"].items() if v is not None})
    logger.info("***** training: %d samples, %d epochs, batch %d per device, %d in total, %d accumulation steps, "
                "%d optimizer steps *****", len(dataset), num_epochs, args.train_batch_size, total_batch,
                args.gradient_accumulation_steps, args.max_train_steps)

    global_step, first_epoch, skip_batches = 0, 0, 0
    resume = plan.resume
    if resume is not None:
        logger.info("resuming from %s (step %d)", resume, plan.resume_step)
        try:
            accelerator.load_state(resume)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # checked in preflight; changed since?
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise TrainingError(f"--resume_from_checkpoint: {resume} cannot be read ({first}); resume from "
                                "another checkpoint") from exc
        global_step = plan.resume_step
        first_epoch = global_step // updates_per_epoch
        skip_batches = (global_step % updates_per_epoch) * args.gradient_accumulation_steps
    run_config["global_step"] = global_step

    if cache is not None and args.cache_text:
        empty_text = move_text(cache.empty_xl() if cache.xl else cache.empty_text(), device)
    else:
        empty_text = empty_caption(base, device)

    progress = tqdm(range(args.max_train_steps), initial=global_step, desc="Steps",
                    disable=not accelerator.is_local_main_process)
    losses: list[float] = []
    step_loss = 0.0
    last_checkpoint = None
    precision = accelerator.mixed_precision
    t0 = time.time()
    done = global_step >= args.max_train_steps
    try:
        for epoch in range(first_epoch, num_epochs):
            if done:
                break
            sampler.epoch = epoch
            model.train()
            epoch_loader = loader
            if epoch == first_epoch and skip_batches:
                epoch_loader = accelerator.skip_first_batches(loader, skip_batches)
            for batch in epoch_loader:
                with accelerator.accumulate(model):
                    latents, text, aus, noise, timesteps = batch_inputs(batch, base, args, rng, weight_dtype, empty_text)
                    loss = diffusion_loss(model, base.noise_scheduler, latents, text, aus, noise, timesteps, args.snr_gamma)
                    avg = accelerator.gather(loss.detach().repeat(latents.shape[0])).mean().item()
                    if not math.isfinite(avg):  # every process sees the gathered value: all stop together
                        raise loss_error(global_step + 1, avg, args, precision, last_checkpoint or resume)
                    step_loss += avg / args.gradient_accumulation_steps
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and args.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, args.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                if not accelerator.sync_gradients:
                    continue
                global_step += 1
                run_config["global_step"] = global_step
                progress.update(1)
                current_lr = lr_scheduler.get_last_lr()[0]
                losses.append(step_loss)
                accelerator.log({"train/loss": step_loss, "train/lr": current_lr}, step=global_step)
                progress.set_postfix(loss=f"{step_loss:.4f}", lr=f"{current_lr:.2e}")
                step_loss = 0.0
                if global_step % args.checkpointing_steps == 0 or global_step >= args.max_train_steps:
                    diverged = params_error(unwrap(model), global_step, args, precision, last_checkpoint or resume)
                    if diverged:
                        raise diverged
                    last_checkpoint = save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
                if accelerator.is_main_process and args.validation_steps and global_step % args.validation_steps == 0:
                    run_validation(model, base, args, global_step, weight_dtype, device, accelerator)
                if global_step >= args.max_train_steps:
                    done = True
                    break
    finally:  # before any error message, so it gets a line of its own
        progress.close()

    accelerator.wait_for_everyone()
    export_path = None
    if accelerator.is_main_process:
        inner = unwrap(model)
        from fineface_core.errors import WeightFileError

        from .checkpoints import save_failed
        from .export import export_weights

        export_path = os.path.join(args.output_dir, f"fineface_{base.family.key}.safetensors")
        try:
            save_trainable(inner, args.output_dir, dict(run_config),
                           source=os.path.basename(os.path.abspath(args.output_dir)))
            export_weights(to_weights(inner), export_path, run_config)
        except (OSError, WeightFileError) as exc:
            raise save_failed(args.output_dir, "the final weights", exc) from exc
        logger.info("final weights: %s (resumable state: %s)", export_path, last_checkpoint)
        logger.info("finished at step %d in %.1f s; dataset problems: %s", global_step, time.time() - t0, summary)
    accelerator.end_training()
    return {"global_step": global_step, "losses": losses, "export": export_path, "last_checkpoint": last_checkpoint,
            "output_dir": args.output_dir, "dataset_summary": summary, "counts": counts, "resumed_from": resume,
            "start_step": plan.resume_step}


def cli(argv: list[str] | None = None) -> int:
    try:
        main(argv)
    except TrainingError as exc:
        log_to_file(f"error: {exc}")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        message = ("interrupted: the checkpoints saved so far are kept (a save cut short is left as "
                   "checkpoint-N.partial and never resumed from); continue with --resume_from_checkpoint latest")
        log_to_file(message)
        print(f"\n{message}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())
