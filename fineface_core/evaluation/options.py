"""The evaluation's defaults (the paper's) and the checks of its options that need no model, kept apart from
the modules that import torch: the command line prints --help and refuses a bad option in a fraction of a
second, before anything heavy is imported. :func:`..run.evaluate` runs the same checks for callers of the API.
"""
from __future__ import annotations

import math
import os
import re

from ..errors import FineFaceError

PROMPTS_FILE = os.path.join(os.path.dirname(__file__), "prompts.txt")
BASE_MODEL = "stabilityai/stable-diffusion-2-1-base"
# --base-model and --size when not given: the weights' family's base model at the resolution it was trained at
BASE_MODELS = {"sd21": BASE_MODEL, "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
               "sdxl": "stabilityai/stable-diffusion-xl-base-1.0"}
SIZES = {"sd21": 512, "sd15": 512, "sdxl": 1024}
CLIP = "openai/clip-vit-large-patch14"
INTENSITIES = (1.0, 2.0, 3.0, 4.0, 5.0)
COMBINATIONS = 50  # per prompt
COMBINATION_SIZE = (2, 5)  # fewest, most AUs in a combination
STEPS, GUIDANCE = 50, 7.5
MAX_SIZE = 2048  # SD 2.1 base was trained at 512 px, SDXL at 1024; 2048 px already takes 4x SDXL's memory
SCALES = ("raw", "training")  # LibreFace's readings as they are, or on FineFace's training-label scale
NO_FACE = ("skip", "whole image")
SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes up to 2**64 - 1; prompt i adds i
EDIT_DELTAS = (-1.0, 1.0, 2.0)  # the edit protocol's relative steps
EDIT_PROMPT = "a close-up photo of a face"

# A weights name is a folder name under images/ and records/: no separator, not "." or "..", no leading dot.
LABEL = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")
MAX_LABEL = 64  # characters; a file name holds at most 255 bytes, and a table column is read by a person


def check_labels(weights: list[tuple[str, str]]):
    if not weights:
        raise FineFaceError("give at least one weights file with --weights")
    labels = [label for label, _ in weights]
    bad = [label for label in labels if not LABEL.fullmatch(label)]
    if bad:
        raise FineFaceError(f"weights names {bad} cannot name folders; use letters, digits and . _ + - (not "
                            "first a dot) (write --weights NAME=PATH)")
    long = [label for label in labels if len(label) > MAX_LABEL]
    if long:
        raise FineFaceError(f"the weights name {long[0][:40]!r}... is {len(long[0])} characters long; give a name of at "
                            f"most {MAX_LABEL} with --weights NAME=PATH (it names folders and a table column)")
    # compared without case: macOS and Windows folders are one folder for Ours and ours
    folded = [label.lower() for label in labels]
    dup = sorted({label for label, f in zip(labels, folded) if folded.count(f) > 1})
    if dup:
        raise FineFaceError(f"two weights files are both named {dup[0]!r} (names are compared without case: they "
                            "name folders); name them apart with --weights NAME=PATH")


def check_numbers(*, steps: int, size: int | None, guidance: float, au_scale: float | None, lora_strength: float,
                  batch_size: int, limit: int | None, seed: int, combination_seed: int):
    if steps < 1:
        raise FineFaceError(f"--steps must be 1 or more, not {steps}")
    if size is not None and (not 64 <= size <= MAX_SIZE or size % 8):
        raise FineFaceError(f"--size {size}: give a multiple of 8 from 64 to {MAX_SIZE} (the paper: 512; SDXL: 1024)")
    for flag, value in (("--guidance", guidance), ("--au-scale", au_scale), ("--lora-strength", lora_strength)):
        if value is not None and not math.isfinite(value):
            raise FineFaceError(f"{flag} must be a finite number, not {value}")
    if batch_size < 1:
        raise FineFaceError(f"--batch-size must be 1 or more, not {batch_size}")
    if limit is not None and limit < 1:
        raise FineFaceError(f"--limit must be 1 or more, not {limit} (leave it out for the whole protocol)")
    for flag, value in (("--seed", seed), ("--combination-seed", combination_seed)):
        if not 0 <= value <= SEED_MAX:
            raise FineFaceError(f"{flag} must be a whole number from 0 to 2**63 - 1, not {value}")
