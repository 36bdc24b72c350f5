"""models/libreface/: where users put LibreFace's AU intensity model (resnet.pt, combined_resnet.pt)."""
from __future__ import annotations

import folder_paths

from fineface_core.faces.libreface import CHECKPOINT_NAMES

from .model_folders import LIBREFACE, folders


def libreface_dirs() -> list[str]:
    return folders(LIBREFACE)


def estimator_menu() -> list[str]:
    """LibreFace's two file names first (listed even before they are downloaded, so a shipped workflow
    names one and the node says where to get it), then any other model file in the folder."""
    libreface_dirs()
    found = folder_paths.get_filename_list(LIBREFACE)
    return list(CHECKPOINT_NAMES) + sorted(f for f in found if f not in CHECKPOINT_NAMES)


def estimator_path(name: str) -> str | None:
    libreface_dirs()
    return folder_paths.get_full_path(LIBREFACE, name)


def missing_message(name: str) -> str:
    return (f"LibreFace AU model {name!r} not found in {' or '.join(libreface_dirs())}. Download resnet.pt (or "
            "combined_resnet.pt) as docs/copy_expression.md says, put it there and refresh the page.")
