"""A LATENT repeated into a batch whose images all start from the same noise.

ComfyUI draws the initial noise per ``batch_index``: every image of a batch that carries one
index gets the same noise, so in a sweep or comparison only the AUs change between images.
"""
from __future__ import annotations

from fineface_core.errors import AUSpecError


def repeat_with_shared_noise(latent: dict, n: int) -> dict:
    """``latent`` (one image) repeated ``n`` times under its single noise index."""
    samples = latent["samples"]
    if samples.shape[0] != 1:
        raise AUSpecError(f"this repeats a latent of one image; the latent holds {samples.shape[0]} "
                          "(use batch size 1 in Empty Latent Image, or in what makes the latent)")
    out = {k: v for k, v in latent.items() if k not in ("samples", "batch_index", "noise_mask")}
    out["samples"] = samples.repeat(n, *([1] * (samples.ndim - 1)))
    out["batch_index"] = [int(latent.get("batch_index", [0])[0])] * n
    if "noise_mask" in latent:
        mask = latent["noise_mask"]
        out["noise_mask"] = mask.repeat(n, *([1] * (mask.ndim - 1))) if mask.shape[0] == 1 else mask
    return out
