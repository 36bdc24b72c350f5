"""This project's single-file format: one ``.safetensors`` with everything and its metadata.

Tensors:
  ``encoder.<name>``                         AU encoder parameters (official names for res_mlp)
  ``adapter.<attn2 path>.au_to_v.weight``    [C, context_dim] per cross-attention layer
  ``adapter.<attn2 path>.au_to_k.weight``    optional: unused at inference (one AU token)
  ``lora.<module path>.lora_A.weight``       [rank, in]   (optional: absent = no LoRA)
  ``lora.<module path>.lora_B.weight``       [out, rank]
Metadata (strings): ``fineface.format`` = "fineface", ``fineface.format_version`` = "1",
``fineface.family`` (sd21 | sd15), ``fineface.context_dim``, ``fineface.au_order``
(comma separated), ``fineface.encoder`` (JSON config), ``fineface.lora_rank``,
``fineface.lora_alpha`` ("" without LoRA), ``fineface.lambda_au``, ``fineface.source``,
``fineface.au_to_k`` ("included" | "omitted").
"""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import save_file

from .aus import AU_ORDER
from .encoders import load_encoder
from .errors import WeightFileError
from .families import FAMILIES
from .safe_load import load_safetensors
from .weights import FineFaceWeights, LoRAWeights

FORMAT_NAME = "fineface"
FORMAT_VERSION = 1
_M = "fineface."


