"""Speed of ``python -m training.data annotate`` per stage, and the disk a dataset takes per face.

    python -m tests.benchmarks.bench_annotate [--photos 24] [--resolution 512] [--device cpu] [--threads 1]
        [--captioner tiny|none|FOLDER] [--format jpg|png]

The photos: scikit-image's astronaut, matplotlib's Grace Hopper and the two side by side, each also mirrored and
at three sizes (different files, the same faces). The models: LibreFace's ResNet-18 at its real size (random
weights: the speed is the architecture's), and a tiny random BLIP-2 (``tiny``; its speed says nothing of the real
BLIP-2's), or a real captioner folder. One process; under ``accelerate launch`` every process prints its own line
(a process's figures are those of its share). Prints photos/s for each stage (read, detect, align, AUs, caption,
write) as if it ran alone, and in all, and the bytes per face image with the disk for 100k faces.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from training.data.annotate import AnnotateOptions, annotate
from training.data.face_stages import STAGES

from tests.support.face_photos import grace_hopper, side_by_side
from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint
from tests.support.tiny_captioner import write_tiny_blip2


def write_photos(folder: str, n: int) -> None:
    import cv2

    astronaut, hopper = skimage_photo("astronaut.png"), grace_hopper()
    bases = [astronaut, hopper, side_by_side(hopper, astronaut)]
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        photo = bases[i % 3]
        photo = photo[:, ::-1] if (i // 3) % 2 else photo
        scale = (1.0, 1.5, 2.0)[(i // 6) % 3]
        photo = cv2.resize(np.ascontiguousarray(photo), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        Image.fromarray(photo).save(os.path.join(folder, f"photo_{i:05d}.jpg"), quality=92)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=int, default=24)
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--captioner", default="tiny")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"))
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--work", default=None, help="folder for photos, models and dataset (default: a temporary one)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work or tempfile.mkdtemp(prefix="bench_annotate_")
    rank = os.environ.get("RANK", "0")
    photos, out = os.path.join(work, "photos"), os.path.join(work, "dataset")
    libreface, captioner = os.path.join(work, "resnet.pt"), args.captioner
    tiny = os.path.join(work, "blip2")
    ready = os.path.join(work, "ready")
    if rank == "0" and not os.path.exists(ready):  # the first process makes photos and models, the others wait
        write_photos(photos, args.photos)
        write_libreface_checkpoint(libreface)
        if captioner == "tiny":
            write_tiny_blip2(tiny)
        open(ready, "w").close()
    while not os.path.exists(ready):
        time.sleep(0.5)
    captioner = tiny if captioner == "tiny" else captioner
    opts = AnnotateOptions(libreface=libreface, faces="every", min_face=64, resolution=args.resolution,
                           captioner=captioner, image_format=args.format, device=args.device,
                           batch_size=args.batch_size, shard_size=8, max_new_tokens=20)
    stats: dict = {}
    annotate(photos, out, opts, stats=stats, log=lambda text: None)
    if not stats:
        print(f"process {rank}: nothing to do")
        return
    n, seconds = stats["photos"], stats["seconds"]
    per_stage = "  ".join(f"{s} {n / seconds[s]:.1f}" for s in STAGES if seconds.get(s))
    print(f"process {rank}: {n} photos, {stats['faces']} faces, {n / stats['wall']:.2f} photos/s in all "
          f"({stats['faces'] / stats['wall']:.2f} faces/s); photos/s per stage: {per_stage}")
    if os.path.isfile(os.path.join(out, "metadata.jsonl")):
        faces_dir = os.path.join(out, "faces")
        sizes = [os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(faces_dir) for f in fs]
        meta = os.path.getsize(os.path.join(out, "metadata.jsonl"))
        per_face = (sum(sizes) + meta) / len(sizes)
        print(f"disk: {per_face / 1024:.1f} KiB per face ({args.resolution} px {args.format}, with its record) "
              f"-> {per_face * 1e5 / 2**30:.2f} GiB per 100k faces (plus shards: "
              f"{sum(os.path.getsize(os.path.join(out, 'shards', f)) for f in os.listdir(os.path.join(out, 'shards'))) / len(sizes):.0f} B per face)")
    if not args.work and rank == "0":
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
