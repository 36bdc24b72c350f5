"""FineFace Release Loader: the official files by name, as the front end's missing-models dialog downloads them.

The shipped workflows name the release's own files (the hub has those, not this pack's converted file),
one per widget, and carry their download addresses in ``properties.models``: each front end offers a
download for a file that is missing only when that file's name is a widget value of the node.
"""
from __future__ import annotations

from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.loading import describe
from fineface_core.weightfiles.official import load_release_files
from fineface_core.weightfiles.releases import HUB_REPO, NO_LORA, RELEASE_PARTS, RELEASES, part_files

from .paths import fineface_dirs, release_file_entries
from .queue_checks import queue_answer
from .types import CATEGORY, FINEFACE


def per_release(kind: str, sep: str = " or ") -> str:
    """'<file> (<release>) or <file> (<release>)': this widget's file in each release that has one."""
    return sep.join(f"{name} ({release.label})" for name, release in part_files(kind))


def missing_message(missing: dict[str, str]) -> str:
    """One message for every file the widgets name that is not there (widget -> file name), said once."""
    parts = [f"{RELEASE_PARTS[kind][0]} {name!r}" for kind, name in missing.items()]
    files = " and ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + f" and {parts[-1]}"
    pages = " or ".join(dict.fromkeys(r.page or r.where for kind in missing for _, r in part_files(kind)))
    verb = "is" if len(parts) == 1 else "are"
    return (f"{files} {verb} not in {' or '.join(fineface_dirs())}. The node's 'Download weights' button fetches the "
            "release into that folder on every front end (the missing-models dialog of front ends 1.27 and 1.35 "
            "refuses .ckpt files, 1.58's saves them in the browser's downloads), or download "
            f"{'it' if len(parts) == 1 else 'them'} from {pages} there yourself; then refresh the page.")


def menu(kind: str) -> list[str]:
    files = sorted(release_file_entries(kind))
    preferred = [n for n, _ in part_files(kind) if n in files]
    rest = [n for n in files if n not in preferred]
    if kind == "lora":
        return [*preferred, NO_LORA, *rest]
    return [*preferred, *rest] or [f"(no {part_files(kind)[0][0]} in models/fineface)"]


def resolve(**names: str) -> dict[str, str | None]:
    """widget -> the file its name stands for (None for no LoRA); the folders are walked once per call. Every
    missing file is named in one error."""
    listings, paths, missing = {}, {}, {}
    for kind, name in names.items():
        if kind == "lora" and name == NO_LORA:
            paths[kind] = None
            continue
        group = "safetensors" if kind == "lora" else "pickles"  # the two pickled kinds share one listing
        if group not in listings:
            listings[group] = release_file_entries(kind)
        entries = listings[group]
        if name in entries:
            paths[kind] = entries[name]
        else:
            missing[kind] = name
    if missing:
        raise WeightFileError(missing_message(missing))
    return paths


class FineFaceReleaseLoader:
    DESCRIPTION = (
        f"Loads the official FineFace release from its own files in models/fineface, as Hugging Face {HUB_REPO} "
        "has them: " + "; ".join(f"{r.label} = {r.file_list(' + ')}" + ("" if r.lora_file else f", LoRA {NO_LORA}")
                                 for r in RELEASES.values())
        + ". The pickled .ckpt files are read as tensors only: a file that would run code is refused."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "au_encoder": (menu("au_encoder"), {"tooltip": f"The release's AU encoder: {per_release('au_encoder')}."}),
            "attn_processors": (menu("attn_processors"), {"tooltip": "The release's AU adapter (au_to_k / au_to_v of every "
                                                          f"cross-attention layer): {per_release('attn_processors')}."}),
            "lora": (menu("lora"), {"tooltip": f"The release's LoRA, {per_release('lora')} (part of the method); "
                                    f"{NO_LORA} for " + " and ".join(r.label for r in RELEASES.values() if not r.lora_file)
                                    + ", which has no LoRA."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, au_encoder, attn_processors, lora):
        # Replaces ComfyUI's bare "value not in list" with where each file comes from and goes.
        return queue_answer(resolve, au_encoder=au_encoder, attn_processors=attn_processors, lora=lora)

    RETURN_TYPES = (FINEFACE, "STRING")
    RETURN_NAMES = ("fineface", "info")
    OUTPUT_TOOLTIPS = ("The FineFace model: AU encoder, AU adapter and LoRA.", "What the weights hold (family, layers, LoRA rank and scale).")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, au_encoder, attn_processors, lora):
        paths = resolve(au_encoder=au_encoder, attn_processors=attn_processors, lora=lora)
        model = load_release_files(paths["au_encoder"], paths["attn_processors"], paths["lora"])
        return (model, describe(model))
