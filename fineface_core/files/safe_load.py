"""Reading tensors from files without ever running code from them.

A ``.ckpt`` is a Python pickle: unpickling an untrusted one can run arbitrary code. Pickles
are read only with ``torch.load(weights_only=True)``, which admits tensors and plain
containers and refuses everything else before it is constructed.

Every tensor read here passes ``tensor_checks.check_tensors`` (precision policy, NaN / inf).
"""
from __future__ import annotations

import os
import pickle
import re

import torch
from safetensors import SafetensorError, safe_open

from ..errors import WeightFileError
from .tensor_checks import check_tensors

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
_SNIFF = 1024


def require_file(path: str, what: str, where_to_get: str = ""):
    """A present, non-empty file that is not a Git LFS pointer or a saved web page; ``where_to_get`` ends the
    message of a missing file."""
    if not os.path.exists(path):
        raise WeightFileError(f"{what} not found: {path}" + (f". {where_to_get}" if where_to_get else ""))
    if not os.path.isfile(path):
        raise WeightFileError(f"{what} is not a file: {path}" + (f". {where_to_get}" if where_to_get else ""))
    if os.path.getsize(path) == 0:
        raise WeightFileError(f"{what} is empty (0 bytes): {path}. Download it again.")
    refuse_non_weights(path)


def refuse_non_weights(path: str):
    """Name the usual stand-ins for a weight file: a Git LFS pointer, a web page, other text."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError as e:
        raise WeightFileError(f"cannot read {path}: {e.strerror}") from None
    if head.startswith(LFS_POINTER):
        raise WeightFileError(
            f"{path} is a Git LFS pointer ({os.path.getsize(path)} bytes), not the weights: download the real file "
            "(`git lfs pull` in the cloned repository, or the download button on the Hugging Face page)."
        )
    # Weight files start with binary bytes (a safetensors header length, a zip or pickle opcode).
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:
            return
        text = head[: e.start].decode("utf-8")  # a character cut at the end of the sample
    if any(c < " " and c not in "\t\r\n" for c in text):
        return
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html", "<head", "<?xml")):
        raise WeightFileError(
            f"{path} is a web page (HTML), not weights: the download saved an error or sign-in page. Download the "
            "file again (on Hugging Face, the download button of the file, not its page)."
        )
    first = text.strip().splitlines()[0][:80] if text.strip() else ""
    raise WeightFileError(f"{path} is a text file ({first!r}), not weights: the download failed. Download it again.")


def load_pickled_state_dict(path: str, what: str = "weight file") -> dict[str, torch.Tensor]:
    """A torch pickle holding a flat {name: tensor} dict, loaded with weights_only=True."""
    require_file(path, what)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refused a global: the file wants to build objects (or run code).
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        wants = f" (it asks for {found.group(1)})" if found else ""
        raise WeightFileError(
            f"refused to load {path}: it is a pickle that needs more than tensors to load{wants}, and "
            "loading it could run code. Nothing from it was executed. Use the official release files "
            "or a FineFace .safetensors file."
        ) from None
    except (EOFError, RuntimeError, OSError, ValueError, KeyError) as e:
        raise WeightFileError(
            f"cannot read {path} as a torch checkpoint ({type(e).__name__}: {str(e)[:300]}); "
            "it may be truncated or not a checkpoint. Download it again."
        ) from None
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise WeightFileError(f"{path} does not hold a state dict (a mapping of names to tensors); found {type(obj).__name__}")
    return check_tensors(obj, path)


# What a file under a .safetensors name may really be: its first bytes name it.
OTHER_FORMATS = ((b"PK\x03\x04", "a torch checkpoint (a zip archive, as torch.save writes)"),
                 (b"\x80", "a Python pickle (an old torch checkpoint)"))


def _unreadable(path: str, e: Exception) -> WeightFileError:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        head = b""
    for magic, what in OTHER_FORMATS:
        if head.startswith(magic):
            return WeightFileError(
                f"{path} is {what} under a .safetensors name, not a safetensors file: give the .safetensors file "
                "itself (FineFace's own format), or the official release folder for its .ckpt files."
            )
    return WeightFileError(
        f"{path} is not a readable .safetensors file ({str(e)[:300]}); it may be truncated or "
        "still downloading. Download it again."
    )


def read_safetensors_header(path: str, what: str = "weight file") -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """Metadata and tensor shapes of a .safetensors file, without reading a tensor."""
    require_file(path, what)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return dict(f.metadata() or {}), {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _unreadable(path, e) from None


def load_safetensors(path: str, what: str = "weight file") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (checked) and the metadata of a .safetensors file, with readable errors."""
    require_file(path, what)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _unreadable(path, e) from None
    return check_tensors(tensors, path), metadata


def read_safetensors_metadata(path: str) -> dict[str, str]:
    return read_safetensors_header(path)[0]
