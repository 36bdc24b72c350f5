"""models/fineface/: where users put FineFace weights (single files or official release folders)."""
from __future__ import annotations

import os

import folder_paths

from fineface_core.loading import find_weights

FOLDER = "fineface"
NOTHING = "(no FineFace weights in models/fineface)"


def fineface_dirs() -> list[str]:
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[FOLDER] = ([os.path.join(folder_paths.models_dir, FOLDER)], {".safetensors"})
    return list(folder_paths.folder_names_and_paths[FOLDER][0])


def weight_entries() -> dict[str, tuple[str, str]]:
    """Menu label -> (path, release variant)."""
    return find_weights(fineface_dirs())
