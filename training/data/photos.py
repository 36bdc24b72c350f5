"""The photos of a collection: listed in one fixed order, read as upright 8-bit RGB, bad files named.

A photo is known by its path under the folder, its size and its modification time (``Photo.key``): a second
run over a folder annotates the photos whose key it has not seen, so a photo replaced under the same name is
read again. Reading never raises for a bad file: it says which kind of bad it is (``BadPhoto``), for the
report, and how a good one was converted (CMYK, 16 bits, EXIF orientation), for its notes.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from fineface_core.files.folder_walk import walk_folders

from .generic import WIDE_MODES, upright_rgb

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# A photo of more pixels than this is refused unread: a decompression bomb (a few KB of PNG that decodes to
# gigabytes) looks like that. 100 MP takes a 12000 x 8000 camera photo.
MAX_PIXELS = 100_000_000
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Photo:
    rel: str  # path under the photos folder, '/'-separated: the sort key and the name in every message
    path: str
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        return f"{self.rel}|{self.size}|{self.mtime_ns}"


class BadPhoto(Exception):
    """A file that cannot be read as a photo; ``kind`` is one of report.PROBLEMS."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind


def inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (links resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def list_photos(root: str) -> tuple[list[Photo], list[str]]:
    """The image files under ``root`` (by extension) sorted by their relative path, and the other files'
    relative paths. Each real folder once (links to folders are followed, never in circles)."""
    photos, others = [], []
    for folder, rel, names in walk_folders(root):
        for name in names:
            path = os.path.join(folder, name)
            rel_path = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
            if not name.lower().endswith(EXTENSIONS) or name.startswith("."):
                others.append(rel_path)
                continue
            try:
                st = os.stat(path)
            except OSError:
                others.append(rel_path)
                continue
            photos.append(Photo(rel_path, path, st.st_size, st.st_mtime_ns))
    photos.sort(key=lambda p: p.rel)
    return photos, sorted(others)


def _conversions(im: Image.Image) -> list[str]:
    notes = []
    try:
        orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block: the photo is read as stored
        orientation = 1
    if orientation not in (None, 1):
        notes.append("turned upright by its EXIF orientation")
    if im.mode == "CMYK":
        notes.append("CMYK converted to RGB")
    elif im.mode in WIDE_MODES:
        notes.append("16-bit scaled to 8 bits")
    return notes


def read_photo(photo: Photo, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """RGB uint8 [H, W, 3] upright, and how it was converted; BadPhoto for a file that is no usable photo."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked here
            with Image.open(photo.path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise BadPhoto("too_many_pixels", f"{w}x{h} = {w * h / 1e6:.0f} MP over --max-pixels "
                                                      f"{max_pixels / 1e6:g} MP (a decompression bomb?)")
                notes = _conversions(im)
                im.load()
                rgb = np.asarray(upright_rgb(im))
    except BadPhoto:
        raise
    except Image.DecompressionBombError as e:
        raise BadPhoto("too_many_pixels", str(e)[:120]) from None
    except UnidentifiedImageError:
        raise BadPhoto("not_an_image", "not an image PIL can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        text = str(e)
        kind = "truncated_image" if "truncated" in text or "broken data" in text or isinstance(e, EOFError) \
            else "corrupt_image"
        raise BadPhoto(kind, f"{type(e).__name__}: {text[:100]}") from None
    except Exception as e:  # PIL's plugins raise many kinds for broken files; one bad file never ends a run
        raise BadPhoto("corrupt_image", f"{type(e).__name__}: {str(e)[:100]}") from None
    if min(rgb.shape[:2]) < 1:
        raise BadPhoto("corrupt_image", "no pixels")
    return rgb, notes
