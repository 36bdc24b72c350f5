"""The headless runner's options, checked before ComfyUI is imported.

Booting ComfyUI and loading a checkpoint take a while, and a render minutes; a bad value must
not cost either. Everything here runs on the command line's values alone (and fineface_core,
which never imports ComfyUI). What only ComfyUI knows -- sampler names, the model files in its
folders -- is checked after it starts but still before anything renders.
"""
from __future__ import annotations

import math
import os
import re

from fineface_core.aus import ACTION_UNITS, AU_BY_CODE, AU_ORDER, OTHER_FACS_AUS, SAFE_MAX, SAFE_MIN, parse_aus, split_specs
from fineface_core.faces.detect import MAX_FACE_INDEX
from fineface_core.files.safe_write import NOT_A_FOLDER, write_problem

from . import SCALE, SHIPPED, taking

# The AU Sweep node's menu entries ("AU12 Lip Corner Puller"), from the same table it is built from.
SWEEP_CHOICES = tuple(f"{au.code} {au.name}" for au in ACTION_UNITS)
MAX_SEED = 0xFFFFFFFFFFFFFFFF  # KSampler's range
# What --out is when it is not the saved image itself (a row's ``out``).
OUT_KINDS = {".webp": " (an animation; its frames go to the output folder as PNG)"}


class UsageError(Exception):
    pass


def sweep_choice(au: str) -> str:
    """--sweep AU12 / 12 / 'AU12 Lip Corner Puller' -> the AU Sweep node's menu entry."""
    word = au.strip().split(" ", 1)[0] if au.strip() else ""
    m = re.fullmatch(r"(?:AU)?(\d+)", word, re.IGNORECASE)
    code = f"AU{int(m[1])}" if m else None
    if code in AU_BY_CODE:
        return SWEEP_CHOICES[AU_BY_CODE[code].index]
    known = f" ({code} {OTHER_FACS_AUS[int(m[1])]} is a FACS action unit FineFace was not trained on)" \
        if m and int(m[1]) in OTHER_FACS_AUS else ""
    raise UsageError(f"--sweep {au}: not one of the 12 AUs FineFace knows{known}; choose one of {', '.join(AU_ORDER)}")


def grid_specs(aus: str) -> list[str]:
    """'neutral; happiness; AU4@4' -> one spec per cell of the expression grid."""
    return split_specs(aus)


def check_args(args, name: str):
    """Every option of the command line, for the workflow ``name``; raises UsageError (or
    AUSpecError for --aus) with what is wrong and what to do."""
    check_workflow_options(args, name)
    check_numbers(args, name)
    if args.sweep is not None:
        sweep_choice(args.sweep)
    if args.aus is not None:
        specs = grid_specs(args.aus)
        if not SHIPPED[name].several_aus and len(specs) > 1:
            raise UsageError(f"several expressions (separated by ';') are for {_workflows(_several_aus())}")
        for spec in specs or [args.aus]:
            parse_aus(spec)  # raises AUSpecError with the reason
    for flag, path in (("--comfyui", args.comfyui), ("--models-dir", args.models_dir)):
        if path is not None:
            check_folder(flag, path)
    if args.output_dir is not None:
        check_output_dir(args.output_dir)
    if args.image is not None:
        check_image(args.image, args.mask_from_alpha)
    if args.out is not None:
        check_out(args.out, SHIPPED[name].out)


def _several_aus() -> list[str]:
    return [name for name, row in SHIPPED.items() if row.headless and row.several_aus]


def _workflows(names: list[str]) -> str:
    """['basic', 'edit', 'grid'] -> 'the basic, edit and grid workflows (--workflow basic)'."""
    listed = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    return f"the {listed} workflow{'s' if len(names) > 1 else ''} (--workflow {names[0]})"


def _belong(flags: str, option: str, why: str = "") -> UsageError:
    # which workflows take the option: from the table of shipped workflows
    return UsageError(f"{why}{flags} belong{'' if ' / ' in flags else 's'} to {_workflows(taking(option))}")


def check_workflow_options(args, name: str):
    row = SHIPPED[name]
    if "sweep" not in row.sets and any(v is not None for v in (args.sweep, args.sweep_from, args.sweep_to, args.cells)):
        raise _belong("--sweep / --from / --to / --cells", "sweep")
    if "sweep" in row.sets and "aus" not in row.sets and args.aus:
        raise _belong("--aus", "aus", f"the {name} workflow sweeps one AU (--sweep) over intensities; ")
    if "image" not in row.sets and args.image:
        raise _belong("--image", "image")
    if "denoise" not in row.sets and args.denoise is not None:
        raise _belong("--denoise", "denoise")
    if "mask_from_alpha" not in row.enables and args.mask_from_alpha:
        raise _belong("--mask-from-alpha", "mask_from_alpha")
    if "face" not in row.sets and (args.face is not None or args.crop_size is not None):
        raise _belong("--face / --crop-size", "face")
    if "image" in row.sets and not args.image:
        raise UsageError(f"the {name} workflow needs --image")
    if "crop_size" in row.sets and "width" not in row.sets and (args.width is not None or args.height is not None):
        raise UsageError(f"--width / --height do not apply to the {name} workflow: the face's square is redrawn at "
                         "--crop-size (default 512 px, FineFace's training size) and the photo keeps its size")
    if args.face is not None and not 0 <= args.face <= MAX_FACE_INDEX:
        raise UsageError(f"--face {args.face}: give a face index from 0 (the leftmost) to {MAX_FACE_INDEX}")
    if args.crop_size is not None and not (64 <= args.crop_size <= 2048 and args.crop_size % 64 == 0):
        raise UsageError(f"--crop-size {args.crop_size}: give a multiple of 64 from 64 to 2048 (512 for SD 2.1 base)")
    if "start_step" not in row.sets and getattr(args, "start_step", None) is not None:
        raise _belong("--start-step", "start_step")


