"""Small ComfyUI SD 2.1 / SD 1.5 models holding the same weights as a tiny diffusers UNet.

ComfyUI builds the UNet from its own SD20 / SD15 model configs (with the tiny widths of
tests/support/tiny_unets.py) and the weights are copied over through ComfyUI's own
diffusers-to-ComfyUI key map, so a ComfyUI noise prediction can be compared with the diffusers
reference number for number.
"""
from __future__ import annotations

import torch

from tests.support.tiny_unets import TINY_CHANNELS, tiny_unet_config


def comfy_unet_config(family: str, context_dim: int | None = None, dtype=torch.float32) -> dict:
    d = tiny_unet_config(family)
    config = {
        "use_checkpoint": False, "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": TINY_CHANNELS[0],
        "num_res_blocks": [2, 2, 2, 2], "channel_mult": [c // TINY_CHANNELS[0] for c in TINY_CHANNELS],
        "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "transformer_depth_middle": 1,
        "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        "use_spatial_transformer": True, "legacy": False, "adm_in_channels": None, "dtype": dtype,
        "use_linear_in_transformer": d["use_linear_projection"], "context_dim": context_dim or d["cross_attention_dim"],
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }
    return config


def comfy_model(unet, family: str, context_dim: int | None = None, dtype=torch.float32):
    """A ComfyUI ModelPatcher (CPU, eps) for ``family`` with ``unet``'s weights (when widths match),
    its UNet in ``dtype`` (ComfyUI runs half-precision UNets on GPUs)."""
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    config = comfy_unet_config(family, context_dim, dtype)
    model_config = (comfy.supported_models.SD20 if family == "sd21" else comfy.supported_models.SD15)(config)
    # SD20 / SD15 fix the head layout for full-size models; the tiny one has 8 channels per head (SD 2)
    # and 8 heads (SD 1.5), as the diffusers UNet does.
    if family == "sd21":
        model_config.unet_config.update(num_head_channels=8, num_heads=-1)
    else:
        model_config.unet_config.update(num_heads=8, num_head_channels=-1)
    model = comfy.model_base.BaseModel(model_config, model_type=comfy.model_base.ModelType.EPS, device=torch.device("cpu"))
    if unet is not None:
        load_diffusers_weights(model, unet)
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def load_diffusers_weights(model, unet):
    """Copy a diffusers UNet's weights into ComfyUI's ``model`` (a comfy.model_base model) through ComfyUI's own
    diffusers-to-ComfyUI key map; every ComfyUI weight must be covered."""
    import comfy.utils

    sd = unet.state_dict()
    mapped = {c: sd[d] for d, c in comfy.utils.unet_to_diffusers(model.model_config.unet_config).items() if d in sd}
    missing, unexpected = model.diffusion_model.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise AssertionError(f"weights did not map: missing {missing[:3]}, unexpected {unexpected[:3]}")


def random_comfy_weights(model, seed: int = 0):
    """Random weights for a ComfyUI model built without a checkpoint (ComfyUI leaves them uninitialised):
    std 0.02 for matrices and convolutions, 0.01 for biases and norms (the benchmarks' full-size models)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.diffusion_model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.02 if p.ndim > 1 else 0.01))
