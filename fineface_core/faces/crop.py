"""Face Crop and Face Paste: re-render one face of a large photo at the size the model works at.

SD 2.1 base and FineFace were trained at 512 px. A face 300 px across in a 3000 px photo is redrawn well only
when it fills the frame the UNet sees, so the face's square is cut out in the photo's own pixels, resized to
``size`` (a multiple of 64, which VAE Encode and Decode keep), edited, resized back and blended in with a soft
edge: pixels outside the square are never touched, and inside the feather the edit fades into the original.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FineFaceError
from .detect import RANGE_SLACK, CHOICES, NoFaceError, check_pixels, choose_face, find_faces, image_name, no_face_hint, quad_mask
from .masks import box_quad

SIZES = (64, 2048)  # crop side limits; a multiple of 64
MASK_GROW = 0.3  # the face mask in the crop: Face Mask's default box
EVERY_FACE = "every face"  # one crop per face, left to right: with one AU vector per line, each its own expression
CROP_CHOICES = (*CHOICES, EVERY_FACE)


@dataclass(frozen=True)
class FaceSquare:
    """Where one crop came from: the square (x, y, side) in image ``image`` of the batch, ``height`` x ``width``."""
    x: int
    y: int
    side: int
    height: int
    width: int
    image: int = 0
    batch: int = 0  # images in the batch Face Crop was given (0: not known, a square made by hand)

    def describe(self) -> str:
        return f"square x={self.x} y={self.y} side={self.side} of a {self.width}x{self.height} image"


def face_square(box, grow: float, height: int, width: int, image: int = 0, batch: int = 0) -> FaceSquare:
    """The square around a face box (x, y, w, h), its side the box's larger side grown by ``grow``, moved inside
    the image where it would cross an edge (and no larger than the image's shorter side)."""
    x, y, w, h = box
    side = int(min(round(max(w, h) * (1.0 + grow)), height, width))
    left = int(np.clip(round(x + w / 2 - side / 2), 0, width - side))
    top = int(np.clip(round(y + h / 2 - side / 2), 0, height - side))
    return FaceSquare(left, top, side, height, width, image, batch)


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    """A square float image to ``side`` x ``side``: area averaging when shrinking, bicubic when enlarging."""
    import cv2

    if image.shape[0] == side:
        return image.copy()
    how = cv2.INTER_AREA if image.shape[0] > side else cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (side, side), interpolation=how)
    return np.clip(out.reshape(side, side, -1), 0.0, 1.0)  # cv2 drops a single channel's axis; bicubic overshoots


def cut_square(image: np.ndarray, square: FaceSquare, size: int) -> np.ndarray:
    """The pixels of ``square`` in a float image [H, W, C] in 0..1, resized to ``size`` x ``size`` as Face Crop
    cuts them (training/data/annotate cuts its training crops with it)."""
    region = image[square.y:square.y + square.side, square.x:square.x + square.side].astype(np.float32)
    return _resize(region, size)


def check_settings(grow: float, size: int, choose: str):
    if choose not in CROP_CHOICES:
        raise FineFaceError(f"unknown face choice {choose!r}; one of: {', '.join(CROP_CHOICES)}")
    if not (np.isfinite(grow) and 0.0 <= grow <= 3.0):
        raise FineFaceError(f"grow {grow}: give a number from 0 to 3 (the face box grown by that fraction of its size)")
    if not (SIZES[0] <= size <= SIZES[1] and size % 64 == 0):
        raise FineFaceError(f"size {size}: give a multiple of 64 from {SIZES[0]} to {SIZES[1]} (512 for SD 1.5 / 2.1 base)")


def face_crops(images: np.ndarray, choose: str = "largest", index: int = 0, grow: float = 1.0, size: int = 512):
    """``images`` [N, H, W, C] in 0..1 -> (crops [F, size, size, C], where each came from, the face's mask in each
    crop [F, size, size], a report line per image): one crop per image, or with "every face" one per face, image
    by image and left to right. Every image must show the face asked for."""
    check_settings(grow, size, choose)
    if images.ndim != 4 or images.shape[0] == 0:
        raise FineFaceError(f"expected a batch of images [N, H, W, C], got the shape {list(images.shape)}")
    n, h, w = images.shape[:3]
    crops, squares, masks, report = [], [], [], []
    for i in range(n):
        check_pixels(images[i], image_name(i, n))
        faces = find_faces(images[i])
        if not faces:
            raise NoFaceError(f"no face found in {image_name(i, n)}. {no_face_hint(h, w)}; crop by hand (core Image "
                              "Crop) for other faces.")
        chosen = faces if choose == EVERY_FACE else [choose_face(faces, choose, index, (h, w), image_name(i, n))]
        for face in chosen:
            square = face_square(face.box, grow, h, w, i, n)
            crops.append(cut_square(images[i], square, size))
            squares.append(square)
            quad = (box_quad(face.box, MASK_GROW) - [square.x, square.y]) * (size / square.side)
            masks.append(quad_mask(size, size, quad))
            k = next(k for k, f in enumerate(faces) if f is face)
            report.append(f"image {i + 1}: {len(faces)} face{'s' if len(faces) != 1 else ''}, cropped face {k} "
                          f"(0 = leftmost) as crop {len(crops)}, {square.describe()} -> {size}x{size}")
    return np.stack(crops), tuple(squares), np.stack(masks).astype(np.float32), tuple(report)


