"""``python -m workflows.run --aus-from photo.jpg``: the expression of a photo as the AU spec to render.

Reads the photo (its EXIF orientation applied, as ComfyUI's Load Image does), finds the face,
reads its 12 AUs with LibreFace's AU model from ComfyUI's models/libreface, prints them and
returns the spec that then stands for ``--aus``.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import sys

MODEL_FOLDERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nodes", "model_folders.py")


def add_arguments(parser):
    g = parser.add_argument_group("copy an expression from a photo")
    g.add_argument("--aus-from", metavar="PHOTO",
                   help="read the 12 AUs off the face in this photo (LibreFace's AU model, models/libreface) and "
                        "render them: stands for --aus")
    g.add_argument("--au-estimator", metavar="NAME",
                   help="LibreFace AU model file in models/libreface (default: resnet.pt, else combined_resnet.pt)")
    # No defaults in argparse (they are DEFAULTS): an option given without --aus-from is refused, never ignored.
    g.add_argument("--which-face",
                   choices=("largest", "leftmost", "rightmost", "topmost", "closest to centre", "by index"),
                   help="the face to read when the photo has several (default: largest)")
    g.add_argument("--face-index", type=int, help="with --which-face 'by index': 0 = the leftmost face")
    g.add_argument("--no-face", choices=("error", "whole image"),
                   help="a photo where no face is found: stop (default), or read the whole photo's centre square")
    g.add_argument("--intensities", choices=("FineFace training labels", "LibreFace raw"),
                   help="the readings corrected as the paper made FineFace's AffectNet labels from them (default), "
                        "or as LibreFace gives them")


OWN_OPTIONS = (("--au-estimator", "au_estimator"), ("--which-face", "which_face"), ("--face-index", "face_index"),
               ("--no-face", "no_face"), ("--intensities", "intensities"))
DEFAULTS = {"which_face": "largest", "face_index": 0, "no_face": "error", "intensities": "FineFace training labels"}


def setting(args, name: str):
    value = getattr(args, name, None)
    return DEFAULTS[name] if value is None else value


class PhotoUsageError(Exception):
    pass


def check(args, workflow: str):
    """Before ComfyUI starts: what --aus-from cannot be combined with, and that the photo is there."""
    if not getattr(args, "aus_from", None):
        given = [flag for flag, name in OWN_OPTIONS if getattr(args, name, None) is not None]
        if given:
            raise PhotoUsageError(f"{' / '.join(given)} {'go' if len(given) > 1 else 'goes'} with --aus-from PHOTO "
                                  "(reading the expression off a photo); give --aus-from, or leave "
                                  f"{'them' if len(given) > 1 else 'it'} out")
        return
    if args.face_index is not None and args.which_face != "by index":
        raise PhotoUsageError("--face-index goes with --which-face 'by index'" + (
            f", not {args.which_face!r}" if args.which_face else ": add that"))
    if args.face_index is not None and args.face_index < 0:
        raise PhotoUsageError(f"--face-index {args.face_index}: faces are counted from 0 (the leftmost)")
    if args.aus:
        raise PhotoUsageError("give the expression either as --aus or as --aus-from PHOTO, not both")
    from . import SHIPPED  # the photo's reading becomes --aus: only for the workflows that take one expression

    takers = [name for name, row in SHIPPED.items() if row.headless and "aus" in row.sets and not row.several_aus]
    if workflow not in takers:
        raise PhotoUsageError(f"--aus-from gives one expression; the {workflow} workflow takes no single one "
                              f"(use {', '.join(takers)})")
    if not os.path.isfile(args.aus_from):
        raise PhotoUsageError(f"--aus-from {args.aus_from}: no such file")
    from .image_input import image_problem  # the photo is read as --image is: a bomb or damaged file refused here

    problem, _ = image_problem(args.aus_from)
    if problem:
        raise PhotoUsageError(f"--aus-from {args.aus_from}: {problem}")


@functools.cache
def model_folders():
    """nodes/model_folders.py, where the pack registers models/libreface, loaded from its file. It cannot be
    imported by name: in this process ``nodes`` is ComfyUI's nodes.py, and the pack's node package exists only
    inside the pack that ComfyUI imports from its folder (whose name need not be an identifier)."""
    spec = importlib.util.spec_from_file_location("fineface_model_folders", MODEL_FOLDERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_estimator(fp, name: str | None) -> str:
    from fineface_core.faces.libreface import CHECKPOINT_NAMES
    from fineface_core.errors import WeightFileError

    registered = model_folders()
    folders = registered.folders(registered.LIBREFACE)
    for candidate in [name] if name else CHECKPOINT_NAMES:
        path = fp.get_full_path(registered.LIBREFACE, candidate)
        if path:
            return path
    wanted = repr(name) if name else " or ".join(CHECKPOINT_NAMES)
    raise WeightFileError(
        f"LibreFace AU model {wanted} not found -- nothing was rendered.\n"
        f"    from:   GitHub ihp-lab/LibreFace, file AU_Recognition/resnet_disfa_all/DISFA/all/resnet.pt "
        f"(USC research license, non-commercial use only; see docs/copy_expression.md)\n"
        f"    put in: {folders[0]}{os.sep}")


def read_photo(path: str):
    """The photo as ComfyUI's IMAGE batch [1, H, W, C] in 0..1, upright by its EXIF orientation."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    from fineface_core.errors import FineFaceError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
            pixels = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as e:
        raise FineFaceError(f"--aus-from {path}: not an image that can be read ({e})") from None
    return pixels[None]


def aus_table(values) -> str:
    from fineface_core.aus import ACTION_UNITS

    return "\n".join(f"  {au.code:<5} {au.name:<22} {float(v):4.2f}" for au, v in zip(ACTION_UNITS, values))


def spec_from_photo(args, fp, stream=None) -> str:
    """Reads the AUs off the photo ``args.aus_from``; prints them; returns the spec for --aus."""
    from fineface_core.faces.libreface import load_estimator
    from fineface_core.aus import format_aus
    from fineface_core.errors import FineFaceError
    from fineface_core.faces.detect import NoFaceError
    from fineface_core.faces.photo_aus import read_expressions

    stream = stream or sys.stdout
    path = find_estimator(fp, args.au_estimator)
    estimator = load_estimator(path)
    try:
        reading = read_expressions(read_photo(args.aus_from), estimator, setting(args, "which_face"),
                                   setting(args, "face_index"), setting(args, "no_face"), setting(args, "intensities"))
    except NoFaceError as e:
        raise FineFaceError(f"--aus-from {args.aus_from}: {e} (here: --no-face 'whole image')") from None
    except FineFaceError as e:
        raise FineFaceError(f"--aus-from {args.aus_from}: {e}") from None
    values = reading.aus.values[0]
    spec = format_aus(values, precision=2)
    where = reading.report[0].split(": ", 1)[1]
    print(f"AUs read off {args.aus_from} ({where}; {estimator.description}):", file=stream)
    print(aus_table(values), file=stream)
    print(f'as --aus "{spec}"', file=stream, flush=True)
    return spec
