"""Masks of detected faces, for regional expressions (Apply FineFace Adapter's ``mask``).

A face's mask is the detector's face box (brows to chin, cheek to cheek), grown about its centre so that
the whole face the AUs move lies inside, and optionally feathered. In the UNet the mask is averaged onto
each layer's token grid (8x coarser at 512 px and down to 64x), so a mask a little larger than the face
keeps the deepest layers' cells that straddle its edge acting. (Not the aligned square AU From Image reads:
that takes in hair and neck, about twice the face's width.)
"""
from __future__ import annotations

import numpy as np

from ..errors import FineFaceError
from .detect import CHOICES, NoFaceError, check_pixels, choose_face, find_faces, image_name, no_face_hint, quad_mask

NO_FACE = ("error", "empty mask")
SMALL_SIGMA = 8.0  # px: wider feathers are blurred at a smaller scale


def box_quad(box, grow: float) -> np.ndarray:
    """The face box (x, y, w, h) grown by ``grow`` of its size about its centre, as a quad (corners TL, BL, BR, TR)."""
    x, y, w, h = box
    quad = np.array([[x, y], [x, y + h], [x + w, y + h], [x + w, y]], dtype=np.float64)
    centre = quad.mean(0)
    return centre + (quad - centre) * (1.0 + grow)


def feathered(mask: np.ndarray, feather: float) -> np.ndarray:
    """A soft edge ``feather`` px wide (a Gaussian blur of that sigma); the face's centre stays 1."""
    if feather <= 0:
        return mask
    import cv2

    h, w = mask.shape
    # A blur costs about 8 sigma taps per pixel and pass (59 s at 200 px on a 4096 px image): a wide one runs on
    # the mask shrunk until it is SMALL_SIGMA px, and is enlarged back. Smooth at that scale, it loses nothing.
    shrink = max(1.0, feather / SMALL_SIGMA)
    size = (max(1, round(w / shrink)), max(1, round(h / shrink)))
    small = cv2.resize(mask, size, interpolation=cv2.INTER_AREA) if shrink > 1 else mask
    soft = cv2.GaussianBlur(small, (0, 0), sigmaX=feather * size[0] / w, sigmaY=feather * size[1] / h,
                            borderType=cv2.BORDER_REFLECT)  # about the image's edge, at any scale
    if shrink > 1:
        soft = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)
    # A blur wider than about a sixth of the face lowers its centre too (to 0.46 at 64 px on a 130 px face), and
    # the mask would silently weaken the whole expression: scaled back, the centre gets all of it.
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return soft
    centre = float(soft[int(round(ys.mean())), int(round(xs.mean()))])
    return np.clip(soft / centre, 0.0, 1.0) if centre > 0 else soft


def face_masks(images: np.ndarray, choose: str = "by index", index: int = 0, grow: float = 0.3,
               feather: float = 0.0, no_face: str = "error") -> tuple[np.ndarray, tuple[str, ...]]:
    """``images`` [N, H, W, C] in 0..1 -> (one mask per image [N, H, W] float32 for the face ``choose`` picks,
    counted left to right for "by index"; a report line per image)."""
    if choose not in CHOICES:
        raise FineFaceError(f"unknown face choice {choose!r}; one of: {', '.join(CHOICES)}")
    if no_face not in NO_FACE:
        raise FineFaceError(f"no_face must be one of {', '.join(NO_FACE)}, not {no_face!r}")
    for label, value, low, high in (("grow", grow, -0.5, 3.0), ("feather", feather, 0.0, 256.0)):
        if not (np.isfinite(value) and low <= value <= high):
            raise FineFaceError(f"{label} {value}: give a number from {low:g} to {high:g}")
    if images.ndim != 4 or images.shape[0] == 0:
        raise FineFaceError(f"expected a batch of images [N, H, W, C], got the shape {list(images.shape)}")
    n, h, w = images.shape[:3]
    masks, report = [], []
    for i in range(n):
        check_pixels(images[i], image_name(i, n))
        faces = find_faces(images[i])
        absent = not faces or (choose == "by index" and index >= len(faces))
        if absent and no_face == "empty mask":
            masks.append(np.zeros((h, w), np.float32))
            found = f"{len(faces)} face{'s' if len(faces) != 1 else ''}" if faces else "no face"
            report.append(f"image {i + 1}: {found} found, no face {index}: empty mask (the adapter does nothing there)"
                          if faces else f"image {i + 1}: no face found, empty mask (the adapter does nothing there)")
            continue
        if not faces:
            raise NoFaceError(f"no face found in {image_name(i, n)}. {no_face_hint(h, w)}; or set no_face to "
                              "'empty mask' to go on without this face.")
        if absent:  # faces, but not as many as the index asks for
            raise FineFaceError(f"face index {index} asked for, but {image_name(i, n)} has {len(faces)} face"
                                f"{'s' if len(faces) != 1 else ''} (0 = leftmost, up to {len(faces) - 1}); choose "
                                "another index, or set no_face to 'empty mask' to go on without this face.")
        face = choose_face(faces, choose, index, (h, w), image_name(i, n))
        k = next(k for k, f in enumerate(faces) if f is face)
        masks.append(feathered(quad_mask(h, w, box_quad(face.box, grow)), feather))
        report.append(f"image {i + 1}: {len(faces)} face{'s' if len(faces) != 1 else ''}, masked face {k} "
                      f"(0 = leftmost), {face.describe()}")
    return np.stack(masks).astype(np.float32), tuple(report)


__all__ = ["NO_FACE", "NoFaceError", "box_quad", "face_masks", "feathered"]
