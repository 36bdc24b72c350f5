"""ComfyUI glue for the exact edit: the inversion and the replay as k-diffusion style sampler functions
(``comfy.samplers.KSAMPLER``), so ComfyUI's own sampling code prepares the conditioning, CFG, patches,
noise mask and device, as it does for SamplerCustom.

Both run with zero noise: ComfyUI then hands the function the photo's latent in the model's space
(``noise * sigma + latent`` with noise 0 is the latent itself), and under a noise mask its inpainting
wrapper gives the model the photo outside the mask in both passes alike.
"""
from __future__ import annotations

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import torch

from fineface_core.editing.ddpm_inversion import invert, replay
from fineface_core.editing.memory import check_targets_fit
from fineface_core.editing.record import InversionMismatchError, InversionRecord
from fineface_core.errors import FineFaceError, ModelMismatchError
from fineface_core.families import family_for_context_dim

from .apply_adapter import model_sampling
from .comfy_model import model_family

INVERSION = "FINEFACE_INVERSION"  # fineface_core.editing.record.InversionRecord
SAME_PHOTO_RTOL = 1e-4  # a LATENT saved and loaded again is still the photo; another photo or added noise is not


def prediction_of(sampling) -> str:
    """What the model predicts ("EPS", "V_PREDICTION", ...), for models whose latents are x0 + sigma * noise:
    the inversion draws its noisy latents that way. Other noise scalings (flow models) are refused."""
    mro = type(sampling).__mro__
    owner = next((c for c in mro if "noise_scaling" in vars(c)), None)
    prediction = next((c.__name__ for c in mro if "calculate_denoised" in vars(c)), type(sampling).__name__)
    if owner is None or owner.__name__ != "EPS":
        raise ModelMismatchError(f"this model samples as {prediction}; the exact edit works on models whose noisy latents are "
                                 "x0 + sigma * noise (eps and v-prediction: SD 1.5, SD 2.x)")
    return prediction


def sampling_of(model):
    """The MODEL's model_sampling with its object patch (ModelSamplingDiscrete's v_prediction, ...) taken into account.
    The 2024 ModelPatcher has no get_model_object, and its model.model holds the patch only while that MODEL is loaded:
    read unloaded, a v-prediction patch would say eps, and an inversion would not fit its own regeneration."""
    patched = (getattr(model, "object_patches", None) or {}).get("model_sampling")
    return patched if patched is not None else model_sampling(model)


def model_facts(model) -> tuple[str, str]:
    """(family key, prediction) of a MODEL."""
    return model_family(model).key, prediction_of(sampling_of(model))


def schedule(model, scheduler: str, steps: int) -> torch.Tensor:
    """The scheduler's sigmas for this model, as BasicScheduler computes them (both ComfyUI generations)."""
    if scheduler not in comfy.samplers.KSampler.SCHEDULERS:
        raise FineFaceError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(comfy.samplers.KSampler.SCHEDULERS)}")
    if hasattr(comfy.samplers, "calculate_sigmas"):
        sigmas = comfy.samplers.calculate_sigmas(sampling_of(model), scheduler, steps)
    else:  # the 2024 tree
        sigmas = comfy.samplers.calculate_sigmas_scheduler(model.model, scheduler, steps)
    return sigmas.detach().to("cpu", torch.float32)


def _denoiser(model, extra_args):
    def denoise(x, sigma):
        return model(x, sigma * x.new_ones([x.shape[0]]), **extra_args)
    return denoise


def _progress(callback, sigmas):
    if callback is None:
        return None
    return lambda j, x, denoised: callback({"i": j, "x": x, "denoised": denoised, "sigma": sigmas[j], "sigma_hat": sigmas[j]})


def _inner_base_model(k_model):
    """The BaseModel under the sampler's model wrappers (KSamplerX0Inpaint -> CFG wrapper -> BaseModel)."""
    m = k_model
    for _ in range(5):
        if hasattr(m, "model_config") and hasattr(m, "model_sampling"):
            return m
        m = getattr(m, "inner_model", None)
        if m is None:
            break
    raise FineFaceError("the exact edit's sampler could not find the model under this ComfyUI's sampler wrappers; "
                        "use the Regenerate Exact Edit node instead of SamplerCustom")


def inversion_sampler(sigmas: torch.Tensor, start_step: int, seed: int, family: str, prediction: str, sink: dict):
    """A SAMPLER that records the inversion of the latent it is given (noise 0) into ``sink["record"]``."""

    def sample_inversion(model, x, given_sigmas, extra_args=None, callback=None, disable=None, **_):
        extra_args = extra_args or {}
        sink["record"] = invert(_denoiser(model, extra_args), sigmas, x, seed, start_step, family=family,
                                prediction=prediction, mask=extra_args.get("denoise_mask"),
                                callback=_progress(callback, given_sigmas))
        return x

    return comfy.samplers.KSAMPLER(sample_inversion)


