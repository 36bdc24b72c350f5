"""Cost of FineFace per UNet call, on the full-size SD 2.1 UNet architecture (random weights).

    python -m tests.benchmarks.bench_unet                 # CPU, 32x32 latent (256 px)
    python -m tests.benchmarks.bench_unet --latent 64     # 512 px (use a GPU)

Prints the median time of one UNet call with a CFG batch of 2 (uncond + cond) for:
  plain      the UNet as loaded
  fineface   patched by the Apply FineFace Adapter node (AU branch = broadcast add, LoRA merged)
  naive      the AU branch as a real attention over the AU token, projected every call,
             the way the official diffusers processor runs it (LoRA merged)
  unmerged   the nodes' AU branch with the LoRA applied at run time instead of merged
  replace    ComfyUI's attn2 replace path with nothing added (the floor for any attn2 patch)
  au_branch  the nodes' AU branch alone (lora_strength 0)
  lora       the merged LoRA alone (weight 0)
  masked     fineface with a mask (the left half of the image): the AU branch times the mask per token
and then, free of timing noise, the aten operator calls and FLOPs of one call of each.

ComfyUI merges a LoRA by replacing each patched weight with a new tensor (``--weight-patching
replace``, its default) or by writing into the weight's own memory (``inplace``, the default here,
so that plain and patched calls read the same memory). Either way a merged LoRA adds no work per
call; on a CPU where the new tensors land in memory can still show in the timings.

Timings on a shared CPU drift by several percent between runs; the operator and FLOP counts do not.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from tests.support.comfy_env import import_comfy, load_custom_node_pack, pack_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sd21_model(device, dtype, inplace_weights=True):
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    from tests.support.comfy_models import random_comfy_weights

    config = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
              "legacy": False, "adm_in_channels": None, "dtype": dtype, "in_channels": 4, "model_channels": 320,
              "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4],
              "transformer_depth_middle": 1, "use_linear_in_transformer": True, "context_dim": 1024,
              "num_head_channels": 64, "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
              "use_temporal_attention": False, "use_temporal_resblock": False}
    model_config = comfy.supported_models.SD20(config)
    model = comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.EPS, device=device)
    random_comfy_weights(model)
    model.diffusion_model.to(device, dtype)
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device,
                                            weight_inplace_update=inplace_weights)


def random_fineface(patcher, rank=32):
    from fineface_core.encoders import build_encoder
    from fineface_core.weights import FineFaceWeights, LoRAWeights
    comfy_model = pack_module("nodes.comfy_model")
    attn2_layers, diffusers_to_comfy_keys = comfy_model.attn2_layers, comfy_model.diffusers_to_comfy_keys

    g = torch.Generator().manual_seed(1)
    layers = attn2_layers(patcher)
    au_to_v = {p: torch.randn(l.channels, 1024, generator=g) * 0.02 for p, l in layers.items()}
    dm = patcher.model.diffusion_model
    down, up = {}, {}
    for d_key, c_key in diffusers_to_comfy_keys(patcher).items():
        if any(d_key.endswith(f".{t}.weight") for t in ("to_q", "to_k", "to_v", "to_out.0")) and ".attn" in d_key:
            w = dm.get_submodule(c_key[: -len(".weight")]).weight
            path = d_key[: -len(".weight")]
            down[path] = torch.randn(rank, w.shape[1], generator=g) * 0.02
            up[path] = torch.randn(w.shape[0], rank, generator=g) * 0.02
    return FineFaceWeights(family="sd21", encoder=build_encoder("res_mlp64", width=1024), au_to_v=au_to_v,
                           lora=LoRAWeights(down, up, alpha=float(rank)))


def naive_patch(patcher, weights, emb_uncond, emb_cond):
    """The official processor's way: project the AU token with au_to_k / au_to_v and attend, every call."""
    import comfy.ldm.modules.attention as attention

    attn2_layers = pack_module("nodes.comfy_model").attn2_layers

    g = torch.Generator().manual_seed(2)
    model = patcher.clone()
    replace = model.model_options["transformer_options"].setdefault("patches_replace", {}).setdefault("attn2", {})
    e = torch.cat([emb_uncond, emb_cond])
    for path, layer in attn2_layers(patcher).items():
        to_v = weights.au_to_v[path]
        to_k = torch.randn(to_v.shape, generator=g) * 0.02

        def attn2(q, k, v, extra, to_k=to_k, to_v=to_v):
            out = attention.optimized_attention(q, k, v, extra["n_heads"])
            ek = e.to(q) @ to_k.to(q).t()
            ev = e.to(q) @ to_v.to(q).t()
            return out + attention.optimized_attention(q, ek, ev, extra["n_heads"])

        replace[layer.key] = attn2
    pack_module("nodes.lora_patch").add_lora(model, weights.lora, 1.0)
    return model


