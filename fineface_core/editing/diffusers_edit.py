"""The exact edit on diffusers: a UNet carrying FineFace (fineface_core.reference.attach_fineface) as a
denoiser in ComfyUI's sigma parametrization, so that the inversion and its replay are the very ones
fineface_core.editing.ddpm_inversion runs for the ComfyUI nodes, and agree with them number for number.

    x0 = vae.encode(image).latent_dist.mean * vae.config.scaling_factor    # the photo in the model's space
    source = DiffusersDenoiser(unet, weights, alphas_cumprod, "epsilon", cond, uncond, photo_aus, cfg=7.5)
    record = invert(source, sigma_schedule(alphas_cumprod, "normal", 50), x0, seed=0, start_step=15)
    edited = replay(source.with_aus(target_aus), record, batch=len(target_aus))   # x0 exactly when target = source

ComfyUI's conventions, kept here: the UNet sees x / sqrt(1 + sigma^2) at the training timestep whose sigma
is nearest in log; CFG mixes the denoised predictions; the uncond AU token is
the encoder of zeros.
"""
from __future__ import annotations

import torch

from ..errors import FineFaceError
from ..weights import FineFaceWeights

PREDICTIONS = {"epsilon": "EPS", "v_prediction": "V_PREDICTION"}


def training_sigmas(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) for every training timestep t (increasing)."""
    a = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
    return ((1 - a) / a).sqrt().to(torch.float32)


def timestep(sigma: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """The continuous timestep of ``sigma``: linear in log sigma between the two training timesteps around it."""
    ls = sigma.to(log_sigmas.dtype).log().clamp(float(log_sigmas[0]), float(log_sigmas[-1]))
    high = torch.searchsorted(log_sigmas, ls.reshape(-1)).clamp(1, log_sigmas.shape[0] - 1).reshape(ls.shape)
    low = high - 1
    w = (log_sigmas[low] - ls) / (log_sigmas[low] - log_sigmas[high])
    return (1 - w) * low + w * high


def nearest_timestep(sigma: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """The training timestep whose log sigma is nearest: what ComfyUI's discrete models give the UNet."""
    return (sigma.to(log_sigmas.dtype).log().reshape(1, -1) - log_sigmas[:, None]).abs().argmin(dim=0).reshape(sigma.shape)


def sigma_at(t: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """The inverse of ``timestep``: sigma at a continuous timestep."""
    t = t.clamp(0, log_sigmas.shape[0] - 1)
    low = t.floor().long()
    high = (low + 1).clamp(max=log_sigmas.shape[0] - 1)
    w = t - low
    return ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()


def sigma_schedule(alphas_cumprod: torch.Tensor, scheduler: str, steps: int) -> torch.Tensor:
    """A schedule of ``steps`` sigmas and a final 0, as ComfyUI's schedulers of these names give it:
    "normal" (timesteps evenly spaced from the largest sigma's to the smallest's) or "karras" (rho 7)."""
    sigmas = training_sigmas(alphas_cumprod)
    log_sigmas = sigmas.log()
    lo, hi = float(sigmas[0]), float(sigmas[-1])
    if steps < 1:
        raise FineFaceError(f"a schedule needs at least one step, got {steps}")
    if scheduler == "normal":
        ts = torch.linspace(float(timestep(torch.tensor(hi), log_sigmas)), float(timestep(torch.tensor(lo), log_sigmas)), steps)
        out = sigma_at(ts, log_sigmas)
    elif scheduler == "karras":
        rho = 7.0
        ramp = torch.linspace(0, 1, steps)
        out = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    else:
        raise FineFaceError(f"unknown scheduler {scheduler!r}; the diffusers path knows 'normal' and 'karras' (or pass sigmas)")
    return torch.cat([out.to(torch.float32), torch.zeros(1)])


class DiffusersDenoiser:
    """``(x, sigma) -> denoised`` for a diffusers UNet with FineFace attached, with CFG over (cond, uncond)."""

    def __init__(self, unet, weights: FineFaceWeights, alphas_cumprod: torch.Tensor, prediction_type: str,
                 cond: torch.Tensor, uncond: torch.Tensor | None, aus: torch.Tensor, cfg: float = 7.5,
                 au_scale: float | None = None, added_cond: dict | None = None, uncond_added: dict | None = None):
        if prediction_type not in PREDICTIONS:
            raise FineFaceError(f"prediction type {prediction_type!r}: the exact edit works on 'epsilon' and 'v_prediction' models")
        if cfg != 1.0 and uncond is None:
            raise FineFaceError("CFG other than 1 needs the negative prompt's embedding (uncond)")
        self.unet, self.weights = unet, weights
        self.alphas_cumprod, self.prediction_type = alphas_cumprod, prediction_type
        self.log_sigmas = training_sigmas(alphas_cumprod).log()
        self.cond, self.uncond, self.cfg = cond, uncond, float(cfg)
        # SDXL's pooled text embedding and size ids (fineface_core.editing.prompt_conditioning); None for SD 1.x / 2.x
        self.added_cond, self.uncond_added = added_cond, uncond_added
        if cfg != 1.0 and (added_cond is None) != (uncond_added is None):
            raise FineFaceError("an SDXL denoiser needs the pooled embedding and size ids of both prompts (cond and uncond)")
        self.aus = torch.as_tensor(aus, dtype=torch.float32).reshape(-1, 12)
        self.au_scale = weights.lambda_au if au_scale is None else float(au_scale)

    @property
    def prediction(self) -> str:
        """ComfyUI's name of the parametrization, as the record keeps it."""
        return PREDICTIONS[self.prediction_type]

    def with_aus(self, aus: torch.Tensor) -> DiffusersDenoiser:
        return DiffusersDenoiser(self.unet, self.weights, self.alphas_cumprod, self.prediction_type, self.cond,
                                 self.uncond, aus, self.cfg, self.au_scale, self.added_cond, self.uncond_added)

    def _denoised(self, x, sigma, text, aus, added):
        b = x.shape[0]
        s = sigma.reshape(1, 1, 1, 1).to(x.dtype)
        x_in = x / (s ** 2 + 1).sqrt()
        t = nearest_timestep(sigma.reshape(1).float().cpu(), self.log_sigmas).to(x.device).expand(b)
        tokens = self.weights.encode(aus.expand(b, -1) if aus.shape[0] == 1 else aus)
        unet_dtype = self.unet.dtype
        extra = {} if added is None else {"added_cond_kwargs": {
            k: v.expand(b, *v.shape[1:]).to(x.device, unet_dtype) for k, v in added.items()}}
        out = self.unet(x_in.to(unet_dtype), t, text.expand(b, -1, -1).to(x.device, unet_dtype),
                        cross_attention_kwargs={"au_embedding": tokens.to(x.device, unet_dtype), "au_scale": self.au_scale},
                        **extra).sample
        out = out.to(x.dtype)
        if self.prediction_type == "epsilon":
            return x - out * s
        return x / (s ** 2 + 1) - out * s / (s ** 2 + 1).sqrt()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.aus.shape[0] not in (1, x.shape[0]):
            raise FineFaceError(f"{self.aus.shape[0]} AU vectors for {x.shape[0]} latents: give one, or one per latent")
        cond = self._denoised(x, sigma, self.cond, self.aus, self.added_cond)
        if self.cfg == 1.0:
            return cond
        uncond = self._denoised(x, sigma, self.uncond, torch.zeros_like(self.aus), self.uncond_added)
        return uncond + (cond - uncond) * self.cfg
