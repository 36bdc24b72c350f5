"""Writing files without ever losing one: the one atomic write, checked output paths, writable folders.

The durability policy, the same for every file the project writes (FineFace files, evaluation images and
records, latent-cache shards, checkpoints' files, the headless runner's --out copies): the data go to a
temporary ``.<name>.<random>.partial`` file in the destination's own folder, are flushed and fsynced, the
file gets the permissions an ordinary new file gets (the umask's; mkstemp makes it private) unless the
caller names others, ``os.replace`` puts it in place, and the folder is fsynced so that the rename survives
a power cut. A failure at any point removes the temporary file and leaves the destination as it was.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

from ..errors import WeightFileError

PARTIAL = ".partial"
NOT_A_FOLDER = "is a file, not a folder"  # write_problem's reason when the nearest existing path is a file


def file_mode() -> int:
    """What open() would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)  # Windows fsyncs only writable handles
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (folders cannot be opened, nor need this, on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def discard(tmp: str) -> None:
    try:
        os.remove(tmp)
    except OSError:
        pass


def stage(path: str, fill: Callable[[str], None], mode: int | None = None) -> str:
    """The first half of an atomic write: ``fill(tmp)`` writes the temporary file beside ``path``, which is
    then fsynced and given its permissions. Returns it for :func:`commit`; on failure nothing is left."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=PARTIAL)
    os.close(fd)
    try:
        fill(tmp)
        fsync_file(tmp)
        os.chmod(tmp, file_mode() if mode is None else mode)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def commit(tmp: str, path: str) -> None:
    """The second half: the staged file replaces ``path``, durably."""
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    fsync_folder(os.path.dirname(os.path.abspath(path)))


def write_atomically(path: str, fill: Callable[[str], None], mode: int | None = None) -> str:
    """``path`` written whole by ``fill(tmp)`` or not at all (OSError and fill's errors propagate)."""
    commit(stage(path, fill, mode), path)
    return path


def write_bytes(path: str, data: bytes, mode: int | None = None) -> str:
    def fill(tmp: str):
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()

    return write_atomically(path, fill, mode)


def nearest_existing(path: str) -> str:
    """``path`` or the closest path above it that exists (a finite walk up, never into links)."""
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def write_problem(folder: str) -> tuple[str, str | None]:
    """Can files be made in ``folder``, or in the folders that would be made down to it? Returns the nearest
    existing path and why not (:data:`NOT_A_FOLDER`, or the system's reason), or None as the reason when they
    can. Tried with a real temporary file: access() says yes to root everywhere, and knows nothing of
    read-only or special file systems (/proc, /sys)."""
    base = nearest_existing(folder)
    if not os.path.isdir(base):
        return base, NOT_A_FOLDER
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as e:
        return base, e.strerror or str(e)
    return base, None


def check_output_path(path: str, *, overwrite: bool, inputs: tuple[str, ...] = ()):
    """Refuse an output that is a folder, lies under a file or in a folder that takes no files, is one of
    ``inputs``, or exists (unless ``overwrite``): before any work, so that nothing is computed for nothing."""
    if os.path.isdir(path):
        raise WeightFileError(f"the output {path} is a folder; give a file name ending in .safetensors")
    base, why = write_problem(os.path.dirname(os.path.abspath(path)))
    if why == NOT_A_FOLDER:
        raise WeightFileError(f"cannot write {path}: {base} is a file, not a folder")
    if why:
        raise WeightFileError(f"cannot write {path}: no file can be made in {base} ({why})")
    if os.path.exists(path):
        for source in inputs:
            if os.path.exists(source) and os.path.samefile(path, source):
                raise WeightFileError(
                    f"the output {path} is one of the files being read ({source}); writing it would destroy the "
                    "input. Choose another output file."
                )
    if os.path.lexists(path) and not overwrite:
        raise WeightFileError(f"{path} already exists; choose another output file, or pass --overwrite to replace it")


def write_safetensors(tensors: dict, path: str, metadata: dict[str, str]) -> str:
    """A .safetensors file, atomically: a failed write leaves the previous file (if any) and nothing else."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    except (OSError, SafetensorError) as e:
        raise WeightFileError(f"could not write {path} ({e}); nothing was written") from None
