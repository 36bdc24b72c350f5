"""Edit-friendly DDPM inversion (Huberman-Spiegelglas, Kulikov & Michaeli, CVPR 2024) in sigma terms.

ComfyUI's latents are x = x0 + sigma * n (eps and v-prediction models alike: the model wrapper turns
either output into the denoised x0), so a DDPM step from sigma to sigma' < sigma has the mean
``mu = D + (sigma'/sigma)^2 (x - D)`` (the forward process' posterior around D = the model's denoised x0;
euler_ancestral at eta 1 takes the same step) plus fresh noise.

Inversion: draw every step's noisy latent independently, x_i = x0 + sigma_i * n_i (x at sigma 0 is x0
itself), and record the model's mean mu_i at each x_i under the source conditioning. Replay with other
conditioning: start at the recorded x_start and step x'_{i+1} = x_{i+1} + (mu'_i - mu_i). With the source
conditioning mu' is mu bit for bit, so every x' is the recorded x, and the last step gives x0 exactly, at
any CFG. (The same step written mu'_i + (x_{i+1} - mu_i) is equal in exact arithmetic, but the model
amplifies its rounding; see NOTES section 8.)
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import FineFaceError
from .record import InversionRecord

# (x [B, C, H, W], sigma as a 0-d tensor on x's device) -> denoised x0 [B, C, H, W]
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# (step index from the start step, x at that step, denoised) -> None
StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


def check_schedule(sigmas: torch.Tensor, start_step: int) -> torch.Tensor:
    """The schedule as float32 on the CPU: 1-D, finite, decreasing to 0; 0 <= start_step < steps."""
    sigmas = torch.as_tensor(sigmas).detach().to("cpu", torch.float32).flatten()
    if sigmas.shape[0] < 2 or not bool(torch.isfinite(sigmas).all()):
        raise FineFaceError(f"an inversion needs a schedule of at least one step with finite sigmas, got {sigmas.tolist()[:5]}")
    if float(sigmas[-1]) != 0.0 or not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise FineFaceError(
            "an inversion needs sigmas that decrease to 0 (a scheduler's output, as BasicScheduler gives); "
            f"got {len(sigmas) - 1} steps from {float(sigmas[0]):.4g} to {float(sigmas[-1]):.4g}"
        )
    steps = sigmas.shape[0] - 1
    if not 0 <= int(start_step) < steps:
        raise FineFaceError(f"the start step must be 0..{steps - 1} for {steps} steps, got {start_step}")
    return sigmas


def step_mean(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The DDPM step's mean from sigma to sigma_next given the model's denoised x0 (at sigma_next = 0: denoised)."""
    ratio = (sigma_next / sigma) ** 2
    return denoised + ratio * (x - denoised)


def draw_noise(shape, seed: int, steps: int) -> list[torch.Tensor]:
    """One standard normal latent per step of the whole schedule, from one CPU generator (the same on any
    device). A later start step keeps the noise of the steps it still takes."""
    generator = torch.Generator().manual_seed(int(seed))
    return [torch.randn(shape, generator=generator) for _ in range(steps)]


@torch.no_grad()  # a record holds tensors, never the autograd graph of every model call behind them
def invert(denoise: Denoiser, sigmas: torch.Tensor, x0: torch.Tensor, seed: int, start_step: int = 0, *,
           family: str = "", prediction: str = "", mask: torch.Tensor | None = None, callback: StepCallback | None = None) -> InversionRecord:
    """Record the inversion of ``x0`` (the clean latent in the model's space, [B, C, H, W]).

    ``denoise`` is the model under the source conditioning (the photo's own AUs, the prompts, the CFG);
    it runs once per step taken. The record lives on x0's device."""
    if not isinstance(x0, torch.Tensor) or x0.ndim != 4 or x0.numel() == 0:
        raise FineFaceError(f"the latent to invert must be a [batch, channels, height, width] tensor, got {getattr(x0, 'shape', type(x0).__name__)}")
    if not bool(torch.isfinite(x0).all()):
        raise FineFaceError(
            f"the photo's latent holds {int((~torch.isfinite(x0)).sum())} NaN or infinite values; encode the photo again "
            "(VAE Encode of a valid image)"
        )
    sigmas = check_schedule(sigmas, start_step)
    # one memory layout for the record and the replay: a channels-last x0 (a diffusers VAE's output) gives the model
    # channels-last inputs while inverting and contiguous ones in the replay, whose convolutions round differently
    x0 = x0.contiguous()
    noises = draw_noise(x0.shape, seed, sigmas.shape[0] - 1)[start_step:]
    on_device = sigmas.to(x0.device)[start_step:]
    drawn = torch.stack([x0 + s * n.to(x0.device, x0.dtype) for s, n in zip(on_device[:-1], noises)] + [x0])
    means = torch.empty_like(drawn[:-1])
    for j in range(means.shape[0]):
        denoised = denoise(drawn[j], on_device[j])
        means[j] = step_mean(drawn[j], denoised, on_device[j], on_device[j + 1])
        if callback is not None:
            callback(j, drawn[j], denoised)
    if not bool(torch.isfinite(means).all()):
        raise FineFaceError("the model gave NaN or infinite values on the photo's noisy latents; nothing was recorded. "
                            "Check the model and its patches (a model in float16 that overflows: run it in float32).")
    return InversionRecord(sigmas, int(start_step), drawn, means, family, prediction, mask, int(seed))


@torch.no_grad()
def replay(denoise: Denoiser, record: InversionRecord, batch: int | None = None, mask: torch.Tensor | None = None,
           callback: StepCallback | None = None) -> torch.Tensor:
    """Regenerate from ``record`` with ``denoise`` (the model under the target conditioning): x0 exactly when
    the conditioning is the source's. ``batch``: how many latents (one per target; default the record's).
    ``mask`` (broadcastable to the latent, 0..1): where the edit may act; where it is 0 the result is the
    record's x0 bit for bit."""
    n = record.batch if batch is None else int(batch)
    if n != record.batch and record.batch != 1:
        raise FineFaceError(f"an inversion of {record.batch} latents replays into {record.batch}, not {n}")
    sigmas = record.replay_sigmas.to(record.device)

    def recorded(t: torch.Tensor) -> torch.Tensor:
        return t if n == record.batch else t.expand(n, *t.shape[1:])

    x = recorded(record.drawn[0]).clone()
    for j in range(record.means.shape[0]):
        denoised = denoise(x, sigmas[j])
        delta = step_mean(x, denoised, sigmas[j], sigmas[j + 1]) - recorded(record.means[j])
        if callback is not None:
            callback(j, x, denoised)
        x = recorded(record.drawn[j + 1]) + (delta if mask is None else delta * mask)
    if not bool(torch.isfinite(x).all()):
        raise FineFaceError("the regeneration gave NaN or infinite values: the model under the target conditioning "
                            "diverged (AU intensities far outside 0..5, or a float16 model that overflows).")
    return x
