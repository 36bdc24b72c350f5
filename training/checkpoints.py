"""Resumable checkpoints that hold FineFace's trainable weights only (never the frozen UNet).

A checkpoint folder ``checkpoint-<global step>`` holds what ``accelerator.save_state`` writes
(optimizer, lr scheduler, gradient scaler, RNG states, registered objects such as the training
random generator) plus, from the save hook here:

- ``fineface_trainable.safetensors``: AU encoder, au_to_k / au_to_v and LoRA, in fp32, written as
  this project's FineFace file (so ``fineface_core.weightfiles.loading.load_weights`` reads it directly);
- ``fineface_run.json``: how the weights were made (base model, family, encoder, LoRA rank and
  alpha, global step, ...).

A checkpoint is written under ``checkpoint-<step>.partial`` and renamed when complete; old ones are
pruned only after that, through a ``.deleting`` rename. So a run killed at any moment of saving or
pruning keeps its newest complete checkpoint, and ``--resume_from_checkpoint latest`` never picks a
half one (see ``save_checkpoint``).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal

import torch

from fineface_core.files.safe_write import fsync_file, fsync_folder, write_bytes
from fineface_core.reference import ADAPTER_NAME, extract_weights
from fineface_core.weightfiles.single_file import load_fineface, save_fineface

from .config import RUN_CONFIG_FILE, TRAINABLE_FILE
from .finite import check_weights_finite

logger = logging.getLogger("training")


# -- the trainable weights ------------------------------------------------------------------------

def unwrap(model):
    """The FineFaceTrainModel under DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def to_weights(model, source: str = ""):
    """FineFaceWeights (fp32 copies) of a FineFaceTrainModel's current trainable state."""
    model = unwrap(model)
    return extract_weights(model.unet, model.au_encoder, lora_alpha=model.lora_alpha if model.lora_rank else None,
                           source=source, lambda_au=model.lambda_au, include_au_to_k=True)


def save_trainable(model, folder: str, run_config: dict, source: str = "") -> str:
    weights = to_weights(model, source=source)
    check_weights_finite(weights, os.path.join(folder, TRAINABLE_FILE))
    os.makedirs(folder, exist_ok=True)
    path = save_fineface(weights, os.path.join(folder, TRAINABLE_FILE), include_au_to_k=True)
    write_bytes(os.path.join(folder, RUN_CONFIG_FILE), json.dumps(run_config, indent=2, sort_keys=True).encode())
    return path


@torch.no_grad()
def load_trainable(model, folder: str):
    """Copy the trainable weights saved in ``folder`` into ``model`` (strict: every part must fit)."""
    model = unwrap(model)
    weights = load_fineface(os.path.join(folder, TRAINABLE_FILE))
    # Encoder.
    enc_state = weights.encoder.state_dict()
    own = model.au_encoder.state_dict()
    if set(enc_state) != set(own) or weights.encoder.config() != model.au_encoder.config():
        raise ValueError(f"{folder}: the checkpoint's AU encoder {weights.encoder.config()} does not match the run's "
                         f"{model.au_encoder.config()}")
    model.au_encoder.load_state_dict(enc_state)
    # Adapter.
    procs = model.au_processors()
    if set(procs) != set(weights.au_to_v) or set(procs) != set(weights.au_to_k):
        raise ValueError(f"{folder}: the checkpoint's AU adapter layers do not match the UNet's")
    for path, proc in procs.items():
        proc.au_to_k.weight.copy_(weights.au_to_k[path])
        proc.au_to_v.weight.copy_(weights.au_to_v[path])
    # LoRA.
    if model.lora_rank:
        if weights.lora is None or weights.lora.rank != model.lora_rank:
            raise ValueError(f"{folder}: the checkpoint has no rank-{model.lora_rank} LoRA")
        from peft import set_peft_model_state_dict

        state = {}
        for path in weights.lora.down:
            state[f"{path}.lora_A.weight"] = weights.lora.down[path]
            state[f"{path}.lora_B.weight"] = weights.lora.up[path]
        result = set_peft_model_state_dict(model.unet, state, adapter_name=ADAPTER_NAME)
        if getattr(result, "unexpected_keys", None):
            raise ValueError(f"{folder}: LoRA keys that do not fit the UNet: {result.unexpected_keys[:3]}")
        n_lora = sum(1 for n, _ in model.unet.named_parameters() if ".lora_A." in n)
        if n_lora != len(state) // 2:
            raise ValueError(f"{folder}: the checkpoint has {len(state) // 2} LoRA layers, the UNet {n_lora}")
    elif weights.lora is not None:
        raise ValueError(f"{folder}: the checkpoint has a LoRA but this run has --lora_rank 0")
    return weights


