"""Tiny SDXL-architecture models: the real layout (three levels, transformer depths 0 / 2 / 10, 70
cross-attention layers at context width 2048, "text_time" micro-conditioning) at small widths.

* ``tiny_sdxl_unet``: a diffusers UNet2DConditionModel, every weight random;
* ``comfy_sdxl_model``: ComfyUI's own SDXL model (``comfy.model_base.SDXL`` from ``supported_models.SDXL``)
  holding the same weights through ComfyUI's diffusers key map, so the two can be compared number for number;
* ``tiny_sdxl_pipeline`` / ``write_tiny_sdxl``: a complete StableDiffusionXLPipeline (two tokenizers, CLIP text
  encoders 768 + 1280 wide = 2048, the second with a projection for the pooled embedding, VAE, scheduler),
  built offline, and its diffusers folder on disk for the trainer.
"""
from __future__ import annotations

import os
import tempfile

import torch
from diffusers import DDPMScheduler, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from .comfy_models import load_diffusers_weights
from .tiny_pipeline import tiny_tokenizer, tiny_vae
from .tiny_unets import tiny_unet

XL_CHANNELS = (32, 64, 128)
POOLED_DIM = 32  # the second text encoder's projection (1280 in SDXL)
TIME_EMBED = 256  # per micro-conditioning number; ComfyUI's SDXL hard-codes it
TEXT_WIDTHS = (768, 1280)  # CLIP ViT-L and OpenCLIP bigG, concatenated to 2048


def tiny_sdxl_unet_config(channels=XL_CHANNELS, pooled_dim=POOLED_DIM, head_channels=8) -> dict:
    """The diffusers config; ``channels`` (320, 320, 320), ``pooled_dim`` 1280 and ``head_channels`` 64 give the
    smallest UNet ComfyUI detects as SDXL (tests/support/sdxl_checkpoint.py)."""
    return dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=tuple(channels),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=tuple(c // head_channels for c in channels),
        cross_attention_dim=sum(TEXT_WIDTHS), use_linear_projection=True, norm_num_groups=32,
        addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=pooled_dim + 6 * TIME_EMBED,
    )


def tiny_sdxl_unet(seed: int = 0) -> UNet2DConditionModel:
    """Random everywhere (diffusers zero-initialises some layers), like tests/support/tiny_unets.py."""
    return tiny_unet(seed=seed, config=tiny_sdxl_unet_config())


def comfy_sdxl_unet_config(dtype=torch.float32, channels=XL_CHANNELS, pooled_dim=POOLED_DIM) -> dict:
    """ComfyUI's UNet config of the same UNet (its head layout is set by the model config: see comfy_sdxl_model)."""
    return {
        "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True, "legacy": False,
        "num_classes": "sequential", "adm_in_channels": pooled_dim + 6 * TIME_EMBED, "dtype": dtype, "in_channels": 4,
        "model_channels": channels[0], "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10],
        "channel_mult": [c // channels[0] for c in channels], "transformer_depth_middle": 10,
        "use_linear_in_transformer": True, "context_dim": sum(TEXT_WIDTHS),
        "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }


def comfy_sdxl_model(unet, dtype=torch.float32, refiner_width: bool = False):
    """A ComfyUI ModelPatcher (CPU, eps) of ComfyUI's SDXL class with ``unet``'s weights (None: random ones).
    ``refiner_width``: the SDXLRefiner class with its 1280-wide context instead (for refusals)."""
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    config = comfy_sdxl_unet_config(dtype)
    if refiner_width:
        config["context_dim"] = 1280
        model_config = comfy.supported_models.SDXLRefiner(config)
    else:
        model_config = comfy.supported_models.SDXL(config)
    model_config.unet_config.update(num_head_channels=8, num_heads=-1)  # 8 channels per head, as the diffusers twin
    cls = comfy.model_base.SDXLRefiner if refiner_width else comfy.model_base.SDXL
    model = cls(model_config, model_type=comfy.model_base.ModelType.EPS, device=torch.device("cpu"))
    if unet is not None:
        load_diffusers_weights(model, unet)
    else:
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():  # ComfyUI does not initialise weights
            for p in model.diffusion_model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) / max(1, p[0].numel()) ** 0.5)
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def comfy_adm(model, pooled: torch.Tensor, height: int, width: int, crop_h: int = 0, crop_w: int = 0,
              target_height: int | None = None, target_width: int | None = None) -> torch.Tensor:
    """ComfyUI's own SDXL vector conditioning ``y`` (pooled text + the six size / crop numbers)."""
    return model.model.encode_adm(pooled_output=pooled, height=height, width=width, crop_h=crop_h, crop_w=crop_w,
                                  target_height=target_height or height, target_width=target_width or width)


def tiny_text_encoders(vocab_size: int, seed: int = 0):
    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, intermediate_size=64, num_hidden_layers=2, num_attention_heads=8,
                  max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    one = CLIPTextModel(CLIPTextConfig(hidden_size=TEXT_WIDTHS[0], projection_dim=POOLED_DIM, **common)).eval()
    two = CLIPTextModelWithProjection(CLIPTextConfig(hidden_size=TEXT_WIDTHS[1], projection_dim=POOLED_DIM,
                                                     **common)).eval()
    return one, two


def tiny_sdxl_pipeline(folder: str, seed: int = 0) -> StableDiffusionXLPipeline:
    tokenizer = tiny_tokenizer(os.path.join(folder, "tokenizer"))
    tokenizer_2 = tiny_tokenizer(os.path.join(folder, "tokenizer_2"))
    text_encoder, text_encoder_2 = tiny_text_encoders(len(tokenizer), seed)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=tiny_vae(seed), text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=tiny_sdxl_unet(seed),
                                     scheduler=scheduler, force_zeros_for_empty_prompt=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def write_tiny_sdxl(folder: str, seed: int = 0) -> str:
    """The tiny SDXL as a diffusers folder (model_index.json, unet/, vae/, text_encoder(_2)/, tokenizer(_2)/,
    scheduler/ with SD's DDPM betas, epsilon prediction as SDXL base)."""
    with tempfile.TemporaryDirectory() as tmp:
        pipe = tiny_sdxl_pipeline(os.path.join(tmp, "src"), seed)
        pipe.scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       clip_sample=False, steps_offset=1)
        pipe.register_modules(scheduler=pipe.scheduler)
        pipe.save_pretrained(folder, safe_serialization=True)
    return folder