def empty_replace(patcher):
    """ComfyUI's attn2 replace path alone (what any attn2 patch, IP-Adapter's too, costs): an
    Attn2Chain with no callbacks in every layer."""
    chain = pack_module("nodes.attn2_patch").Attn2Chain
    model = patcher.clone()
    replace = model.model_options["transformer_options"].setdefault("patches_replace", {}).setdefault("attn2", {})
    for layer in pack_module("nodes.comfy_model").attn2_layers(patcher).values():
        replace[layer.key] = chain()
    return model


def unmerged_lora(patcher, weights):
    """FineFace's AU branch as the nodes install it, but the LoRA computed at run time (hooks)."""
    to_comfy = pack_module("nodes.comfy_model").diffusers_to_comfy_keys(patcher)
    dm = patcher.model.diffusion_model
    hooks = []
    for path in weights.lora.down:
        module = dm.get_submodule(to_comfy[f"{path}.weight"][: -len(".weight")])
        a = weights.lora.down[path].to(module.weight)
        b = (weights.lora.up[path] * weights.lora.scale).to(module.weight)
        hooks.append(module.register_forward_hook(lambda m, args, out, a=a, b=b: out + (args[0] @ a.t()) @ b.t()))
    return hooks


def steady_malloc() -> bool:
    """Fix glibc's heap thresholds (Linux). Measured here: after ComfyUI patches weights in place
    (any LoRA), glibc kept giving freed heap back to the OS and faulting it in again on every call,
    which made a LoRA-patched CPU UNet ~1.26x slower than the same weights unpatched. With fixed
    thresholds every variant runs at the plain model's speed, so the figures compare the patches."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not hasattr(ctypes.CDLL(name), "mallopt"):
        return False
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return all(libc.mallopt(k, v) == 1 for k, v in ((m_trim_threshold, 2**31 - 1), (m_top_pad, 512 << 20),
                                                     (m_mmap_threshold, 32 << 20)))


def one_call(patcher, x, sigma, ctx):
    """(wall, CPU) seconds for one UNet call (weights patched beforehand, outside the timing) and its output."""
    import comfy.model_management

    comfy.model_management.load_model_gpu(patcher)
    to = dict(patcher.model_options["transformer_options"])
    to["cond_or_uncond"], to["sigmas"] = [1, 0], sigma
    with torch.no_grad():
        if x.is_cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        out = patcher.model.apply_model(x, sigma, c_crossattn=ctx, transformer_options=to)
        if x.is_cuda:
            torch.cuda.synchronize()
    # On a CPU the process's CPU time is also reported: on a shared machine it is far steadier than wall time.
    return (time.perf_counter() - t0, time.process_time() - c0), out


@contextlib.contextmanager
def set_up(setup):
    """A variant's run-time hooks (the unmerged LoRA), removed afterwards."""
    hooks = setup() if setup else ()
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def count_work(patcher, x, sigma, ctx, setup=None):
    """(aten operator calls, FLOPs) of one UNet call: what a variant adds, free of timing noise."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class CountOps(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.calls += 1
            return func(*args, **(kwargs or {}))

    with set_up(setup):
        one_call(patcher, x, sigma, ctx)  # weights patched before counting
        with CountOps() as ops, FlopCounterMode(display=False) as flops:
            one_call(patcher, x, sigma, ctx)
    return ops.calls, flops.get_total_flops()


def time_variants(variants, x, sigma, ctx, repeats, calls=2):
    """Median seconds per variant. The variants take turns (so drift in the machine's speed hits all
    alike); at each turn one untimed call follows the switch of weights, then ``calls`` timed ones."""
    times = {name: [] for name in variants}
    outputs = {}
    for _ in range(repeats):
        for name, (patcher, setup) in variants.items():
            with set_up(setup):
                _, outputs[name] = one_call(patcher, x, sigma, ctx)
                for _ in range(calls):
                    times[name].append(one_call(patcher, x, sigma, ctx)[0])
    return {name: tuple(statistics.median(t[i] for t in ts) for i in (0, 1)) for name, ts in times.items()}, outputs


def left_half(latent: int) -> torch.Tensor:
    """A MASK at image resolution: 1 on the left half, 0 on the right."""
    mask = torch.zeros(1, latent * 8, latent * 8)
    mask[:, :, : latent * 4] = 1.0
    return mask


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent", type=int, default=32, help="latent side (64 = 512 px); default 32 on CPU")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's heap thresholds as they are")
    parser.add_argument("--weight-patching", choices=["inplace", "replace"], default="inplace",
                        help="how ComfyUI merges the LoRA: into the weights' memory, or into new tensors (its default)")
    args = parser.parse_args(argv)
    tuned = False if args.default_malloc else steady_malloc()
    import_comfy(cpu=args.device == "cpu")
    load_custom_node_pack(ROOT)

    from fineface_core.conditioning import AUVectors, encode_aus
    FineFaceApplyAdapter = pack_module("nodes.apply_adapter").FineFaceApplyAdapter

    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    base = sd21_model(device, dtype, inplace_weights=args.weight_patching == "inplace")
    weights = random_fineface(base)
    emb = encode_aus(weights, AUVectors(torch.tensor([[0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 2, 0.0]])))
    x = torch.randn(2, 4, args.latent, args.latent, device=device, dtype=dtype)
    ctx = torch.randn(2, 77, 1024, device=device, dtype=dtype)
    sigma = torch.full((2,), 5.0, device=device)

    patched = FineFaceApplyAdapter().apply(base, weights, emb, 1.0, 1.0, 0.0, 1.0)[0]
    au_only = FineFaceApplyAdapter().apply(base, weights, emb, 1.0, 0.0, 0.0, 1.0)[0]
    variants = {
        "plain": (base, None),
        "fineface": (patched, None),
        "naive": (naive_patch(base, weights, emb.uncond, emb.cond), None),
        "unmerged": (au_only, lambda: unmerged_lora(au_only, weights)),
        "replace": (empty_replace(base), None),
        "au_branch": (au_only, None),
        "lora": (FineFaceApplyAdapter().apply(base, weights, emb, 0.0, 1.0, 0.0, 1.0)[0], None),
        "masked": (FineFaceApplyAdapter().apply(base, weights, emb, 1.0, 1.0, 0.0, 1.0, left_half(args.latent))[0], None),
    }
    results, outputs = time_variants(variants, x, sigma, ctx, args.repeats)
    # the LoRA computed at run time must give what the merged one gives
    diff = ((outputs["unmerged"] - outputs["fineface"]).norm() / outputs["fineface"].norm()).item()

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"SD 2.1 UNet, random weights, {args.dtype}, batch 2 (CFG), latent {args.latent}x{args.latent} "
          f"({args.latent * 8} px), {name}, median of {2 * args.repeats} calls, "
          f"{'fixed' if tuned else 'default'} glibc heap thresholds, weights patched {args.weight_patching}")
    plain_wall, plain_cpu = results["plain"]
    for variant, (wall, cpu) in results.items():
        line = f"  {variant:9s} {wall * 1000:9.1f} ms   x{wall / plain_wall:.3f}"
        if device.type == "cpu":
            line += f"   CPU time {cpu * 1000:9.1f} ms   x{cpu / plain_cpu:.3f}"
        print(line)
    print(f"  (unmerged vs merged LoRA output: relative difference {diff:.1e})")
    print("Work per call (deterministic): aten operator calls and FLOPs, and what each variant adds to plain "
          "(masked: and to fineface)")
    work = {name: count_work(patcher, x, sigma, ctx, setup) for name, (patcher, setup) in variants.items()}
    plain_ops, plain_flops = work["plain"]
    for variant, (ops, flops) in work.items():
        print(f"  {variant:9s} {ops:7d} ops ({ops - plain_ops:+6d})   {flops / 1e9:9.2f} GFLOP ({(flops - plain_flops) / 1e9:+8.3f})")
    ops, flops = work["masked"]
    print(f"  masked vs fineface: {ops - work['fineface'][0]:+d} ops, {(flops - work['fineface'][1]) / 1e9:+.4f} GFLOP "
          "(one multiply per cross-attention layer: 16)")


if __name__ == "__main__":
    main()
