"""The evaluation's metrics as plain numpy functions of asked and measured AU intensities [N, 12].

AU MSE, three reductions (all reported; the tables use the first):
- ``paper_au_mse``: the paper's Eq. (3) as written, the mean over images of the L2 norm of the image's
  12-AU error vector, ``mean_n ||asked_n - measured_n||_2``. The paper calls it MSE; it is a mean L2 error.
- ``per_image_mse``: per image, the mean over the 12 AUs of the squared error (what "MSE" usually means).
- ``per_au_mse``: per AU, the mean over images of its squared error.

Linearity, per AU, from the single-AU images asking that AU: the Pearson r and the least-squares slope of
the measured intensity of that AU against the asked one, every image one point. A perfect estimator of a
perfect model gives r = 1 and slope = 1.

Cross-talk, per image: the mean over the AUs not asked (those at 0 in the asked vector) of how far their
measured intensity moved from the same prompt's no-AU image (same seed), ``mean |measured - reference|``.
Measuring against the reference, not against 0, leaves out what the estimator reads in the neutral face.
"""
from __future__ import annotations

import numpy as np


def _pair(asked, measured) -> tuple[np.ndarray, np.ndarray]:
    a, m = np.asarray(asked, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if a.shape != m.shape or a.ndim != 2:
        raise ValueError(f"asked and measured must both be [N, 12]; got {a.shape} and {m.shape}")
    return a, m


def l2_errors(asked, measured) -> np.ndarray:
    """[N]: ||asked_n - measured_n||_2, the term of the paper's Eq. (3)."""
    a, m = _pair(asked, measured)
    return np.linalg.norm(a - m, axis=1)


def paper_au_mse(asked, measured) -> float:
    """The paper's Eq. (3): the mean over images of the L2 norm of the error vector (NaN for no images)."""
    errors = l2_errors(asked, measured)
    return float(errors.mean()) if errors.size else float("nan")


def per_image_mse(asked, measured) -> np.ndarray:
    """[N]: the mean over the 12 AUs of the squared error."""
    a, m = _pair(asked, measured)
    return ((a - m) ** 2).mean(axis=1)


def per_au_mse(asked, measured) -> np.ndarray:
    """[12]: per AU, the mean over images of the squared error."""
    a, m = _pair(asked, measured)
    return ((a - m) ** 2).mean(axis=0) if len(a) else np.full(a.shape[1], np.nan)


def linearity(asked_levels, measured_levels) -> tuple[float, float]:
    """(Pearson r, slope) of measured against asked; NaN where undefined (fewer than two distinct asked
    levels; r also when the measurements do not vary)."""
    x, y = np.asarray(asked_levels, dtype=np.float64), np.asarray(measured_levels, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"asked and measured levels must be two equal 1-D arrays; got {x.shape} and {y.shape}")
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    slope = float((dx * dy).sum() / (dx * dx).sum())
    r = float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum())) if np.ptp(y) > 0 else float("nan")
    return r, slope


def cross_talk(asked, measured, reference_measured) -> np.ndarray:
    """[N]: per image, the mean |measured - reference| over the AUs it did not ask (NaN if it asked all)."""
    a, m = _pair(asked, measured)
    _, ref = _pair(asked, reference_measured)
    off = a == 0
    moved = np.where(off, np.abs(m - ref), 0.0).sum(axis=1)
    counts = off.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, moved / np.maximum(counts, 1), np.nan)


def cross_talk_matrix(asked_index, measured, reference_measured, n_aus: int = 12) -> np.ndarray:
    """[12, 12]: row a, column b: the mean |measured_b - reference_b| over the single-AU images asking AU a
    (the diagonal is NaN: that is the asked AU's own response). Rows with no images are NaN."""
    idx = np.asarray(asked_index, dtype=int)
    moved = np.abs(np.asarray(measured, dtype=np.float64) - np.asarray(reference_measured, dtype=np.float64))
    out = np.full((n_aus, n_aus), np.nan)
    for a in range(n_aus):
        rows = moved[idx == a]
        if len(rows):
            out[a] = rows.mean(axis=0)
            out[a, a] = np.nan
    return out


def cosine_similarity(a, b) -> np.ndarray:
    """[N]: the cosine similarity of rows of a and b ([N, D] each): CLIP-I, identity similarity."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    return (x * y).sum(axis=-1)


def nanmean(values) -> float:
    """The mean of the finite values; NaN when there are none (no warning)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
