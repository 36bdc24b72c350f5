"""AU keyframes -> one AU vector per frame of an animation.

A keyframe is ``<frame>: <AU spec>`` (``12: happiness@4``, ``24: AU1@3 + AU2@3 + AU26@4``), one per
line or separated by ``;``. Frames are numbered from 0; keyframes come in increasing frame order.
Between two keyframes every AU moves from the first keyframe's intensity to the second's along
the easing; before the first keyframe the first one is held, after the last one the last is held.
A keyframe may sit at frame ``frames`` (one past the last frame, the end of the clip): the clip then
heads towards it without reaching it, so ``0: neutral; 8: happiness; 16: neutral`` over 16 frames
loops seamlessly.

The interpolation is in AU space, never between embeddings: the AU encoder is not linear, so
the embedding of a blend is not the blend of the embeddings.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from .aus import expression_title, format_aus, parse_aus
from .conditioning import AUVectors
from .errors import AUSpecError, quoted

EASINGS = ("linear", "ease-in-out", "hold")
MAX_FRAMES = 4096

HELP = ("write one keyframe per line (or separate them with ';') as '<frame>: <AU spec>', frames counted from 0 in "
        "increasing order, e.g. '0: neutral', '12: happiness@4', '24: AU1@3 + AU2@3 + AU26@4'")

# A frame number is at most this long, leading zeros included: a longer one is refused before int() reads it.
MAX_FRAME_DIGITS = 12


@dataclass(frozen=True)
class Keyframe:
    frame: int
    values: torch.Tensor  # [12]
    spec: str  # as written
    where: str  # "line 3 ('24: AU1@3')", for messages


def ease(t: float, easing: str) -> float:
    """The fraction of the way from one keyframe to the next at time fraction ``t`` in [0, 1)."""
    if easing == "linear":
        return t
    if easing == "ease-in-out":
        return 0.5 - 0.5 * math.cos(math.pi * t)  # sine ease: starts and ends at rest
    if easing == "hold":
        return 0.0  # a step: each keyframe holds until the next one
    raise AUSpecError(f"easing {quoted(easing)} is not one of {', '.join(EASINGS)}")


def _entries(text: str):
    """(line number, entry) for every non-blank ``;``- or line-separated entry."""
    for number, line in enumerate(text.splitlines(), 1):
        for entry in line.split(";"):
            if entry.strip():
                yield number, entry.strip()



def _frame_number(frame_text: str, where: str) -> int:
    """A keyframe's frame, checked before int() sees it: digits only, not too long, 0..MAX_FRAMES."""
    if not re.fullmatch(r"[+-]?\d+", frame_text):
        raise AUSpecError(f"{where}: {quoted(frame_text)} is not a frame number (a whole number from 0); {HELP}")
    if len(frame_text.lstrip("+-").lstrip("0")) > len(str(MAX_FRAMES)):
        # int() of a number this long is refused by Python (over 4300 digits) or pointless: no clip is that long
        raise AUSpecError(f"{where}: frame {quoted(frame_text, 20)} is past the end of any animation (at most "
                          f"{MAX_FRAMES} frames); move the keyframe")
    if len(frame_text) > MAX_FRAME_DIGITS:
        raise AUSpecError(f"{where}: the frame number {quoted(frame_text, 20)} is too long: write it without "
                          f"leading zeros, a whole number from 0 to {MAX_FRAMES}")
    frame = int(frame_text)
    if frame < 0:
        raise AUSpecError(f"{where}: frame {frame} is before the first frame; frames are counted from 0")
    if frame > MAX_FRAMES:
        raise AUSpecError(f"{where}: frame {frame} is past the end of any animation (at most {MAX_FRAMES} frames); "
                          "move the keyframe")
    return frame

