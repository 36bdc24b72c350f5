"""models/fineface/: where users put FineFace weights (single files, official release folders or the release's files)."""
from __future__ import annotations

from fineface_core.weightfiles.loading import find_release_files, find_weights

from .model_folders import FINEFACE, folders

NOTHING = "(no FineFace weights in models/fineface)"


def fineface_dirs() -> list[str]:
    return folders(FINEFACE)


def weight_entries() -> dict[str, tuple[str, str]]:
    """Menu label -> (path, release variant)."""
    return find_weights(fineface_dirs())


def release_file_entries(kind: str) -> dict[str, str]:
    """Menu label (path under models/fineface) -> file, for one file of the release: 'au_encoder',
    'attn_processors' (pickles) or 'lora' (.safetensors)."""
    return find_release_files(fineface_dirs(), (".safetensors",) if kind == "lora" else (".ckpt", ".pt", ".pth", ".bin"))
