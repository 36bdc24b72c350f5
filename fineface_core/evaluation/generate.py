"""Generating the protocol's images with FineFacePipeline, batch by batch, skipping those already on disk.

Every image gets its own generator seeded with its job's seed (on the CPU, so the noise is the same on
every device), so a prompt's no-AU image and its AU images start from the same latent noise whatever the
batch they fall in.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..pipeline import FineFacePipeline
from .folder import OutputFolder, save_png
from .options import GUIDANCE, SIZES, STEPS
from .protocol import Job


@dataclass(frozen=True)
class Generation:
    steps: int = STEPS
    guidance: float = GUIDANCE
    size: int | None = None  # None: the base model's own (for_family)
    negative_prompt: str = ""
    au_scale: float | None = None  # None: the weights' own lambda_AU
    lora_strength: float = 1.0


def for_family(settings: Generation, family) -> Generation:
    """``settings`` with the size filled in: the family's own (512 px for SD 2.x / 1.x, 1024 px for SDXL)."""
    return settings if settings.size is not None else replace(settings, size=SIZES[family.key])


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
