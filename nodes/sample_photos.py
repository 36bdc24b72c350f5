"""The sample photos the shipped workflows' Load Image nodes name, put into ComfyUI's input folder.

A workflow that names a photo the input folder lacks opens with an empty Load Image node. The pack ships its
photos in input/ (scikit-image's astronaut, NASA's public-domain portrait of Eileen Collins, and a two-face
picture made from it) and, when ComfyUI's server starts, copies each one the input folder does not hold yet:
a file of that name already there is never replaced, whatever it holds.
"""
from __future__ import annotations

import logging
import os
import sys

from fineface_core.files.safe_write import write_bytes

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "input")


def sample_names() -> list[str]:
    return sorted(n for n in os.listdir(SAMPLES_DIR) if n.lower().endswith((".png", ".jpg", ".jpeg", ".webp")))


def install(input_dir: str) -> list[str]:
    """Copy the samples ``input_dir`` lacks into it; the names copied."""
    copied = []
    for name in sample_names():
        target = os.path.join(input_dir, name)
        if os.path.lexists(target):
            continue
        with open(os.path.join(SAMPLES_DIR, name), "rb") as f:
            write_bytes(target, f.read())
        copied.append(name)
    return copied


def install_when_serving() -> None:
    """Install when ComfyUI's server is up (not when the headless runner or the tests load the pack)."""
    server_module = sys.modules.get("server")  # main.py imports it before it loads custom nodes
    if getattr(getattr(server_module, "PromptServer", None), "instance", None) is None:
        return
    import folder_paths

    input_dir = folder_paths.get_input_directory()
    try:
        copied = install(input_dir)
    except OSError as e:
        logging.warning(f"FineFace: could not copy the sample photos into {input_dir} ({e}); the shipped workflows "
                        f"name them: copy them from {SAMPLES_DIR} yourself, or choose your own photos")
        return
    if copied:
        logging.info(f"FineFace: copied the shipped workflows' sample photos {', '.join(copied)} into {input_dir}")
