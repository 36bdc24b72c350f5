"""What can be checked before a base model is loaded: the base model folder, the output folder
(writable; holding another run?), the checkpoint to resume from and the dataset. A mistake found
here costs seconds, not the minutes of loading a model or the hours until it would show.
The options' own values are checked earlier, by ``config.parse_args``."""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field

from fineface_core.files.safe_write import NOT_A_FOLDER, write_problem

from .checkpoints import checkpoint_step, damaged_files, resolve_resume, scan_checkpoints
from .config import RUN_CONFIG_FILE
from .errors import TrainingError

BASE_MODEL_PARTS = ("scheduler", "tokenizer", "text_encoder", "vae", "unet")  # what load_base_model reads
# What a run writes into --output_dir that a new run would overwrite or mix with (besides the log).
RUN_OUTPUT_RE = re.compile(r"^(checkpoint-\d+(\.partial|\.deleting)?|fineface_\w+\.safetensors(\.partial)?|"
                           r"fineface_run\.json|validation)$")
LOG_FILE = "train_log.txt"
# Options that must match the checkpoint (the weights' shapes); and those that only change the batches.
SAME_SHAPE_OPTIONS = ("encoder", "encoder_hidden_dim", "lora_rank")
SAME_DATA_OPTIONS = ("train_batch_size", "gradient_accumulation_steps", "seed", "resolution")


@dataclass
class Plan:
    dataset: object = None
    resume: str | None = None  # checkpoint folder to resume from
    resume_step: int = 0
    move_aside: list = field(default_factory=list)  # names in output_dir that --overwrite_output_dir moves away
    notes: list = field(default_factory=list)  # lines for the log once it is set up
    warnings: list = field(default_factory=list)  # the same, as warnings


def preflight(args, num_processes: int = 1) -> Plan:
    """Check everything that needs no model; raise one TrainingError listing every problem found."""
    plan, problems = Plan(), []
    check_base_model(args.pretrained_model_name_or_path, problems)
    check_writable(args.output_dir, problems)
    check_resume(args, plan, problems)
    check_earlier_run(args, plan, problems)
    check_data_dir(args.train_data_dir, problems)
    if problems:
        raise TrainingError(problems[0] if len(problems) == 1 else
                            "cannot start training:\n" + "\n".join(f"  - {p}" for p in problems))
    plan.dataset = load_checked_dataset(args)
    n, total = len(plan.dataset), args.train_batch_size * num_processes
    if n < total:
        plan.warnings.append(f"the dataset has {n} usable samples, fewer than one batch ({total}): every "
                             f"step trains on those {n} (a smaller batch than asked)")
    return plan


