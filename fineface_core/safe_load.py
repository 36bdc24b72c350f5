"""Reading tensors from files without ever running code from them.

A ``.ckpt`` is a Python pickle: unpickling an untrusted one can run arbitrary code. Pickles
are read only with ``torch.load(weights_only=True)``, which admits tensors and plain
containers and refuses everything else before it is constructed.
"""
from __future__ import annotations

import os
import pickle
import re

import torch
from safetensors import SafetensorError, safe_open

from .errors import WeightFileError


def _require_file(path: str, what: str):
    if not os.path.exists(path):
        raise WeightFileError(f"{what} not found: {path}")
    if not os.path.isfile(path):
        raise WeightFileError(f"{what} is not a file: {path}")
    if os.path.getsize(path) == 0:
        raise WeightFileError(f"{what} is empty (0 bytes): {path}. Download it again.")


def load_pickled_state_dict(path: str, what: str = "weight file") -> dict[str, torch.Tensor]:
    """A torch pickle holding a flat {name: tensor} dict, loaded with weights_only=True."""
    _require_file(path, what)
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
    return obj


def load_safetensors(path: str, what: str = "weight file") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a .safetensors file, with readable errors."""
    _require_file(path, what)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightFileError(
            f"{path} is not a readable .safetensors file ({str(e)[:300]}); it may be truncated or "
            "still downloading. Download it again."
        ) from None
    return tensors, metadata


def read_safetensors_metadata(path: str) -> dict[str, str]:
    _require_file(path, "weight file")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightFileError(f"{path} is not a readable .safetensors file ({str(e)[:300]})") from None
