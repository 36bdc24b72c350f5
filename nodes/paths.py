"""models/fineface/: where users put FineFace weights (single files, official release folders or the release's files)."""
from __future__ import annotations

import os

import folder_paths

from fineface_core.weightfiles.loading import find_release_files, find_weights

FOLDER = "fineface"
NOTHING = "(no FineFace weights in models/fineface)"
# Every weight file kind is listed, so that the front end's model list (and its missing-models check) sees
# the release's .ckpt files as well as .safetensors.
EXTENSIONS = {".safetensors", ".ckpt", ".pt", ".pth", ".bin"}


def fineface_dirs() -> list[str]:
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[FOLDER] = ([os.path.join(folder_paths.models_dir, FOLDER)], set(EXTENSIONS))
    return list(folder_paths.folder_names_and_paths[FOLDER][0])


def weight_entries() -> dict[str, tuple[str, str]]:
    """Menu label -> (path, release variant)."""
    return find_weights(fineface_dirs())


def release_file_entries(kind: str) -> dict[str, str]:
    """Menu label (path under models/fineface) -> file, for one file of the release: 'au_encoder',
    'attn_processors' (pickles) or 'lora' (.safetensors)."""
    return find_release_files(fineface_dirs(), (".safetensors",) if kind == "lora" else (".ckpt", ".pt", ".pth", ".bin"))
