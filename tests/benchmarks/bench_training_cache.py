"""Time of a training step with and without the latent cache (training/cache), in the same run.

    python -m tests.benchmarks.bench_training_cache                         # CPU: SD 2.1 architecture, 256 px, batch 2
    python -m tests.benchmarks.bench_training_cache --model tiny            # the tests' tiny model, seconds
    python -m tests.benchmarks.bench_training_cache --device cuda --resolution 512 --batch 16 \\
        --mixed_precision fp16 --steps 10                                   # the paper's setting, on a GPU

The models have the SD 2.1 base architecture (UNet, VAE, OpenCLIP-H text encoder of 23 layers) with
random weights, built from their configs here: the hub cannot be reached, and weights do not change
the cost. The tokenizer is the tests' offline one; captions are padded to 77 tokens either way, so
the text encoder does the same work as with SD's.

Each step is the trainer's own: a batch from the data loader (images decoded and transformed, or
rows read from the memory-mapped cache), ``batch_inputs`` (VAE encode + text encoder, or the cached
distribution and embedding), ``diffusion_loss``, backward through accelerate, clipping, AdamW. The
two kinds of step alternate, so that a busy machine slows both alike. Printed: median step time,
images per second, the speed-up (of the medians, and of the fastest steps, which a busy machine
disturbs least), the one-off build time of the cache and its size on disk per image and caption.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from fineface_core.aus import AU_ORDER


def sd21_models(seed: int = 0):
    """The SD 2.1 base architecture (diffusers configs of stabilityai/stable-diffusion-2-1-base)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        sample_size=768, scaling_factor=0.18215)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
        max_position_embeddings=77, hidden_act="gelu", projection_dim=512, bos_token_id=0, eos_token_id=1,
        pad_token_id=1))
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, prediction_type="epsilon")
    return unet, vae, text_encoder, scheduler


def tiny_models(seed: int = 0, vocab_size: int = 90):
    from diffusers import DDPMScheduler

    from tests.support.tiny_pipeline import tiny_text_encoder, tiny_vae
    from tests.support.tiny_unets import tiny_unet

    unet = tiny_unet("sd21", seed)
    return unet, tiny_vae(seed), tiny_text_encoder(unet.config.cross_attention_dim, vocab_size, seed), DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type="epsilon")


