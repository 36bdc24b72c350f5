"""FineFace Release Loader: the official files by name, as the front end's missing-models dialog downloads them.

The shipped workflows name the release's own files (the hub has those, not this pack's converted file),
one per widget, and carry their download addresses in ``properties.models``: each front end offers a
download for a file that is missing only when that file's name is a widget value of the node.
"""
from __future__ import annotations

from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.loading import describe
from fineface_core.weightfiles.official import NO_LORA, RELEASE_URL, load_release_files

from .paths import fineface_dirs, release_file_entries
from .types import CATEGORY, FINEFACE

KINDS = {  # widget -> (what it holds, the SD 2.1 and SD 1.5 release's file name)
    "au_encoder": ("the AU encoder", "au_encoder.ckpt", "sd15_au_encoder.ckpt"),
    "attn_processors": ("the AU adapter", "attn_processors.ckpt", "sd15_attn_processors.ckpt"),
    "lora": ("the LoRA", "pytorch_lora_weights.safetensors", None),
}


def missing_message(kind: str, name: str) -> str:
    what, sd21, sd15 = KINDS[kind]
    names = " or ".join(f"{n} ({v})" for n, v in ((sd21, "SD 2.1"), (sd15, "SD 1.5")) if n)
    return (f"{what} file {name!r} is not in {' or '.join(fineface_dirs())}. The node's 'Download weights' "
            f"button fetches the release into that folder on every front end (the new front ends' missing-models "
            f"dialog refuses .ckpt files), or download {names} from {RELEASE_URL} there yourself; then refresh the page.")


def menu(kind: str) -> list[str]:
    files = sorted(release_file_entries(kind))
    preferred = [n for n in KINDS[kind][1:] if n in files]
    rest = [n for n in files if n not in preferred]
    if kind == "lora":
        return [*preferred, NO_LORA, *rest]
    return [*preferred, *rest] or [f"(no {KINDS[kind][1]} in models/fineface)"]


def resolve(**names: str) -> dict[str, str | None]:
    """widget -> the file its name stands for (None for no LoRA); the folders are walked once per call."""
    listings, paths = {}, {}
    for kind, name in names.items():
        if kind == "lora" and name == NO_LORA:
            paths[kind] = None
            continue
        group = "safetensors" if kind == "lora" else "pickles"  # the two pickled kinds share one listing
        if group not in listings:
            listings[group] = release_file_entries(kind)
        entries = listings[group]
        if name not in entries:
            raise WeightFileError(missing_message(kind, name))
        paths[kind] = entries[name]
    return paths


class FineFaceReleaseLoader:
    DESCRIPTION = (
        "Loads the official FineFace release from its own files in models/fineface, as Hugging Face "
        "Tvaranka/fineface has them: SD 2.1 = au_encoder.ckpt + attn_processors.ckpt + "
        "pytorch_lora_weights.safetensors; SD 1.5 = sd15_au_encoder.ckpt + sd15_attn_processors.ckpt, LoRA none. "
        "The pickled .ckpt files are read as tensors only: a file that would run code is refused."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "au_encoder": (menu("au_encoder"), {"tooltip": "The release's AU encoder: au_encoder.ckpt (SD 2.1) or sd15_au_encoder.ckpt (SD 1.5)."}),
            "attn_processors": (menu("attn_processors"), {"tooltip": "The release's AU adapter (au_to_k / au_to_v of every cross-attention layer): attn_processors.ckpt (SD 2.1) or sd15_attn_processors.ckpt (SD 1.5)."}),
            "lora": (menu("lora"), {"tooltip": "The SD 2.1 release's LoRA, pytorch_lora_weights.safetensors (part of the method); none for SD 1.5, which has no LoRA."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, au_encoder, attn_processors, lora):
        # Replaces ComfyUI's bare "value not in list" with where each file comes from and goes.
        try:
            resolve(au_encoder=au_encoder, attn_processors=attn_processors, lora=lora)
        except WeightFileError as e:
            return str(e)
        return True

    RETURN_TYPES = (FINEFACE, "STRING")
    RETURN_NAMES = ("fineface", "info")
    OUTPUT_TOOLTIPS = ("The FineFace model: AU encoder, AU adapter and LoRA.", "What the weights hold (family, layers, LoRA rank and scale).")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, au_encoder, attn_processors, lora):
        paths = resolve(au_encoder=au_encoder, attn_processors=attn_processors, lora=lora)
        model = load_release_files(paths["au_encoder"], paths["attn_processors"], paths["lora"])
        return (model, describe(model))
