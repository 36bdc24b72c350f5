"""The ``annotate`` command's options and its run: messages, not tracebacks, for what the user must fix."""
from __future__ import annotations

import argparse
import sys

from fineface_core.errors import FineFaceError

from . import captioner as cap
from .annotate import AnnotateOptions, annotate
from .annotate_merge import summary_text
from .photos import MAX_PIXELS


def add_annotate_parser(sub, add_corrections) -> argparse.ArgumentParser:
    a = sub.add_parser(
        "annotate", help="a folder of face photos -> a dataset (face crops, 12 LibreFace AUs, captions)",
        description="Find the faces in every photo of PHOTOS, cut each as Face Crop does at the trainer's "
                    "resolution, read its 12 AUs with LibreFace and caption it (BLIP-2 by default); write DATASET "
                    "(images + metadata.jsonl, report.txt, AU pictures). Resumable; a rerun over a grown folder "
                    "annotates only the new photos; under `accelerate launch` each process takes its share.")
    a.add_argument("photos", help="folder of photos (searched with its subfolders)")
    a.add_argument("--out", required=True, help="the dataset folder to write (new, or one this command made)")
    a.add_argument("--libreface", required=True, help="LibreFace's AU model resnet.pt (as AU From Image loads it)")
    g = a.add_argument_group("faces")
    g.add_argument("--faces", choices=("largest", "every"), default="largest",
                   help="the largest face of each photo, or every face (default: largest)")
    g.add_argument("--min-face", type=int, default=None,
                   help="drop faces whose square (Face Crop's) is smaller than this many photo pixels "
                        "(default: --resolution; the paper kept AffectNet images of 512 px or more)")
    g.add_argument("--resolution", type=int, default=512, help="face image side, as the trainer's --resolution (512)")
    g.add_argument("--grow", type=float, default=1.0,
                   help="the square around the face box, grown by this fraction of its side (Face Crop's grow, 1.0)")
    g.add_argument("--image-format", choices=("jpg", "png"), default="jpg", help="face images (default: jpg)")
    g.add_argument("--jpeg-quality", type=int, default=95)
    g.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help=f"refuse photos of more pixels, unread (decompression bombs; default {MAX_PIXELS:,})")
    c = a.add_argument_group("captions")
    c.add_argument("--captioner", default=cap.DEFAULT,
                   help=f"a transformers image-to-text model: hub id or local folder, safetensors only, no remote code "
                        f"(default: {cap.DEFAULT}); 'none': every face gets --default-caption")
    c.add_argument("--caption-prompt", default="", help="text the caption continues (default: none)")
    c.add_argument("--max-new-tokens", type=int, default=30)
    c.add_argument("--photo-check", action="store_true",
                   help="drop faces the captioner says are no real photo (BLIP-2's question answering, as the paper)")
    c.add_argument("--default-caption", default=AnnotateOptions.default_caption)
    r = a.add_argument_group("running")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: this process's GPU, else cpu)")
    r.add_argument("--mixed-precision", choices=("auto", "no", "fp16", "bf16"), default="auto",
                   help="on a GPU (default: fp16 there, none on a CPU)")
    r.add_argument("--batch-size", type=int, default=32, help="faces per batch through LibreFace and the captioner")
    r.add_argument("--shard-size", type=int, default=256, help="photos per shard (the unit that is kept when stopped)")
    r.add_argument("--process-index", type=int, default=None,
                   help="this process's index without a launcher (e.g. a job array); default: RANK or 0")
    r.add_argument("--num-processes", type=int, default=None, help="with --process-index; default: WORLD_SIZE or 1")
    a.add_argument("--no-corrections", action="store_true",
                   help="AU labels as LibreFace reads them, without the paper's corrections and neutral filter")
    add_corrections(a)  # with --official: the official code's values
    return a


def options_from(args) -> AnnotateOptions:
    names = [f for f in AnnotateOptions.__dataclass_fields__]
    return AnnotateOptions(**{n: getattr(args, n) for n in names})


def run_annotate(args, corrections) -> int:
    try:
        report = annotate(args.photos, args.out, options_from(args), None if args.no_corrections else corrections,
                          args.process_index, args.num_processes)
    except (ValueError, FileNotFoundError, FineFaceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a folder that went away: what is written is whole
        print(f"error: {exc}; the finished shards in {args.out} are kept: free the space or fix the folder and run "
              "the same command again", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: the finished shards in {args.out} are kept; run the same command again to continue",
              file=sys.stderr)
        return 130
    if report is not None:
        print(summary_text(report))
        print(f"wrote {args.out}/metadata.jsonl, report.txt, report.json, au_histograms.png, au_cooccurrence.png")
    return 0
