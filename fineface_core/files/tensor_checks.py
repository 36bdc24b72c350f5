"""The one check every tensor read from a weight file passes (``safe_load`` calls it on each read).

Precision policy:

* float32, float16, bfloat16 and float64 load as stored (so a file read and written again is
  bit-identical);
* float8 (``float8_e4m3fn``, ``float8_e5m2`` and their ``fnuz`` variants) is cast to float32: an
  fp8 value is a plain float, so the cast is exact. ``float8_e8m0fnu`` holds scale exponents,
  not weights, and is refused;
* integer, bool, complex and quantized tensors are refused: an int8 tensor without its scales is
  not a weight, and casting it would invent one.

NaN or infinite values are refused: a single one spreads through the UNet and the image
comes out black.
"""
from __future__ import annotations

import torch

from ..errors import WeightFileError

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
FP8_DTYPES = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz")
                   if hasattr(torch, n))
_SHOWN = 4  # bad tensors named in one message


def check_tensors(tensors: dict[str, torch.Tensor], path: str) -> dict[str, torch.Tensor]:
    """``tensors`` (keys as in the file) with fp8 cast to float32; WeightFileError if any is unusable."""
    out = {}
    for key, t in tensors.items():
        if t.layout != torch.strided or t.is_quantized:
            raise WeightFileError(f"{path}: tensor {key!r} is a {t.layout} / quantized tensor; FineFace weights are "
                                  "plain floating-point tensors. Use the original (unquantized) file.")
        if t.dtype in FP8_DTYPES:
            t = t.to(torch.float32)
        elif t.dtype not in FLOAT_DTYPES:
            raise WeightFileError(
                f"{path}: tensor {key!r} is stored as {str(t.dtype).replace('torch.', '')}; FineFace weights are floating "
                "point (float32, float16, bfloat16 or float8). The file was quantized or is not FineFace weights: use "
                "the original file."
            )
        out[key] = t
    bad = []
    for key, t in out.items():
        if _all_finite(t):
            continue
        n_nan, n_bad = int(torch.isnan(t).sum()), int((~torch.isfinite(t)).sum())
        bad.append(f"{key!r} ({n_nan:,} NaN, {n_bad - n_nan:,} infinite of {t.numel():,})")
    if bad:
        shown = ", ".join(bad[:_SHOWN]) + (f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else "")
        raise WeightFileError(
            f"{path}: {len(bad)} {'tensors hold' if len(bad) > 1 else 'tensor holds'} NaN or infinite values: {shown}. Weights like "
            "these make black images. The file is damaged or comes from a training run that diverged: download it "
            "again, or export an earlier checkpoint."
        )
    return out


def _all_finite(t: torch.Tensor) -> bool:
    # A sum is NaN or infinite when a value is, and otherwise only when it overflows (then look at each value).
    # One pass of a sum is several times faster than an isfinite mask on a CPU.
    total = t.sum(dtype=torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else None)
    return bool(torch.isfinite(total)) or bool(torch.isfinite(t).all())