def write_images(folder: str, n: int, size: int) -> None:
    """``n`` JPEG photos-like in size (smooth colour fields plus grain) and their metadata."""
    from training.data.generic import write_metadata

    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    rows = []
    for i in range(n):
        a, b, c = rng.uniform(0, 1, 3)
        field = np.stack([np.sin(6 * a * xx + b), np.cos(5 * b * yy + c), np.sin(4 * c * (xx + yy))], -1)
        pixels = np.clip(127 + 80 * field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"img_{i}.jpg"), quality=90)
        rows.append({"file": f"img_{i}.jpg", "caption": f"a closeup photo of person number {i} smiling",
                     **{au: float(rng.uniform(0, 5)) for au in AU_ORDER}})
    write_metadata(folder, rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sd21", choices=("sd21", "tiny"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps of each kind (after one warm-up step each)")
    p.add_argument("--mixed_precision", default="no", choices=("no", "fp16", "bf16"))
    p.add_argument("--gradient_checkpointing", action="store_true")
    p.add_argument("--cache_text", action=argparse.BooleanOptionalAction, default=True,
                   help="cache the caption embeddings too (the trainer's option)")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    opts = p.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "1"

    from accelerate import Accelerator

    from tests.support.tiny_pipeline import tiny_tokenizer
    from training.cache import CachedDataset, Frozen, ensure_cache, make_collate_cached
    from training.checkpoints import TrainingRandom
    from training.config import parse_args
    from training.data.generic import AUImageDataset
    from training.model import BaseModel, attach_trainable, check_family
    from training.train import EpochSampler, batch_inputs, diffusion_loss, make_collate

    tmp = tempfile.TemporaryDirectory(prefix="bench_cache_")
    data, cache_dir = os.path.join(tmp.name, "data"), os.path.join(tmp.name, "cache")
    n_images = opts.batch * (opts.steps + 1)
    write_images(data, n_images, max(opts.resolution, 64))
    args = parse_args(["--train_data_dir", data, "--resolution", str(opts.resolution), "--train_batch_size",
                       str(opts.batch), "--latent_cache", cache_dir, "--mixed_precision", opts.mixed_precision,
                       "--cache_batch_size", str(opts.batch),
                       "--cache_text" if opts.cache_text else "--no-cache_text", "--validation_steps", "0",
                       "--report_to", "none"])
    accelerator = Accelerator(mixed_precision=opts.mixed_precision)
    device = accelerator.device
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(opts.mixed_precision, torch.float32)

    t0 = time.perf_counter()
    tokenizer = tiny_tokenizer(os.path.join(tmp.name, "tokenizer"))
    unet, vae, text_encoder, scheduler = sd21_models() if opts.model == "sd21" else tiny_models(0, len(tokenizer))
    for m in (vae, text_encoder):
        m.requires_grad_(False).eval()
    base = BaseModel(tokenizer, text_encoder, vae, unet, scheduler, check_family(unet))
    frozen = Frozen.of(vae, text_encoder, tokenizer)
    model = attach_trainable(unet, base.family, seed=0)
    for m in (vae, text_encoder):
        m.to(device, dtype=dtype)
    model.to(device)
    for prm in model.parameters():
        if not prm.requires_grad:
            prm.data = prm.data.to(dtype)
    if opts.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    model, optimizer = accelerator.prepare(model, optimizer)
    params = [q for q in model.parameters() if q.requires_grad]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"models built in {time.perf_counter() - t0:.1f} s: {opts.model}, {opts.resolution} px, batch {opts.batch}, "
          f"{device} ({where}), {opts.mixed_precision}")

    images = AUImageDataset(data, resolution=opts.resolution)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    cache, image_keys, text_keys = ensure_cache(accelerator, frozen, args, images.records, dtype)
    sync()
    build_s = time.perf_counter() - t0
    size = {kind: sum(s["size"] for s in cache.manifest["shards"].values() if s["kind"] == kind)
            for kind in ("latents", "text")}
    cached = CachedDataset(images.records, image_keys, text_keys, cache)
    if not opts.cache_text:
        print("--no-cache_text: the cached step still runs the text encoder")

    def loader(dataset, collate):
        return iter(torch.utils.data.DataLoader(dataset, batch_size=opts.batch, sampler=EpochSampler(len(dataset), 0),
                                                collate_fn=collate, num_workers=opts.workers))

    loaders = {"uncached": loader(images, make_collate(tokenizer)),
               "cached": loader(cached, make_collate_cached(tokenizer))}
    with torch.no_grad():
        ids = tokenizer([""], padding="max_length", max_length=77, return_tensors="pt").input_ids.to(device)
        empty = text_encoder(ids, return_dict=False)[0]
    rng = TrainingRandom(0, device)
    times = {k: [] for k in loaders}
    model.train()
    for step in range(opts.steps + 1):
        for kind, batches in loaders.items():
            sync()
            start = time.perf_counter()
            batch = next(batches)
            latents, text, aus, noise, t = batch_inputs(batch, base, args, rng, dtype, empty)
            loss = diffusion_loss(model, scheduler, latents, text, aus, noise, t)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sync()
            if step:  # the first of each kind warms up
                times[kind].append(time.perf_counter() - start)

    median = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    for kind in loaders:
        print(f"{kind:>9}: {median[kind] * 1000:9.1f} ms per step median, {best[kind] * 1000:9.1f} ms fastest "
              f"({', '.join(f'{x * 1000:.0f}' for x in times[kind])}); {opts.batch / median[kind]:.3g} images/s")
    print(f"speed-up with the cache: {median['uncached'] / median['cached']:.2f}x images/s (medians), "
          f"{best['uncached'] / best['cached']:.2f}x (fastest steps)")
    n_captions = max(len(cache.manifest["captions"]), 1)
    latent_kib, text_kib = size["latents"] / n_images / 2**10, size["text"] / n_captions / 2**10
    print(f"cache: built in {build_s:.1f} s for {n_images} images at {opts.resolution} px in "
          f"{str(dtype).replace('torch.', '')}: latents {latent_kib:.0f} KiB per image, text {text_kib:.0f} KiB per "
          f"caption -> {(latent_kib + text_kib) * 2**10 * 1e5 / 1e9:.1f} GB per 100k images with distinct captions "
          f"({latent_kib * 2**10 * 1e5 / 1e9:.1f} GB with --no-cache_text)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
