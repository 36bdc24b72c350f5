"""The pack's model folders in ComfyUI's folder_paths: models/fineface (FineFace weights) and models/libreface
(LibreFace's AU model), registered once when the pack is imported.

A folder already registered (by extra_model_paths.yaml) keeps its paths and gets the pack's file kinds, as
IPAdapter_plus does with models/ipadapter. ``folders`` registers a folder again where it is gone: the headless
runner puts folder_paths back as it found it after each render, and a process that renders twice imports the
pack once.

This module imports folder_paths and fineface_core only, and nothing relative, so that the headless runner can
load it from its file (workflows/aus_from_photo.py): there the name ``nodes`` is ComfyUI's nodes.py, and this
package is only reachable inside the pack that ComfyUI imports from its folder.
"""
from __future__ import annotations

import os

import folder_paths

from fineface_core.faces.libreface import EXTENSIONS as LIBREFACE_EXTENSIONS

FINEFACE, LIBREFACE = "fineface", "libreface"
FOLDERS = {
    # Every weight file kind, so that the front end's model list (and its missing-models check) sees the
    # release's .ckpt files as well as .safetensors.
    FINEFACE: frozenset({".safetensors", ".ckpt", ".pt", ".pth", ".bin"}),
    LIBREFACE: frozenset(LIBREFACE_EXTENSIONS),
}


def register():
    for name, kinds in FOLDERS.items():
        folders(name)
        paths, known = folder_paths.folder_names_and_paths[name]
        if not kinds <= set(known):
            folder_paths.folder_names_and_paths[name] = (paths, set(known) | kinds)
            cache = getattr(folder_paths, "filename_list_cache", None)
            if isinstance(cache, dict):
                cache.pop(name, None)  # listed with the old file kinds


def folders(name: str) -> list[str]:
    """The folders of models/<name> (``FINEFACE`` or ``LIBREFACE``), registered here where it is not."""
    if name not in folder_paths.folder_names_and_paths:
        folder_paths.folder_names_and_paths[name] = ([os.path.join(folder_paths.models_dir, name)], set(FOLDERS[name]))
    return list(folder_paths.folder_names_and_paths[name][0])
