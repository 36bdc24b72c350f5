"""The edit protocol as jobs: which photos, and for each photo which target AU vectors, built on what the
photo shows (its *source*, read by LibreFace).

Per photo, the targets are (in this order, the first being what every other is measured against):
- ``replay``: the source itself, no change; the inversion must give the photo back (its VAE round trip);
- ``absolute``: one AU set to a level (``--intensities``), every other AU as the photo shows it;
- ``relative``: one AU moved by a step (``--deltas``) from what the photo shows, kept within 0..5;
- ``neutral``: every AU at 0.

A photo is one unit of work: one inversion serves all its targets. Its seed is derived from its name in the
folder (not its place in the listing), so a photo's images do not depend on which other photos there are,
on ``--limit``, or on the process that made it.
"""
from __future__ import annotations

import math
import os
import re
import zlib
from dataclasses import asdict, dataclass

import numpy as np

from ..aus import AU_ORDER, SAFE_MAX, SAFE_MIN
from ..errors import FineFaceError
from ..files.folder_walk import walk_folders
from .options import EDIT_DELTAS, EDIT_PROMPT, INTENSITIES

KINDS = ("replay", "absolute", "relative", "neutral")
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAX_LEVEL = 5.0  # the AU scale's top: a relative step never asks past it (nor below 0)
DELTAS, PROMPT = EDIT_DELTAS, EDIT_PROMPT


@dataclass(frozen=True)
class EditProtocol:
    aus: tuple[str, ...] = AU_ORDER
    intensities: tuple[float, ...] = INTENSITIES  # absolute levels
    deltas: tuple[float, ...] = DELTAS  # relative steps
    neutral: bool = True
    seed: int = 0

    def __post_init__(self):
        unknown = [a for a in self.aus if a not in AU_ORDER]
        if unknown or not self.aus:
            raise FineFaceError(f"unknown AUs {unknown} in --aus; choose among {', '.join(AU_ORDER)}")
        if len(set(self.aus)) != len(self.aus):
            raise FineFaceError("--aus: give each AU once")
        for flag, levels, zero_ok in (("--intensities", self.intensities, True), ("--deltas", self.deltas, False)):
            for v in levels:
                if not math.isfinite(v) or (v == 0 and not zero_ok) or not SAFE_MIN <= v <= SAFE_MAX:
                    raise FineFaceError(f"{flag}: {v:g} cannot be asked; give numbers from {SAFE_MIN:g} to "
                                        f"{SAFE_MAX:g}{'' if zero_ok else ', not 0 (the replay is the no-change edit)'}")
            if len(set(levels)) != len(levels):
                raise FineFaceError(f"{flag}: give each value once")

    def settings(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Photo:
    path: str
    name: str  # a folder name under images/<weights>/, unique, from the path relative to --photos
    seed: int


@dataclass(frozen=True)
class Target:
    kind: str  # one of KINDS
    name: str  # file stem within the photo's folder
    au: int | None  # the AU asked (index in AU_ORDER); None for replay and neutral
    level: float  # absolute: the level; relative: the step; 0 for replay and neutral

    def vector(self, source) -> np.ndarray:
        """The asked AU vector [12] for a photo whose reading is ``source``."""
        v = np.asarray(source, dtype=np.float64).copy()
        if self.kind == "neutral":
            v[:] = 0.0
        elif self.kind == "absolute":
            v[self.au] = self.level
        elif self.kind == "relative":
            v[self.au] = min(max(v[self.au] + self.level, 0.0), MAX_LEVEL)
        return v


def _fmt(value: float) -> str:
    return f"{value:g}".replace(".", "p").replace("-", "m")


def targets(protocol: EditProtocol) -> list[Target]:
    out = [Target("replay", "replay", None, 0.0)]
    for code in protocol.aus:
        i = AU_ORDER.index(code)
        out += [Target("absolute", f"abs_{code}_{_fmt(v)}", i, float(v)) for v in protocol.intensities]
        out += [Target("relative", f"rel_{code}_{'p' if d > 0 else ''}{_fmt(d)}", i, float(d)) for d in protocol.deltas]
    if protocol.neutral:
        out.append(Target("neutral", "neutral", None, 0.0))
    return out


def photo_seed(seed: int, name: str) -> int:
    """``seed`` mixed with the photo's name (crc32): the same photo gets the same noise in any run."""
    return (int(seed) + zlib.crc32(name.encode("utf-8"))) % (2 ** 63)


def _folder_name(rel: str) -> str:
    stem = os.path.splitext(rel)[0].replace(os.sep, "__").replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", stem).lstrip(".") or "photo"


def list_photos(folder: str, seed: int) -> list[Photo]:
    """Every image file under ``folder`` (by suffix, sorted by path), each with its folder name and seed."""
    if not os.path.isdir(folder):
        raise FineFaceError(f"--photos {folder} is not a folder; give a folder of face photos")
    rels = sorted(os.path.join(rel, n) if rel != "." else n for _, rel, names in walk_folders(folder)
                  for n in names if n.lower().endswith(PHOTO_SUFFIXES) and not n.startswith("."))
    if not rels:
        raise FineFaceError(f"--photos {folder} holds no photos ({', '.join(PHOTO_SUFFIXES)}); give a folder of face "
                            "photos")
    photos, taken = [], set()
    for rel in rels:
        name = _folder_name(rel)
        if name.lower() in taken:  # photo.jpg and photo.png: folders apart, named by their suffix too
            name = _folder_name(rel.replace(".", "_"))
        taken.add(name.lower())
        photos.append(Photo(os.path.join(folder, rel), name, photo_seed(seed, name)))
    return photos


def limit_photos(photos: list[Photo], limit: int | None) -> list[Photo]:
    """The first ``limit`` photos (a quick look); None: all."""
    return list(photos) if limit is None else list(photos[:limit])


def shard(items: list, index: int, count: int) -> list:
    """The items process ``index`` of ``count`` takes: every count-th, from its index (deterministic)."""
    return list(items[index::count])