def register_hooks(accelerator, run_config_fn, rng: "TrainingRandom | None" = None):
    """Make ``accelerator.save_state`` / ``load_state`` store only the trainable weights of the
    model (main process) and each process's training random stream (``training_random_<rank>.pt``)."""

    def save_hook(models, weights, output_dir):
        os.makedirs(output_dir, exist_ok=True)
        if accelerator.is_main_process:
            for model in models:
                save_trainable(model, output_dir, run_config_fn(), source=os.path.basename(output_dir))
        if rng is not None:
            torch.save(rng.state_dict(), os.path.join(output_dir, f"training_random_{accelerator.process_index}.pt"))
        # Accelerate would otherwise save the whole model, frozen UNet included.
        while weights:
            weights.pop()

    def load_hook(models, input_dir):
        while models:
            load_trainable(models.pop(), input_dir)
        if rng is not None:
            path = os.path.join(input_dir, f"training_random_{accelerator.process_index}.pt")
            if os.path.isfile(path):
                rng.load_state_dict(torch.load(path, weights_only=True))
            else:
                logger.warning("%s has no random state for process %d (another number of processes?): the noise and "
                               "timesteps after resuming will differ from an uninterrupted run", input_dir,
                               accelerator.process_index)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


# -- folders --------------------------------------------------------------------------------------

TMP_SUFFIX = ".partial"  # a checkpoint being written
TRASH_SUFFIX = ".deleting"  # a checkpoint being removed (pruned or replaced)
# Files a checkpoint needs to resume: ours and accelerate's (random_states_*.pkl are optional to it).
REQUIRED_FILES = (TRAINABLE_FILE, RUN_CONFIG_FILE, "optimizer.bin", "scheduler.bin")
CHECKPOINT_ANY_RE = re.compile(r"^checkpoint-(\d+)(\.partial|\.deleting)?$")
# Test hook: "<point>" or "<point>:<step>" makes this process SIGKILL itself there (tests/test_training_safety.py);
# with KILL_SIGNAL_ENV=SIGINT it gets a Ctrl-C there instead.
KILL_ENV = "FINEFACE_TEST_KILL_AT"
KILL_SIGNAL_ENV = "FINEFACE_TEST_KILL_SIGNAL"


def kill_point(point: str, step: int) -> None:
    if os.environ.get(KILL_ENV) in (point, f"{point}:{step}"):
        os.kill(os.getpid(), getattr(signal, os.environ.get(KILL_SIGNAL_ENV, "SIGKILL"), signal.SIGTERM))


def missing_files(path: str) -> list[str]:
    return [f for f in REQUIRED_FILES if not os.path.isfile(os.path.join(path, f))]


def damaged_files(path: str) -> list[str]:
    """Files of a checkpoint that do not read whole, each with why: a checkpoint is renamed into place only
    when complete, so these were cut short or changed afterwards (a disk error, a copy or sync cut short).
    torch's files are zip archives (their checksums are read); a safetensors file's header must cover it."""
    import zipfile

    from safetensors import safe_open

    found = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        try:
            if name.endswith(".safetensors"):
                with safe_open(full, framework="pt"):
                    pass
            elif name.endswith((".bin", ".pt", ".pkl")):
                with open(full, "rb") as f:
                    if f.read(4) != b"PK\x03\x04":  # not torch's zip format: nothing to check here
                        if name in REQUIRED_FILES or name.endswith(".pt"):
                            found.append(f"{name} (not a torch file)")
                        continue
                with zipfile.ZipFile(full) as z:
                    bad = z.testzip()
                if bad:
                    found.append(f"{name} ({bad} in it fails its checksum)")
        except Exception as exc:  # zipfile, safetensors and OSError each raise their own kinds
            found.append(f"{name} ({str(exc).splitlines()[0][:120] or type(exc).__name__})")
    return found


def scan_checkpoints(output_dir: str) -> tuple[list[tuple[int, str]], list[tuple[str, str]]]:
    """(complete checkpoints as (step, path), oldest first; incomplete ones as (path, why))."""
    complete, incomplete = [], []
    if not os.path.isdir(output_dir):
        return complete, incomplete
    for name in sorted(os.listdir(output_dir)):
        m = CHECKPOINT_ANY_RE.match(name)
        path = os.path.join(output_dir, name)
        if not m or not os.path.isdir(path):
            continue
        missing = missing_files(path)
        if m.group(2) == TMP_SUFFIX:
            incomplete.append((path, "an interrupted save"))
        elif m.group(2) == TRASH_SUFFIX:
            incomplete.append((path, "an interrupted removal"))
        elif missing:
            incomplete.append((path, f"no {', '.join(missing)}"))
        else:
            complete.append((int(m.group(1)), path))
    return sorted(complete), incomplete


def list_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """Complete checkpoints in ``output_dir`` as (step, path), oldest first."""
    return scan_checkpoints(output_dir)[0]


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """``latest`` -> newest complete checkpoint in output_dir (None when there is none); a path -> that path."""
    if not value:
        return None
    if value == "latest":
        found = list_checkpoints(output_dir)
        return found[-1][1] if found else None
    candidates = list(dict.fromkeys([value, os.path.join(output_dir, value)]))
    if os.path.normpath(value).endswith((TMP_SUFFIX, TRASH_SUFFIX)):
        raise FileNotFoundError(f"--resume_from_checkpoint {value}: an interrupted save or removal, not a checkpoint; "
                                "resume from a checkpoint-N folder, or 'latest'")
    for path in candidates:
        if os.path.isdir(path) and not missing_files(path):
            return path
    for path in candidates:
        if os.path.isdir(path):
            parent = os.path.dirname(os.path.abspath(path))
            others = [os.path.basename(p) for _, p in list_checkpoints(parent)]
            raise FileNotFoundError(f"--resume_from_checkpoint {value}: {path} is not a complete checkpoint (no "
                                    f"{', '.join(missing_files(path))}); complete ones in {parent}: "
                                    f"{', '.join(others) or 'none'}")
    raise FileNotFoundError(f"--resume_from_checkpoint {value}: no such folder (looked for {' and '.join(candidates)}); "
                            "give a checkpoint-N folder, or 'latest'")


