"""Generating the protocol's images with FineFacePipeline, batch by batch, skipping those already on disk.

Every image gets its own generator seeded with its job's seed (on the CPU, so the noise is the same on
every device), so a prompt's no-AU image and its AU images start from the same latent noise whatever the
batch they fall in.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import FineFaceError
from ..pipeline import FineFacePipeline
from .folder import OutputFolder, save_png
from .options import GUIDANCE, SIZE, STEPS
from .protocol import Job


@dataclass(frozen=True)
class Generation:
    steps: int = STEPS
    guidance: float = GUIDANCE
    size: int = SIZE
    negative_prompt: str = ""
    au_scale: float | None = None  # None: the weights' own lambda_AU
    lora_strength: float = 1.0


def looks_local(name: str) -> bool:
    """A path (which must then exist) rather than a hub id such as owner/name."""
    return os.path.exists(name) or os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 \
        or os.sep != "/" and os.sep in name


def load_base(base_model: str, device: str, dtype: torch.dtype):
    """The base Stable Diffusion pipeline (a diffusers folder or hub id), once for every weights file."""
    from diffusers import StableDiffusionPipeline

    if looks_local(base_model) and not os.path.isfile(os.path.join(base_model, "model_index.json")):
        raise FineFaceError(f"the base model {base_model} is not a diffusers folder (no model_index.json there); "
                            "give a diffusers folder or a hub id such as stabilityai/stable-diffusion-2-1-base")
    try:
        pipe = StableDiffusionPipeline.from_pretrained(base_model, torch_dtype=dtype, safety_checker=None,
                                                       requires_safety_checker=False)
    except (OSError, ValueError, EnvironmentError) as e:
        raise FineFaceError(f"cannot load the base model {base_model!r} ({str(e).splitlines()[0][:200]}); give a "
                            "diffusers folder (model_index.json, unet/, vae/, ...) or a hub id such as "
                            "stabilityai/stable-diffusion-2-1-base") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def with_weights(base, weights, lora_strength: float) -> FineFacePipeline:
    """A FineFacePipeline on a copy of the base UNet: the base stays clean for the next weights file."""
    from diffusers import StableDiffusionPipeline

    components = dict(base.components, unet=copy.deepcopy(base.unet))
    pipe = StableDiffusionPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return FineFacePipeline(pipe, weights, lora_strength=lora_strength)


def pending(folder: OutputFolder, label: str, jobs: list[Job]) -> list[Job]:
    return [j for j in jobs if not os.path.exists(folder.image(label, j.name))]


def generate(ff: FineFacePipeline, jobs: list[Job], folder: OutputFolder, label: str, settings: Generation,
             batch_size: int, on_image: Callable[[Job], None] = lambda job: None) -> int:
    """Render ``jobs`` into ``folder`` in batches, writing the images not yet on disk (a batch is rendered whole:
    fineface_core.evaluation.processes); returns how many were written."""
    made = 0
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        aus = torch.tensor([j.aus for j in batch], dtype=torch.float32)
        images = ff([j.prompt for j in batch], aus, au_scale=settings.au_scale,
                    negative_prompt=[settings.negative_prompt] * len(batch) if settings.negative_prompt else None,
                    num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                    height=settings.size, width=settings.size, output_type="pil",
                    generator=[torch.Generator("cpu").manual_seed(j.seed) for j in batch]).images
        for job, image in zip(batch, images):
            if os.path.exists(folder.image(label, job.name)):
                continue
            save_png(image, folder.image(label, job.name))
            made += 1
            on_image(job)
    return made
