"""The metadata of a FineFace .safetensors file, checked field by field before anything is built.

Every field is a string (safetensors metadata); each is parsed to its type and range here, so
that a malformed file gets an error naming the file and the field, never a Python error from
deep inside the loader. Sizes in the metadata are only claims: ``single_file`` verifies each
against the stored tensors' shapes.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from ..aus import AU_ORDER
from ..encoders import check_encoder_config
from ..errors import WeightFileError
from ..families import FAMILIES, Family

PREFIX = "fineface."
FORMAT_NAME = "fineface"
FORMAT_VERSION = 1
MAX_LORA_RANK = 4096
AU_TO_K_STATES = ("included", "omitted")
# What a trained file can hold. lambda_AU is 1.0 as trained (the nodes' weight goes from -3 to 3); the LoRA's
# scale alpha / rank is 0.25 as trained (peft's alpha 8 at rank 32). A value far outside these is damage, and
# would switch the branch off or blow it up to black images without a word.
LAMBDA_AU_RANGE = (-10.0, 10.0)
LORA_SCALE_RANGE = (1e-4, 100.0)


@dataclass(frozen=True)
class FileMetadata:
    family: Family
    encoder: dict  # checked encoder config; its width is the family's text width
    lora_rank: int  # 0: no LoRA
    lora_alpha: float | None
    lambda_au: float
    source: str
    au_to_k: str | None  # "included" | "omitted", or None where the file does not say


def is_fineface_file(metadata: dict[str, str]) -> bool:
    return metadata.get(PREFIX + "format") == FORMAT_NAME


DAMAGED = " The file's metadata is damaged: convert or export the weights again."



def _lora_rank_and_alpha(metadata: dict[str, str], bad) -> tuple[int, float | None]:
    """The LoRA's rank and alpha, each in the range a trained file can hold (alpha only with a LoRA)."""
    rank_text = metadata.get(PREFIX + "lora_rank", "0") or "0"
    if not re.fullmatch(r"[0-9]{1,9}", rank_text) or int(rank_text) > MAX_LORA_RANK:
        raise bad("lora_rank", f"is {rank_text!r}; expected a whole number in 0..{MAX_LORA_RANK}")
    rank = int(rank_text)
    alpha = None
    alpha_text = metadata.get(PREFIX + "lora_alpha", "")
    if rank:
        alpha = _number(alpha_text, bad, "lora_alpha")
        if alpha <= 0:
            raise bad("lora_alpha", f"is {alpha_text!r}; a LoRA alpha must be positive")
        low, high = LORA_SCALE_RANGE
        if not low <= alpha / rank <= high:
            raise bad("lora_alpha", f"is {alpha_text!r}, a LoRA scale alpha / rank of {alpha / rank:.3g} at rank {rank}; "
                                    f"a trained file's is {low:g} to {high:g} (as trained: alpha 8 / rank 32 = 0.25)")
    elif alpha_text:
        raise bad("lora_alpha", f"is {alpha_text!r} but '{PREFIX}lora_rank' is 0 (no LoRA)")
    return rank, alpha

def parse_metadata(path: str, metadata: dict[str, str]) -> FileMetadata:
    """The checked metadata of the FineFace file ``path``; WeightFileError naming the field otherwise."""
    def bad(name: str, says: str) -> WeightFileError:
        return WeightFileError(f"{path}: metadata field '{PREFIX}{name}' {says}.{DAMAGED}")

    version = metadata.get(PREFIX + "format_version", "")
    if version != str(FORMAT_VERSION):
        raise WeightFileError(
            f"{path} uses FineFace file format version {version!r}; this version of the nodes reads version "
            f"{FORMAT_VERSION}. Update the node pack (or convert the file again)."
        )
    order = metadata.get(PREFIX + "au_order", "")
    if order != ",".join(AU_ORDER):
        raise WeightFileError(f"{path} orders its AUs as {order!r}; expected {','.join(AU_ORDER)}")
    family_key = metadata.get(PREFIX + "family", "")
    if family_key not in FAMILIES:
        raise bad("family", f"names an unknown base model family {family_key!r}; expected one of {sorted(FAMILIES)}")
    family = FAMILIES[family_key]
    context_dim = metadata.get(PREFIX + "context_dim")
    if context_dim != str(family.context_dim):
        raise bad("context_dim", f"says text width {context_dim!r}; {family} needs {family.context_dim}")

    text = metadata.get(PREFIX + "encoder", "")
    try:
        encoder = check_encoder_config(json.loads(text), f"{path}: metadata field '{PREFIX}encoder'")
    except json.JSONDecodeError:
        raise bad("encoder", f"is not valid JSON: {text[:80]!r}") from None
    except WeightFileError as e:
        raise WeightFileError(f"{e}.{DAMAGED}") from None
    if encoder["width"] != family.context_dim:
        raise bad("encoder", f"gives 'width' {encoder['width']}; a {family.display_name} file needs {family.context_dim} "
                             "(its text width)")

    rank, alpha = _lora_rank_and_alpha(metadata, bad)
    lambda_text = metadata.get(PREFIX + "lambda_au", "1.0")
    lambda_au = _number(lambda_text, bad, "lambda_au")
    if not LAMBDA_AU_RANGE[0] <= lambda_au <= LAMBDA_AU_RANGE[1]:
        raise bad("lambda_au", f"is {lambda_text!r}; a trained file's lambda_AU is {LAMBDA_AU_RANGE[0]:g} to "
                               f"{LAMBDA_AU_RANGE[1]:g} (1.0 as trained)")

    au_to_k = metadata.get(PREFIX + "au_to_k")
    if au_to_k is not None and au_to_k not in AU_TO_K_STATES:
        raise bad("au_to_k", f"is {au_to_k!r}; expected one of {AU_TO_K_STATES}")
    return FileMetadata(family=family, encoder=encoder, lora_rank=rank, lora_alpha=alpha, lambda_au=lambda_au,
                        source=metadata.get(PREFIX + "source", ""), au_to_k=au_to_k)


def _number(text: str, bad, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise bad(name, f"is {text!r}; expected a number") from None
    if not math.isfinite(value):
        raise bad(name, f"is {text!r}; expected a finite number (NaN or infinity would make black images)")
    return value
