"""One entry point for every kind of FineFace weights a user can point at."""
from __future__ import annotations

import os

from ..errors import WeightFileError
from ..files.folder_walk import walk_folders
from .official import load_official, official_variants_among
from .releases import RELEASES, all_releases_text
from ..files.safe_load import refuse_non_weights
from .single_file import load_fineface
from ..weights import FineFaceWeights


def load_weights(path: str, variant: str = "auto") -> FineFaceWeights:
    """A FineFace .safetensors file, or an official release folder (``variant``: auto, sd21, sd15)."""
    if os.path.isdir(path):
        return load_official(path, variant)
    if not os.path.exists(path):
        raise WeightFileError(f"FineFace weights not found: {path}")
    if os.path.isfile(path) and os.path.getsize(path):
        refuse_non_weights(path)
    if path.endswith((".ckpt", ".pt", ".pth", ".bin")):
        raise WeightFileError(
            f"{path} is one file of the official release; point at the folder that holds all of its files "
            f"({all_releases_text()}), or at a converted .safetensors file."
        )
    return load_fineface(path)


def describe(weights: FineFaceWeights) -> str:
    """Human-readable summary, as printed by ``python -m fineface_core inspect``."""
    counts = weights.parameter_counts()
    enc = weights.encoder
    lines = [
        f"source:        {weights.source}",
        f"base model:    {weights.family}",
        f"AU encoder:    {enc.display_name} ({enc.config()})",
        f"AU adapter:    {len(weights.au_to_v)} cross-attention layers, widths {weights.width_summary()}",
        f"au_to_k:       {'included' if weights.au_to_k else 'omitted (unused at inference)'}",
    ]
    if weights.lora is not None:
        lora = weights.lora
        lines.append(f"LoRA:          {len(lora.down)} layers, rank {lora.rank}, alpha {lora.alpha:g} (scale {lora.scale:g})")
    else:
        lines.append("LoRA:          none")
    lines.append(f"lambda_AU:     {weights.lambda_au:g}")
    lines.append(
        "parameters:    " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + f"; total {sum(counts.values()):,}"
    )
    if weights.ignored:
        lines.append(f"ignored keys:  {len(weights.ignored)} (e.g. {next(iter(weights.ignored))}: {next(iter(weights.ignored.values()))})")
    return "\n".join(lines)


def find_weights(roots: list[str]) -> dict[str, tuple[str, str]]:
    """Menu of loadable weights under ``roots``: label -> (path, variant).

    FineFace .safetensors files are listed by relative path; a folder holding an official
    release is listed once per variant it holds, e.g. ``fineface/ [official SD 2.1]``.
    """
    entries: dict[str, tuple[str, str]] = {}
    for root in roots:
        if not os.path.isdir(root):
            continue
        for folder, rel, files in walk_folders(root):
            variants = official_variants_among(files)
            for variant in variants:
                entries[f"{'' if rel == '.' else rel + '/'}[official {RELEASES[variant].label}]"] = (folder, variant)
            for name in files:
                if not name.endswith(".safetensors") or name.endswith(".partial"):
                    continue
                if any(name == RELEASES[v].lora_file for v in variants):
                    continue  # part of the release listed above
                label = name if rel == "." else f"{rel}/{name}"
                entries.setdefault(label, (os.path.join(folder, name), "auto"))
    return entries


def find_release_files(roots: list[str], suffixes: tuple[str, ...]) -> dict[str, str]:
    """Files ending in ``suffixes`` under ``roots``: label (path relative to its root, '/'-separated) -> file.
    What the release loader offers per file of the release (its encoder, its adapter, its LoRA)."""
    entries: dict[str, str] = {}
    for root in roots:
        if not os.path.isdir(root):
            continue
        for folder, rel, files in walk_folders(root):
            for name in files:
                if name.lower().endswith(suffixes) and not name.endswith(".partial"):
                    label = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
                    entries.setdefault(label, os.path.join(folder, name))
    return entries
