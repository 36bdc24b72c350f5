"""Writing a weight file without ever losing one: checked output paths, atomic replacement."""
from __future__ import annotations

import os
import tempfile

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from ..errors import WeightFileError


def check_output_path(path: str, *, overwrite: bool, inputs: tuple[str, ...] = ()):
    """Refuse an output that is a folder, lies under a file, is one of ``inputs``, or exists (unless ``overwrite``)."""
    if os.path.isdir(path):
        raise WeightFileError(f"the output {path} is a folder; give a file name ending in .safetensors")
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise WeightFileError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if os.path.exists(path):
        for source in inputs:
            if os.path.exists(source) and os.path.samefile(path, source):
                raise WeightFileError(
                    f"the output {path} is one of the files being read ({source}); writing it would destroy the "
                    "input. Choose another output file."
                )
    if os.path.lexists(path) and not overwrite:
        raise WeightFileError(f"{path} already exists; choose another output file, or pass --overwrite to replace it")


def write_safetensors(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str]) -> str:
    """Write through a temporary file in the same folder and rename it into place: a failed write leaves the
    previous file (if any) untouched and nothing else behind."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    except OSError as e:
        raise WeightFileError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o666 & ~_umask())  # written private (mkstemp, safetensors); a weight file is an ordinary file
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, (OSError, SafetensorError)):
            raise WeightFileError(f"could not write {path} ({e}); nothing was written") from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