def _first_few(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _unet_context_width(folder: str):
    try:
        with open(os.path.join(folder, "unet", "config.json"), encoding="utf-8") as f:
            return json.load(f).get("cross_attention_dim")
    except (OSError, ValueError, AttributeError):
        return None  # the loader names what is wrong with it


def check_base_model(name: str, problems: list) -> None:
    """A local folder must be a diffusers model; a hub id (org/name) is left to the loader."""
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        missing = [p for p in BASE_MODEL_PARTS if not os.path.isdir(os.path.join(path, p))]
        if missing:
            problems.append(f"--pretrained_model_name_or_path {name}: not a diffusers model folder (no "
                            f"{', '.join(missing)} subfolder); give a folder written by save_pretrained or a hub id")
        elif _unet_context_width(path) == 2048:
            missing = [p for p in ("tokenizer_2", "text_encoder_2") if not os.path.isdir(os.path.join(path, p))]
            if missing:
                problems.append(f"--pretrained_model_name_or_path {name}: an SDXL UNet without {', '.join(missing)}; "
                                "SDXL is trained with both of its text encoders: give the whole SDXL folder")
    elif os.path.exists(path):
        problems.append(f"--pretrained_model_name_or_path {name} is a file: give a diffusers model folder (a single "
                        ".safetensors checkpoint can be converted with diffusers' from_single_file + save_pretrained)")
    elif name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name:
        problems.append(f"--pretrained_model_name_or_path {name}: no such folder")


def check_writable(output_dir: str, problems: list) -> None:
    probe, why = write_problem(output_dir)
    if why == NOT_A_FOLDER:
        problems.append(f"--output_dir {output_dir}: {probe} is a file, not a folder")
    elif why:
        problems.append(f"--output_dir {output_dir}: cannot write in {probe} ({why})")


def check_data_dir(folder: str, problems: list) -> None:
    from .data.generic import metadata_path

    if not os.path.isdir(folder):
        problems.append(f"--train_data_dir {folder}: no such folder")
        return
    try:
        metadata_path(folder)
    except FileNotFoundError as exc:
        problems.append(f"--train_data_dir: {exc}")


def load_checked_dataset(args):
    from .data.generic import AUImageDataset

    try:
        return AUImageDataset(args.train_data_dir, resolution=args.resolution, center_crop=args.center_crop,
                              random_flip=args.random_flip, verify_images=not args.no_verify_images)
    except (ValueError, OSError) as exc:
        raise TrainingError(f"--train_data_dir: {exc}\n(see `python -m training.data check "
                            f"{args.train_data_dir}`)") from exc


def _inside(path: str, folder: str) -> bool:
    return os.path.abspath(os.path.dirname(os.path.abspath(path))) == os.path.abspath(folder)


def check_resume(args, plan: Plan, problems: list) -> None:
    value = args.resume_from_checkpoint
    if not value:
        return
    complete, incomplete = scan_checkpoints(args.output_dir)
    if value == "latest":
        if incomplete:
            plan.warnings.append("--resume_from_checkpoint latest: skipped incomplete checkpoint(s) "
                              + _first_few([f"{os.path.basename(p)} ({why})" for p, why in incomplete]))
        if not complete:
            plan.notes.append(f"no complete checkpoint in {args.output_dir} to resume from: starting a new run")
            return
        path = complete[-1][1]
    else:
        try:
            path = resolve_resume(value, args.output_dir)
        except FileNotFoundError as exc:
            problems.append(str(exc))
            return
    damaged = damaged_files(path)
    if damaged:
        older = [os.path.basename(p) for _, p in complete if p != path] if value == "latest" else []
        what = (f"move {os.path.basename(path)} out of {args.output_dir} (latest then resumes from {older[-1]})"
                if older else "resume from another checkpoint" if value != "latest" else
                f"move {os.path.basename(path)} out of {args.output_dir} to start anew")
        problems.append(f"--resume_from_checkpoint {value}: {path} is damaged, cut short or changed since it was "
                        f"saved: {_first_few(damaged)}; {what}")
        return
    try:
        step = checkpoint_step(path)
        with open(os.path.join(path, RUN_CONFIG_FILE)) as f:
            saved = json.load(f).get("args", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"--resume_from_checkpoint: {path}/{RUN_CONFIG_FILE} is unreadable ({exc}); resume from "
                        "another checkpoint")
        return

    def differs(names):
        return [f"--{n} {saved[n]} (now {getattr(args, n)})" for n in names if n in saved and saved[n] != getattr(args, n)]

    shape = differs(SAME_SHAPE_OPTIONS) + (differs(("lora_alpha",)) if args.lora_rank else [])
    if shape:
        problems.append(f"--resume_from_checkpoint: {path} was trained with {', '.join(shape)}; resume with the "
                        "checkpoint's values (its weights have that shape)")
    data = differs(SAME_DATA_OPTIONS)
    if data:
        plan.warnings.append(f"{path} was trained with {', '.join(data)}: the run continues, but not with the "
                          "batches an uninterrupted run would have seen")
    plan.resume, plan.resume_step = path, step


def _run_outputs(args) -> tuple[list[str], list[str]]:
    """(what an earlier run left in output_dir that a new run would mix with, its log files), names."""
    folder = args.output_dir
    if not os.path.isdir(folder):
        return [], []
    outputs, logs = [], []
    logging_top = os.path.normpath(args.logging_dir).split(os.sep)[0]
    for name in sorted(os.listdir(folder), key=_step_order):
        path = os.path.join(folder, name)
        if name == "validation" and not (os.path.isdir(path) and os.listdir(path)):
            continue
        if RUN_OUTPUT_RE.match(name):
            outputs.append(name + ("/" if os.path.isdir(path) else ""))
        elif name == LOG_FILE or (name == logging_top and not os.path.isabs(args.logging_dir) and name != ".."):
            logs.append(name + ("/" if os.path.isdir(path) else ""))
    return outputs, logs


def _step_order(name: str):
    m = re.match(r"^checkpoint-(\d+)", name)
    return (0, int(m.group(1)), name) if m else (1, 0, name)


def check_earlier_run(args, plan: Plan, problems: list) -> None:
    """A new run must not mix with another run's checkpoints (it would overwrite checkpoint-N and later
    resume the other run's newer ones): refuse, or with --overwrite_output_dir move them aside."""
    outputs, logs = _run_outputs(args)
    out = args.output_dir
    if args.resume_from_checkpoint == "latest":
        if args.overwrite_output_dir:
            problems.append("--overwrite_output_dir and --resume_from_checkpoint latest contradict each other: "
                            "give one (continue the run in --output_dir, or start a new one there)")
        return
    if args.resume_from_checkpoint and plan.resume is None:
        return  # the checkpoint asked for is missing: check_resume said so
    if plan.resume and _inside(plan.resume, out):
        if args.overwrite_output_dir:
            problems.append(f"--overwrite_output_dir would move away {plan.resume}, the checkpoint to resume from: "
                            "drop the flag")
            return
        newer = [os.path.basename(p) for s, p in scan_checkpoints(out)[0] if s > plan.resume_step]
        if newer:
            problems.append(f"--resume_from_checkpoint {plan.resume}: {out} holds newer checkpoints "
                            f"({_first_few(newer)}); this run would replace them as it reaches their steps, and "
                            "--resume_from_checkpoint latest would meanwhile pick them. Move them out of the folder "
                            "first, or resume from the newest (--resume_from_checkpoint latest)")
        return
    if not outputs:
        return
    if not args.overwrite_output_dir:
        problems.append(f"--output_dir {out} holds another run's files: {_first_few(outputs)}. A new run there "
                        "would overwrite some and later resume the others. Continue that run with "
                        "--resume_from_checkpoint latest, choose another --output_dir, or pass --overwrite_output_dir "
                        "to move them into a replaced-<date-time> folder first")
        return
    plan.move_aside = [n.rstrip("/") for n in outputs + logs]


def move_aside(output_dir: str, names: list[str]) -> str:
    """Move ``names`` (an earlier run's outputs) into a new ``output_dir/replaced-<date-time>``; returns it.
    Main process only, before anything of the new run is written."""
    dest = os.path.join(output_dir, "replaced-" + time.strftime("%Y%m%d-%H%M%S"))
    n = 1
    while os.path.exists(dest):
        n += 1
        dest = os.path.join(output_dir, "replaced-" + time.strftime("%Y%m%d-%H%M%S") + f"-{n}")
    os.makedirs(dest)
    for name in names:
        os.replace(os.path.join(output_dir, name), os.path.join(dest, name))
    return dest
