"""FineFace for ComfyUI: drop this folder into ComfyUI/custom_nodes."""
import os
import sys

# fineface_core is imported by its top-level name everywhere (nodes, CLI, training, tests),
# so this folder goes on sys.path once, and there is a single copy of the module.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS  # noqa: E402

# The face on the AU Vector node and the nodes' help pages (web/docs/<node>.md).
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
