"""The 12 AUs read off the faces in a batch of photos: detect, align, estimate (the AU From Image node
and ``python -m workflows.run --aus-from``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .libreface import MAX_INTENSITY, AUEstimator, estimate
from ..aus import AU_ORDER, format_aus
from ..conditioning import AUVectors
from ..errors import FineFaceError
from .detect import (Face, NoFaceError, aligned_face, centre_crop, choose_face, find_faces, image_name, no_face_hint,
                     quad_mask, read_region, to_rgb_uint8, whole_image_quad)

NO_FACE = ("error", "whole image")
SCALES = ("FineFace training labels", "LibreFace raw")
LABEL_PRECISION = 1  # the estimator's error is tenths of an intensity step; the values keep every digit

# FineFace learned AffectNet's AUs from LibreFace's readings corrected (paper, supplementary, "dataset
# processing"): AU1 and AU4 (read too high) x ** 1.8, AU15, AU17 and AU20 (too low) x ** 0.8 on the 0..1
# scale, each min-max rescaled over the dataset, then x 5 and every intensity under 1 set to 0 (LibreFace
# is unreliable there). For one photo the dataset's range is LibreFace's full 0..1.
LOWERED, LOWER_GAMMA = ("AU1", "AU4"), 1.8
RAISED, RAISE_GAMMA = ("AU15", "AU17", "AU20"), 0.8
ZERO_BELOW = 1.0


def as_training_labels(values: torch.Tensor) -> torch.Tensor:
    """LibreFace intensities [N, 12] (0..5) -> the scale of FineFace's AffectNet training labels."""
    x = values / MAX_INTENSITY
    out = x.clone()
    for codes, gamma in ((LOWERED, LOWER_GAMMA), (RAISED, RAISE_GAMMA)):
        for code in codes:
            i = AU_ORDER.index(code)
            out[:, i] = x[:, i] ** gamma
    out = out * MAX_INTENSITY
    out[out < ZERO_BELOW] = 0.0
    return out


@dataclass(frozen=True)
class PhotoReading:
    aus: AUVectors  # one vector per image
    crops: np.ndarray  # [N, 224, 224, 3] float32 0..1: what the estimator read
    masks: np.ndarray  # [N, H, W] float32: where in each image it read
    all_masks: np.ndarray  # [M, H, W]: every face found, image by image, left to right
    report: tuple[str, ...]  # one line per image: which face, where


def _no_face_error(missing: list[int], n: int, height: int, width: int) -> NoFaceError:
    if n == 1:
        where = "the image"
    else:
        numbers = ", ".join(str(i + 1) for i in missing)
        where = f"image{'s' if len(missing) > 1 else ''} {numbers} of {n} (batch index{'es' if len(missing) > 1 else ''} " \
                f"{', '.join(map(str, missing))})"
    return NoFaceError(
        f"no face found in {where}. {no_face_hint(height, width)}; use such a photo (crop it closer if the face is "
        "smaller), or set no_face to 'whole image' to read the image as it is.")


def read_expressions(images: np.ndarray, estimator: AUEstimator, choose: str = "largest", index: int = 0,
                     no_face: str = "error", scale: str = SCALES[0]) -> PhotoReading:
    """``images`` [N, H, W, C] float in 0..1 (ComfyUI's IMAGE) -> one AU vector per image, from the face
    ``choose`` picks; with ``no_face="whole image"`` an image without a face is read whole. ``scale``: the
    readings as FineFace's training labels were made from them, or as LibreFace gives them."""
    if no_face not in NO_FACE:
        raise FineFaceError(f"no_face must be one of {', '.join(NO_FACE)}, not {no_face!r}")
    if scale not in SCALES:
        raise FineFaceError(f"intensities must be one of {', '.join(SCALES)}, not {scale!r}")
    if images.ndim != 4 or images.shape[0] == 0:
        raise FineFaceError(f"expected a batch of images [N, H, W, C], got the shape {list(images.shape)}")
    n, h, w = images.shape[:3]
    rgbs = [to_rgb_uint8(images[i], image_name(i, n)) for i in range(n)]
    found = [find_faces(rgb) for rgb in rgbs]
    missing = [i for i, faces in enumerate(found) if not faces]
    if missing and no_face == "error":
        raise _no_face_error(missing, n, h, w)
    crops, masks, all_masks, report = [], [], [], []
    for i, (rgb, faces) in enumerate(zip(rgbs, found)):
        if faces:
            face: Face = choose_face(faces, choose, index, (h, w), image_name(i, n))
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
    if scale == SCALES[0]:
        values = as_training_labels(values)
    aus = AUVectors(values, labels=tuple(format_aus(v, LABEL_PRECISION) for v in values))
    return PhotoReading(aus=aus, crops=crops_f, masks=np.stack(masks), all_masks=np.stack(all_masks),
                        report=tuple(report))
