"""Cost per frame of an AU animation: a 16-frame batch against a single image, through ComfyUI's KSampler.

    python -m tests.benchmarks.bench_animation                      # small SD 2.1 UNet (all widths 320), 128 px
    python -m tests.benchmarks.bench_animation --model tiny --frames 16 --latent 16 --steps 4 --threads 1

Both runs go through the pack's nodes as a graph would: AU Keyframes (one AU vector per frame, or one
vector) -> AU Encoder -> Apply FineFace Adapter (AU branch + merged LoRA, random weights) -> AU Batch
Latent -> ComfyUI's common_ksampler (euler, CFG, so cond and uncond run as one batch). The animation is
one sampling run on a batch of frames; the single image is the same graph with one frame. Printed: the
median time of a run, and per frame, with and without FineFace.

The frames of an animation are one batch, so per frame it costs what a single image costs or less (a
batch uses the cores better); the per-frame AU rows are gathered once per batch layout, not per step.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from tests.benchmarks.bench_unet import random_fineface
from tests.support.comfy_env import import_comfy, load_custom_node_pack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sd21_unet(model: str):
    """A ComfyUI SD 2.1-layout model with random weights: "small" (ComfyUI's SD21 config, every width 320, 114M
    parameters) or "tiny" (widths 32-128, 11M parameters)."""
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    channels, mult, head = (320, [1, 1, 1, 1], 64) if model == "small" else (32, [1, 2, 4, 4], 8)
    config = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
              "legacy": False, "adm_in_channels": None, "dtype": torch.float32, "in_channels": 4, "model_channels": channels,
              "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": mult,
              "transformer_depth_middle": 1, "use_linear_in_transformer": True, "context_dim": 1024,
              "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
              "use_temporal_attention": False, "use_temporal_resblock": False}
    model_config = comfy.supported_models.SD20(config)
    model_config.unet_config.update(num_head_channels=head, num_heads=-1)
    base = comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.EPS, device=torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in base.diffusion_model.parameters():  # ComfyUI leaves weights uninitialised
            p.copy_(torch.randn(p.shape, generator=g) * (0.02 if p.ndim > 1 else 0.01))
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(base, load_device=cpu, offload_device=cpu)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("small", "tiny"), default="small")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--latent", type=int, default=16, help="latent size (x8 = pixels)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (on a shared CPU, 1 keeps other work "
                                                     "from stalling the threads' hand-offs)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import_comfy()
    load_custom_node_pack(ROOT)
    import nodes

    def node(name):
        cls = nodes.NODE_CLASS_MAPPINGS[name]
        return getattr(cls(), cls.FUNCTION)

    keyframes, encode, apply, batch = (node(n) for n in ("FineFaceAUKeyframes", "FineFaceAUEncoder",
                                                          "FineFaceApplyAdapter", "FineFaceAUBatchLatent"))
    plain = sd21_unet(args.model)
    weights = random_fineface(plain)
    g = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 1024, generator=g), {}]]
    negative = [[torch.randn(1, 77, 1024, generator=g), {}]]
    empty = {"samples": torch.zeros(1, 4, args.latent, args.latent)}

    def graph(frames, fineface):
        last = max(frames - 1, 1)
        aus, _ = keyframes(f"0: neutral; {last}: happiness@4", frames, "ease-in-out")["result"]
        model = apply(plain, weights, encode(weights, aus)[0], 1.0, 1.0, 0.0, 1.0)[0] if fineface else plain
        return model, batch(empty, aus)[0]

    def run(model, latent):
        t0 = time.perf_counter()
        nodes.common_ksampler(model, 0, args.steps, 7.5, "euler", "normal", positive, negative, latent)
        return time.perf_counter() - t0

    print(f"{args.model} SD 2.1 UNet, {args.latent * 8} px, {args.steps} euler steps with CFG, median of {args.repeats}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'':24}{'run (s)':>10}{'per frame (s)':>16}")
    results = {}
    for fineface in (False, True):
        for frames in (1, args.frames):
            model, latent = graph(frames, fineface)
            run(model, latent)  # warm-up: loads the model, merges the LoRA
            times = [run(model, latent) for _ in range(args.repeats)]
            median = statistics.median(times)
            results[fineface, frames] = median
            label = f"{'fineface' if fineface else 'plain'}, {frames} frame{'s' if frames > 1 else ''}"
            print(f"{label:24}{median:10.3f}{median / frames:16.4f}    {[round(t, 2) for t in times]}")
    for fineface in (False, True):
        ratio = results[fineface, args.frames] / args.frames / results[fineface, 1]
        print(f"{'fineface' if fineface else 'plain'}: a frame of the {args.frames}-frame batch costs {ratio:.2f}x a single image")
    print(f"FineFace on top of the plain model: single image x{results[True, 1] / results[False, 1]:.2f}, "
          f"{args.frames} frames x{results[True, args.frames] / results[False, args.frames]:.2f}")


if __name__ == "__main__":
    main()
