"""The 12 AUs read off the faces in a batch of photos: detect, align, estimate (the AU From Image node
and ``python -m workflows.run --aus-from``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .au_estimator import AUEstimator, estimate
from .aus import format_aus
from .conditioning import AUVectors
from .errors import FineFaceError
from .face_detect import (Face, NoFaceError, aligned_face, centre_crop, choose_face, find_faces, quad_mask, read_region,
                          to_rgb_uint8, whole_image_quad)

NO_FACE = ("error", "whole image")
LABEL_PRECISION = 1  # the estimator's error is tenths of an intensity step; the values keep every digit


@dataclass(frozen=True)
class PhotoReading:
    aus: AUVectors  # one vector per image
    crops: np.ndarray  # [N, 224, 224, 3] float32 0..1: what the estimator read
    masks: np.ndarray  # [N, H, W] float32: where in each image it read
    all_masks: np.ndarray  # [M, H, W]: every face found, image by image, left to right
    report: tuple[str, ...]  # one line per image: which face, where


def _name(i: int, n: int) -> str:
    return f"image {i + 1} of {n} (batch index {i})" if n > 1 else "the image"


def _no_face_error(missing: list[int], n: int) -> NoFaceError:
    if n == 1:
        where = "the image"
    else:
        numbers = ", ".join(str(i + 1) for i in missing)
        where = f"image{'s' if len(missing) > 1 else ''} {numbers} of {n} (batch index{'es' if len(missing) > 1 else ''} " \
                f"{', '.join(map(str, missing))})"
    return NoFaceError(
        f"no face found in {where}. The detector finds frontal, upright faces about 100 px or more across; use such a "
        "photo (crop it closer if the face is small), or set no_face to 'whole image' to read the image as it is.")


def read_expressions(images: np.ndarray, estimator: AUEstimator, choose: str = "largest", index: int = 0,
                     no_face: str = "error") -> PhotoReading:
    """``images`` [N, H, W, C] float in 0..1 (ComfyUI's IMAGE) -> one AU vector per image, from the face
    ``choose`` picks; with ``no_face="whole image"`` an image without a face is read whole."""
    if no_face not in NO_FACE:
        raise FineFaceError(f"no_face must be one of {', '.join(NO_FACE)}, not {no_face!r}")
    if images.ndim != 4 or images.shape[0] == 0:
        raise FineFaceError(f"expected a batch of images [N, H, W, C], got the shape {list(images.shape)}")
    n, h, w = images.shape[:3]
    rgbs = [to_rgb_uint8(images[i], _name(i, n)) for i in range(n)]
    found = [find_faces(rgb) for rgb in rgbs]
    missing = [i for i, faces in enumerate(found) if not faces]
    if missing and no_face == "error":
        raise _no_face_error(missing, n)
    crops, masks, all_masks, report = [], [], [], []
    for i, (rgb, faces) in enumerate(zip(rgbs, found)):
        if faces:
            face: Face = choose_face(faces, choose, index, (h, w), _name(i, n))
            quad = face.quad()
            k = next(k for k, f in enumerate(faces) if f is face)
            which = f"{len(faces)} faces, read face {k} ({choose}; 0 = leftmost)" if len(faces) > 1 else "one face"
            report.append(f"image {i + 1}: {which}, {face.describe()}")
            all_masks.extend(quad_mask(h, w, read_region(f.quad())) for f in faces)
        else:
            quad = whole_image_quad(h, w)
            report.append(f"image {i + 1}: no face found, read the whole image")
            all_masks.append(quad_mask(h, w, read_region(quad)))
        crops.append(centre_crop(aligned_face(rgb, quad)))
        masks.append(quad_mask(h, w, read_region(quad)))
    crops_f = np.stack(crops).astype(np.float32) / 255.0
    values = estimate(estimator, torch.from_numpy(crops_f))
    aus = AUVectors(values, labels=tuple(format_aus(v, LABEL_PRECISION) for v in values))
    return PhotoReading(aus=aus, crops=crops_f, masks=np.stack(masks), all_masks=np.stack(all_masks),
                        report=tuple(report))
