"""Distribution smoothing of AU labels (paper Sec. 4.3 and supplementary Sec. 7).

``y' = clip(y + N(0, std^2), clip_min, clip_max)``, then, with probability ``round_prob``,
``y' = round(y')`` ("randomly quantized to integers with a 20% probability", so that the model
also sees the integer values used at inference). The official code draws the rounding once per
batch; ``per="sample"`` draws it per sample instead.

The paper writes sigma^2 = 0.2, the official code uses std 0.2: ``std`` is the standard deviation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SmoothingConfig:
    std: float = 0.2
    clip_min: float = 0.0
    clip_max: float = 5.0
    round_prob: float = 0.2
    per: str = "batch"  # "batch" | "sample"

    def __post_init__(self):
        if self.std < 0:
            raise ValueError(f"std must be >= 0, got {self.std}")
        if self.clip_min > self.clip_max:
            raise ValueError(f"clip_min {self.clip_min} > clip_max {self.clip_max}")
        if not 0.0 <= self.round_prob <= 1.0:
            raise ValueError(f"round_prob must be in [0, 1], got {self.round_prob}")
        if self.per not in ("batch", "sample"):
            raise ValueError(f"per must be 'batch' or 'sample', got {self.per!r}")

    @classmethod
    def from_args(cls, args) -> "SmoothingConfig":
        return cls(std=args.au_noise_std, clip_min=args.au_clip_min, clip_max=args.au_clip_max,
                   round_prob=args.au_round_prob, per=args.au_round_per)


def smooth_aus(aus: torch.Tensor, config: SmoothingConfig = SmoothingConfig(),
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Smooth a [B, 12] batch of AU intensities. Random numbers come from ``generator`` (on the
    tensor's device) so that a resumed run draws exactly what an uninterrupted one would."""
    if aus.ndim != 2:
        raise ValueError(f"expected a [batch, n_aus] tensor, got shape {tuple(aus.shape)}")
    out = aus.float()
    if config.std > 0:
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        out = out + config.std * noise
    out = out.clamp(config.clip_min, config.clip_max)
    # Always draw the coin, so that the random stream does not depend on round_prob being 0 or 1.
    if config.per == "batch":
        coin = torch.rand((1, 1), generator=generator, device=out.device)
    else:
        coin = torch.rand((out.shape[0], 1), generator=generator, device=out.device)
    return torch.where(coin < config.round_prob, out.round(), out)
