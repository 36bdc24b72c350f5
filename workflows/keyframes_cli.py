"""``python -m workflows.run --keyframes``: the AU animation workflow (an animated WEBP + the frames as PNG).

    python -m workflows.run --keyframes "0: neutral; 16: happiness@4" --frames 16 --out smile.webp

The animation is one more workflow of ``workflows.run`` (``animation``, chosen by --keyframes): the same
checks before ComfyUI starts, the same executor and missing-file report; which option sets which node's input
is its row in ``workflows.SHIPPED``. This module holds only what is the animation's own: its options and their
checks.
"""
from __future__ import annotations

import json

from . import workflow_path

NAME = "animation"
KEYFRAMES, ANIMATED = "FineFaceAUKeyframes", "SaveAnimatedWEBP"
EASINGS = ("linear", "ease-in-out", "hold")
OTHER_WORKFLOWS_OPTIONS = (("--aus", "aus"), ("--image", "image"), ("--from", "sweep_from"), ("--to", "sweep_to"),
                           ("--cells", "cells"), ("--denoise", "denoise"), ("--sweep", "sweep"))


def add_arguments(parser):
    g = parser.add_argument_group("animation")
    g.add_argument("--keyframes", help="AU keyframes, '<frame>: <AU spec>' separated by ';' (or new lines), frames from 0, "
                                       "e.g. '0: neutral; 16: happiness@4'; renders an animated WEBP (--out FILE.webp)")
    g.add_argument("--frames", type=int, help="number of frames (default: the workflow's, 16)")
    g.add_argument("--easing", choices=EASINGS, help="how the AUs move between keyframes (default ease-in-out)")
    g.add_argument("--fps", type=float, help="frames per second of the WEBP (default 8)")
    return parser


def chosen(args) -> bool:
    return getattr(args, "keyframes", None) is not None


def check(args, name: str, usage_error):
    """Before ComfyUI starts: the animation's options only with the animation, and its keyframes parse
    (AUSpecError names the line)."""
    from fineface_core.keyframes import keyframe_vectors

    own = [flag for flag, value in (("--frames", args.frames), ("--easing", args.easing), ("--fps", args.fps))
           if value is not None]
    if name != NAME:
        if chosen(args):  # --workflow named a still-image workflow: the keyframes would be dropped
            raise usage_error(f"--keyframes renders the AU animation workflow, not --workflow {name}: leave out "
                              "--workflow (or give --workflow animation)")
        if own:
            raise usage_error(f"{' / '.join(own)} belong to an animation: give --keyframes")
        return
    if not chosen(args):
        raise usage_error("the animation workflow needs --keyframes, e.g. --keyframes '0: neutral; 16: happiness@4'")
    others = [flag for flag, dest in OTHER_WORKFLOWS_OPTIONS if getattr(args, dest, None) is not None]
    if args.mask_from_alpha:
        others.append("--mask-from-alpha")
    if getattr(args, "aus_from", None):
        others.append("--aus-from")
    if others:
        raise usage_error(f"--keyframes renders the AU animation workflow; {', '.join(others)} belong to the other workflows")
    if args.fps is not None and not 0.01 <= args.fps <= 1000:
        raise usage_error(f"--fps {args.fps:g}: give a frame rate from 0.01 to 1000")
    if args.frames is not None and not 1 <= args.frames <= 4096:
        raise usage_error(f"--frames {args.frames}: give 1 to 4096 frames")
    frames = args.frames if args.frames is not None else default_frames()
    keyframe_vectors(args.keyframes, frames, args.easing or "ease-in-out")


def keyframe_lines(keyframes: str) -> str:
    return "\n".join(part.strip() for part in keyframes.replace(";", "\n").splitlines() if part.strip())


def default_frames() -> int:
    with open(workflow_path(NAME), encoding="utf-8") as f:
        wf = json.load(f)
    node = next(n for n in wf["nodes"] if n["type"] == KEYFRAMES)
    return node["widgets_values"][1]

