"""A tiny dataset folder and the trainer's options for whole-run tests (tests/test_training_safety.py);
the base model is tests/support/tiny_sd.py's."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from fineface_core.aus import AU_ORDER

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_dataset(folder: str, n: int = 8, seed: int = 0) -> str:
    """``n`` random 32 px images with random AU labels and ``metadata.jsonl``."""
    from training.data.generic import write_metadata

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(os.path.join(folder, f"img_{i}.png"))
        aus = rng.uniform(0, 5, len(AU_ORDER)) * (rng.random(len(AU_ORDER)) < 0.4)
        rows.append({"file": f"img_{i}.png", "caption": f"a photo of face {i}",
                     **{au: float(round(v, 2)) for au, v in zip(AU_ORDER, aus)}})
    write_metadata(folder, rows)
    return folder


def train_args(base_model: str, data: str, out, *extra) -> list[str]:
    """A CPU run at 32 px, batch 2, without validation or TensorBoard."""
    return ["--pretrained_model_name_or_path", str(base_model), "--train_data_dir", str(data), "--output_dir", str(out),
            "--resolution", "32", "--train_batch_size", "2", "--learning_rate", "1e-3", "--seed", "3",
            "--validation_steps", "0", "--report_to", "none", *[str(e) for e in extra]]


def trainer_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "training.train", *args]


def subprocess_env(**extra: str) -> dict:
    """Offline, one thread (several runs share the CPU), this checkout importable."""
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", **extra}


@contextmanager
def one_thread():
    """Torch on one thread: tiny models gain nothing from more, and where trainers run side by side on a
    busy CPU, two spinning OpenMP threads per process make each run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_two_processes(module: str, args, *, timeout: float, what: str, nproc: int = 2) -> str:
    """``python -m module args`` under torch.distributed.run on ``nproc`` CPU processes (gloo); its output.
    The launcher gets its own process group so that a hung run's workers die with it, and a hang fails the test
    saying ``what`` hung instead of stalling the suite."""
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", module, *map(str, args)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(ACCELERATE_USE_CPU="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{what} hung: " + out[-2000:] + err[-2000:]) from None
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return out + err

