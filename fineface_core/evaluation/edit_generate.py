"""Making the edit protocol's images on diffusers: per photo, cut the face's square (Face Crop's geometry),
read its source AUs (LibreFace), encode it, invert it once under the source AUs (fineface_core.editing) and
replay the inversion under every target; decode and save. Files already on disk are kept.

Per photo, under ``images/<weights>/<photo>/``: ``photo.png`` (the square that is edited), ``roundtrip.png``
(its VAE round trip: what an exact replay gives back), ``face_mask.png`` (the face in the square), one PNG per
target; under ``records/<weights>/<photo>/``: ``source.json`` (the source reading, seed, the replay's latent
error), written last, when the photo's inversion and replay are done; or ``{"skipped": why}``.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from ..editing.ddpm_inversion import invert, replay
from ..editing.diffusers_edit import DiffusersDenoiser, sigma_schedule
from ..editing.prompt_conditioning import encode_prompts
from ..errors import FineFaceError
from ..faces.crop import face_crops
from ..faces.detect import NoFaceError
from ..faces.libreface import estimate
from ..faces.photo_aus import as_training_labels
from ..reference import attach_fineface
from .edit_jobs import Photo, Target
from .folder import OutputFolder, read_json, save_png, write_json

REGIONS = ("whole", "face")  # where the edit may act: the whole square, or only the face's latent cells
SCHEDULERS = ("normal", "karras")


@dataclass(frozen=True)
class EditSettings:
    prompt: str
    negative_prompt: str = ""
    steps: int = 50
    start_step: int = 15  # the paper's T_skip
    guidance: float = 7.5
    scheduler: str = "normal"
    size: int | None = None  # None: the base model's own (edit_run.for_family)
    grow: float = 1.0  # Face Crop's: the face box grown by this fraction of its size
    region: str = "whole"
    au_scale: float | None = None
    lora_strength: float = 1.0


def photo_file(folder: OutputFolder, label: str, photo: Photo, what: str) -> str:
    return folder.image(label, f"{photo.name}/{what}")


def source_record(folder: OutputFolder, label: str, photo: Photo) -> str:
    return folder.record(label, f"{photo.name}/source")


def pending_targets(folder: OutputFolder, label: str, photo: Photo, targets: list[Target]) -> list[Target]:
    """The targets to render; every one while the photo's source record is missing (the photo not begun)."""
    if not os.path.exists(source_record(folder, label, photo)):
        return list(targets)
    if read_json(source_record(folder, label, photo)).get("skipped"):
        return []
    return [t for t in targets if not os.path.exists(photo_file(folder, label, photo, t.name))]


def load_photo(path: str) -> np.ndarray:
    """RGB uint8, turned upright as its EXIF says."""
    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise FineFaceError(f"cannot read the photo {path} ({e})") from None


def face_square(path: str, size: int, grow: float) -> tuple[np.ndarray, np.ndarray]:
    """(the largest face's square of the photo at ``size`` px, uint8 [size, size, 3]; its face mask, bool)."""
    rgb = load_photo(path)
    crops, _, masks, _ = face_crops(rgb[None].astype(np.float32) / 255.0, "largest", 0, grow, size)
    return np.round(crops[0] * 255.0).astype(np.uint8), masks[0] > 0.5


