"""Regional expressions: the AU branch of a layer scaled per token by a mask.

The AU branch adds one row per image to every token of a cross-attention layer, so a mask
resized to that layer's token grid turns it into a per-region add: ``rows[b] * mask[b, t]``.
A UNet level halves the latent with a stride-2 convolution (padding 1), i.e. ``ceil(n / 2)``
per level, so an odd or non-square latent gives grids like 65x41 -> 33x21 -> 17x11 -> 9x6.
Masks are resized by area averaging, which keeps a constant mask exact (ones stay 1, 0.5 stays
0.5) and a token wholly outside a region exactly 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import FineFaceError

MAX_LEVELS = 8


def token_grid(latent_hw: tuple[int, int], tokens: int) -> tuple[int, int]:
    """The (h, w) grid of a layer with ``tokens`` tokens in a UNet run on a ``latent_hw`` latent."""
    h, w = int(latent_hw[0]), int(latent_hw[1])
    for _ in range(MAX_LEVELS):
        if h * w == tokens:
            return h, w
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    raise FineFaceError(f"a cross-attention layer with {tokens} tokens does not fit a {latent_hw[0]}x{latent_hw[1]} latent "
                        "halved per UNet level; this UNet is not one FineFace masks know")


def check_mask(mask: torch.Tensor) -> torch.Tensor:
    """A ComfyUI MASK ([B, H, W] or [H, W], 0..1) as float32 [B, H, W]; NaN or values outside 0..1 are refused."""
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3) or mask.numel() == 0:
        shape = list(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise FineFaceError(f"the mask must be a MASK of shape [batch, height, width], got {shape}")
    mask = mask.detach().to("cpu", torch.float32)
    mask = mask[None] if mask.ndim == 2 else mask
    if not bool(torch.isfinite(mask).all()):
        raise FineFaceError(f"the mask holds {int((~torch.isfinite(mask)).sum())} NaN or infinite values; "
                            "make it again (a mask is 0 outside the region, 1 inside)")
    low, high = float(mask.min()), float(mask.max())
    if low < 0.0 or high > 1.0:
        raise FineFaceError(f"the mask's values run from {low:g} to {high:g}; a mask is 0..1 (0 = no AU change, 1 = full)")
    return mask


def check_aspect(mask_hw: tuple[int, int], latent_hw: tuple[int, int]):
    """A mask is resized to the latent when it has the image's aspect ratio (to within one latent pixel)."""
    (mh, mw), (lh, lw) = mask_hw, latent_hw
    if abs(mw * lh / mh - lw) > 1.0 and abs(mh * lw / mw - lh) > 1.0:
        raise FineFaceError(
            f"the mask is {mw}x{mh} but the image is {lw * 8}x{lh * 8} px (latent {lw}x{lh}): their aspect ratios differ, "
            "so the mask would cover other parts of the image than you drew. Make the mask at the image's size."
        )


def mask_tokens(mask: torch.Tensor, latent_hw: tuple[int, int], tokens: int) -> torch.Tensor:
    """[B, H, W] mask -> [B, tokens] weights on the layer's token grid (row-major, as ComfyUI flattens it)."""
    check_aspect(tuple(mask.shape[-2:]), latent_hw)
    h, w = token_grid(latent_hw, tokens)
    return F.adaptive_avg_pool2d(mask[:, None], (h, w)).reshape(mask.shape[0], h * w)


def is_constant(mask: torch.Tensor, value: float) -> bool:
    return bool((mask == value).all())
