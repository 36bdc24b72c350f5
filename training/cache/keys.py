"""What a cache entry is keyed by: an image by its file's content, a caption by its token ids (so
the tokenizer is part of the key), and the whole cache by the settings that change the numbers:
resolution, crop, flip, compute dtype and fingerprints of the VAE's and text encoder's weights."""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from fineface_core.files.digest import file_sha256

FORMAT = "fineface-latent-cache/1"
# Config entries that say where or with which library version a model was saved, not what it computes.
VERSION_KEYS = ("transformers_version", "torch_dtype", "dtype", "name_or_path")
DIGEST_CHARS = 32  # 128 bits of sha256: no collision among millions of images


def file_digest(path: str) -> str:
    return file_sha256(path)[:DIGEST_CHARS]


def file_digests(paths: list[str]) -> list[str]:
    """Threads: hashlib releases the GIL, and the paper's data are ~180k files."""
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        return list(pool.map(file_digest, paths))


def ids_digest(ids: torch.Tensor) -> str:
    return hashlib.sha256(ids.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()[:DIGEST_CHARS]


def model_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a model's config and every tensor of its state dict (names, dtypes, shapes, bytes).
    Take it on the weights as loaded, before any cast to the training dtype."""
    h = hashlib.sha256()
    config = getattr(module, "config", None)
    config = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    config = {k: v for k, v in config.items() if not k.startswith("_") and k not in VERSION_KEYS}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()[:DIGEST_CHARS]


# What an SDXL cache holds beside each image's latents: its micro-conditioning, which depends on the image (its size,
# hence the center crop's corner) and the settings above (resolution, crop), so the image key and the settings key
# together name it.
SDXL_TIME_IDS = "original size, center-crop top-left, target size"


def cache_settings(args, dtype: torch.dtype, vae_fingerprint: str, text_fingerprint: str, xl: bool = False) -> dict:
    """Everything besides the content that changes what the cache holds."""
    settings = {"format": FORMAT, "resolution": int(args.resolution), "crop": "center" if args.center_crop else "random",
                "random_flip": bool(args.random_flip), "dtype": str(dtype).replace("torch.", ""),
                "vae": vae_fingerprint, "text_encoder": text_fingerprint}
    if xl:
        settings["time_ids"] = SDXL_TIME_IDS
    return settings


def settings_digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:DIGEST_CHARS]


def differences(cached: dict, wanted: dict) -> list[str]:
    """What differs between the settings a cache was built with and a run's, in words.
    A cache with flipped latents also serves a run without --random_flip."""
    out = []
    if cached.get("format") != wanted["format"]:
        return [f"the cache format {cached.get('format')!r} (this code reads {wanted['format']!r})"]
    if cached["resolution"] != wanted["resolution"]:
        out.append(f"--resolution {wanted['resolution']} (the cache: {cached['resolution']})")
    if cached["crop"] != wanted["crop"]:
        out.append(f"crop {wanted['crop']} (the cache: {cached['crop']})")
    if wanted["random_flip"] and not cached["random_flip"]:
        out.append("--random_flip (the cache holds no flipped latents)")
    if cached["dtype"] != wanted["dtype"]:
        out.append(f"the frozen models compute in {wanted['dtype']} (the cache was built in {cached['dtype']}; "
                   "--mixed_precision decides)")
    if cached["vae"] != wanted["vae"]:
        out.append("the VAE's weights or config differ from those the cache was built with")
    if cached["text_encoder"] != wanted["text_encoder"]:
        out.append("the text encoder's weights or config differ from those the cache was built with")
    if cached.get("time_ids") != wanted.get("time_ids"):
        out.append("SDXL's time ids (the cache holds " + ("them" if cached.get("time_ids") else "none") + ")")
    return out
