"""The smallest checkpoint ComfyUI's CheckpointLoaderSimple detects as SDXL (tests/test_sdxl_checkpoint.py).

ComfyUI tells SDXL from the UNet alone (supported_models.SDXL.unet_config: model_channels 320, transformer depths
0 / 2 / 10, context 2048, adm_in_channels 2816, linear projections), so the UNet keeps SDXL's layout at width 320 on
every level (channel_mult [1, 1, 1]): about 220M parameters instead of 2.6G, written in float16 (random values
rounded to float16 first, so ComfyUI and the diffusers reference hold the very same numbers).

What the file leaves out, and why:
* the text encoders: ComfyUI's SDXL CLIP is built from fixed full-size configs (CLIP-L 123M + OpenCLIP bigG 695M
  parameters, the same in the 2024 tree and 0.8.0), so a checkpoint carrying them would be 1.6 GB. Without them
  CheckpointLoaderSimple returns no CLIP (its own warning says so) and the tests hand the UNet its text states and
  pooled embedding as tensors, the CONDITIONING that CLIPTextEncodeSDXL would make;
* the full VAE: the file carries a TAESD (ComfyUI's tiny autoencoder, detected from its keys) with random weights,
  so VAE Decode runs on the same file.
"""
from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from tests.support.tiny_sdxl import comfy_sdxl_unet_config, tiny_sdxl_unet_config
from tests.support.tiny_unets import tiny_unet

CHANNELS = (320, 320, 320)
POOLED = 1280  # OpenCLIP bigG's projection: adm_in_channels 2816 = 1280 + 6 * 256
UNET_PREFIX, VAE_PREFIX = "model.diffusion_model.", "first_stage_model."


def detectable_unet_config() -> dict:
    return tiny_sdxl_unet_config(CHANNELS, POOLED, head_channels=64)  # 64 channels a head, as ComfyUI sets


def comfy_model_config():
    """ComfyUI's own model config for this UNet, found as the loader finds it (refuses anything but SDXL)."""
    import comfy.model_detection
    import comfy.supported_models

    config = comfy_sdxl_unet_config(torch.float32, CHANNELS, POOLED)
    for key in ("dtype", "num_classes"):  # not read from a state dict
        config.pop(key)
    model_config = comfy.model_detection.model_config_from_unet_config(config)
    if type(model_config) is not comfy.supported_models.SDXL:
        raise AssertionError(f"ComfyUI detects {type(model_config).__name__}, not SDXL")
    return model_config


def _key_map(diffusers_keys) -> dict[str, str]:
    """diffusers UNet key -> ComfyUI UNet key, ComfyUI's own map (which also names class_embedding, the SD 2 name
    of SDXL's add_embedding), checked to cover every key."""
    import comfy.utils

    key_map = comfy.utils.unet_to_diffusers(comfy_model_config().unet_config)
    missing = set(diffusers_keys) - set(key_map)
    if missing:
        raise AssertionError(f"ComfyUI's key map misses diffusers keys: {sorted(missing)[:4]}")
    return {k: key_map[k] for k in diffusers_keys}


def _taesd(seed: int) -> dict[str, torch.Tensor]:
    import comfy.taesd.taesd

    vae = comfy.taesd.taesd.TAESD()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # every value set: newer ComfyUI builds TAESD with uninitialised weights
        for name, p in vae.named_parameters():
            if name in ("vae_scale", "vae_shift"):  # vae_shift: newer trees only
                p.fill_(1.0 if name == "vae_scale" else 0.0)
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))  # biases
    return vae.state_dict()


def build_sdxl_checkpoint(path: str, seed: int = 0) -> str:
    """Write the checkpoint at ``path`` (float16 UNet + TAESD, no text encoders)."""
    unet = tiny_unet(seed=seed, config=detectable_unet_config())
    sd = {k: v.half() for k, v in unet.state_dict().items()}
    del unet
    key_map = _key_map(sd)
    out = {UNET_PREFIX + key_map[k]: v.contiguous() for k, v in sd.items()}
    if len(out) != len(sd):
        raise AssertionError("two diffusers keys map onto one ComfyUI key")
    out.update({VAE_PREFIX + k: v.half().contiguous() for k, v in _taesd(seed + 1).items()})
    save_file(out, path)
    return path


def reference_unet_from_checkpoint(path: str):
    """The diffusers UNet holding the checkpoint's UNet (float32), read back through the inverse of ComfyUI's map."""
    from diffusers import UNet2DConditionModel

    sd = load_file(path)
    with torch.device("meta"):
        unet = UNet2DConditionModel(**detectable_unet_config())
    weights = {d: sd[UNET_PREFIX + c].float() for d, c in _key_map(unet.state_dict()).items()}
    unet.load_state_dict(weights, strict=True, assign=True)
    return unet.eval()
