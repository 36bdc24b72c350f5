"""Prompt + AUs -> images with diffusers, for people without ComfyUI.

    pipe = FineFacePipeline.from_pretrained("stabilityai/stable-diffusion-2-1-base", "models/fineface/fineface_sd21.safetensors")
    image = pipe("a closeup of a boy in a park", "AU1@2.5 + AU6@2.5 + AU12@5").images[0]

SDXL weights (trained with training/) run on a StableDiffusionXLPipeline; the family of the weights picks it:

    pipe = FineFacePipeline.from_pretrained("stabilityai/stable-diffusion-xl-base-1.0", "fineface_sdxl.safetensors")
"""
from __future__ import annotations

from typing import Any

import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

from .aus import parse_au_batch
from .weightfiles.loading import load_weights
from .reference import attach_fineface, au_kwargs
from .weights import FineFaceWeights


def pipeline_class(family_key: str) -> type:
    """The diffusers pipeline for a family: SDXL's two text encoders and micro-conditioning, or SD's one encoder."""
    return StableDiffusionXLPipeline if family_key == "sdxl" else StableDiffusionPipeline


class FineFacePipeline:
    """A diffusers StableDiffusionPipeline (or StableDiffusionXLPipeline) whose UNet carries FineFace."""

    def __init__(self, pipe: StableDiffusionPipeline | StableDiffusionXLPipeline, weights: FineFaceWeights,
                 lora_strength: float = 1.0):
        attach_fineface(pipe.unet, weights, lora_strength=lora_strength)
        self.pipe, self.weights = pipe, weights

    @classmethod
    def from_pretrained(cls, base_model: str, fineface: str, *, variant: str = "auto", lora_strength: float = 1.0,
                        torch_dtype: torch.dtype | None = None, device: str | None = None, **kwargs) -> "FineFacePipeline":
        """``base_model``: a diffusers folder or hub id; ``fineface``: a FineFace file or official release folder."""
        weights = load_weights(fineface, variant)
        pipeline_cls = pipeline_class(weights.family.key)
        if pipeline_cls is StableDiffusionPipeline:
            kwargs = {"safety_checker": None, "requires_safety_checker": False, **kwargs}
        pipe = pipeline_cls.from_pretrained(base_model, torch_dtype=torch_dtype, **kwargs)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(pipe.to(device), weights, lora_strength)

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], aus: Any, *, au_scale: float | None = None,
                 negative_prompt: str | list[str] | None = None, num_inference_steps: int = 50,
                 guidance_scale: float = 7.5, num_images_per_prompt: int = 1, **kwargs):
        """``aus``: one AU spec for all prompts, or one spec per prompt (see ``fineface_core.aus``)."""
        au_batch = parse_au_batch(aus)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if len(prompts) == 1 and len(au_batch) > 1:
            prompts = prompts * len(au_batch)
        if len(au_batch) == 1 and len(prompts) > 1:
            au_batch = au_batch.expand(len(prompts), -1)
        if len(au_batch) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(au_batch)} AU specs; give one spec, or one per prompt")
        au_batch = au_batch.repeat_interleave(num_images_per_prompt, dim=0)
        unet = self.pipe.unet
        cfg = guidance_scale > 1 and unet.config.time_cond_proj_dim is None  # as both diffusers pipelines decide
        return self.pipe(
            prompt=prompts, negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, num_images_per_prompt=num_images_per_prompt,
            cross_attention_kwargs=au_kwargs(self.weights, au_batch, au_scale, cfg, unet.device, unet.dtype),
            **kwargs,
        )
