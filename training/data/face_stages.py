"""One block of photos through the annotation stages: read, detect, align, AUs, caption, write.

Each stage is timed (``Stages.seconds``) for the progress lines and tests/benchmarks/bench_annotate.py. The faces
of a block go through LibreFace and the captioner in batches of ``batch_size`` in the block's order, so a face's
numbers depend only on its block (see shards.py).
"""
from __future__ import annotations

import io
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from fineface_core.faces.crop import cut_square, face_square
from fineface_core.faces.detect import MIN_SIDE, aligned_face, centre_crop, find_faces
from fineface_core.faces.libreface import estimate
from fineface_core.files.safe_write import write_bytes

from .photos import BadPhoto, read_photo
from .shards import face_file

STAGES = ("read", "detect", "align", "aus", "caption", "write")
NO_FACE, TOO_SMALL, NOT_PHOTO, PHOTO_TOO_SMALL = "no face found", "face too small", "not a real photo", "photo too small"


@dataclass
class Stages:
    """The models and settings a block needs (loaded once per process)."""
    estimator: object
    captioner: object  # captioner.Captioner or None
    opts: object  # annotate.AnnotateOptions
    out: str
    seconds: Counter = field(default_factory=Counter)

    @contextmanager
    def timed(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.opts.device.startswith("cuda") and stage in ("aus", "caption"):
                torch.cuda.synchronize()
            self.seconds[stage] += time.perf_counter() - start

    def autocast(self):
        o = self.opts
        if o.mixed_precision == "no" or not o.device.startswith("cuda"):
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.float16 if o.mixed_precision == "fp16" else torch.bfloat16)


def _faces_of(entry: dict, rgb: np.ndarray, stages: Stages) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """Detect, choose and align the faces of one photo: (face record, training crop uint8, LibreFace crop uint8)."""
    o = stages.opts
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        entry.update(status=PHOTO_TOO_SMALL, detail=f"{w}x{h}")
        return []
    with stages.timed("detect"):
        faces = find_faces(rgb)
    if not faces:
        entry.update(status=NO_FACE, detail=f"{w}x{h}")
        return []
    chosen = list(enumerate(faces))
    if o.faces == "largest":
        chosen = [max(chosen, key=lambda kf: kf[1].area)]
    out = []
    with stages.timed("align"):
        for k, face in chosen:
            square = face_square(face.box, o.grow, h, w)
            record = {"face": k, "box": [round(v, 1) for v in face.box], "side": square.side,
                      "eyes_found": bool(face.eyes_found)}
            if square.side < o.min_face:
                entry["dropped"].append({**record, "reason": TOO_SMALL,
                                         "detail": f"its square is {square.side} px, under --min-face {o.min_face}"})
                continue
            crop = cut_square(rgb, square, o.resolution)  # float 0..1
            image = np.clip(np.rint(crop * 255.0), 0, 255).astype(np.uint8)
            out.append((record, image, centre_crop(aligned_face(rgb, face.quad()))))
    return out


def _encode(image: np.ndarray, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        Image.fromarray(image).save(buffer, format="PNG")
    else:
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def _batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_block(block: list, stages: Stages) -> list[dict]:
    """The shard entries of one block of photos (face images written, the shard not yet)."""
    o = stages.opts
    entries, faces = [], []  # faces: (entry, record, training crop, LibreFace crop)
    for photo in block:
        entry = {"key": photo.key, "rel": photo.rel, "status": "ok", "faces": [], "dropped": [], "notes": []}
        entries.append(entry)
        with stages.timed("read"):
            try:
                rgb, entry["notes"] = read_photo(photo, o.max_pixels)
            except BadPhoto as bad:
                entry.update(status=bad.kind, detail=str(bad))
                continue
        try:
            faces += [(entry, *f) for f in _faces_of(entry, rgb, stages)]
        except Exception as e:  # OpenCV on a photo it cannot take: named in the report, the run goes on
            entry.update(status="corrupt_image", detail=f"face detection failed ({type(e).__name__}: {str(e)[:80]})",
                         dropped=[])
    if not faces:
        return entries
    with stages.timed("aus"), stages.autocast():
        crops = torch.from_numpy(np.stack([f[3] for f in faces]).astype(np.float32) / 255.0)
        raw = estimate(stages.estimator, crops, batch_size=o.batch_size)
    pictures = [Image.fromarray(f[2]) for f in faces]
    captions, verdicts = [o.default_caption] * len(faces), [(True, "")] * len(faces)
    if stages.captioner is not None:
        with stages.timed("caption"):
            captions = [c for b in _batches(pictures, o.batch_size) for c in stages.captioner.captions(b)]
            if o.photo_check:
                verdicts = [v for b in _batches(pictures, o.batch_size) for v in stages.captioner.real_photo(b)]
    with stages.timed("write"):
        ext = "png" if o.image_format == "png" else "jpg"
        for (entry, record, image, _), values, caption, (real, answer) in zip(faces, raw, captions, verdicts):
            record["raw_aus"] = [float(v) for v in values]
            record["caption"] = caption or o.default_caption
            if not real:
                entry["dropped"].append({**record, "reason": NOT_PHOTO, "detail": f"answered {answer!r}"})
                continue
            record["file"] = face_file(entry["key"], record["face"], ext)
            write_bytes(f"{stages.out}/{record['file']}", _encode(image, o.image_format, o.jpeg_quality))
            entry["faces"].append(record)
    return entries
