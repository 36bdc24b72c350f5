"""Finding faces offline and cutting them out the way LibreFace's AU model was trained.

Detection: OpenCV's Haar cascades, which ship inside opencv-python-headless 4.x
(``cv2.data.haarcascades``): the frontal face cascade ("alt2", which refuses the coin
heads that the default cascade takes for faces), then the eye cascade inside the face's
upper half. No model is downloaded.

Alignment: LibreFace aligns FFHQ-style, an oriented square from the eye centres and the
mouth corners (``c = eye_avg + 0.1 * eye_to_mouth``, half side ``max(2 * |eye_to_eye|,
1.8 * |eye_to_mouth|)``, rotated so the eyes are level), 256 px; the model reads its centre
224 px. The cascades give no mouth, so the eyes and mouth come from a mean face placed in the
detection box; when both eyes are found they replace the mean ones (position, scale and roll),
and the mouth follows them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .libreface import ALIGNED_SIZE, CROP_SIZE
from ..errors import FineFaceError

FACE_CASCADE, EYE_CASCADE = "haarcascade_frontalface_alt2.xml", "haarcascade_eye.xml"
RANGE_SLACK = (-1.0, 2.0)  # pixel values clipped to 0..1 within this (an upscaler's overshoot), refused beyond
MIN_SIDE = 24  # the face cascade's window is 20 px; smaller images hold no readable face
EYE_SEARCH_WIDTH = 120  # px of face width the eyes are searched at (at least)
# Where faces are searched. The cascade's window is 20 px; measured on scikit-image's astronaut over many
# positions, faces whose box is 22 px or more at the search scale are found. A large image is searched shrunk,
# to at most DETECT_MAX_SIDE, but never so far that a face of MIN_FACE px in the photo's own pixels falls below
# FACE_AT_SEARCH: up to 4096 px that is the 1024 px it always was; an 8192 px photo is searched at 2048 px (the
# cost grows with the photo's area: see tests/benchmarks/bench_face_crop.py).
CASCADE_WINDOW = 20
FACE_AT_SEARCH = 25
MIN_FACE = 100
DETECT_MAX_SIDE = 1024

# A mean face in the face cascade's box (fractions of its width / height): eye centres and the
# mouth's centre (between its corners). Measured on frontal faces; the eye-to-mouth distance is
# about the eye-to-eye distance, as in the usual 5-point templates.
MEAN_EYES = np.array([[0.29, 0.37], [0.71, 0.37]])
MEAN_MOUTH = np.array([0.50, 0.79])

CHOICES = ("largest", "leftmost", "rightmost", "topmost", "closest to centre", "by index")
MAX_FACE_INDEX = 99  # "by index": faces counted from the left from 0 (the nodes' index input, the runner's --face)


class NoFaceError(FineFaceError):
    """No face was found where one was required."""


@dataclass(frozen=True, eq=False)
class Face:
    box: tuple[float, float, float, float]  # x, y, width, height in image pixels (the face cascade's box)
    eyes: np.ndarray  # [2, 2]: the image-left eye, the image-right eye (x, y)
    mouth: np.ndarray  # [2]
    eyes_found: bool  # False: the mean face's eyes were used

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    @property
    def centre(self) -> np.ndarray:
        x, y, w, h = self.box
        return np.array([x + w / 2, y + h / 2])

    def quad(self) -> np.ndarray:
        return ffhq_quad(self.eyes[0], self.eyes[1], self.mouth)

    def describe(self) -> str:
        x, y, w, h = (round(v) for v in self.box)
        eyes = "eyes found" if self.eyes_found else "eyes not found, placed from the box"
        return f"box x={x} y={y} w={w} h={h}, {eyes}"


# ------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------

def image_name(i: int, n: int) -> str:
    """How messages name image ``i`` of a batch of ``n``."""
    return "the image" if n == 1 else f"image {i + 1} of {n} (batch index {i})"


def check_pixels(image: np.ndarray, name: str = "the image"):
    """A float image [H, W, C] in 0..1 (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) that a face can be read from,
    or FineFaceError saying what is wrong."""
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise FineFaceError(f"{name} has the shape {list(image.shape)}; expected height x width x channels "
                            "(1 gray, 3 RGB or 4 RGBA)")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise FineFaceError(f"{name} is {w}x{h} pixels: too small to read a face from (at least "
                            f"{MIN_SIDE}x{MIN_SIDE}; a face should be 100 px or more across). Use a larger image.")
    low, high = float(image.min()), float(image.max())  # NaN and infinity come out here: one pass each
    if not (math.isfinite(low) and math.isfinite(high)):
        raise FineFaceError(f"{name} has NaN or infinite pixel values; check the node that made it.")
    if low < RANGE_SLACK[0] or high > RANGE_SLACK[1]:
        # clipped, such an image is white or black: the detector would report "no face", which misleads
        scale = " (it looks scaled 0..255: divide it by 255)" if low >= -0.5 and high <= 255.5 else ""
        raise FineFaceError(f"{name} has pixel values from {low:g} to {high:g}; an IMAGE holds 0..1{scale}. "
                            "Check the node that made it.")


def to_rgb_uint8(image: np.ndarray, name: str = "the image") -> np.ndarray:
    """A float image [H, W, C] in 0..1 (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) -> uint8 RGB.
    Alpha is dropped, as PIL's convert("RGB") does in LibreFace's own loader."""
    if image.ndim == 2:
        image = image[..., None]
    check_pixels(image, name)
    channels = image[..., :3] if image.shape[2] >= 3 else np.repeat(image[..., :1], 3, axis=2)
    return np.clip(channels * 255.0 + 0.5, 0, 255).astype(np.uint8)


def search_scale(height: int, width: int) -> float:
    """The scale an image is searched at (see DETECT_MAX_SIDE)."""
    return min(1.0, max(DETECT_MAX_SIDE / max(height, width), FACE_AT_SEARCH / MIN_FACE))


def smallest_face(height: int, width: int) -> int:
    """The smallest face (its box, px of the image itself) found in a ``width`` x ``height`` image."""
    return math.ceil(FACE_AT_SEARCH / search_scale(height, width))


def no_face_hint(height: int, width: int) -> str:
    return (f"The detector finds frontal, upright faces of about {smallest_face(height, width)} px or more across "
            f"in a {width}x{height} image")


# ------------------------------------------------------------------------------------------
# Detection
# ------------------------------------------------------------------------------------------

_CASCADES: dict[str, object] = {}


def _cascade(name: str):
    if name not in _CASCADES:
        try:
            import cv2
        except ImportError:
            raise FineFaceError("finding faces needs OpenCV: pip install 'opencv-python-headless>=4.8,<5' "
                                "(in ComfyUI's Python)") from None
        data = getattr(cv2, "data", None)
        folder = getattr(data, "haarcascades", None)
        cascade = cv2.CascadeClassifier(folder + name) if folder else None
        if cascade is None or cascade.empty():
            raise FineFaceError(f"OpenCV {cv2.__version__} has no {name} (OpenCV 5 dropped the Haar cascades): "
                                "pip install 'opencv-python-headless>=4.8,<5'")
        _CASCADES[name] = cascade
    return _CASCADES[name]


def _equalized(gray: np.ndarray) -> np.ndarray:
    """Contrast equalized tile by tile (CLAHE): a global histogram equalization is ruled by whatever fills most
    of the picture, and a small face in a large plain background came out too flat to be found."""
    import cv2

    return cv2.createCLAHE(clipLimit=1.5, tileGridSize=(8, 8)).apply(gray)


def _gray(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The image to search: gray, equalized, at ``search_scale``. ``image``: RGB uint8, or a float image in 0..1
    that check_pixels passed (any of its channel counts), shrunk before it is converted: a photo of 8192 px would
    take seconds to convert whole."""
    import cv2

    scale = search_scale(*image.shape[:2])
    if image.dtype == np.uint8:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return _equalized(gray), scale
    colour = np.ascontiguousarray(image[..., :3] if image.shape[2] >= 3 else image[..., 0], dtype=np.float32)
    if scale < 1.0:
        colour = cv2.resize(colour, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY) if colour.ndim == 3 else colour
    return _equalized(np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)), scale