def save_fineface(weights: FineFaceWeights, path: str, *, include_au_to_k: bool = True, dtype: torch.dtype | None = None) -> str:
    """Write ``weights`` to one .safetensors file (atomically: a partial file never has the final name)."""
    def cast(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().to("cpu")
        return (t.to(dtype) if dtype is not None else t).contiguous()

    tensors = {f"encoder.{k}": cast(v) for k, v in weights.encoder.state_dict().items()}
    for p in weights.layers:
        tensors[f"adapter.{p}.au_to_v.weight"] = cast(weights.au_to_v[p])
        if include_au_to_k and weights.au_to_k:
            tensors[f"adapter.{p}.au_to_k.weight"] = cast(weights.au_to_k[p])
    if weights.lora is not None:
        for p in weights.lora.down:
            tensors[f"lora.{p}.lora_A.weight"] = cast(weights.lora.down[p])
            tensors[f"lora.{p}.lora_B.weight"] = cast(weights.lora.up[p])
    metadata = {
        _M + "format": FORMAT_NAME,
        _M + "format_version": str(FORMAT_VERSION),
        _M + "family": weights.family.key,
        _M + "context_dim": str(weights.family.context_dim),
        _M + "au_order": ",".join(AU_ORDER),
        _M + "encoder": json.dumps(weights.encoder.config(), sort_keys=True),
        _M + "lora_rank": str(weights.lora.rank) if weights.lora else "0",
        _M + "lora_alpha": repr(float(weights.lora.alpha)) if weights.lora else "",
        _M + "lambda_au": repr(float(weights.lambda_au)),
        _M + "source": weights.source,
        _M + "au_to_k": "included" if include_au_to_k and weights.au_to_k else "omitted",
    }
    tmp = f"{path}.partial"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file(tensors, tmp, metadata=metadata)
    os.replace(tmp, path)
    return path


def is_fineface_file(metadata: dict[str, str]) -> bool:
    return metadata.get(_M + "format") == FORMAT_NAME


def load_fineface(path: str) -> FineFaceWeights:
    """Read a FineFace .safetensors file; anything else gets an error that says what it is."""
    tensors, metadata = load_safetensors(path, "FineFace file")
    if not is_fineface_file(metadata):
        raise WeightFileError(_foreign_message(path, tensors, metadata))
    version = metadata.get(_M + "format_version", "")
    if version != str(FORMAT_VERSION):
        raise WeightFileError(
            f"{path} uses FineFace file format version {version!r}; this version of the nodes reads version "
            f"{FORMAT_VERSION}. Update the node pack (or convert the file again)."
        )
    order = metadata.get(_M + "au_order", "")
    if order != ",".join(AU_ORDER):
        raise WeightFileError(f"{path} orders its AUs as {order!r}; expected {','.join(AU_ORDER)}")
    family_key = metadata.get(_M + "family", "")
    if family_key not in FAMILIES:
        raise WeightFileError(f"{path}: unknown base model family {family_key!r}; expected one of {sorted(FAMILIES)}")
    family = FAMILIES[family_key]
    if metadata.get(_M + "context_dim") != str(family.context_dim):
        raise WeightFileError(f"{path}: metadata says text width {metadata.get(_M + 'context_dim')} for {family}")
    try:
        encoder_config = json.loads(metadata.get(_M + "encoder", ""))
    except json.JSONDecodeError:
        raise WeightFileError(f"{path}: the encoder metadata is not valid JSON") from None

    groups: dict[str, dict[str, torch.Tensor]] = {"encoder": {}, "adapter": {}, "lora": {}}
    for key, tensor in tensors.items():
        head, _, rest = key.partition(".")
        if head not in groups or not rest:
            raise WeightFileError(f"{path}: unexpected tensor {key!r} (expected encoder.*, adapter.* or lora.*)")
        groups[head][rest] = tensor

    au_to_v, au_to_k = {}, {}
    for key, tensor in groups["adapter"].items():
        for suffix, target in ((".au_to_v.weight", au_to_v), (".au_to_k.weight", au_to_k)):
            if key.endswith(suffix):
                target[key[: -len(suffix)]] = tensor
                break
        else:
            raise WeightFileError(f"{path}: unexpected adapter tensor 'adapter.{key}'")

    lora = None
    rank = int(metadata.get(_M + "lora_rank", "0") or 0)
    if groups["lora"]:
        down, up = {}, {}
        for key, tensor in groups["lora"].items():
            if key.endswith(".lora_A.weight"):
                down[key[: -len(".lora_A.weight")]] = tensor
            elif key.endswith(".lora_B.weight"):
                up[key[: -len(".lora_B.weight")]] = tensor
            else:
                raise WeightFileError(f"{path}: unexpected LoRA tensor 'lora.{key}'")
        try:
            alpha = float(metadata.get(_M + "lora_alpha", ""))
        except ValueError:
            raise WeightFileError(f"{path}: LoRA weights without a valid 'fineface.lora_alpha' metadata entry") from None
        lora = LoRAWeights(down=down, up=up, alpha=alpha)
        lora.validate()
        if lora.rank != rank:
            raise WeightFileError(f"{path}: metadata says LoRA rank {rank}, the tensors have rank {lora.rank}")
    elif rank:
        raise WeightFileError(f"{path}: metadata announces a rank-{rank} LoRA but the file holds no LoRA tensors (truncated?)")

    try:
        lambda_au = float(metadata.get(_M + "lambda_au", "1.0"))
    except ValueError:
        raise WeightFileError(f"{path}: invalid lambda_au metadata {metadata.get(_M + 'lambda_au')!r}") from None
    return FineFaceWeights(
        family=family,
        encoder=load_encoder(encoder_config, groups["encoder"]),
        au_to_v=au_to_v, au_to_k=au_to_k, lora=lora, lambda_au=lambda_au,
        source=metadata.get(_M + "source", "") or os.path.basename(path),
    )


def _foreign_message(path: str, tensors: dict, metadata: dict) -> str:
    keys = list(tensors)
    name = os.path.basename(path)
    if name == "pytorch_lora_weights.safetensors" or any(".lora_A." in k and k.startswith("unet.") for k in keys):
        return (
            f"{path} is the LoRA part of the official FineFace release, not a complete model. Point the loader "
            "at the folder holding au_encoder.ckpt, attn_processors.ckpt and this file, or convert the folder "
            "with `python -m fineface_core convert FOLDER OUT.safetensors`."
        )
    if any(k.startswith(("lora_unet_", "lora_te")) for k in keys) or any(".lora_up." in k or ".lora_down." in k for k in keys):
        return f"{path} is a Stable Diffusion LoRA, not a FineFace file. Load it with ComfyUI's LoraLoader."
    if any(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in keys):
        return f"{path} is a Stable Diffusion checkpoint, not a FineFace file. It belongs in models/checkpoints."
    if any(k.startswith(("input_blocks.", "down_blocks.", "conv_in.")) for k in keys):
        return f"{path} is a UNet / diffusion model file, not a FineFace file."
    return f"{path} is not a FineFace file (no 'fineface.format' metadata; first keys: {keys[:3]})."
