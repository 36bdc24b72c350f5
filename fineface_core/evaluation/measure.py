"""Measuring the generated images: AU intensities (LibreFace, the paper's estimator), CLIP-I against the
prompt's no-AU image, and optionally identity similarity with a face-recognition model the user supplies.

Faces are found and aligned as for AU From Image (:mod:`..faces.detect`: the largest face). An image without
a face found is recorded as such: with ``no_face="skip"`` it has no AU reading (the tables count it), with
``"whole image"`` its centre square is read as LibreFace would read an unaligned image.

The CLIP and identity models are transformers models from a local folder or a hub id, read from
safetensors only (``use_safetensors=True``): no pickle is ever unpickled.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..faces.libreface import AUEstimator, estimate
from ..errors import FineFaceError
from ..faces.detect import aligned_face, centre_crop, choose_face, find_faces, whole_image_quad
from ..faces.photo_aus import as_training_labels
from .folder import OutputFolder, read_json, write_json
from .base_model import looks_local
from .metrics import cosine_similarity
from .options import NO_FACE, SCALES  # noqa: F401 (the module's API)
from .protocol import Job

FOUND, WHOLE, NONE = "found", "whole image", "none"


@dataclass
class ImageModel:
    """A transformers image model and its preprocessor; features are its image embedding."""

    model: torch.nn.Module
    processor: object
    name: str

    @torch.inference_mode()
    def features(self, images: list[np.ndarray]) -> np.ndarray:
        device = next(self.model.parameters()).device
        inputs = self.processor(images=images, return_tensors="pt")
        pixels = inputs["pixel_values"].to(device, next(self.model.parameters()).dtype)
        if hasattr(self.model, "get_image_features"):
            out = self.model.get_image_features(pixel_values=pixels)
            out = getattr(out, "pooler_output", out)  # transformers 5 returns an output object
        else:
            out = self.model(pixel_values=pixels)
            pooled = getattr(out, "pooler_output", None)
            out = pooled if pooled is not None else out.last_hidden_state.mean(dim=1)
        return out.float().cpu().numpy().reshape(len(images), -1)


def load_image_model(name: str, device: str, what: str) -> ImageModel:
    from transformers import AutoImageProcessor, AutoModel

    if looks_local(name) and not os.path.isdir(name):
        raise FineFaceError(f"the {what} {name} is not a folder; give a transformers model folder (config.json, "
                            "model.safetensors, preprocessor_config.json) or a hub id")
    where = "folder" if os.path.isdir(name) else "hub id"
    try:
        model = AutoModel.from_pretrained(name, use_safetensors=True).eval().to(device)
        processor = AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError, KeyError, EnvironmentError) as e:
        first = str(e).strip().splitlines()[0][:240].rstrip(".") if str(e).strip() else type(e).__name__
        raise FineFaceError(
            f"cannot load the {what} {name!r} ({where}): {first}. Give a transformers model folder holding "
            "config.json, model.safetensors and preprocessor_config.json, or a hub id (only safetensors "
            "weights are read).") from None
    return ImageModel(model.requires_grad_(False), processor, name)


@dataclass
class Measurer:
    estimator: AUEstimator
    clip: ImageModel
    identity: ImageModel | None = None
    scale: str = "raw"
    no_face: str = "skip"

    def read_faces(self, rgbs: list[np.ndarray]) -> tuple[list[np.ndarray | None], list[str]]:
        """Per image: the aligned 224 px face crop LibreFace reads (None when skipped) and how it was found."""
        crops, status = [], []
        for rgb in rgbs:
            faces = find_faces(rgb)
            if faces:
                quad, how = choose_face(faces, "largest", 0, rgb.shape[:2]).quad(), FOUND
            elif self.no_face == "whole image":
                quad, how = whole_image_quad(*rgb.shape[:2]), WHOLE
            else:
                crops.append(None)
                status.append(NONE)
                continue
            crops.append(centre_crop(aligned_face(rgb, quad)))
            status.append(how)
        return crops, status

    def aus(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, 12))
        values = estimate(self.estimator, torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0))
        if self.scale == "training":
            values = as_training_labels(values)
        return values.numpy().astype(np.float64)


def _load_rgb(path: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise FineFaceError(f"cannot read the generated image {path} ({e}); delete it and run again to "
                            "make it anew") from None


@dataclass
class _Reference:
    measured: list | None
    clip: np.ndarray
    identity: np.ndarray | None


def _reference(folder: OutputFolder, label: str, ref: Job, measurer: Measurer) -> _Reference:
    """The no-AU image's reading (from its record) and its embeddings (recomputed: cheap, one per prompt)."""
    rgb = _load_rgb(folder.image(label, ref.name))
    record = read_json(folder.record(label, ref.name))
    identity = None
    if measurer.identity is not None:
        crops, _ = measurer.read_faces([rgb])
        identity = measurer.identity.features([crops[0]])[0] if crops[0] is not None else None
    return _Reference(record["measured"], measurer.clip.features([rgb])[0], identity)