def replay_sampler(record: InversionRecord):
    """A SAMPLER for SamplerCustom / SamplerCustomAdvanced that regenerates from ``record``."""

    def sample_replay(model, x, sigmas, extra_args=None, callback=None, disable=None, **_):
        extra_args = extra_args or {}
        base = _inner_base_model(model)
        family = family_for_context_dim(base.model_config.unet_config.get("context_dim"), "the regeneration's MODEL")
        record.check_model(family.key, prediction_of(base.model_sampling))
        record.check_sigmas(sigmas)
        n = record.check_latent(x)
        check_memory(base, record, n, x.device, "Exact Edit Sampler")
        rec = record.to(x.device)
        check_same_photo(rec, x)
        mask = extra_args.get("denoise_mask")
        rec.check_mask(mask)
        return replay(_denoiser(model, extra_args), rec, n, mask, _progress(callback, sigmas))

    return comfy.samplers.KSAMPLER(sample_replay)


def check_memory(base_model, record: InversionRecord, targets: int, device, who: str):
    """Refuse more targets than the device's free memory holds (say how many fit), before the model runs."""
    device = torch.device(device)
    c, h, w = record.latent_shape
    required = getattr(base_model, "memory_required", None)
    one_call = int(required([2, c, h, w])) if required is not None else 0  # cond + uncond of one target
    check_targets_fit(record, targets, comfy.model_management.get_free_memory(device), device, who,
                      fixed_bytes=one_call, record_moves=record.device != device)


def check_same_photo(record: InversionRecord, x: torch.Tensor):
    """The sampler's starting latent must be the inverted photo: fresh noise on it would be a different edit."""
    x0 = record.x0 if record.batch == x.shape[0] else record.x0.expand_as(x)
    diff = float((x - x0).abs().max())
    scale = float(x0.abs().max())
    if diff > SAME_PHOTO_RTOL * max(scale, 1e-6):
        raise InversionMismatchError(
            f"the latent given to the regeneration is not the photo that was inverted (it differs by up to {diff:.3g}, "
            f"the photo's values reach {scale:.3g}). Give it the photo's LATENT that the inversion had (one copy per "
            "target), with add_noise off in SamplerCustom (Disable Noise in SamplerCustomAdvanced): the recorded noise "
            "takes the place of fresh noise."
        )


def preview_callback(model, steps: int):
    import latent_preview

    return latent_preview.prepare_callback(model, steps)


def run_inversion(model, positive, negative, latent: dict, cfg: float, steps: int, scheduler: str, start_step: int, seed: int) -> InversionRecord:
    family, prediction = model_facts(model)
    sigmas = schedule(model, scheduler, steps)
    if not 0 <= start_step < sigmas.shape[0] - 1:
        raise FineFaceError(f"the start step must be 0..{sigmas.shape[0] - 2} for {sigmas.shape[0] - 1} steps, got {start_step}")
    samples = latent["samples"]
    sink: dict = {}
    comfy.sample.sample_custom(model, torch.zeros_like(samples, device="cpu"), cfg,
                               inversion_sampler(sigmas, start_step, seed, family, prediction, sink),
                               sigmas[start_step:], positive, negative, samples, noise_mask=latent.get("noise_mask"),
                               callback=preview_callback(model, steps - start_step), disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    return sink["record"]


def run_replay(model, positive, negative, record: InversionRecord, cfg: float, latent: dict) -> torch.Tensor:
    """The regenerated LATENT samples. Where the replay gives back the photo's latent bit for bit (the same AUs;
    outside a noise mask) the output is the given latent bit for bit: the model's latent scaling in and out is
    not an exact round trip, so the change is added to the given latent instead."""
    record.check_model(*model_facts(model))
    samples = latent["samples"]
    n = record.check_latent(samples)
    check_memory(model.model, record, n, model.load_device, "Regenerate Exact Edit")
    sigmas = record.replay_sigmas
    out = comfy.sample.sample_custom(model, torch.zeros_like(samples, device="cpu"), cfg, replay_sampler(record), sigmas,
                                     positive, negative, samples, noise_mask=latent.get("noise_mask"),
                                     callback=preview_callback(model, sigmas.shape[0] - 1), disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=record.seed)
    unchanged = model.model.process_latent_out(record.x0.to(torch.float32)).to(out.device)
    return samples.to(out.device, out.dtype) + (out - unchanged)
