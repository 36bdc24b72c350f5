"""One writer per folder at a time: a training run per --output_dir, a build per --latent_cache folder.

Two runs in one output folder remove each other's checkpoint-N.partial and replace or prune each other's
checkpoints; two builds of one cache write the same shards' .partial files into each other. The lock is an
OS file lock (filelock), taken by the main process for its whole run: a killed process releases it, and
the lock file left behind means nothing."""
from __future__ import annotations

import os
from contextlib import contextmanager

from filelock import FileLock, Timeout

from .errors import TrainingError

RUN_LOCK = ".fineface_train.lock"  # in --output_dir
CACHE_LOCK = "build.lock"  # in --latent_cache


def take(folder: str, name: str) -> FileLock | None:
    """The held lock, or None when another process holds it."""
    os.makedirs(folder, exist_ok=True)
    lock = FileLock(os.path.join(folder, name))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


@contextmanager
def held(accelerator, folder: str, name: str, busy: str):
    """Hold ``folder``'s lock on the main process (the run's own processes work together); every process
    raises TrainingError(busy) when another run holds it."""
    from accelerate.utils import broadcast_object_list

    lock = take(folder, name) if accelerator.is_main_process else None
    refused = broadcast_object_list([accelerator.is_main_process and lock is None])[0]
    if refused:
        raise TrainingError(busy)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