def read_source(measurer, square: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The square's 12 AUs on FineFace's training-label scale (what AU From Image gives, what the model is
    conditioned on), and how the face was found; None when it is not read (``--no-face skip``)."""
    crops, status = measurer.read_faces([square])
    if crops[0] is None:
        return None, status[0]
    raw = estimate(measurer.estimator, torch.from_numpy(crops[0][None].astype(np.float32) / 255.0))
    return as_training_labels(raw)[0].double().numpy(), status[0]


class Editor:
    """One base model with one weights file attached: encode, invert, replay, decode."""

    def __init__(self, base, weights, settings: EditSettings):
        self.base, self.weights, self.settings = base, weights, settings
        self.unet = copy.deepcopy(base.unet)  # the base stays clean for the next weights file
        attach_fineface(self.unet, weights, lora_strength=settings.lora_strength)
        self.device = self.unet.device
        self.text = encode_prompts(base, settings.prompt, settings.negative_prompt or None, settings.guidance,
                                   settings.size, settings.size, self.device)
        self.alphas = base.scheduler.alphas_cumprod
        self.sigmas = sigma_schedule(self.alphas, settings.scheduler, settings.steps)
        self.vae = base.vae
        self.scale = base.vae.config.scaling_factor

    @torch.no_grad()
    def encode(self, square: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(square).permute(2, 0, 1)[None].to(self.device, self.vae.dtype) / 127.5 - 1.0
        return self.vae.encode(x).latent_dist.mean.float() * self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> list[np.ndarray]:
        out = []
        for latent in latents:  # one at a time: a latent decodes to the same pixels whatever batch it came in
            image = self.vae.decode((latent[None] / self.scale).to(self.vae.dtype)).sample.float()
            image = (image / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
            out.append(np.round(image * 255.0).astype(np.uint8))
        return out

    def denoiser(self, aus) -> DiffusersDenoiser:
        s = self.settings
        return DiffusersDenoiser(self.unet, self.weights, self.alphas, self.base.scheduler.config.prediction_type,
                                 self.text.cond, self.text.uncond, torch.as_tensor(np.asarray(aus), dtype=torch.float32),
                                 s.guidance, s.au_scale, self.text.added_cond, self.text.uncond_added)

    def latent_mask(self, face: np.ndarray, latent: torch.Tensor) -> torch.Tensor | None:
        """With region "face": 1 on the latent cells that hold any face pixel, else None (the whole square)."""
        if self.settings.region == "whole":
            return None
        cells = torch.from_numpy(face.astype(np.float32))[None, None]
        cells = torch.nn.functional.adaptive_max_pool2d(cells, latent.shape[-2:])
        return cells.to(latent.device, latent.dtype)


def _save_new(image: np.ndarray, path: str):
    if not os.path.exists(path):
        save_png(Image.fromarray(image), path)


def _begin(editor: Editor, measurer, folder, label, photo: Photo):
    """The photo's square, face mask, source reading and latent: from the source record when the photo was
    begun, else made (and the square, mask and round trip saved). None (and a skip record) when it cannot be edited."""
    s = editor.settings
    try:
        square, face = face_square(photo.path, s.size, s.grow)
    except NoFaceError as e:
        return _skip(folder, label, photo, f"no face found ({str(e).split('.')[0]})")
    except FineFaceError as e:
        return _skip(folder, label, photo, str(e))
    record_path = source_record(folder, label, photo)
    if os.path.exists(record_path):
        source, how = np.asarray(read_json(record_path)["source"]), read_json(record_path)["face"]
    else:
        source, how = read_source(measurer, square)
        if source is None:
            return _skip(folder, label, photo, "no face found in the square for LibreFace (--no-face skip)")
    x0 = editor.encode(square)
    _save_new(square, photo_file(folder, label, photo, "photo"))
    _save_new((face * 255).astype(np.uint8), photo_file(folder, label, photo, "face_mask"))
    _save_new(editor.decode(x0)[0], photo_file(folder, label, photo, "roundtrip"))
    return square, face, source, how, x0


def _skip(folder, label, photo: Photo, why: str):
    write_json(source_record(folder, label, photo), {"photo": photo.path, "skipped": why})
    return None


def edit_photo(editor: Editor, measurer, folder: OutputFolder, label: str, photo: Photo, targets: list[Target],
               todo: list[Target], batch_size: int, on_image: Callable[[Target], None] = lambda t: None) -> int:
    """Render the photo's pending targets (``todo``, of the protocol's ``targets``) from one inversion; returns
    how many images were made."""
    begun = _begin(editor, measurer, folder, label, photo)
    if begun is None:
        return 0
    _, face, source, how, x0 = begun
    s = editor.settings
    mask = editor.latent_mask(face, x0)
    source_model = editor.denoiser(source[None])
    record = invert(source_model, editor.sigmas, x0, photo.seed, s.start_step)
    made = 0
    record_path = source_record(folder, label, photo)
    replays = [t for t in todo if t.kind == "replay"]
    if replays or not os.path.exists(record_path):  # alone (a batch of one, as inverted): x0 bit for bit
        replayed = replay(source_model, record, mask=mask)
        error = float((replayed - x0).abs().max())
        path = photo_file(folder, label, photo, "replay")
        made += not os.path.exists(path)
        _save_new(editor.decode(replayed)[0], path)
        if not os.path.exists(record_path):
            write_json(record_path, {"photo": photo.path, "seed": photo.seed, "face": how, "source": source.tolist(),
                                     "replay_latent_max_error": error, "skipped": None})
        for target in replays:
            on_image(target)
    wanted = {t.name for t in todo}
    for batch in chunks([t for t in targets if t.kind != "replay"], batch_size):
        if not wanted & {t.name for t in batch}:
            continue
        vectors = np.stack([t.vector(source) for t in batch])
        edited = replay(editor.denoiser(vectors), record, batch=len(batch), mask=mask)
        for target, image in zip(batch, editor.decode(edited)):
            path = photo_file(folder, label, photo, target.name)
            if target.name in wanted and not os.path.exists(path):
                save_png(Image.fromarray(image), path)
                made += 1
                on_image(target)
    return made


def chunks(targets: list[Target], batch_size: int) -> list[list[Target]]:
    """The protocol's targets in fixed batches. A batch is always rendered (and read) whole, even when only
    some of its images are missing: the model's rounding depends on the batch an image is in (and a random test
    UNet amplifies it, NOTES section 8), so an image is the same whatever was done before and wherever it is made."""
    return [targets[i:i + batch_size] for i in range(0, len(targets), batch_size)]
