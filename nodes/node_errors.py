"""Errors that name the node they come from by the name the user sees.

ComfyUI titles its error dialog with the node's class id ("FineFaceFaceCrop"), which the user never sees on the
canvas; so a FineFace error raised while a node runs starts with the node's display name ("Face Crop (FineFace):
no face found ..."). An error that surfaces in another node (a mask checked inside KSampler's sampling) names the
FineFace node and input it came from, with the node's id (the front ends' node id badge shows it).
"""
from __future__ import annotations

import functools

from fineface_core.errors import FineFaceError


def shown_name(display: str) -> str:
    """The display name, with the pack's name where the display name alone does not say it ("AU Vector")."""
    return display if "fineface" in display.lower() else f"{display} (FineFace)"


def node_label(cls, node_id=None) -> str:
    """'Apply FineFace Adapter (node #12)': the node class's display name in the NODES table, and its id if known."""
    from . import NODES  # the table imports every node module: looked up when a node runs, not on import

    display = next(name for _, table_cls, name in NODES if table_cls is cls)
    return shown_name(display) + (f" (node #{node_id})" if node_id not in (None, "") else "")


def prefixed(error: FineFaceError, prefix: str) -> FineFaceError:
    """``error`` with ``prefix`` before its message, once (a node calling another's code is not named twice)."""
    if error.args and isinstance(error.args[0], str) and not error.args[0].startswith(prefix):
        error.args = (prefix + error.args[0], *error.args[1:])
    return error


def name_errors(cls, display: str) -> None:
    """Make ``cls``'s FUNCTION start the message of a FineFaceError it raises with the node's display name. The
    error keeps its type and traceback; any other exception passes untouched."""
    original = getattr(cls, cls.FUNCTION)
    if getattr(original, "fineface_named", False):
        return
    prefix = f"{shown_name(display)}: "

    @functools.wraps(original)
    def run(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except FineFaceError as e:
            prefixed(e, prefix)
            raise

    run.fineface_named = True
    setattr(cls, cls.FUNCTION, run)
