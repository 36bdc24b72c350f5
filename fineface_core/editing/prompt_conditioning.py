"""The text conditioning of an exact edit on diffusers, for SD 1.x / 2.x and SDXL pipelines alike.

SDXL's UNet takes, besides the token embeddings, the pooled embedding of its second text encoder and six
micro-conditioning numbers (original size, crop's top-left corner, target size: diffusers' ``time_ids``) through
``added_cond_kwargs``. A photo being edited is neither cropped nor resized, so all three describe the photo itself:
(H, W, 0, 0, H, W), as ComfyUI's SDXL conditioning gives them for an uncropped image of that size."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PromptConditioning:
    cond: torch.Tensor  # [1, tokens, width]
    uncond: torch.Tensor | None  # None at cfg 1: no unconditional pass
    added_cond: dict | None = None  # SDXL only: {"text_embeds": pooled, "time_ids": [1, 6]}
    uncond_added: dict | None = None


def is_sdxl(pipe) -> bool:
    """An SDXL pipeline: a second text encoder feeding the pooled embedding."""
    return getattr(pipe, "text_encoder_2", None) is not None


def encode_prompts(pipe, prompt: str, negative_prompt: str | None, guidance_scale: float, height: int, width: int,
                   device) -> PromptConditioning:
    """``pipe``'s own prompt encoding (the embeddings its ``__call__`` would use), in float32."""
    cfg = guidance_scale != 1.0
    if not is_sdxl(pipe):
        cond, uncond = pipe.encode_prompt(prompt, device, 1, cfg, negative_prompt)
        return PromptConditioning(cond.float(), uncond.float() if cfg else None)
    cond, uncond, pooled, uncond_pooled = pipe.encode_prompt(
        prompt, device=device, num_images_per_prompt=1, do_classifier_free_guidance=cfg, negative_prompt=negative_prompt)
    ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32, device=device)
    return PromptConditioning(cond.float(), uncond.float() if cfg else None,
                              {"text_embeds": pooled.float(), "time_ids": ids},
                              {"text_embeds": uncond_pooled.float(), "time_ids": ids} if cfg else None)