def _raise_frames(text: str, frame: int) -> str:
    """The advice for a keyframe past the end, for the whole text: the frames every keyframe needs, so that the
    advice taken once does not lead to the next keyframe's refusal."""
    last = frame
    for _, entry in _entries(text):  # one pass; entries that are no keyframe are refused on their own
        frame_text, colon, _ = entry.partition(":")
        try:
            last = max(last, _frame_number(frame_text.strip(), ""))
        except AUSpecError:
            continue
    need = min(last + 1, MAX_FRAMES)
    later = f" (the last keyframe is at frame {last})" if last > frame else ""
    return f"raise frames to at least {need}{later}, or move the keyframes"


def parse_keyframes(text: str, frames: int | None = None) -> list[Keyframe]:
    """The keyframes of ``text``, checked: syntax, AU specs, order, repeats, and (given ``frames``) the end."""
    if not isinstance(text, str):
        raise AUSpecError(f"keyframes must be text, got {type(text).__name__}; {HELP}")
    if frames is not None:
        check_frames(frames)
    keyframes: list[Keyframe] = []
    for number, entry in _entries(text):
        where = f"line {number} ({quoted(entry)})"
        frame_text, colon, spec = entry.partition(":")  # str methods, not a regex: linear on any line
        if not colon:
            raise AUSpecError(f"{where}: no ':' between the frame and the AU spec; {HELP}")
        frame_text, spec = frame_text.strip(), spec.strip()
        frame = _frame_number(frame_text, where)
        if frames is not None and frame > frames:
            raise AUSpecError(f"{where}: frame {frame} is past the end of the animation: {frames} frames are numbered "
                              f"0 to {frames - 1} (a keyframe at {frames} marks the end of the clip); "
                              f"{_raise_frames(text, frame)}")
        if not spec:
            raise AUSpecError(f"{where}: no AU spec after the ':' (write 'neutral' for a neutral face); {HELP}")
        if keyframes and frame == keyframes[-1].frame:
            raise AUSpecError(f"{where}: frame {frame} has a keyframe already ({keyframes[-1].where}); "
                              "give each frame at most one keyframe")
        if keyframes and frame < keyframes[-1].frame:
            raise AUSpecError(f"{where}: frame {frame} comes after frame {keyframes[-1].frame} "
                              f"({keyframes[-1].where}); write the keyframes in increasing frame order")
        try:
            values = parse_aus(spec)
        except AUSpecError as err:
            raise AUSpecError(f"{where}: {err}") from err
        keyframes.append(Keyframe(frame, values, spec, where))
    if not keyframes:
        raise AUSpecError(f"no keyframes were given; {HELP}")
    return keyframes


def check_frames(frames) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= MAX_FRAMES:
        raise AUSpecError(f"the number of frames must be a whole number from 1 to {MAX_FRAMES}, got {frames!r}")
    return frames


def interpolate(keyframes: list[Keyframe], frames: int, easing: str = "linear") -> torch.Tensor:
    """[frames, 12]: the keyframes' values at their frames, eased in between, held outside them."""
    check_frames(frames)
    ease(0.0, easing)  # refuses an unknown easing before any work
    out = torch.empty(frames, keyframes[0].values.shape[0], dtype=torch.float32)
    first, last = keyframes[0], keyframes[-1]
    out[: min(first.frame, frames)] = first.values
    out[min(last.frame, frames):] = last.values
    for a, b in zip(keyframes, keyframes[1:]):
        span = b.frame - a.frame
        for f in range(a.frame, min(b.frame, frames)):
            w = ease((f - a.frame) / span, easing)
            out[f] = a.values + w * (b.values - a.values)
        if a.frame < frames:
            out[a.frame] = a.values  # exact at the keyframe, whatever the arithmetic
    return out


def keyframe_vectors(text: str, frames: int, easing: str = "linear") -> AUVectors:
    """One AU vector per frame, labelled with its AUs; keyframe frames that name a preset carry it as title."""
    keyframes = parse_keyframes(text, frames)
    values = interpolate(keyframes, frames, easing)
    written = {k.frame: expression_title(k.spec) for k in keyframes}
    titles = tuple(f"frame {f} ({written[f]})" if written.get(f) else f"frame {f}" for f in range(frames))
    return AUVectors(values, labels=tuple(format_aus(v) for v in values), titles=titles)