def checkpoint_step(path: str) -> int:
    with open(os.path.join(path, RUN_CONFIG_FILE)) as f:
        return int(json.load(f)["global_step"])


def _fsync_tree(folder: str) -> None:
    """Flush a finished checkpoint to disk before the rename makes it count (a power cut, not only a kill):
    accelerate writes its files in place, so the folder rename is this checkpoint's atomic step, with
    files.safe_write's durability (each file fsynced, then the folders)."""
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_file(os.path.join(root, name))
        fsync_folder(root)


def _set_aside(path: str) -> str:
    """Rename a checkpoint to ``.deleting`` before deleting it, so that a kill while deleting never leaves
    a checkpoint-N that looks complete but is half gone."""
    trash = path + TRASH_SUFFIX
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(path, trash)
    return trash


def _delete(trash: str, step: int) -> None:
    names = sorted(os.listdir(trash))
    if names and os.environ.get(KILL_ENV):  # the test hook's "mid_prune": killed with the folder half deleted
        os.remove(os.path.join(trash, names[0]))
        kill_point("mid_prune", step)
    shutil.rmtree(trash)


def prune(output_dir: str, keep: int | None, step: int = 0):
    """Delete the oldest complete checkpoints so that the newest ``keep`` remain, and the leftovers of
    interrupted saves and removals. Called after a checkpoint is complete, never before."""
    found, incomplete = scan_checkpoints(output_dir)
    for path, why in incomplete:
        if path.endswith((TMP_SUFFIX, TRASH_SUFFIX)):
            logger.info("removing %s (%s)", path, why)
            shutil.rmtree(path, ignore_errors=True)
    if keep is None:
        return
    for _, path in found[: max(len(found) - keep, 0)]:
        logger.info("removing old checkpoint %s (--checkpoints_total_limit %d)", path, keep)
        _delete(_set_aside(path), step)


def save_checkpoint(accelerator, output_dir: str, global_step: int, total_limit: int | None) -> str:
    """``accelerator.save_state`` into ``checkpoint-N.partial``, renamed to ``checkpoint-N`` when complete;
    only then are old checkpoints pruned. A kill at any point leaves the newest complete checkpoint
    in place for ``--resume_from_checkpoint latest``. Call on every process."""
    final = os.path.join(output_dir, f"checkpoint-{global_step}")
    tmp = final + TMP_SUFFIX
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(tmp)
    except (OSError, RuntimeError, ValueError) as exc:  # torch reports a full disk as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)  # the space it took, for the user's next try
        raise save_failed(output_dir, f"checkpoint-{global_step}", exc) from exc
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _fsync_tree(tmp)
        kill_point("after_tmp_write", global_step)
        replaced = _set_aside(final) if os.path.isdir(final) else None  # the same step saved again
        os.replace(tmp, final)
        if replaced:
            _delete(replaced, global_step)
        fsync_folder(output_dir)
        logger.info("saved checkpoint %s", final)
        kill_point("after_rename", global_step)
        prune(output_dir, total_limit, global_step)
    accelerator.wait_for_everyone()
    return final


def save_failed(output_dir: str, what: str, exc: BaseException):
    """The error for a checkpoint or the final weights that could not be written: what is kept, what to do."""
    from .errors import TrainingError

    found = list_checkpoints(output_dir)
    try:
        free = f"{shutil.disk_usage(output_dir).free / 2**20:.0f} MiB free there"
    except OSError:
        free = "free space unknown"
    kept = (f"the newest complete checkpoint, {found[-1][1]}, is kept" if found else
            "no checkpoint had been saved yet")
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return TrainingError(f"could not write {what} in {output_dir} ({first}; {free}): is the disk full? No "
                         f"checkpoint was lost: {kept}. Free some space (or lower --checkpoints_total_limit), then "
                         "continue with --resume_from_checkpoint latest")


# -- the training random stream -------------------------------------------------------------------

class TrainingRandom:
    """The generator for noise, timesteps, VAE sampling, AU smoothing and caption dropout.

    Its state goes into every checkpoint (one file per process, see ``register_hooks``), so a resumed
    run draws exactly the numbers an uninterrupted run would have drawn, independently of the
    global RNG that data loading consumes. Each process gets its own stream (seed + rank).
    """

    def __init__(self, seed: int, device, process_index: int = 0):
        device = torch.device(device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(seed) * 1000 + int(process_index) + 1)

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"].cpu())
