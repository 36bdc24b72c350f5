"""The cache on disk: safetensors shards written atomically, a manifest, and reading them back.

    DIR/latents-00000.safetensors          mean, std [N, 4, R/8, R/8] (+ mean_flipped, std_flipped)
    DIR/latents-00000.safetensors.sha256   {"size", "sha256"} of the shard, written before it
    DIR/text-00000.safetensors             text [N, 77, width]
    DIR/manifest.json                      settings, shards (size, sha256), image / caption -> [shard, row]

Every file is written by ``fineface_core.files.safe_write`` (a ``.NAME.<random>.partial`` file beside it,
fsynced, renamed into place, the folder fsynced), so a file under its final name is complete; a shard's
header metadata names the settings and the entries it holds, so an interrupted build knows which shards
it can keep. The manifest is written last: without it the cache is unfinished.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

import torch
from safetensors import safe_open
from safetensors.torch import save

from fineface_core.files.digest import file_sha256
from fineface_core.files.safe_write import write_bytes

from ..errors import TrainingError

MANIFEST = "manifest.json"
SIDECAR = ".sha256"
SHARD_RE = re.compile(r"^(latents|text)-(\d{5})\.safetensors(\.sha256)?$")
# What an interrupted write leaves (safe_write's temporary files), removed with the cache's own files.
LEFTOVER_RE = re.compile(r"^\.((latents|text)-\d{5}\.safetensors(\.sha256)?|manifest\.json)\.\w+\.partial$")


def shard_name(kind: str, number: int) -> str:
    return f"{kind}-{number:05d}.safetensors"


def _write(path: str, data: bytes) -> None:
    try:
        write_bytes(path, data)  # on failure the temporary file is gone: the space it took, for the next try
    except OSError as exc:
        try:
            free = f"{shutil.disk_usage(os.path.dirname(path) or '.').free / 2**20:.0f} MiB free there"
        except OSError:
            free = "free space unknown"
        raise TrainingError(f"could not write {path} ({exc.strerror or exc}; {free}): is the disk full? The shards "
                            "finished so far are kept: free some space, then run again to go on from there") from exc


def write_shard(folder: str, name: str, tensors: dict[str, torch.Tensor], settings_key: str, items: list[str]) -> None:
    """The sidecar first, then the shard: a shard under its final name always has its checksum."""
    data = save({k: v.contiguous() for k, v in tensors.items()},
                metadata={"settings": settings_key, "items": json.dumps(items)})
    record = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    _write(os.path.join(folder, name + SIDECAR), json.dumps(record).encode())
    _write(os.path.join(folder, name), data)


def shard_header(path: str) -> dict | None:
    """A shard's metadata, or None when it does not parse (a partial or damaged file)."""
    try:
        with safe_open(path, framework="pt") as f:
            return f.metadata() or {}
    except Exception:  # safetensors raises its own error kinds for every broken header
        return None


def shard_is_complete(folder: str, name: str, settings_key: str, items: list[str]) -> bool:
    """True when ``name`` holds exactly ``items`` built with these settings (an interrupted build keeps it)."""
    path = os.path.join(folder, name)
    if not (os.path.isfile(path) and os.path.isfile(path + SIDECAR)):
        return False
    meta = shard_header(path)
    return (meta is not None and meta.get("settings") == settings_key and meta.get("items") == json.dumps(items)
            and sidecar(folder, name).get("size") == os.path.getsize(path))


