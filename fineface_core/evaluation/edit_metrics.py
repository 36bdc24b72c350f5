"""The edit protocol's metrics as plain numpy functions (those shared with the generation protocol, AU MSE
and linearity, are in :mod:`.metrics`).

- Relative expression gain (FED-Bench's): the measured change over the asked change. The change is measured
  against the photo's replay (the no-change edit, the same pixels as the photo's VAE round trip), so what the
  estimator reads in the photo itself cancels. For several AUs asked at once (neutral), the measured change's
  projection on the asked one: ``<measured, asked> / <asked, asked>``; for one AU that is the plain ratio.
  1 = the edit moved the face as much as asked.
- Cross-talk: the mean |measured - replay's reading| over the AUs the edit did not ask to move.
- Replay PSNR: the no-change edit against the photo's VAE round trip (infinite when the pixels are equal:
  the inversion is exact).
- Outside the face: the share of pixels outside the face mask whose 8-bit RGB value is the round trip's.
"""
from __future__ import annotations

import numpy as np


def gain(asked_change, measured_change) -> float:
    """<measured, asked> / <asked, asked> over one edit's 12 AUs; NaN when nothing was asked to change."""
    a, m = np.asarray(asked_change, dtype=np.float64), np.asarray(measured_change, dtype=np.float64)
    norm = float((a * a).sum())
    return float((a * m).sum() / norm) if norm > 0 else float("nan")


def edit_cross_talk(asked_change, measured, reference) -> float:
    """The mean |measured - reference| over the AUs not asked to change (NaN when every AU was)."""
    off = np.asarray(asked_change, dtype=np.float64) == 0
    if not off.any():
        return float("nan")
    moved = np.abs(np.asarray(measured, dtype=np.float64) - np.asarray(reference, dtype=np.float64))
    return float(moved[off].mean())


def psnr(image, reference) -> float:
    """PSNR in dB of two uint8 images of one shape; inf when they are equal."""
    a, b = np.asarray(image, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"the images differ in shape: {a.shape} and {b.shape}")
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def identical_outside(image, reference, face) -> float:
    """The share of the pixels outside ``face`` (bool [H, W]) whose every channel equals the reference's
    (NaN when the face covers the whole image)."""
    outside = ~np.asarray(face, dtype=bool)
    if not outside.any():
        return float("nan")
    same = (np.asarray(image) == np.asarray(reference)).all(axis=-1)
    return float(same[outside].mean())