def _eye_pair(gray: np.ndarray, box) -> np.ndarray | None:
    """Both eye centres inside a face box (detection scale), image-left first; None unless a plausible
    pair (one each side, level within 30 degrees, 0.25-0.75 box widths apart) is found."""
    import cv2

    x, y, w, h = box
    top, bottom = y + int(0.15 * h), y + int(0.6 * h)
    roi = gray[top:bottom, x:x + w]
    # the eye cascade's window is 20 px: a small face is enlarged until its eyes are about 25 px wide
    zoom = max(1.0, EYE_SEARCH_WIDTH / w)
    if zoom > 1.0:
        roi = cv2.resize(roi, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
    side = max(20, round(zoom * w) // 10)
    found = _cascade(EYE_CASCADE).detectMultiScale(roi, scaleFactor=1.1, minNeighbors=3, minSize=(side, side),
                                                    maxSize=(round(zoom * w) // 2,) * 2)
    centres = [np.array([x + (ex + ew / 2) / zoom, top + (ey + eh / 2) / zoom]) for ex, ey, ew, eh in found]
    mean = np.array([x, y]) + MEAN_EYES * [w, h]
    best, best_cost = None, np.inf
    for left in (c for c in centres if c[0] < x + w / 2):
        for right in (c for c in centres if c[0] >= x + w / 2):
            d = right - left
            if not 0.25 * w <= d[0] <= 0.75 * w or abs(d[1]) > np.tan(np.radians(30)) * d[0]:
                continue
            cost = np.linalg.norm(left - mean[0]) + np.linalg.norm(right - mean[1])
            if cost < best_cost:
                best, best_cost = np.stack([left, right]), cost
    return best


def _place_face(box, eyes: np.ndarray | None, scale: float) -> Face:
    x, y, w, h = box
    mean_eyes = np.array([x, y]) + MEAN_EYES * [w, h]
    mean_mouth = np.array([x, y]) + MEAN_MOUTH * [w, h]
    if eyes is None:
        found_eyes, mouth = mean_eyes, mean_mouth
    else:
        # the similarity (scale, roll, shift) taking the mean eyes onto the found ones carries the mouth along
        src, dst = mean_eyes[1] - mean_eyes[0], eyes[1] - eyes[0]
        k = complex(*dst) / complex(*src)
        m = complex(*(mean_mouth - mean_eyes.mean(0))) * k
        found_eyes, mouth = eyes, eyes.mean(0) + np.array([m.real, m.imag])
    return Face(box=tuple(float(v) / scale for v in box), eyes=found_eyes / scale, mouth=mouth / scale,
                eyes_found=eyes is not None)


def find_faces(image: np.ndarray) -> list[Face]:
    """Every frontal face in an RGB uint8 image (or a float one that check_pixels passed), left to right, down
    to smallest_face() px."""
    gray, scale = _gray(image)
    boxes = _cascade(FACE_CASCADE).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4,
                                                    minSize=(CASCADE_WINDOW, CASCADE_WINDOW))
    faces = [_place_face(tuple(int(v) for v in b), _eye_pair(gray, tuple(int(v) for v in b)), scale) for b in boxes]
    return sorted(faces, key=lambda f: (f.box[0], f.box[1]))


def choose_face(faces: list[Face], how: str, index: int, shape: tuple[int, int], name: str = "the image") -> Face:
    """One face of ``faces`` (left to right): the largest, leftmost, ..., or the ``index``-th from the left."""
    if not faces:
        raise NoFaceError(f"no face found in {name}")
    if how == "largest":
        return max(faces, key=lambda f: f.area)
    if how == "leftmost":
        return faces[0]
    if how == "rightmost":
        return max(faces, key=lambda f: f.box[0] + f.box[2])
    if how == "topmost":
        return min(faces, key=lambda f: f.box[1])
    if how == "closest to centre":
        middle = np.array([shape[1] / 2, shape[0] / 2])
        return min(faces, key=lambda f: np.linalg.norm(f.centre - middle))
    if how == "by index":
        if not 0 <= index < len(faces):
            raise FineFaceError(f"face index {index} asked for, but {name} has {len(faces)} face"
                                f"{'s' if len(faces) != 1 else ''} (0 = leftmost, up to {len(faces) - 1})")
        return faces[index]
    raise FineFaceError(f"unknown face choice {how!r}; one of: {', '.join(CHOICES)}")


# ------------------------------------------------------------------------------------------
# Alignment, crop, masks
# ------------------------------------------------------------------------------------------

def ffhq_quad(eye_left, eye_right, mouth) -> np.ndarray:
    """FFHQ's oriented square (as LibreFace aligns): corners top-left, bottom-left, bottom-right, top-right."""
    eye_left, eye_right, mouth = (np.asarray(p, dtype=np.float64) for p in (eye_left, eye_right, mouth))
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = mouth - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def whole_image_quad(height: int, width: int) -> np.ndarray:
    """The centred square LibreFace's Resize(256) + CenterCrop reads from an unaligned image."""
    side = min(height, width)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return np.array([[x0, y0], [x0, y0 + side], [x0 + side, y0 + side], [x0 + side, y0]], dtype=np.float64)


def read_region(quad: np.ndarray) -> np.ndarray:
    """The part of the aligned square the model reads: its centre 224 of 256."""
    centre = quad.mean(0)
    return centre + (quad - centre) * (CROP_SIZE / ALIGNED_SIZE)


def aligned_face(rgb: np.ndarray, quad: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """The oriented square ``quad`` of an RGB uint8 image, upright, ``size`` px. As FFHQ / LibreFace:
    large faces are first shrunk, the square is sampled at 2x bilinearly, then reduced by area;
    outside the image it is filled with the face's median colour."""
    import cv2

    quad = np.asarray(quad, dtype=np.float64)
    side = np.hypot(*(quad[3] - quad[0]))
    shrink = int(side / (2 * size))
    if shrink > 1:
        rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] / shrink)), max(1, round(rgb.shape[0] / shrink))),
                         interpolation=cv2.INTER_AREA)
        quad = quad / shrink
    big = 2 * size
    lo = np.clip(np.floor(quad.min(0)).astype(int), 0, None)
    hi = np.minimum(np.ceil(quad.max(0)).astype(int), [rgb.shape[1], rgb.shape[0]])
    inside = rgb[lo[1]:hi[1], lo[0]:hi[0]].reshape(-1, 3)
    fill = np.median(inside, axis=0) if inside.size else np.median(rgb.reshape(-1, 3), axis=0)
    src = np.float32([quad[0], quad[1], quad[3]])
    dst = np.float32([[0, 0], [0, big], [big, 0]])
    matrix = cv2.getAffineTransform(src, dst)
    warped = cv2.warpAffine(rgb, matrix, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=tuple(float(v) for v in fill))
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)


def centre_crop(aligned: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    top = (aligned.shape[0] - size) // 2
    left = (aligned.shape[1] - size) // 2
    return aligned[top:top + size, left:left + size]


def quad_mask(height: int, width: int, quad: np.ndarray) -> np.ndarray:
    """float32 [H, W]: 1 inside the (oriented) square ``quad``, 0 outside."""
    import cv2

    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, np.round(np.asarray(quad) * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)
