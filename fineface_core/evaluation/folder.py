"""The output folder of an evaluation: its layout, its settings file, and writes that never leave half a file.

Layout: ``settings.json`` (what the folder was made with), ``images/<weights>/<job>.png``,
``records/<weights>/<job>.json`` (one per measured image), then the derived ``results.csv``, ``summary.md``
and ``plots/``. A run adds to a folder made with the same settings (that is how it resumes, and how a
weights file is added to a comparison) and refuses one made with other settings rather than mix them.
"""
from __future__ import annotations

import io
import json
import os

from ..errors import FineFaceError
from ..files.safe_write import NOT_A_FOLDER, PARTIAL, write_bytes, write_problem

SETTINGS = "settings.json"


def atomic_write(path: str, data: bytes):
    """``files.safe_write``'s atomic write: a killed run leaves either the whole file or none (and perhaps a
    ``.partial`` file, removed at the next start). A failed write (a full disk, a folder made read-only) is a
    FineFaceError naming the file; the file it would have replaced is left as it was."""
    try:
        write_bytes(path, data)
    except OSError as e:
        raise FineFaceError(f"cannot write {path} ({e.strerror or e}): free some disk space or make the folder "
                            "writable, then run the same command again: what was finished is kept") from None


def write_json(path: str, obj):
    atomic_write(path, (json.dumps(obj, indent=1, allow_nan=True) + "\n").encode())


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_png(image, path: str):
    """A PIL image as PNG, atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write(path, buf.getvalue())


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            show = (lambda v: repr(v) if len(repr(v)) < 80 else repr(v)[:77] + "...")
            out.append(f"{prefix}{key}: {show(a)} there, {show(b)} now")
    return out


def _check_writable(root: str):
    """The folder, or the nearest folder above it that exists, takes files (or the run would fail at its
    first image, after the models are loaded)."""
    probe, why = write_problem(root)
    if why == NOT_A_FOLDER:
        raise FineFaceError(f"--out {root}: {probe} is a file, not a folder; give a folder (it is created if missing)")
    if why:
        raise FineFaceError(f"--out {root}: cannot write in {probe} ({why}); give a folder you can write to")


RECORD_KEYS = ("job", "kind", "face", "measured", "clip_i", "identity")


def record_problem(path: str, keys=RECORD_KEYS, what: str = "a measurement record") -> str | None:
    """Why the JSON record at ``path`` cannot be used (unreadable, ``keys`` missing, an AU reading that is not 12
    numbers), or None; ``what`` names the kind of record in the answer."""
    try:
        record = read_json(path)
    except (OSError, ValueError) as e:
        return f"unreadable: {e}"
    if not isinstance(record, dict) or any(k not in record for k in keys):
        return f"not {what}: fields missing"
    m = record.get("measured")
    if m is not None and (not isinstance(m, list) or len(m) != 12
                          or not all(isinstance(v, (int, float)) for v in m)):
        return "its AU reading is not 12 numbers"
    return None


def _image_problem(path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises SyntaxError for some broken PNG chunks
        return f"unreadable image: {e}"
    return None


class OutputFolder:
    def __init__(self, root: str):
        self.root = root

    def image(self, label: str, name: str) -> str:
        return os.path.join(self.root, "images", label, f"{name}.png")

    def record(self, label: str, name: str) -> str:
        return os.path.join(self.root, "records", label, f"{name}.json")

    @property
    def csv(self) -> str:
        return os.path.join(self.root, "results.csv")

    @property
    def summary(self) -> str:
        return os.path.join(self.root, "summary.md")

    @property
    def plots(self) -> str:
        return os.path.join(self.root, "plots")

    def check(self, common: dict, weights: dict[str, dict]) -> dict:
        """Before any work: that this folder is new, or was made with these settings (``weights``: {label: what
        identifies that weights file}; new labels may join). Returns the settings :meth:`claim` writes."""
        path = os.path.join(self.root, SETTINGS)
        if os.path.isfile(self.root):
            raise FineFaceError(f"--out {self.root} is a file; give a folder (it is created if missing)")
        _check_writable(self.root)
        if os.path.isdir(self.root) and not os.path.exists(path) and os.listdir(self.root):
            raise FineFaceError(f"--out {self.root} already holds files and is not an evaluation folder (it has "
                                f"no {SETTINGS}); give a new or empty folder, nothing in this one is touched")
        if os.path.exists(path):
            try:
                old = read_json(path)
                old_common, old_weights = old["common"], old["weights"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise FineFaceError(f"{path} is unreadable ({e}); this folder cannot be resumed. Give another "
                                    "--out folder.") from None
            diffs = _differences(old_common, json.loads(json.dumps(common)))
            for label, ident in weights.items():
                if label in old_weights:
                    diffs += _differences(old_weights[label], json.loads(json.dumps(ident)), f"weights {label}: ")
            if diffs:
                raise FineFaceError(
                    f"{self.root} was made with other settings, and mixing them would mix results:\n  "
                    + "\n  ".join(diffs[:12])
                    + f"\nGive another --out folder, or run with the settings in {path}.")
            weights = {**old_weights, **weights}
        return {"common": common, "weights": weights}

    def check_files(self, labels: list[str], jobs) -> None:
        """Before any work on a resumed folder: every record there reads, and every image that will be read
        again (those not yet measured, and the no-AU images) opens whole. These files are written atomically,
        so a damaged one was damaged afterwards (a disk error, a copy cut short): named, never used or replaced."""
        damaged = []
        for label in labels:
            for job in jobs:
                record, image = self.record(label, job.name), self.image(label, job.name)
                if os.path.exists(record):
                    why = record_problem(record)
                    if why:
                        damaged.append(f"{record} ({why})")
                if os.path.exists(image) and (job.kind == "reference" or not os.path.exists(record)):
                    why = _image_problem(image)
                    if why:
                        damaged.append(f"{image} ({why})")
        if damaged:
            raise FineFaceError(f"{len(damaged)} damaged file(s) in {self.root}:\n  " + "\n  ".join(damaged[:12])
                                + ("\n  ..." if len(damaged) > 12 else "")
                                + "\nDelete them and run the same command again: an image is made again (the same "
                                "seed gives the same image), a record is measured again from its image. Nothing "
                                "was changed.")

    def claim(self, settings: dict):
        """Start or resume: (re)write the settings :meth:`check` returned; clear what a killed run left half-written."""
        os.makedirs(self.root, exist_ok=True)
        write_json(os.path.join(self.root, SETTINGS), settings)
        self._remove_partials()

    def _remove_partials(self):
        for sub in ("images", "records"):
            for folder, _, files in os.walk(os.path.join(self.root, sub)):
                for name in files:
                    if name.startswith(".") and name.endswith(PARTIAL):
                        os.remove(os.path.join(folder, name))
