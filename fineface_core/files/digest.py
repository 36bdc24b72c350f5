"""A file's sha256, read in blocks (weights files and data sets are too large to read at once)."""
from __future__ import annotations

import hashlib

BLOCK = 1 << 22


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()
