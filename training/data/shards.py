"""An annotation run's work on disk: its settings, and shards that are written whole or not at all.

``DATASET/annotate.json`` records the settings that decide what a face's record is (the photos folder, the face
choice and size, the crop, the LibreFace file, the captioner ...). A run into a folder made with other settings
is refused, naming each difference: mixing them would make one dataset of two recipes. The AU corrections are not
among them: they are applied when the shards are merged, over the whole dataset (their min-max rescaling needs
every face), so changing them only re-merges.

The photos still to do are cut into blocks of ``shard_size`` in the collection's order, and block ``i`` goes to
process ``i mod N``. A block's results (every photo's status, every face's raw LibreFace reading, caption, crop
file) are one ``shards/<digest>.json``, written atomically after its face images: a killed run leaves whole shards
and maybe some face images that a rerun writes again. Because the finished shards are whole blocks, the blocks a
rerun plans from what is left are the blocks the first run had planned, whatever the number of processes: every
face is computed in the same batch as in an uninterrupted run, so the numbers are the same to the last bit.
"""
from __future__ import annotations

import hashlib
import json
import os

from fineface_core.files.safe_write import PARTIAL, write_bytes

SETTINGS_FILE = "annotate.json"
SHARDS = "shards"
FACES = "faces"
FORMAT = 1


def settings_differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} in the dataset, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)]


def _read_settings(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("settings", {})
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f"{path} is unreadable ({e}); it is not this tool's, or damaged: give another --out") from None


def check_settings(out: str, settings: dict) -> None:
    """Write the settings into a new dataset folder, or check them against the folder's own. ValueError when the
    folder is another dataset, or something else. (Every process checks; the first writes: the others find the
    file, or write the same bytes.)"""
    path = os.path.join(out, SETTINGS_FILE)
    if not os.path.isfile(path):
        present = sorted(n for n in os.listdir(out) if not n.startswith(".") and n != SETTINGS_FILE) \
            if os.path.isdir(out) else []
        if present and not os.path.isfile(path):  # not another process's new dataset either
            raise ValueError(f"{out} already holds files ({', '.join(present[:4])}) and is not an annotated dataset "
                             f"(no {SETTINGS_FILE}); nothing there is overwritten: give a new or empty --out")
        if not os.path.isfile(path):
            write_bytes(path, json.dumps({"format": FORMAT, "settings": settings}, indent=1, sort_keys=True).encode())
            return
    diffs = settings_differences(_read_settings(path), settings)
    if diffs:
        raise ValueError(f"{out} was annotated with other settings; continuing would mix two recipes in one "
                         f"dataset. Differences: {'; '.join(diffs)}. Run with the dataset's settings, or give "
                         "another --out")


def plan_blocks(pending: list, shard_size: int) -> list[list]:
    return [pending[i:i + shard_size] for i in range(0, len(pending), shard_size)]


def shard_name(keys: list[str]) -> str:
    return hashlib.sha1("\n".join(keys).encode()).hexdigest()[:20] + ".json"


def face_file(photo_key: str, face: int, ext: str) -> str:
    """The face image's path in the dataset: from the photo's key, so a changed photo's faces get new files."""
    h = hashlib.sha1(photo_key.encode()).hexdigest()[:16]
    return f"{FACES}/{h[:2]}/{h}-{face}.{ext}"


def write_shard(out: str, entries: list[dict]) -> str:
    name = shard_name([e["key"] for e in entries])
    path = os.path.join(out, SHARDS, name)
    write_bytes(path, json.dumps({"format": FORMAT, "photos": entries}, sort_keys=True).encode())
    return path


def read_shards(out: str) -> tuple[dict[str, dict], list[str]]:
    """key -> the photo's entry, from every whole shard (in name order: the first shard naming a photo wins, the
    same choice in every process); and the shards that could not be read (named in the report, never deleted)."""
    folder = os.path.join(out, SHARDS)
    entries: dict[str, dict] = {}
    damaged = []
    if not os.path.isdir(folder):
        return entries, damaged
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json") or name.startswith(".") or name.endswith(PARTIAL):
            continue
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                photos = {entry["key"]: entry for entry in json.load(f)["photos"]}
        except (OSError, ValueError, KeyError, TypeError):
            damaged.append(name)
            continue
        for key, entry in photos.items():
            entries.setdefault(key, entry)
    return entries, damaged
