"""python -m training.data annotate PHOTOS --out DATASET: any collection of face photos -> training data.

The paper's AffectNet recipe as one command: find the faces (OpenCV, fineface_core.faces.detect), cut each face's
square as Face Crop does at the trainer's resolution, read the 12 AUs with LibreFace (the user's resnet.pt, as AU
From Image loads it), caption with an image-to-text model (BLIP-2 by default), drop what the paper drops, and write
the generic format (images + metadata.jsonl) with a report and pictures of the labels.

Long jobs: the photos are done in blocks, each one shard written whole (shards.py); a rerun continues, a grown
folder gets only its new photos annotated. Several processes (``accelerate launch [--num_processes N]
[--num_machines M ...] -m training.data annotate ...``, or torchrun) each take every N-th block; the last to finish
merges, and the dataset is the one a single process makes.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from dataclasses import dataclass

from fineface_core.files.digest import file_sha256

from . import captioner as cap
from .affectnet import AffectNetOptions, check_options
from .annotate_merge import merge_dataset
from .face_stages import STAGES, Stages, run_block
from .generic import FALLBACK_CAPTION
from .photos import MAX_PIXELS, inside, list_photos
from .report import DataReport
from .shards import check_settings, plan_blocks, read_shards, write_shard

# The AffectNetOptions fields that are LibreFace's corrections (the rest are AffectNet's CSV columns and filters).
CORRECTION_FIELDS = ("min_intensity", "intensity_of", "down_aus", "down_gamma", "up_aus", "up_gamma", "up_gain",
                     "au15_max_from_au17", "scale", "zero_below", "clip_max")
KILL_AFTER = "FINEFACE_TEST_KILL_AFTER_SHARDS"  # tests: SIGKILL this process after writing that many shards


@dataclass
class AnnotateOptions:
    libreface: str = ""  # LibreFace's resnet.pt (or combined_resnet.pt)
    faces: str = "largest"  # or "every"
    min_face: int | None = None  # the face's square in photo pixels; None: the resolution
    resolution: int = 512
    grow: float = 1.0
    image_format: str = "jpg"
    jpeg_quality: int = 95
    captioner: str = cap.DEFAULT
    caption_prompt: str = ""
    max_new_tokens: int = 30
    photo_check: bool = False
    default_caption: str = FALLBACK_CAPTION
    max_pixels: int = MAX_PIXELS
    device: str = "auto"
    mixed_precision: str = "auto"
    batch_size: int = 32
    shard_size: int = 256

    def resolved(self, local_rank: int = 0) -> "AnnotateOptions":
        import torch

        device = self.device
        if device == "auto":
            # more processes than GPUs share them (detection runs on the CPU of each process)
            device = f"cuda:{local_rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no GPU is visible to this process (torch {torch.__version__}); "
                             "use --device cpu, or a CUDA build of torch")
        mp = self.mixed_precision
        if mp == "auto":
            mp = "fp16" if device.startswith("cuda") else "no"
        if mp != "no" and not device.startswith("cuda"):
            raise ValueError(f"--mixed-precision {mp} is for a GPU; on {device} use --mixed-precision no (or auto)")
        return dataclasses.replace(self, device=device, mixed_precision=mp,
                                   min_face=self.resolution if self.min_face is None else self.min_face)

    def settings(self, photos_dir: str) -> dict:
        """What decides a face's record (the dataset's recipe); not the device, batch or shard size."""
        keep = ("faces", "min_face", "resolution", "grow", "image_format", "jpeg_quality", "captioner",
                "caption_prompt", "max_new_tokens", "photo_check", "default_caption", "max_pixels")
        out = {k: getattr(self, k) for k in keep}  # not the photos' folder: a collection may move (photos are
        # known by their path under it, size and time, and the merge takes only the folder's own)
        out["libreface_sha256"] = file_sha256(self.libreface)
        if os.path.isdir(self.captioner):
            out["captioner"] = os.path.realpath(self.captioner)
            out["captioner_config_sha256"] = file_sha256(os.path.join(self.captioner, "config.json"))
        return out


def check(opts: AnnotateOptions) -> None:
    problems = []
    if opts.faces not in ("largest", "every"):
        problems.append(f"--faces is 'largest' or 'every', not {opts.faces!r}")
    if opts.resolution < 64 or opts.resolution % 8:
        problems.append(f"--resolution {opts.resolution}: a multiple of 8, at least 64 (the trainer's; paper: 512)")
    if not 0 <= opts.grow <= 3:
        problems.append(f"--grow {opts.grow}: from 0 to 3 (Face Crop's)")
    if opts.image_format not in ("jpg", "png"):
        problems.append(f"--image-format is jpg or png, not {opts.image_format!r}")
    if not 1 <= opts.jpeg_quality <= 100:
        problems.append(f"--jpeg-quality {opts.jpeg_quality}: from 1 to 100 (default 95)")
    if opts.batch_size < 1 or opts.shard_size < 1 or opts.max_new_tokens < 1:
        problems.append("--batch-size, --shard-size and --max-new-tokens must be at least 1")
    if opts.mixed_precision not in ("auto", "no", "fp16", "bf16"):
        problems.append(f"--mixed-precision is auto, no, fp16 or bf16, not {opts.mixed_precision!r}")
    if not opts.libreface or not os.path.isfile(opts.libreface):
        problems.append(f"--libreface {opts.libreface or '(not given)'}: give LibreFace's resnet.pt, the file AU From "
                        "Image loads (github.com/ihp-lab/LibreFace)")
    if opts.photo_check and opts.captioner == cap.NONE:
        problems.append("--photo-check asks the captioner; it cannot be used with --captioner none")
    if problems:
        raise ValueError("; ".join(problems))
    cap.check_source(opts.captioner)


def check_folders(photos_dir: str, out: str) -> None:
    if not os.path.isdir(photos_dir):
        raise ValueError(f"{photos_dir} is not a folder: give the folder of photos")
    if inside(out, photos_dir):
        raise ValueError(f"--out {out} lies inside the photos folder {photos_dir}: its face crops would be read as "
                         "photos by the next run. Give an --out outside it")
    if inside(photos_dir, out):
        raise ValueError(f"the photos folder {photos_dir} lies inside --out {out}; give an --out of its own")


def process_slot(index: int | None, count: int | None) -> tuple[int, int, int]:
    """(this process's index, the number of processes, its local rank): from the options, else from the variables
    accelerate launch and torchrun set (RANK, WORLD_SIZE, LOCAL_RANK), else a single process."""
    count = count if count is not None else int(os.environ.get("WORLD_SIZE", "1"))
    index = index if index is not None else int(os.environ.get("RANK", "0"))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"process {index} of {count}: the index must be from 0 to the number of processes - 1")
    return index, count, int(os.environ.get("LOCAL_RANK", "0"))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def load_stages(opts: AnnotateOptions, out: str) -> Stages:
    from fineface_core.faces.libreface import load_estimator

    estimator = load_estimator(opts.libreface, opts.device)
    captioner = cap.load_captioner(opts.captioner, opts.device, opts.mixed_precision, opts.max_new_tokens,
                                   opts.caption_prompt)
    if opts.photo_check and not captioner.answers_questions:
        raise ValueError(f"--photo-check: {opts.captioner} ({captioner.model_type}) does not answer questions about an "
                         f"image; the check needs one of {', '.join(cap.QA_TYPES)} (BLIP-2, as the paper)")
    return Stages(estimator, captioner, opts, out)


def _progress(log, tag: str, done: int, total: int, faces: int, start: float, stages: Stages) -> None:
    elapsed = time.perf_counter() - start
    rate = done / elapsed if elapsed > 0 else 0.0
    left = f", about {_duration((total - done) / rate)} left" if rate > 0 and done < total else ""
    per = " ".join(f"{s} {stages.seconds[s] / max(done, 1):.3f}" for s in STAGES if stages.seconds[s])
    log(f"{tag}{done}/{total} photos ({100 * done / max(total, 1):.0f}%), {rate:.2f} photos/s, {faces} faces{left} "
        f"(s/photo: {per})")


def annotate(photos_dir: str, out: str, opts: AnnotateOptions, corrections: AffectNetOptions | None = None,
             index: int | None = None, count: int | None = None, log=None, stats: dict | None = None) -> DataReport | None:
    """This process's share of the photos not yet annotated; then, if every photo is done, the merged dataset's
    report (None while other processes are still at work). ValueError / FineFaceError for what the user must fix.
    ``stats`` (a dict) receives this process's photos, faces and seconds per stage (the benchmark's figures)."""
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    index, count, local_rank = process_slot(index, count)
    check(opts)
    if corrections is not None:
        check_options(corrections)  # before the work, not at the merge
    check_folders(photos_dir, out)
    opts = opts.resolved(local_rank)
    photos, others = list_photos(photos_dir)
    if not photos:
        what = f"{len(others)} other file(s), e.g. {', '.join(others[:3])}" if others else "it is empty"
        raise ValueError(f"no photos in {photos_dir} ({what}); photos are {', '.join(('.jpg', '.png', '.webp', '...'))}")
    check_settings(out, opts.settings(photos_dir))
    done, _ = read_shards(out)
    pending = [p for p in photos if p.key not in done]
    mine = plan_blocks(pending, opts.shard_size)[index::count]
    tag = f"[process {index + 1}/{count}] " if count > 1 else ""
    todo = sum(len(b) for b in mine)
    log(f"{tag}{len(photos)} photos, {len(photos) - len(pending)} annotated before, {len(pending)} to do; this process: "
        f"{todo} in {len(mine)} shard(s) on {opts.device}")
    if mine:
        stages = load_stages(opts, out)
        start, finished, faces, kill_after = time.perf_counter(), 0, 0, int(os.environ.get(KILL_AFTER, "0"))
        for n, block in enumerate(mine, 1):
            entries = run_block(block, stages)
            write_shard(out, entries)
            finished += len(block)
            faces += sum(len(e["faces"]) for e in entries)
            _progress(log, tag, finished, todo, faces, start, stages)
            if kill_after and n >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        if stats is not None:
            stats.update(photos=finished, faces=faces, seconds=dict(stages.seconds),
                         wall=time.perf_counter() - start)
    done, _ = read_shards(out)
    missing = sum(1 for p in photos if p.key not in done)
    if missing:
        log(f"{tag}{len(photos) - missing} of {len(photos)} photos annotated; the process that finishes last merges "
            "them (or run the same command again, with any number of processes)")
        return None
    report = merge_dataset(photos, out, corrections, len(others), photos_dir)
    log(f"{tag}merged: {report.kept} faces -> {os.path.join(out, 'metadata.jsonl')}")
    return report