def sidecar(folder: str, name: str) -> dict:
    try:
        with open(os.path.join(folder, name + SIDECAR)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def cache_files(folder: str) -> list[str]:
    """The names in ``folder`` that a cache build writes (nothing else there is ever touched)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if SHARD_RE.match(n) or LEFTOVER_RE.match(n) or n == MANIFEST)


def leftovers(folder: str) -> list[str]:
    """The temporary files interrupted writes left in ``folder`` (never another tool's files)."""
    return [n for n in cache_files(folder) if LEFTOVER_RE.match(n)]


def foreign_settings(folder: str, settings_key: str) -> list[str]:
    """Shards in ``folder`` built with other settings (left by an interrupted build without a manifest)."""
    out = []
    for name in cache_files(folder):
        if name.endswith(".safetensors"):
            meta = shard_header(os.path.join(folder, name))
            if meta is not None and meta.get("settings") != settings_key:
                out.append(name)
    return out


def remove_cache_files(folder: str, names: list[str] | None = None) -> None:
    for name in cache_files(folder) if names is None else names:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            os.remove(path)


def read_manifest(folder: str) -> dict | None:
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
        for key in ("settings", "shards", "images", "captions", "empty_caption"):
            manifest[key]
        if not all(isinstance(manifest[k], dict) for k in ("settings", "shards", "images", "captions")):
            raise ValueError("an entry is not a JSON object")
        return manifest
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if not any(n.startswith(("latents-", "text-")) for n in cache_files(folder)):
            # another tool's manifest.json: --rebuild_latent_cache would write over it
            raise TrainingError(f"--latent_cache {folder} holds a {MANIFEST} that is not a latent cache's ({exc}), "
                                "and no cache shards: give another folder for the cache (nothing in this one was "
                                "touched)") from exc
        raise DamagedManifest(f"{path} is unreadable ({exc}): the latent cache is damaged; build it again with "
                              "--rebuild_latent_cache") from exc


class DamagedManifest(TrainingError):
    """A manifest that does not parse: --rebuild_latent_cache builds the cache anew."""


def write_manifest(folder: str, manifest: dict) -> None:
    _write(os.path.join(folder, MANIFEST), json.dumps(manifest, sort_keys=True).encode())


def shard_problem(folder: str, shard: dict) -> str | None:
    """Why a shard cannot be trained on (missing, truncated, changed, unparsable), or None."""
    path = os.path.join(folder, shard["file"])
    if not os.path.isfile(path):
        return f"{path} is missing"
    size = os.path.getsize(path)
    if size != shard["size"]:
        return f"{path} is {size} bytes, the manifest says {shard['size']} (truncated or replaced)"
    if file_sha256(path) != shard["sha256"]:
        return f"{path} does not hold what was written (its sha256 differs from the manifest's: damaged on disk)"
    if shard_header(path) is None:
        return f"{path} is not a readable safetensors file"
    return None


class LatentCache:
    """Read access to a verified cache: latent mean / std per image and text embedding per caption,
    each a row of a memory-mapped shard. Shards are opened lazily, per process (data loader workers
    open their own), and only the rows asked for are read."""

    def __init__(self, folder: str, manifest: dict):
        self.folder, self.manifest = folder, manifest
        self._open: dict[str, object] = {}

    def __getstate__(self):
        return {**self.__dict__, "_open": {}}

    def _row(self, entries: str, key: str):
        name, row = self.manifest[entries][key]
        if name not in self._open:
            self._open[name] = safe_open(os.path.join(self.folder, name), framework="pt")
        return self._open[name], row

    def latent(self, image_key: str, flipped: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        f, row = self._row("images", image_key)
        suffix = "_flipped" if flipped else ""
        return f.get_slice("mean" + suffix)[row], f.get_slice("std" + suffix)[row]

    def text(self, caption_key: str) -> torch.Tensor:
        f, row = self._row("captions", caption_key)
        return f.get_slice("text")[row]

    @property
    def xl(self) -> bool:
        """An SDXL cache: pooled embeddings beside the text states, time ids beside the latents."""
        return bool(self.manifest["settings"].get("time_ids"))

    def pooled(self, caption_key: str) -> torch.Tensor:
        f, row = self._row("captions", caption_key)
        return f.get_slice("pooled")[row]

    def time_ids(self, image_key: str) -> torch.Tensor:
        f, row = self._row("images", image_key)
        return f.get_slice("time_ids")[row]

    def empty_xl(self):
        """SDXL's empty caption: an XLText of [1, 77, 2048] states and the [1, pooled] embedding."""
        from ..sdxl import XLText

        name, row = self.manifest["captions"][self.manifest["empty_caption"]]
        with safe_open(os.path.join(self.folder, name), framework="pt") as f:
            return XLText(f.get_slice("text")[row][None], f.get_slice("pooled")[row][None])

    def empty_text(self) -> torch.Tensor:
        """[1, 77, width]; read through a handle of its own, so that the data loader's worker processes
        (forked after this is read) inherit no open shard."""
        name, row = self.manifest["captions"][self.manifest["empty_caption"]]
        with safe_open(os.path.join(self.folder, name), framework="pt") as f:
            return f.get_slice("text")[row][None]
