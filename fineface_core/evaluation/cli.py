"""``python -m fineface_core.evaluate``: the FineFace paper's evaluation (Section 5, Tables 1-2) for your
weights, plus linearity, cross-talk and identity similarity.

    python -m fineface_core.evaluate --weights ours=models/fineface/fineface_sd21.safetensors \\
        --estimator models/libreface/resnet.pt --out eval/ours

Run the same command again to resume: images and measurements already in --out are kept.
"""
from __future__ import annotations

import argparse
import os
import sys

# torch, diffusers and the modules that use them are imported once the arguments are read and checked
# (seconds on a loaded machine): --help and a mistyped option answer at once.
from ..errors import FineFaceError
from . import edit_cli
from . import options as o


def _numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers separated by commas, such as 1,2,3,4,5") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one number")
    return values


def _aus(text: str) -> tuple[str, ...]:
    return tuple(a.strip().upper() if a.strip().upper().startswith("AU") else f"AU{a.strip()}"
                 for a in text.split(",") if a.strip())


def _weights(text: str) -> tuple[str, str]:
    """NAME=PATH, or PATH (named after the file or folder)."""
    if "=" in text and not os.path.exists(text):
        label, path = text.split("=", 1)
        return label.strip(), path
    stem = os.path.basename(os.path.normpath(text))
    return (stem[: -len(".safetensors")] if stem.endswith(".safetensors") else stem), text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fineface_core.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    need = p.add_argument_group("what to evaluate")
    need.add_argument("--protocol", default="generation", choices=["generation", "edit"],
                      help="generation: the paper's (prompts x AUs, new images); edit: exact edits of the faces in "
                           "--photos (see below)")
    need.add_argument("--weights", type=_weights, nargs="+", required=True, metavar="[NAME=]PATH",
                      help="FineFace weights (a .safetensors file or an official release folder); several are "
                           "compared in one table, one row each")
    need.add_argument("--estimator", required=True,
                      help="LibreFace's AU intensity checkpoint (resnet.pt or combined_resnet.pt), the paper's "
                           "estimator")
    need.add_argument("--out", required=True, help="output folder (created; an earlier run's folder is resumed)")
    need.add_argument("--base-model", default=None,
                      help="diffusers folder or hub id of the base model; default: the weights' family's, "
                           f"{o.BASE_MODELS['sd21']} (as the paper) for SD 2.x weights, {o.BASE_MODELS['sd15']} for "
                           f"SD 1.x, {o.BASE_MODELS['sdxl']} for SDXL")
    need.add_argument("--variant", default="auto", choices=["auto", "sd21", "sd15", "sdxl"],
                      help="which variant of an official release folder to read (SDXL has no official release: "
                           "give the .safetensors file python -m training.export wrote)")
    need.add_argument("--clip", default=o.CLIP,
                      help="CLIP model for CLIP-I: transformers folder or hub id (default: %(default)s)")
    need.add_argument("--identity-model", default=None,
                      help="optional face-recognition model for identity similarity: a transformers image model "
                           "folder (config.json, model.safetensors, preprocessor_config.json); see docs/evaluation.md")

    proto = p.add_argument_group("protocol (defaults: the paper's)")
    proto.add_argument("--prompts", default=o.PROMPTS_FILE,
                       help="text file, one prompt per line (default: the shipped 15)")
    proto.add_argument("--aus", type=_aus, default=None, help="AUs tested one by one (default: all 12)")
    proto.add_argument("--intensities", type=_numbers, default=o.INTENSITIES,
                       help="intensities of the single-AU images (default: 1,2,3,4,5)")
    proto.add_argument("--combinations", type=int, default=o.COMBINATIONS, help="random combinations per prompt")
    proto.add_argument("--combination-size", type=int, nargs=2, default=o.COMBINATION_SIZE,
                       metavar=("FEWEST", "MOST"), help="AUs per combination (default: 2 5)")
    proto.add_argument("--combination-intensities", type=_numbers, default=o.INTENSITIES,
                       help="intensities drawn for combined AUs (default: 1,2,3,4,5)")
    proto.add_argument("--combination-seed", type=int, default=0, help="seed of the combinations' draw")
    proto.add_argument("--seed", type=int, default=0, help="prompt i's images use seed + i")

    gen = p.add_argument_group("generation")
    gen.add_argument("--steps", type=int, default=o.STEPS)
    gen.add_argument("--guidance", type=float, default=o.GUIDANCE)
    gen.add_argument("--size", "--resolution", type=int, default=None,
                     help="image side in pixels (default: the base model's own, 512 for SD 2.x / 1.x weights as "
                          "the paper, 1024 for SDXL)")
    gen.add_argument("--negative-prompt", default="")
    gen.add_argument("--au-scale", type=float, default=None, help="lambda_AU (default: the weights' own, 1.0)")
    gen.add_argument("--lora-strength", type=float, default=1.0)

    meas = p.add_argument_group("measuring")
    meas.add_argument("--scale", choices=o.SCALES, default="raw",
                      help="LibreFace's readings raw (the paper) or on FineFace's training-label scale")
    meas.add_argument("--no-face", choices=o.NO_FACE, default="skip",
                      help="an image where no face is found: no AU reading (counted in the table), or read whole")

    run = p.add_argument_group("running")
    run.add_argument("--limit", type=int, default=None, help="only this many AU images per weights file, spread "
                                                             "over the protocol (a quick look); with --protocol "
                                                             "edit: only the first this many photos")
    run.add_argument("--batch-size", type=int, default=4)
    run.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda, cuda:1, ...")
    run.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                     help="auto: fp16 on a GPU, fp32 on a CPU")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    edit_cli.add_arguments(p, _numbers)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        o.check_labels(list(args.weights))
        o.check_numbers(steps=args.steps, size=args.size, guidance=args.guidance, au_scale=args.au_scale,
                        lora_strength=args.lora_strength, batch_size=args.batch_size, limit=args.limit,
                        seed=args.seed, combination_seed=args.combination_seed)
    except FineFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import torch

    from .generate import Generation
    from .protocol import Protocol, read_prompts
    from .run import Config, evaluate

    try:
        if args.protocol == "edit":
            outcome = edit_cli.run(args, progress=not args.quiet)
            return _report(args, outcome, ("edited", "editing"))
        aus = {} if args.aus is None else {"aus": tuple(args.aus)}
        protocol = Protocol(read_prompts(args.prompts), intensities=tuple(args.intensities),
                            combinations=args.combinations, combination_size=tuple(args.combination_size),
                            combination_intensities=tuple(args.combination_intensities),
                            combination_seed=args.combination_seed, seed=args.seed, **aus)
        generation = Generation(args.steps, args.guidance, args.size, args.negative_prompt, args.au_scale,
                                args.lora_strength)
        config = Config(weights=list(args.weights), estimator=args.estimator, out=args.out, protocol=protocol,
                        clip=args.clip, identity=args.identity_model, base_model=args.base_model,
                        variant=args.variant, generation=generation, scale=args.scale, no_face=args.no_face,
                        batch_size=args.batch_size, limit=args.limit, device=args.device, dtype=args.dtype)
        outcome = evaluate(config, progress=not args.quiet)
    except FineFaceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except torch.cuda.OutOfMemoryError:
        print(f"error: out of GPU memory at --batch-size {args.batch_size}; run again with a smaller --batch-size "
              f"(what was finished is kept in {args.out})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: what was finished is kept in {args.out}; run the same command again to resume",
              file=sys.stderr)
        return 130
    return _report(args, outcome, ("generated", "generating"))


def _report(args, outcome, words: tuple[str, str]) -> int:
    made, making = words
    from .processes import launched

    if outcome.table:  # the main process' (under a launcher the others only say what they did)
        print(outcome.table)
    who = "by this process" if launched() else "this run"
    print(f"{outcome.generated} images {made}, {outcome.measured} measured {who}; results in {args.out} "
          "(results.csv, summary.md, plots/)")
    for what, n, seconds in ((making, outcome.generated, outcome.generate_seconds),
                             ("measuring", outcome.measured, outcome.measure_seconds)):
        if n:
            print(f"{what}: {seconds:.0f} s, {100 * seconds / n:.0f} s per 100 images (model loading included)")
    return 0
