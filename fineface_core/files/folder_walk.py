"""Walking model folders that users fill with symlinks: each real folder once, never in circles.

``os.walk(followlinks=True)`` follows a link to ``.`` or to a parent forever (the paths grow until
the OS gives up), which would hang ComfyUI's node list. Here a folder is identified by
(device, inode): one already visited, or one above the root, is not entered again. Links to
other folders are followed (users link their model folders from other drives).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator

MAX_DEPTH = 8  # folder levels below a root that are searched
log = logging.getLogger(__name__)


def walk_folders(root: str) -> Iterator[tuple[str, str, list[str]]]:
    """(folder, path relative to ``root``, sorted names of the non-folder entries) for each folder under ``root``,
    top-down. Unreadable folders are skipped with a warning naming them."""
    seen: set[tuple[int, int]] = set()
    # The root's ancestors count as visited: a link up to one of them is a loop, not more folders.
    for start in {os.path.abspath(root), os.path.realpath(root)}:
        parent = os.path.dirname(start)
        while True:
            try:
                st = os.stat(parent)
                seen.add((st.st_dev, st.st_ino))
            except OSError:
                pass
            if os.path.dirname(parent) == parent:
                break
            parent = os.path.dirname(parent)
    yield from _visit(root, ".", 0, seen)


def _visit(folder: str, rel: str, depth: int, seen: set) -> Iterator[tuple[str, str, list[str]]]:
    try:
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            log.debug("FineFace: %s leads back to a folder already listed; not entered again", folder)
            return
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        log.warning("FineFace: skipped the folder %s, which cannot be read (%s)", folder, e.strerror or e)
        return
    files, dirs = [], []
    for entry in entries:
        try:
            is_dir = entry.is_dir()  # follows links
        except OSError:
            is_dir = False
        if is_dir:
            dirs.append(entry)
        elif entry.is_symlink() and not os.path.exists(entry.path):
            log.warning("FineFace: skipped %s, a link to %s, which does not exist", entry.path, os.readlink(entry.path))
        else:
            files.append(entry.name)
    yield folder, rel, files
    if dirs and depth >= MAX_DEPTH:
        log.warning("FineFace: did not search the %d folders in %s (more than %d levels deep)", len(dirs), folder, MAX_DEPTH)
        return
    for entry in dirs:
        yield from _visit(entry.path, entry.name if rel == "." else os.path.join(rel, entry.name), depth + 1, seen)
