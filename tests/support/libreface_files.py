"""LibreFace AU model files and real photographs for the tests, made and read offline.

LibreFace's checkpoints cannot be downloaded here. These files have its exact layout: the
state dict of its ResNet-18 AU model (``encoder.*``, ``classifier.*``, for combined_resnet.pt
also ``classifier_2.*``) saved as ``{"model": state_dict}``, with random weights and batch-norm
statistics, so the loading and estimating code under test is the real one.

The photographs are scikit-image's, read straight from its package folder (never fetched).
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch
from PIL import Image

from fineface_core.faces.libreface import LibreFaceAUModel

# astronaut.png (Eileen Collins, 512 x 512): pupils and mouth centre, read off the image by eye.
ASTRONAUT_EYES = ((203, 101), (246, 103))
ASTRONAUT_MOUTH = (231, 143)


def random_state_dict(detection_head: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A fresh copy (the tests change it) of the random model made once per (head, seed)."""
    return {k: v.clone() for k, v in _random_state_dict(detection_head, seed).items()}


@functools.lru_cache(maxsize=None)
def _random_state_dict(detection_head: bool, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = LibreFaceAUModel(detection_head)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # batch-norm statistics as a trained model has them, not 0 / 1
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.copy_(0.1 * torch.randn(module.num_features, generator=g))
                module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=g))
                module.num_batches_tracked.fill_(1000)
    return model.state_dict()


def write_libreface_checkpoint(path: str, detection_head: bool = False, seed: int = 0, wrap: str | None = "model",
                               prefix: str = "") -> str:
    """A LibreFace-layout checkpoint at ``path``: ``{wrap: state_dict}`` (LibreFace's own is "model") or a plain
    state dict (``wrap=None``); ``prefix="module."`` as DataParallel saves it."""
    sd = {prefix + k: v for k, v in random_state_dict(detection_head, seed).items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({wrap: sd} if wrap else sd, path)
    return path


def skimage_photo(name: str) -> np.ndarray:
    """A photo shipped inside scikit-image's wheel (skimage/data/<name>) as uint8, never downloaded."""
    import skimage.data

    path = os.path.join(os.path.dirname(skimage.data.__file__), name)
    if not os.path.isfile(path):
        raise RuntimeError(f"{path} is missing: install scikit-image from the package registry (requirements-dev.txt)")
    with Image.open(path) as im:
        return np.asarray(im)


def as_image_batch(*photos: np.ndarray) -> torch.Tensor:
    """uint8 photos of one size -> ComfyUI's IMAGE [N, H, W, C] float in 0..1."""
    return torch.from_numpy(np.stack(photos).astype(np.float32) / 255.0)