def pending(folder: OutputFolder, label: str, jobs: list[Job]) -> list[Job]:
    return [j for j in jobs if not os.path.exists(folder.record(label, j.name))]


def _check_finite(batch, folder, label, crops, values, clip, identity, measurer: Measurer):
    """A NaN or infinite reading would reach the tables only as "n/a": stop instead, naming the model and the
    image, before this batch's records are written (those written before are kept)."""
    with_face = [j for j, c in zip(batch, crops) if c is not None]
    for what, name, array, jobs in (("AU estimator", measurer.estimator.path, values, with_face),
                                    ("CLIP model", measurer.clip.name, clip, batch),
                                    ("identity model", measurer.identity.name if measurer.identity else "", identity,
                                     with_face)):
        if array is None or not jobs:
            continue
        bad = [j for j, row in zip(jobs, np.asarray(array).reshape(len(jobs), -1)) if not np.isfinite(row).all()]
        if bad:
            raise FineFaceError(
                f"the {what} {name} gave NaN or infinite values for {folder.image(label, bad[0].name)}"
                f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}, so nothing was recorded for them: its "
                "weights are damaged or overflow. Give a sound model; the images made so far are kept in "
                f"{folder.root}.")


def measure(jobs: list[Job], references: dict[int, Job], folder: OutputFolder, label: str, measurer: Measurer,
            batch_size: int, on_record: Callable[[Job], None] = lambda job: None,
            cache: dict[int, _Reference] | None = None) -> int:
    """Measure ``jobs`` of one weights file in batches, writing the records not yet on disk (a batch is read
    whole: fineface_core.evaluation.processes); references must come first in ``jobs`` or already have their
    record. ``cache``: the references' embeddings, kept between calls. Returns how many records were written."""
    cache = {} if cache is None else cache
    written = 0
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        rgbs = [_load_rgb(folder.image(label, j.name)) for j in batch]
        crops, status = measurer.read_faces(rgbs)
        found = [c for c in crops if c is not None]
        values = measurer.aus(found)
        clip = measurer.clip.features(rgbs)
        identity = measurer.identity.features(found) if measurer.identity is not None and found else None
        _check_finite(batch, folder, label, crops, values, clip, identity, measurer)
        values = iter(values)
        identity = iter(identity) if identity is not None else None
        for k, job in enumerate(batch):
            measured = next(values).tolist() if crops[k] is not None else None
            face_features = next(identity) if identity is not None and crops[k] is not None else None
            if os.path.exists(folder.record(label, job.name)):
                continue
            record = {"job": job.name, "kind": job.kind, "prompt_index": job.prompt_index, "prompt": job.prompt,
                      "seed": job.seed, "asked": list(job.aus), "face": status[k], "measured": measured,
                      "clip_i": None, "identity": None}
            if job.kind != "reference":
                if job.prompt_index not in cache:
                    cache[job.prompt_index] = _reference(folder, label, references[job.prompt_index], measurer)
                ref = cache[job.prompt_index]
                record["clip_i"] = float(cosine_similarity(clip[k][None], ref.clip[None])[0])
                if face_features is not None and ref.identity is not None:
                    record["identity"] = float(cosine_similarity(face_features[None], ref.identity[None])[0])
            write_json(folder.record(label, job.name), record)
            written += 1
            on_record(job)
    return written