def _finite(flag: str, value: float | None):
    if value is not None and not math.isfinite(value):
        raise UsageError(f"{flag} {value}: give a finite number")


def check_numbers(args, name: str):
    for flag, value in (("--cfg", args.cfg), ("--from", args.sweep_from), ("--to", args.sweep_to),
                        ("--denoise", args.denoise)):
        _finite(flag, value)
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed {args.seed}: give a whole number from 0 to {MAX_SEED}")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps}: give at least 1 sampling step")
    if args.cells is not None and args.cells < 2:
        raise UsageError(f"--cells {args.cells}: a sweep has at least 2 cells")
    if args.cfg is not None and args.cfg < 0:
        raise UsageError(f"--cfg {args.cfg:g}: the guidance scale is 0 or more (the official pipeline uses 7.5)")
    if args.denoise is not None and not 0 <= args.denoise <= 1:
        raise UsageError(f"--denoise {args.denoise:g}: give a value from 0 (keep the image) to 1 (redraw it all)")
    for flag, value in (("--from", args.sweep_from), ("--to", args.sweep_to)):
        if value is not None and not SAFE_MIN <= value <= SAFE_MAX:
            raise UsageError(f"{flag} {value:g}: intensities go from {SAFE_MIN:g} to {SAFE_MAX:g} "
                             "(trained on 0..5; negative reverses the movement)")
    keeps_aspect = SHIPPED[name].sets.get("width", ("",))[0] == SCALE  # Image Scale: 0 keeps the input's aspect ratio
    for flag, value in (("--width", args.width), ("--height", args.height)):
        if value is None or (keeps_aspect and value == 0):
            continue
        if value <= 0 or value % 8:
            zero = " (or 0 to keep the input's aspect ratio)" if keeps_aspect else ""
            raise UsageError(f"{flag} {value}: give a positive multiple of 8{zero}, e.g. 512")


def check_folder(flag: str, path: str):
    if not os.path.exists(path):
        raise UsageError(f"{flag} {path}: no such folder")
    if not os.path.isdir(path):
        raise UsageError(f"{flag} {path}: is a file, not a folder")


def _check_can_make(flag: str, target: str, folder: str):
    """``folder`` exists as a writable folder, or can be made: its nearest existing ancestor is one."""
    base, why = write_problem(folder)
    if why == NOT_A_FOLDER:
        raise UsageError(f"{flag} {target}: {base} is a file, so no folder can be made under it")
    if why:
        raise UsageError(f"{flag} {target}: cannot write in {base} ({why})")


def check_output_dir(path: str):
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--output-dir {path}: is a file, not a folder")
    _check_can_make("--output-dir", path, path)


def check_out(out: str, suffix: str = ".png"):
    """``suffix``: the workflow's row's ``out``."""
    if os.path.isdir(out):
        raise UsageError(f"--out {out}: is a folder; give a file name in it, e.g. {os.path.join(out, 'fineface' + suffix)}")
    if not out.lower().endswith(suffix):
        raise UsageError(f"--out {out}: must be a {suffix} file{OUT_KINDS.get(suffix, '')}")
    _check_can_make("--out", out, os.path.dirname(os.path.abspath(out)))
    if os.path.exists(out) and not os.access(out, os.W_OK):
        raise UsageError(f"--out {out}: the file exists and cannot be written (no permission)")


def out_paths(out: str, count: int) -> list[str]:
    """Where ``count`` images go: ``out`` itself for one, ``<out>_1.png``, ``<out>_2.png`` ... for several."""
    if count == 1:
        return [out]
    stem = os.path.splitext(out)[0]
    return [f"{stem}_{i + 1}.png" for i in range(count)]


def check_unnamed_outputs(out: str, count: int, overwrite: bool):
    """The numbered files several images would go to: the user did not name them, so none is
    replaced unless --overwrite. (A single image goes to --out itself, which the user named.)"""
    if count < 2 or overwrite:
        return
    taken = [p for p in out_paths(out, count) if os.path.lexists(p)]
    if taken:
        raise UsageError(f"--out {out}: {count} images would be written as {os.path.basename(out_paths(out, count)[0])}"
                         f" ... but {', '.join(taken)} exist{'s' if len(taken) == 1 else ''}; "
                         "choose another --out, or pass --overwrite to replace them")


def check_image(path: str, mask_from_alpha: bool):
    from .image_input import image_problem

    if not os.path.exists(path):
        raise UsageError(f"--image {path}: no such file")
    if not os.path.isfile(path):
        raise UsageError(f"--image {path}: is not a file")
    problem, transparent = image_problem(path)
    if problem:
        raise UsageError(f"--image {path}: {problem}")
    if mask_from_alpha and not transparent:
        raise UsageError(f"--mask-from-alpha: {path} has no transparent area (nothing would be redrawn)")
