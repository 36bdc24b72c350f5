"""The exact edit of a photo in one call on a FineFacePipeline (diffusers), without ComfyUI:

    from fineface_core.pipeline import FineFacePipeline
    from fineface_core.editing.pipeline_edit import edit_photo
    ff = FineFacePipeline.from_pretrained("stabilityai/stable-diffusion-2-1-base", "fineface_release/")
    result = edit_photo(ff, Image.open("photo.png"), source="AU6@2 + AU12@2", targets=["neutral", "AU12@4"])
    result.images[1].save("smile.png")

The photo is VAE-encoded, inverted once under the source AUs (fineface_core.editing.ddpm_inversion with the
diffusers denoiser of diffusers_edit: ComfyUI's sigmas and conventions, so the numbers are the nodes'), and
replayed once for the whole batch of targets. A target equal to the source gives the photo's latent back exactly
(the image: the photo's VAE round trip). ``relative=True`` adds each target to the source ("AU12@2" = two more).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..aus import parse_au_batch
from ..errors import FineFaceError
from .ddpm_inversion import invert, replay
from .diffusers_edit import DiffusersDenoiser, sigma_schedule
from .prompt_conditioning import encode_prompts
from .record import InversionRecord


@dataclass
class PhotoEdit:
    images: list  # one PIL image per target (or what ``output_type`` asks for)
    latents: torch.Tensor  # the edited latents in the model's space, [targets, 4, h, w]
    photo_latent: torch.Tensor  # the photo's latent in the model's space, [1, 4, h, w]
    record: InversionRecord  # the inversion: replay it again for more targets
    targets: torch.Tensor  # the AU vectors rendered, [targets, 12]


def _photo_latent(pipe, image) -> torch.Tensor:
    pixels = pipe.image_processor.preprocess(image).to(pipe.vae.device, pipe.vae.dtype)
    if pixels.shape[0] != 1:
        raise FineFaceError(f"edit_photo edits one photo at a time, got {pixels.shape[0]}; call it once per photo")
    if pixels.shape[-1] % 8 or pixels.shape[-2] % 8:
        raise FineFaceError(f"the photo is {pixels.shape[-1]}x{pixels.shape[-2]} px; give a size that is a multiple of 8")
    latent = pipe.vae.encode(pixels).latent_dist.mean  # the mean, not a sample: the same photo gives the same latent
    return latent.float() * pipe.vae.config.scaling_factor


def _targets(source: torch.Tensor, targets: Any, relative: bool) -> torch.Tensor:
    values = parse_au_batch(targets)
    return source + values if relative else values


@torch.no_grad()
def edit_photo(ff, image, source: Any, targets: Any, *, prompt: str = "", negative_prompt: str = "",
               num_inference_steps: int = 50, start_step: int = 15, guidance_scale: float = 7.5,
               scheduler: str = "normal", seed: int = 0, relative: bool = False, au_scale: float | None = None,
               output_type: str = "pil") -> PhotoEdit:
    """Edit ``image`` (a PIL image, an array or a [1, 3, H, W] tensor in 0..1) from the ``source`` AUs (what the
    photo shows: a spec, or AU From Image's reading) to each of ``targets`` (one spec or a list; "neutral" = zeros)."""
    pipe = ff.pipe
    prediction = pipe.scheduler.config.get("prediction_type", "epsilon")
    source_aus = parse_au_batch(source)
    if source_aus.shape[0] != 1:
        raise FineFaceError(f"give one source AU vector (what the photo shows), got {source_aus.shape[0]}")
    wanted = _targets(source_aus, targets, relative)
    device = pipe.unet.device
    x0 = _photo_latent(pipe, image).to(device)
    height, width = (n * pipe.vae_scale_factor for n in x0.shape[-2:])
    text = encode_prompts(pipe, prompt, negative_prompt, guidance_scale, height, width, device)
    alphas = pipe.scheduler.alphas_cumprod
    denoiser = DiffusersDenoiser(pipe.unet, ff.weights, alphas, prediction, text.cond, text.uncond, source_aus,
                                 guidance_scale, au_scale, text.added_cond, text.uncond_added)
    record = invert(denoiser, sigma_schedule(alphas, scheduler, num_inference_steps), x0, seed, start_step,
                    prediction=denoiser.prediction)
    latents = replay(denoiser.with_aus(wanted), record, batch=wanted.shape[0])
    decoded = pipe.vae.decode((latents / pipe.vae.config.scaling_factor).to(pipe.vae.dtype)).sample
    images = pipe.image_processor.postprocess(decoded, output_type=output_type, do_denormalize=[True] * decoded.shape[0])
    return PhotoEdit(images, latents, x0, record, wanted)
