"""The headless runner's exact edits (``--workflow edit / neutralize / edit_sweep``): their options, and what it
prints before rendering: the AUs read off the photo and the target they are edited to.

    python -m workflows.run --workflow edit --image photo.jpg --aus "AU12@2"    # 2 more of AU12 than the photo shows
    python -m workflows.run --image photo.jpg --neutral                         # every AU to 0
    python -m workflows.run --image photo.jpg --sweep AU12 --from 0 --to 4 --cells 5

The reading and the target are computed by the graph's own nodes (Load Image -> Face Crop -> AU From Image ->
the target's AU Vector or AU Intensity Sweep) on the prompt's own inputs, before the render: the same numbers the
render then uses, and a photo without a face stops before the checkpoint is loaded.
"""
from __future__ import annotations

import sys

from . import SHIPPED
from .run_checks import UsageError

EXACT = ("edit", "neutralize", "edit_sweep")
READING = "FineFaceAUFromImage"
TARGET_ENCODER = "AU Encoder (target)"


def add_arguments(parser):
    g = parser.add_argument_group("exact edit of a face you already have (edit, neutralize, edit_sweep)")
    g.add_argument("--neutral", action="store_true",
                   help="neutralize the photo's face: every AU to 0 (the neutralize workflow)")
    g.add_argument("--start-step", type=int, metavar="N",
                   help="Invert Photo's start step (the paper's T_skip): the noisiest N steps are skipped; lower = a "
                        "stronger edit, higher keeps more of the photo (default 15 of 50)")


def choose(args) -> str | None:
    """The exact-edit workflow the options ask for without --workflow, else None."""
    if args.neutral:
        return "neutralize"
    if args.image and args.sweep:
        return "edit_sweep"
    # options of the redraw (img2img), and --aus-from: another photo's expression drawn on this image
    redraw_only = (args.denoise, args.width, args.height, args.mask_from_alpha or None, getattr(args, "aus_from", None))
    if args.image and all(v is None for v in redraw_only):
        return "edit"
    return None


def check(args, name: str):
    """What the exact edits cannot take, with what to do instead; raises UsageError."""
    if args.neutral and name != "neutralize":
        raise UsageError(f"--neutral renders the neutralize workflow (every AU of the photo's face to 0), not --workflow {name}")
    if args.neutral and args.aus is not None:
        raise UsageError("give either --neutral (every AU to 0) or --aus (the change), not both")
    if name not in EXACT:
        return
    if args.aus is not None and "aus" not in SHIPPED[name].sets:
        what = "sets every AU to 0" if name == "neutralize" else "sweeps one AU (--sweep) on the photo's own AUs"
        raise UsageError(f"--aus: the {name} workflow {what}; for a change relative to the photo use "
                         "--workflow edit --aus 'AU12@2'")
    if getattr(args, "aus_from", None):
        raise UsageError(f"--aus-from: the {name} workflow reads the photo's own AUs off --image; give the change as "
                         "--aus (or redraw the image with another photo's expression: --workflow redraw)")
    if args.denoise is not None or args.mask_from_alpha:
        raise UsageError(f"--denoise / --mask-from-alpha are the redraw's (img2img): the {name} workflow changes only what "
                         "the AUs change, its strength is --start-step (lower = stronger). For a redraw: --workflow redraw")
    if args.sampler is not None:
        raise UsageError(f"--sampler does not apply to the {name} workflow: the inversion records its own stochastic steps "
                         "and the regeneration replays them (--steps, --scheduler and --seed do apply)")
    if args.width is not None or args.height is not None:
        raise UsageError(f"--width / --height do not apply to the {name} workflow: the face's square is edited at "
                         "--crop-size (512) and the photo keeps its size")
    if args.start_step is not None:
        if args.start_step < 0:
            raise UsageError(f"--start-step {args.start_step}: give 0 (the strongest edit) or more")
        if args.steps is not None and args.start_step >= args.steps:
            raise UsageError(f"--start-step {args.start_step}: must be below --steps ({args.steps})")


# --------------------------------------------------------------------------------------
# The reading and the target, by the graph's own nodes
# --------------------------------------------------------------------------------------

def _declared(cls) -> dict:
    spec = cls.INPUT_TYPES()
    return {**(spec.get("required") or {}), **(spec.get("optional") or {})}


def evaluate(prompt: dict, node_id: str, classes, memo: dict):
    """The outputs of a prompt node, computed by its class from its inputs (links followed). A LATENT input gets a
    stand-in: the nodes evaluated here (AU Intensity Sweep) take their vectors and labels from their other inputs."""
    if node_id in memo:
        return memo[node_id]
    import torch

    entry = prompt[node_id]
    cls = classes[entry["class_type"]]
    declared = _declared(cls)
    kwargs = {}
    for name, value in entry["inputs"].items():
        if name not in declared:  # e.g. Load Image's upload button
            continue
        if isinstance(value, list):
            kwargs[name] = {"samples": torch.zeros(1, 4, 8, 8)} if declared[name][0] == "LATENT" else \
                evaluate(prompt, value[0], classes, memo)[value[1]]
        else:
            kwargs[name] = value
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    memo[node_id] = out["result"] if isinstance(out, dict) else out
    return memo[node_id]


def _table(rows: list[tuple[str, list[float]]]) -> str:
    from fineface_core.aus import ACTION_UNITS

    head = f"  {'':<5} {'':<22} " + " ".join(f"{name:>7}" for name, _ in rows)
    lines = [head] + [f"  {au.code:<5} {au.name:<22} " + " ".join(f"{float(v[i]):7.2f}" for _, v in rows)
                      for i, au in enumerate(ACTION_UNITS)]
    return "\n".join(lines)


def report(prompt: dict, image: str, classes, stream=None):
    """Prints the AUs the graph reads off the photo and its target(s); returns (reading, targets) as AUVectors."""
    from .overrides import find_entry

    stream = stream or sys.stdout
    memo: dict = {}
    read_id, _ = find_entry(prompt, READING)
    reading, _, _, _, _, found = evaluate(prompt, read_id, classes, memo)
    _, encoder = find_entry(prompt, TARGET_ENCODER)
    origin, slot = encoder["inputs"]["aus"]
    targets = evaluate(prompt, origin, classes, memo)[slot]
    print(f"AUs read off {image} ({found.splitlines()[0]}):", file=stream)
    if len(targets) == 1:
        print(_table([("read", reading.values[0].tolist()), ("target", targets.values[0].tolist())]), file=stream)
        print(f"target: {targets.text}", file=stream, flush=True)
    else:
        print(_table([("read", reading.values[0].tolist())]), file=stream)
        print(f"targets ({len(targets)}, one inversion):", file=stream)
        for n, line in enumerate(targets.text.splitlines(), 1):
            print(f"  {n}: {line}", file=stream)
        stream.flush()
    return reading, targets
