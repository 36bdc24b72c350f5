"""The command line of the edit protocol: its options (added to ``python -m fineface_core.evaluate``'s parser)
and the run they ask for.

    python -m fineface_core.evaluate --protocol edit --photos faces/ --weights ours=fineface_sd21.safetensors \\
        --estimator models/libreface/resnet.pt --out eval/edit
"""
from __future__ import annotations

import argparse

from .options import EDIT_DELTAS as DELTAS, EDIT_PROMPT as PROMPT

START_FRACTION = 0.3  # --start-step's default: 30 % of the steps are skipped (the paper's T_skip is 36 of 100)


def add_arguments(p: argparse.ArgumentParser, numbers):
    g = p.add_argument_group("edit protocol (--protocol edit): exact edits of the faces in a folder of photos")
    g.add_argument("--photos", default=None, help="folder of face photos (searched below too); each photo's largest "
                                                  "face is cut as Face Crop cuts it, at --size")
    g.add_argument("--prompt", default=PROMPT, help="the prompt the photos are inverted and edited with "
                                                    "(default: %(default)r)")
    g.add_argument("--deltas", type=numbers, default=DELTAS,
                   help="relative edits: steps added to what the photo shows (default: -1,1,2); "
                        "--intensities gives the absolute levels")
    g.add_argument("--no-neutral", action="store_true", help="leave out the neutral edit (every AU to 0)")
    g.add_argument("--start-step", type=int, default=None,
                   help="the inversion's start step (the paper's T_skip; later: more faithful, weaker edits); "
                        f"default {START_FRACTION * 100:.0f}%% of --steps")
    g.add_argument("--scheduler", default="normal", choices=["normal", "karras"])
    g.add_argument("--grow", type=float, default=1.0, help="Face Crop's grow: the square is the face box grown by "
                                                           "this fraction (default: %(default)s)")
    g.add_argument("--edit-region", default="whole", choices=["whole", "face"],
                   help="where an edit may act: the whole square, or only the latent cells of the face (outside "
                        "them the latent is the photo's, bit for bit)")


def run(args, progress: bool):
    """Build the edit protocol's config from the parsed ``args`` and run it (errors are the caller's)."""
    from ..errors import FineFaceError
    from .edit_generate import EditSettings
    from .edit_jobs import EditProtocol
    from .edit_run import EditConfig, evaluate_edits

    if not args.photos:
        raise FineFaceError("--protocol edit needs --photos DIR, a folder of face photos")
    aus = {} if args.aus is None else {"aus": tuple(args.aus)}
    protocol = EditProtocol(intensities=tuple(args.intensities), deltas=tuple(args.deltas),
                            neutral=not args.no_neutral, seed=args.seed, **aus)
    start = round(START_FRACTION * args.steps) if args.start_step is None else args.start_step
    settings = EditSettings(prompt=args.prompt, negative_prompt=args.negative_prompt, steps=args.steps,
                            start_step=start, guidance=args.guidance, scheduler=args.scheduler, size=args.size,
                            grow=args.grow, region=args.edit_region, au_scale=args.au_scale,
                            lora_strength=args.lora_strength)
    config = EditConfig(weights=list(args.weights), estimator=args.estimator, out=args.out, photos=args.photos,
                        protocol=protocol, settings=settings, identity=args.identity_model, base_model=args.base_model,
                        variant=args.variant, scale=args.scale, no_face=args.no_face, batch_size=args.batch_size,
                        limit=args.limit, device=args.device, dtype=args.dtype)
    return evaluate_edits(config, progress=progress)
