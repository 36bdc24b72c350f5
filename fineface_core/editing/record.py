"""What an edit-friendly inversion records, what it costs in memory, and when it may be replayed.

A replay is exact only with the sigmas, latent size and model family the inversion was made with, so
every mismatch is refused with what was found and what to do, before the model runs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..errors import FineFaceError
from ..families import FAMILIES

PREDICTIONS = {"EPS": "noise (eps) prediction", "V_PREDICTION": "v-prediction"}


class InversionMismatchError(FineFaceError):
    """An inversion handed to a regeneration it does not fit (model, latent, schedule, mask)."""


def size_text(nbytes: int) -> str:
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


@dataclass(frozen=True)
class InversionRecord:
    """One inversion of a batch of B latents over the steps ``start_step .. steps-1`` of ``sigmas``.

    ``drawn[j]`` is the noisy latent x_i of step i = start_step + j, drawn independently as x0 + sigma_i * n_i,
    and ``drawn[-1]`` is x0 itself (the photo in the model's latent space); ``means[j]`` is the DDPM step mean
    mu_i the model gave at x_i under the source conditioning. A replay steps
    x'_{i+1} = x_{i+1} + (mu'_i - mu_i), which is x_{i+1} bit for bit wherever mu' equals mu.
    """

    sigmas: torch.Tensor  # the whole schedule, [steps + 1], decreasing to 0, float32 on the CPU
    start_step: int  # the paper's T_skip: steps before it are not taken
    drawn: torch.Tensor  # [S + 1, B, C, H, W], S = steps - start_step
    means: torch.Tensor  # [S, B, C, H, W]
    family: str = ""  # the model family the inversion ran on (e.g. "sd21"); "" when the caller names none
    prediction: str = ""  # ComfyUI's name: "EPS", "V_PREDICTION"; "" when the caller names none
    mask: torch.Tensor | None = None  # the denoise mask the inversion ran under, [B or 1, C, H, W]
    seed: int = 0

    @property
    def steps(self) -> int:
        return int(self.sigmas.shape[0]) - 1

    @property
    def replay_sigmas(self) -> torch.Tensor:
        return self.sigmas[self.start_step:]

    @property
    def x0(self) -> torch.Tensor:
        return self.drawn[-1]

    @property
    def batch(self) -> int:
        return int(self.drawn.shape[1])

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """One image's latent: (C, H, W)."""
        return tuple(int(s) for s in self.drawn.shape[2:])

    @property
    def device(self) -> torch.device:
        return self.drawn.device

    @property
    def nbytes(self) -> int:
        tensors = [self.drawn, self.means] + ([self.mask] if self.mask is not None else [])
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device) -> InversionRecord:
        """The record on ``device`` (itself when it is there already)."""
        if self.drawn.device == torch.device(device):
            return self
        mask = self.mask.to(device) if self.mask is not None else None
        return replace(self, drawn=self.drawn.to(device), means=self.means.to(device), mask=mask)

    def describe(self) -> str:
        """What the inversion holds and the memory it takes, for the node's info output and messages."""
        one = self.drawn[0].numel() * self.drawn.element_size()
        c, h, w = self.latent_shape
        return (
            f"inversion of {self.batch} latent(s) {c}x{h}x{w} ({w * 8}x{h * 8} px), steps {self.start_step}..{self.steps - 1} "
            f"of {self.steps} (start step {self.start_step}), seed {self.seed}: {self.means.shape[0]} step means + "
            f"{self.drawn.shape[0]} drawn latents of {size_text(one)} = {size_text(self.nbytes)} on {self.device}"
        )

    # -- checks before a replay ------------------------------------------------------------------------

    def check_model(self, family: str, prediction: str):
        if self.family and family and family != self.family:
            made, given = (str(FAMILIES[f]) if f in FAMILIES else f for f in (self.family, family))
            raise InversionMismatchError(
                f"this inversion was made with a {made} model, but the regeneration's model is {given}. "
                "A replay is exact only with the model family it was recorded with: invert the photo with the model "
                "you regenerate with (the same checkpoint, patched with the photo's own AUs)."
            )
        if self.prediction and prediction and prediction != self.prediction:
            raise InversionMismatchError(
                f"this inversion was made with a {PREDICTIONS.get(self.prediction, self.prediction)} model, the "
                f"regeneration's model uses {PREDICTIONS.get(prediction, prediction)}; invert with the model you "
                "regenerate with."
            )

    def check_latent(self, latent: torch.Tensor) -> int:
        """A latent batch this inversion can be replayed into (one latent per target, or per photo); returns its size."""
        c, h, w = self.latent_shape
        if latent.ndim != 4 or tuple(latent.shape[1:]) != self.latent_shape:
            got = "x".join(str(s) for s in latent.shape[1:])
            raise InversionMismatchError(
                f"this inversion holds a {c}x{h}x{w} latent ({w * 8}x{h * 8} px), the latent given here is {got}; "
                "regenerate from the same photo latent that was inverted (one copy per target, e.g. with AU Batch Latent)."
            )
        n = int(latent.shape[0])
        if self.batch != 1 and n != self.batch:
            raise InversionMismatchError(
                f"this inversion holds {self.batch} photos, the latent given here holds {n}: give the same batch, "
                "or invert one photo and give it once per target."
            )
        if not bool(torch.isfinite(latent).all()):
            raise InversionMismatchError("the latent holds NaN or infinite values; encode the photo again")
        return n

    def check_sigmas(self, sigmas: torch.Tensor):
        """The replay's sigmas must be the inversion's, from its start step on."""
        want = self.replay_sigmas
        got = sigmas.detach().to("cpu", torch.float32).flatten()
        if got.shape == want.shape and torch.allclose(got, want, rtol=1e-5, atol=1e-6):
            return
        steps = int(got.shape[0]) - 1
        if got.shape == self.sigmas.shape and torch.allclose(got, self.sigmas, rtol=1e-5, atol=1e-6):
            raise InversionMismatchError(
                f"these sigmas are the whole {self.steps}-step schedule, but the inversion starts at step "
                f"{self.start_step}: use the inversion's own sigmas (Exact Edit Sampler's SIGMAS output), or split "
                f"the schedule at step {self.start_step}."
            )
        if steps != want.shape[0] - 1:
            raise InversionMismatchError(
                f"the inversion was recorded for {want.shape[0] - 1} steps (steps {self.start_step}..{self.steps - 1} "
                f"of {self.steps}), these sigmas have {steps}: replay with the inversion's own sigmas "
                "(Exact Edit Sampler's SIGMAS output), or invert again with the steps you want."
            )
        raise InversionMismatchError(
            f"these sigmas ({_sigma_text(got)}) are not the ones the inversion was recorded with ({_sigma_text(want)}): "
            "another scheduler, start step or model; replay with the inversion's own sigmas (Exact Edit Sampler's SIGMAS output)."
        )

    def check_mask(self, mask: torch.Tensor | None):
        """The replay runs under the mask the inversion ran under (or none when it had none)."""
        if mask is None and self.mask is None:
            return
        if mask is None or self.mask is None:
            had = "a noise mask" if self.mask is not None else "no noise mask"
            has = "one" if mask is not None else "none"
            raise InversionMismatchError(
                f"the inversion was made with {had}, the regeneration's latent has {has}: give both the same latent "
                "(Set Latent Noise Mask before the inversion, and the same masked latent to the regeneration)."
            )
        theirs = self.mask.to(mask.device, mask.dtype)
        if theirs.shape[0] == 1:
            theirs = theirs.expand(mask.shape[0], *theirs.shape[1:])
        if theirs.shape != mask.shape or not torch.allclose(theirs, mask, atol=1e-6):
            raise InversionMismatchError(
                "the regeneration's noise mask is not the one the inversion was made with; give both the same masked latent."
            )


def _sigma_text(sigmas: torch.Tensor) -> str:
    values = [f"{float(s):.4g}" for s in sigmas[:3]]
    return f"{int(sigmas.shape[0]) - 1} steps from " + ", ".join(values) + ("..." if sigmas.shape[0] > 3 else "")
