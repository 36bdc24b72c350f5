"""What FineFace adds to one SDXL UNet call: aten operator calls and FLOPs (deterministic), and time.

    python -m tests.benchmarks.bench_unet_sdxl                # tiny widths, the real 70-layer SDXL layout (CPU)
    python -m tests.benchmarks.bench_unet_sdxl --full         # the real SDXL widths (~11 GB in fp32; use a GPU)

Variants, each a CFG batch of 2 (uncond + cond) through ComfyUI's own SDXL model:
  plain      the UNet as loaded
  replace    ComfyUI's attn2 replace path with nothing added, in all 70 layers (the floor for any attn2 patch)
  au_branch  the Apply FineFace Adapter node's AU branch alone (lora_strength 0): one broadcast add per layer
  fineface   AU branch + merged LoRA
The one-token fact makes the AU branch an add of a precomputed row: au_branch - replace = +70 operator calls
(one add per cross-attention layer) and +0 FLOPs by FlopCounterMode's count (it counts matmuls and convolutions).
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

from tests.support.comfy_env import import_comfy, load_custom_node_pack, pack_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def call(patcher, x, sigma, ctx, y):
    import comfy.model_management

    comfy.model_management.load_model_gpu(patcher)
    to = copy.copy(patcher.model_options["transformer_options"])
    to.update(cond_or_uncond=[1, 0], sigmas=sigma)
    with torch.no_grad():
        t0 = time.perf_counter()
        out = patcher.model.apply_model(x, sigma, c_crossattn=ctx, y=y, transformer_options=to)
        if x.is_cuda:
            torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def count_work(patcher, x, sigma, ctx, y):
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class CountOps(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.calls += 1
            return func(*args, **(kwargs or {}))

    call(patcher, x, sigma, ctx, y)  # weights patched before counting
    with CountOps() as ops, FlopCounterMode(display=False) as flops:
        call(patcher, x, sigma, ctx, y)
    return ops.calls, flops.get_total_flops()


def full_size_model(device, dtype):
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    from tests.support.comfy_models import random_comfy_weights
    from tests.support.tiny_sdxl import comfy_sdxl_unet_config

    config = {**comfy_sdxl_unet_config(dtype), "model_channels": 320, "adm_in_channels": 2816}
    model_config = comfy.supported_models.SDXL(config)
    model = comfy.model_base.SDXL(model_config, model_type=comfy.model_base.ModelType.EPS, device=device)
    random_comfy_weights(model)
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the real SDXL widths (model_channels 320)")
    parser.add_argument("--latent", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import_comfy(cpu=not torch.cuda.is_available())
    load_custom_node_pack(ROOT)
    from fineface_core.conditioning import AUVectors, encode_aus
    from tests.support.tiny_sdxl import comfy_adm, comfy_sdxl_model, tiny_sdxl_unet
    from tests.support.tiny_sdxl_weights import sdxl_weights

    apply = pack_module("nodes.apply_adapter").FineFaceApplyAdapter().apply
    chain = pack_module("nodes.attn2_patch").Attn2Chain
    layers = pack_module("nodes.comfy_model").attn2_layers
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.full:
        from diffusers import UNet2DConditionModel

        from training.sdxl_architecture import SDXL_UNET

        base = full_size_model(device, torch.float32)
        with torch.device("meta"):  # the weights only need the layer shapes
            shapes = UNet2DConditionModel(**SDXL_UNET)
        weights = sdxl_weights(shapes, seed=1, rank=32)
    else:
        unet = tiny_sdxl_unet(seed=0)
        base, weights = comfy_sdxl_model(unet), sdxl_weights(unet, seed=1)
    emb = encode_aus(weights, AUVectors(torch.tensor([[0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 2, 0.0]])))
    replace = base.clone()
    for layer in layers(base).values():
        replace.set_model_attn2_replace(chain(), *layer.key)
    variants = {"plain": base, "replace": replace, "au_branch": apply(base, weights, emb, 1.0, 0.0, 0.0, 1.0)[0],
                "fineface": apply(base, weights, emb, 1.0, 1.0, 0.0, 1.0)[0]}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, args.latent, args.latent, generator=g).to(device)
    ctx = torch.randn(2, 77, 2048, generator=g).to(device)
    pooled = torch.randn(2, base.model.diffusion_model.label_emb[0][0].in_features - 1536, generator=g)
    y = comfy_adm(base, pooled, args.latent * 8, args.latent * 8).to(device)
    sigma = torch.full((2,), 5.0, device=device)
    times = {name: statistics.median(call(p, x, sigma, ctx, y)[0] for _ in range(args.repeats)) for name, p in variants.items()}
    work = {name: count_work(p, x, sigma, ctx, y) for name, p in variants.items()}
    print(f"SDXL UNet ({'real widths' if args.full else 'tiny widths'}, {len(layers(base))} cross-attention layers), "
          f"random weights, fp32, batch 2 (CFG), latent {args.latent}x{args.latent}, {device}")
    for name in variants:
        ops, flops = work[name]
        print(f"  {name:9s} {times[name] * 1000:8.1f} ms   {ops:7d} ops ({ops - work['plain'][0]:+5d})   "
              f"{flops / 1e9:9.3f} GFLOP ({(flops - work['plain'][1]) / 1e9:+.4f})")
    ops, flops = work["au_branch"][0] - work["replace"][0], work["au_branch"][1] - work["replace"][1]
    print(f"  the AU branch itself (au_branch - replace): {ops:+d} operator calls, {flops / 1e9:+.4f} GFLOP")


if __name__ == "__main__":
    main()