def edge_weights(side: int, feather: float) -> np.ndarray:
    """[side, side] blend weights: 1 inside, rising smoothly from 0 at the square's edge over ``feather`` of its side."""
    if feather <= 0:
        return np.ones((side, side), np.float32)
    ramp = (np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5) / (feather * side)
    ramp = np.clip(ramp, 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible crease where the fade ends
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


def _colours(channels: int) -> str:
    return "gray" if channels in (1, 2) else "RGB" if channels in (3, 4) else f"{channels} channels"


def _check_squares(squares, n: int):
    """A FACE_CROP is Face Crop's tuple of FaceSquare; one made or changed by hand must still lie in the image."""
    if not isinstance(squares, (tuple, list)) or not all(isinstance(q, FaceSquare) for q in squares):
        raise FineFaceError("face_crop is not Face Crop's output (a list of squares where each crop came from): "
                            "wire Face Crop's face_crop output to Face Paste")
    for k, q in enumerate(squares):
        fields = (q.x, q.y, q.side, q.height, q.width, q.image, q.batch)
        whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in fields)
        if not whole or not (q.side >= 1 and 0 <= q.x and 0 <= q.y and q.x + q.side <= q.width
                             and q.y + q.side <= q.height and 0 <= q.image and q.batch >= 0):
            raise FineFaceError(f"crop position {k + 1} ({q.describe()}, image index {q.image}) does not lie in an "
                                f"image of the batch of {n}: face_crop must come unchanged from Face Crop")


def paste_faces(images: np.ndarray, crops: np.ndarray, squares, feather: float = 0.1) -> np.ndarray:
    """``images`` [N, H, W, C] with each edited crop (``crops`` [F, S, S, C'], one per square) resized back into
    its square and blended over ``feather`` (a fraction of the side, 0 to 0.5) at the edge; the colour channels
    only when the image has alpha and the crop not. Overlapping squares are pasted in order, the later on top."""
    if not (np.isfinite(feather) and 0.0 <= feather <= 0.5):
        raise FineFaceError(f"feather {feather}: give a fraction of the square's side from 0 to 0.5")
    if images.ndim != 4 or crops.ndim != 4:
        raise FineFaceError(f"expected batches of images [N, H, W, C]; got the shapes {list(images.shape)} (images) "
                            f"and {list(crops.shape)} (crops)")
    n = images.shape[0]
    _check_squares(squares, n)
    if len(squares) != crops.shape[0] or any(square.image >= n or square.batch not in (0, n) for square in squares):
        cut = max((q.batch for q in squares), default=0) or 1 + max((q.image for q in squares), default=0)
        raise FineFaceError(f"{crops.shape[0]} edited crop{'s' if crops.shape[0] != 1 else ''} and {len(squares)} crop "
                            f"position{'s' if len(squares) != 1 else ''} from {cut} "
                            f"image(s), to paste into {n} image{'s' if n != 1 else ''}: paste the crops of the same "
                            "batch Face Crop cut, into the images it was given")
    if crops.shape[1] != crops.shape[2]:
        raise FineFaceError(f"the edited crops are {crops.shape[2]}x{crops.shape[1]}, not square: keep Face Crop's "
                            "output square (VAE Encode / Decode do; an upscale must keep the aspect ratio)")
    low, high = (float(crops.min()), float(crops.max())) if crops.size else (0.0, 0.0)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise FineFaceError("the edited crops have NaN or infinite values (a black or broken render upstream); "
                            "nothing was pasted. Check the sampler and VAE Decode.")
    if low < RANGE_SLACK[0] or high > RANGE_SLACK[1]:
        scale = " (they look scaled 0..255: divide them by 255)" if low >= -0.5 and high <= 255.5 else ""
        raise FineFaceError(f"the edited crops have pixel values from {low:g} to {high:g}; an IMAGE holds 0..1{scale}. "
                            "Nothing was pasted: check the node that made them.")
    colours = {"image": _colours(images.shape[3]), "crops": _colours(crops.shape[3])}
    if colours["image"] != colours["crops"]:
        raise FineFaceError(f"the edited crops have {crops.shape[3]} channel(s) ({colours['crops']}) but the images "
                            f"{images.shape[3]} ({colours['image']}): pasted, only part of each colour would change. "
                            "Give Face Paste crops of the photo's kind (an RGB IMAGE for an RGB photo).")
    channels = min(images.shape[3], crops.shape[3])
    out = images.astype(np.float32, copy=True)
    for square in squares:
        if (square.height, square.width) != tuple(images.shape[1:3]):
            raise FineFaceError(f"{image_name(square.image, n)} is {images.shape[2]}x{images.shape[1]}, but its crop was cut "
                                f"from a {square.width}x{square.height} image: paste into the image Face Crop was given")
    for k, square in enumerate(squares):
        back = _resize(np.clip(crops[k], 0.0, 1.0), square.side)[..., :channels]
        weight = edge_weights(square.side, feather)[..., None]
        window = out[square.image, square.y:square.y + square.side, square.x:square.x + square.side, :channels]
        window[...] = weight * back + (1.0 - weight) * window
    return out


__all__ = ["CROP_CHOICES", "EVERY_FACE", "FaceSquare", "SIZES", "check_settings", "cut_square", "edge_weights", "face_crops", "face_square", "paste_faces"]
