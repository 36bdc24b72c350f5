"""Write FineFace weights for a (tiny) diffusers UNet in the exact layouts of the official release.

The real files cannot be downloaded here; these have the same key names, shapes (for the
given UNet), dtypes and container formats (torch pickles of plain state dicts, a peft-named
safetensors LoRA with a ``unet.`` prefix), so the loading code under test is the real one.
"""
from __future__ import annotations

import os

import torch
from safetensors.torch import save_file

from fineface_core.reference import attn2_modules, lora_paths


def random_official_tensors(unet, family: str, seed: int = 0, rank: int = 8, ip_keys: bool = False):
    """(encoder_sd, processors_sd, lora_sd or None) with random values, official key names."""
    g = torch.Generator().manual_seed(seed)
    ctx = unet.config.cross_attention_dim
    hidden = 64 if family == "sd21" else ctx - 12

    def rnd(*shape, scale=None):
        scale = scale if scale is not None else 1.0 / shape[-1] ** 0.5
        return torch.randn(*shape, generator=g) * scale

    encoder_sd = {"au_encoder.weight": rnd(hidden, 12), "au_encoder.bias": rnd(hidden, scale=0.1)}
    processors_sd = {}
    for path, attn in attn2_modules(unet).items():
        c = attn.to_v.out_features
        processors_sd[f"{path}.processor.au_to_k.weight"] = rnd(c, ctx)
        processors_sd[f"{path}.processor.au_to_v.weight"] = rnd(c, ctx)
        if ip_keys:
            processors_sd[f"{path}.processor.to_k_ip.weight"] = rnd(c, ctx)
            processors_sd[f"{path}.processor.to_v_ip.weight"] = rnd(c, ctx)
    lora_sd = None
    if family == "sd21":
        lora_sd = {}
        for path, lin in lora_paths(unet).items():
            lora_sd[f"unet.{path}.lora_A.weight"] = rnd(rank, lin.in_features)
            # Trained lora_B is non-zero; small so the UNet stays well behaved.
            lora_sd[f"unet.{path}.lora_B.weight"] = rnd(lin.out_features, rank, scale=0.05)
    return encoder_sd, processors_sd, lora_sd


def write_official_release(folder: str, unet, family: str = "sd21", seed: int = 0, rank: int = 8, ip_keys: bool = False) -> str:
    """Write the official file set of ``family`` into ``folder`` for ``unet``; returns the folder."""
    os.makedirs(folder, exist_ok=True)
    encoder_sd, processors_sd, lora_sd = random_official_tensors(unet, family, seed, rank, ip_keys)
    prefix = "" if family == "sd21" else "sd15_"
    torch.save(encoder_sd, os.path.join(folder, f"{prefix}au_encoder.ckpt"))
    torch.save(processors_sd, os.path.join(folder, f"{prefix}attn_processors.ckpt"))
    if lora_sd is not None:
        save_file(lora_sd, os.path.join(folder, "pytorch_lora_weights.safetensors"))
    return folder
