"""A tiny Stable Diffusion folder on disk, in diffusers' layout (model_index.json, unet/, vae/,
text_encoder/, tokenizer/, scheduler/), for the trainer to load as ``--pretrained_model_name_or_path``.

Built from tests/support/tiny_pipeline.py (random weights, offline tokenizer); the scheduler is
a DDPMScheduler with SD's betas (``prediction_type`` epsilon as SD 2.1 base, or v_prediction).
"""
from __future__ import annotations

import os
import tempfile

from diffusers import DDPMScheduler

from .tiny_pipeline import tiny_pipeline


def write_tiny_sd(folder: str, family: str = "sd21", seed: int = 0, prediction_type: str = "epsilon") -> str:
    with tempfile.TemporaryDirectory() as tmp:
        pipe = tiny_pipeline(os.path.join(tmp, "src"), family, seed)
        pipe.scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       clip_sample=False, steps_offset=1, prediction_type=prediction_type)
        pipe.register_modules(scheduler=pipe.scheduler)
        pipe.save_pretrained(folder, safe_serialization=True)
    return folder
