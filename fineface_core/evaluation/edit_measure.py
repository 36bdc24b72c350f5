"""Measuring the edit protocol's images, photo by photo: each edit's AUs (LibreFace, found and aligned as the
generation protocol reads its images, :class:`.measure.Measurer`), its identity similarity to the photo's
face (``--identity-model``), its PSNR against the photo's VAE round trip and the share of pixels outside the
face that are the round trip's. One record per image, ``records/<weights>/<photo>/<target>.json``; records on
disk are kept (that is how a run resumes)."""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
from PIL import Image

from ..aus import AU_ORDER
from ..errors import FineFaceError
from . import edit_metrics
from .edit_generate import chunks, photo_file, source_record
from .edit_jobs import Photo, Target
from .folder import OutputFolder, _image_problem, read_json, record_problem, write_json
from .metrics import cosine_similarity

EDIT_RECORD = "a record of the edit protocol"
RECORD_KEYS = ("job", "kind", "asked", "source", "face", "measured", "identity", "psnr", "outside_identical")


def record_path(folder: OutputFolder, label: str, photo: Photo, target: Target) -> str:
    return folder.record(label, f"{photo.name}/{target.name}")


def pending(folder: OutputFolder, label: str, photo: Photo, targets: list[Target]) -> list[Target]:
    """The targets with an image and no record yet (none for a photo skipped or not begun)."""
    src = source_record(folder, label, photo)
    if not os.path.exists(src) or read_json(src).get("skipped"):
        return []
    return [t for t in targets if not os.path.exists(record_path(folder, label, photo, t))
            and os.path.exists(photo_file(folder, label, photo, t.name))]


def _rgb(path: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise FineFaceError(f"cannot read {path} ({e}); delete it and run again to make it anew") from None


def _identity(measurer, rgbs: list[np.ndarray]) -> list[np.ndarray | None]:
    if measurer.identity is None:
        return [None] * len(rgbs)
    crops, _ = measurer.read_faces(rgbs)
    found = [c for c in crops if c is not None]
    features = iter(measurer.identity.features(found)) if found else iter(())
    return [next(features) if c is not None else None for c in crops]


def _check_finite(values: np.ndarray, what: str, name: str, path: str):
    if not np.isfinite(values).all():
        raise FineFaceError(f"the {what} {name} gave NaN or infinite values for {path}, so nothing was recorded for "
                            "it: its weights are damaged or overflow. Give a sound model; the images made so far "
                            "are kept.")


def measure_photo(folder: OutputFolder, label: str, photo: Photo, targets: list[Target], todo: list[Target],
                  measurer, batch_size: int, on_record: Callable[[Target], None] = lambda t: None) -> int:
    """Write the records of ``todo`` (targets with an image, of the protocol's ``targets``), read in the
    protocol's fixed batches (:func:`.edit_generate.chunks`); returns how many were written."""
    wanted = {t.name for t in todo}
    if not wanted:
        return 0
    source = read_json(source_record(folder, label, photo))
    roundtrip = _rgb(photo_file(folder, label, photo, "roundtrip"))
    face = _rgb(photo_file(folder, label, photo, "face_mask"))[..., 0] > 127
    photo_identity = _identity(measurer, [_rgb(photo_file(folder, label, photo, "photo"))])[0]
    written = 0
    for batch in chunks(targets, batch_size):
        if not wanted & {t.name for t in batch}:
            continue
        paths = [photo_file(folder, label, photo, t.name) for t in batch]
        rgbs = [_rgb(p) for p in paths]
        crops, status = measurer.read_faces(rgbs)
        values = iter(measurer.aus([c for c in crops if c is not None]))
        identities = _identity(measurer, rgbs)
        for target, rgb, crop, how, features, path in zip(batch, rgbs, crops, status, identities, paths):
            measured = next(values) if crop is not None else None
            if target.name not in wanted:
                continue
            if measured is not None:
                _check_finite(measured, "AU estimator", measurer.estimator.path, path)
            identity = None
            if features is not None and photo_identity is not None:
                _check_finite(features, "identity model", measurer.identity.name, path)
                identity = float(cosine_similarity(features[None], photo_identity[None])[0])
            write_json(record_path(folder, label, photo, target), {
                "job": target.name, "kind": target.kind, "au": None if target.au is None else AU_ORDER[target.au],
                "level": target.level, "photo": photo.name, "asked": target.vector(source["source"]).tolist(),
                "source": source["source"], "face": how, "measured": None if measured is None else measured.tolist(),
                "identity": identity, "psnr": edit_metrics.psnr(rgb, roundtrip),
                "outside_identical": edit_metrics.identical_outside(rgb, roundtrip, face)})
            written += 1
            on_record(target)
    return written


def damaged_files(folder: OutputFolder, labels: list[str], photos: list[Photo], targets: list[Target]) -> list[str]:
    """Before any work on a resumed folder: the records there that do not read, and the images that will be
    read again (the photo's square, round trip and face mask, the edits not yet measured) that do not open.
    Every file is written atomically, so a damaged one was damaged afterwards: named, never used or replaced."""
    damaged = []
    for label in labels:
        for photo in photos:
            src = source_record(folder, label, photo)
            if not os.path.exists(src):
                continue
            why = record_problem(src, ("photo", "skipped"), EDIT_RECORD)
            if why or read_json(src)["skipped"]:
                damaged += [f"{src} ({why})"] if why else []
                continue
            unmeasured = []
            for t in targets:
                rec = record_path(folder, label, photo, t)
                if os.path.exists(rec):
                    why = record_problem(rec, RECORD_KEYS, EDIT_RECORD)
                    damaged += [f"{rec} ({why})"] if why else []
                else:
                    unmeasured.append(t.name)
            for name in (["photo", "roundtrip", "face_mask"] + unmeasured) if unmeasured else []:
                image = photo_file(folder, label, photo, name)
                why = _image_problem(image) if os.path.exists(image) else None
                damaged += [f"{image} ({why})"] if why else []
    return damaged
