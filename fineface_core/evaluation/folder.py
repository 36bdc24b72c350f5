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
import tempfile

from ..errors import FineFaceError

SETTINGS = "settings.json"
PARTIAL = ".partial"


def atomic_write(path: str, data: bytes):
    """Write through a temporary file in the same folder and rename it into place: a killed run leaves
    either the whole file or none (and perhaps a ``.partial`` file, removed at the next start)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=PARTIAL)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


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
