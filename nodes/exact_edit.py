"""Exact edits of a photo's face: invert the photo once under its own AUs, regenerate under target AUs.

Invert Photo records the inversion; Regenerate Exact Edit replays it (the plain node, for KSampler users);
Exact Edit Sampler gives the same replay as a SAMPLER + SIGMAS for SamplerCustom / SamplerCustomAdvanced.
"""
from __future__ import annotations

import comfy.samplers
import torch

from fineface_core.errors import FineFaceError
from fineface_core.regional import check_aspect, check_mask

from .exact_edit_sampling import INVERSION, replay_sampler, run_inversion, run_replay
from .types import CATEGORY

LATENT_TIP = ("The photo's LATENT (VAE Encode). A noise mask on it (Set Latent Noise Mask) limits the edit: outside the "
              "mask the result is this latent bit for bit. Give the same latent to the inversion and the regeneration.")


def check_photo_latent(latent: dict) -> torch.Tensor:
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4 or samples.numel() == 0:
        raise FineFaceError("the latent must be an image LATENT (VAE Encode of the photo) of shape [batch, 4, height/8, width/8]")
    bad = int((~torch.isfinite(samples)).sum())
    if bad:
        raise FineFaceError(f"the photo's latent holds {bad} NaN or infinite values; encode the photo again (VAE Encode)")
    mask = latent.get("noise_mask")
    if mask is not None:
        mask = check_mask(mask.reshape(-1, *mask.shape[-2:]) if mask.ndim == 4 else mask)
        check_aspect(tuple(mask.shape[-2:]), tuple(samples.shape[-2:]))
        if mask.shape[0] not in (1, samples.shape[0]):
            raise FineFaceError(f"the latent's noise mask holds {mask.shape[0]} masks for {samples.shape[0]} images: "
                                "give one mask for all, or one per image")
    return samples


class FineFaceInvertPhoto:
    DESCRIPTION = (
        "Edit-friendly DDPM inversion of a photo (Huberman-Spiegelglas et al., CVPR 2024): records, for every step, "
        "a noisy version of the photo's latent and the model's step under the photo's own AUs. Regenerating with the "
        "same AUs gives the photo's latent back exactly; with other AUs only what they change moves. One inversion "
        "serves any number of targets. The record stays on the sampler's device (its size is in 'info')."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model patched with the photo's own AUs (AU From Image -> AU Encoder -> Apply FineFace Adapter)."}),
            "positive": ("CONDITIONING", {"tooltip": "The prompt describing the photo; the regeneration may use the same or another."}),
            "negative": ("CONDITIONING", {"tooltip": "The negative prompt (uncond of the CFG)."}),
            "latent_image": ("LATENT", {"tooltip": LATENT_TIP}),
            "cfg": ("FLOAT", {"default": 7.5, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                              "tooltip": "CFG of the inversion; any value is exact. Use the same in the regeneration for the most faithful edit."}),
            "steps": ("INT", {"default": 50, "min": 1, "max": 1000, "tooltip": "Steps of the schedule; the regeneration replays the same ones."}),
            "scheduler": (comfy.samplers.KSampler.SCHEDULERS, {"default": "normal", "tooltip": "The schedule of sigmas; the regeneration replays the same one."}),
            "start_step": ("INT", {"default": 15, "min": 0, "max": 999, "tooltip": (
                "The paper's T_skip: steps skipped at the noisy end. 0 = the strongest edits; higher keeps more of the photo "
                "(pose, lighting, identity) and weakens the edit. Must be below steps.")}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "tooltip": "Seed of the recorded noise."}),
        }}

    RETURN_TYPES = (INVERSION, "STRING")
    RETURN_NAMES = ("inversion", "info")
    OUTPUT_TOOLTIPS = ("The recorded inversion, for Regenerate Exact Edit or Exact Edit Sampler.",
                       "What the inversion holds and its memory (steps x latent).")
    FUNCTION = "invert"
    CATEGORY = CATEGORY

    def invert(self, model, positive, negative, latent_image, cfg, steps, scheduler, start_step, seed):
        check_photo_latent(latent_image)
        if not 0 <= start_step < steps:
            raise FineFaceError(f"the start step must be below the number of steps ({steps}), got {start_step}")
        record = run_inversion(model, positive, negative, latent_image, cfg, steps, scheduler, start_step, seed)
        return (record, record.describe())


class FineFaceRegenerateEdit:
    DESCRIPTION = (
        "Replays an inversion with the model patched with the target AUs: the photo with the new expression. With the "
        "photo's own AUs (and the inversion's prompts and CFG) the result is the photo's latent exactly. Give the photo's "
        "latent once per target (AU Batch Latent or AU Intensity Sweep) to edit a batch of targets in one run."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The same checkpoint patched with the target AUs (one AU vector, or one per latent)."}),
            "positive": ("CONDITIONING", {"tooltip": "The prompt; the inversion's gives the photo back, another one edits with it."}),
            "negative": ("CONDITIONING", {"tooltip": "The negative prompt (uncond of the CFG)."}),
            "inversion": (INVERSION, {"tooltip": "From Invert Photo."}),
            "cfg": ("FLOAT", {"default": 7.5, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                              "tooltip": "CFG of the regeneration; the inversion's gives the photo back with the photo's AUs."}),
            "latent_image": ("LATENT", {"tooltip": "The latent that was inverted, once per target; with the same noise mask, if any."}),
        }}

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The edited latent(s); VAE Decode them.",)
    FUNCTION = "regenerate"
    CATEGORY = CATEGORY

    def regenerate(self, model, positive, negative, inversion, cfg, latent_image):
        check_photo_latent(latent_image)
        samples = run_replay(model, positive, negative, inversion, cfg, latent_image)
        out = {k: v for k, v in latent_image.items() if k != "samples"}
        out["samples"] = samples
        return (out,)


class FineFaceExactEditSampler:
    DESCRIPTION = (
        "The replay of an inversion as a SAMPLER with its SIGMAS, for SamplerCustom (add_noise off) or "
        "SamplerCustomAdvanced (Disable Noise, any guider): give it the model patched with the target AUs and the "
        "photo's latent, once per target."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"inversion": (INVERSION, {"tooltip": "From Invert Photo."})}}

    RETURN_TYPES = ("SAMPLER", "SIGMAS")
    RETURN_NAMES = ("sampler", "sigmas")
    OUTPUT_TOOLTIPS = ("Replays the inversion.", "The inversion's sigmas from its start step on; other sigmas are refused.")
    FUNCTION = "sampler"
    CATEGORY = CATEGORY

    def sampler(self, inversion):
        return (replay_sampler(inversion), inversion.replay_sigmas.clone())
