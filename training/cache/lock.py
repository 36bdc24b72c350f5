"""One writer per cache folder at a time. Two builds of one folder (two ``python -m training.cache build``,
or a build and a training run that builds what it lacks) compute the same shards under the same names: both
write one ``.partial`` file, and the shard left is a mix of the two, found damaged only later. The lock is an
OS file lock (filelock): a killed process releases it, and the lock file left behind means nothing."""
from __future__ import annotations

import os

from filelock import FileLock, Timeout

LOCK_FILE = "build.lock"


def take(folder: str) -> tuple[FileLock | None, str | None]:
    """(the held lock, None) or (None, why not): another process holds it."""
    lock = FileLock(os.path.join(folder, LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None, (f"--latent_cache {folder} is being built or checked by another process (a `python -m "
                      "training.cache build` or a training run with --latent_cache): wait until it has finished, "
                      "then run again (what it built is kept and used), or give another --latent_cache folder")
    return lock, None
