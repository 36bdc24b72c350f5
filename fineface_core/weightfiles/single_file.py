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

from ..aus import AU_ORDER
from ..encoders import load_encoder
from ..errors import WeightFileError
from .lora_layout import describe_lora, is_official_sd21_lora
from .metadata import DAMAGED, FORMAT_NAME, FORMAT_VERSION, PREFIX as _M, is_fineface_file, parse_metadata
from .foreign import foreign_file_message
from .official import official_variants_in
from .releases import RELEASES
from ..files.safe_write import check_output_path, write_safetensors
from ..files.safe_load import load_safetensors, read_safetensors_header
from ..weights import FineFaceWeights, LoRAWeights

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "is_fineface_file", "load_fineface", "save_fineface"]


def save_fineface(weights: FineFaceWeights, path: str, *, include_au_to_k: bool = True, dtype: torch.dtype | None = None,
                  overwrite: bool = True) -> str:
    """Write ``weights`` to one .safetensors file, atomically (a failed write leaves nothing behind).

    Never writes over a file the weights were read from; an existing file is replaced only with
    ``overwrite``. A ``dtype`` that would turn values into infinities (float16 above 65504) is refused.
    """
    check_output_path(path, overwrite=overwrite, inputs=weights.files)
    tensors: dict[str, torch.Tensor] = {}

    def put(key: str, t: torch.Tensor):
        t = t.detach().to("cpu")
        cast = (t.to(dtype) if dtype is not None else t).contiguous()
        if dtype is not None and not bool(torch.isfinite(cast).all()) and bool(torch.isfinite(t).all()):
            raise WeightFileError(
                f"cannot store {key!r} as {str(dtype).replace('torch.', '')}: its values reach "
                f"{float(t.abs().max()):.6g}, beyond that type's range ({torch.finfo(dtype).max:.6g}), and would become "
                f"infinite. Keep the precision (--dtype keep) or use bfloat16 (--dtype bf16). Nothing was written."
            )
        tensors[key] = cast

    for k, v in weights.encoder.state_dict().items():
        put(f"encoder.{k}", v)
    for p in weights.layers:
        put(f"adapter.{p}.au_to_v.weight", weights.au_to_v[p])
        if include_au_to_k and weights.au_to_k:
            put(f"adapter.{p}.au_to_k.weight", weights.au_to_k[p])
    if weights.lora is not None:
        for p in weights.lora.down:
            put(f"lora.{p}.lora_A.weight", weights.lora.down[p])
            put(f"lora.{p}.lora_B.weight", weights.lora.up[p])
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
    return write_safetensors(tensors, path, metadata)


def load_fineface(path: str) -> FineFaceWeights:
    """Read a FineFace .safetensors file; anything else gets an error that says what it is.

    The metadata and the tensors' shapes are checked before any tensor is read or any module built.
    """
    metadata, shapes = read_safetensors_header(path, "FineFace file")
    if not is_fineface_file(metadata):
        raise WeightFileError(_foreign_message(path, shapes))
    meta = parse_metadata(path, metadata)

    groups: dict[str, dict[str, tuple[int, ...]]] = {"encoder": {}, "adapter": {}, "lora": {}}
    for key, shape in shapes.items():
        head, _, rest = key.partition(".")
        if head not in groups or not rest:
            raise WeightFileError(f"{path}: unexpected tensor {key!r} (expected encoder.*, adapter.* or lora.*)")
        groups[head][rest] = shape
    for key in groups["adapter"]:
        if not key.endswith((".au_to_v.weight", ".au_to_k.weight")):
            raise WeightFileError(f"{path}: unexpected adapter tensor 'adapter.{key}'")
    for key in groups["lora"]:
        if not key.endswith((".lora_A.weight", ".lora_B.weight")):
            raise WeightFileError(f"{path}: unexpected LoRA tensor 'lora.{key}'")
    has_k = any(k.endswith(".au_to_k.weight") for k in groups["adapter"])
    if meta.au_to_k is not None and has_k != (meta.au_to_k == "included"):
        raise WeightFileError(f"{path}: metadata field '{_M}au_to_k' says {meta.au_to_k!r}, but the file "
                              f"{'holds' if has_k else 'holds no'} au_to_k tensors.{DAMAGED}")
    if groups["lora"] and not meta.lora_rank:
        raise WeightFileError(f"{path}: the file holds LoRA tensors but metadata field '{_M}lora_rank' announces none.{DAMAGED}")
    if meta.lora_rank and not groups["lora"]:
        raise WeightFileError(f"{path}: metadata announces a rank-{meta.lora_rank} LoRA but the file holds no LoRA tensors "
                              "(truncated?). Convert or export the weights again.")
    for key, shape in groups["lora"].items():
        if len(shape) != 2 or shape[0 if key.endswith(".lora_A.weight") else 1] != meta.lora_rank:
            raise WeightFileError(f"{path}: metadata field '{_M}lora_rank' says {meta.lora_rank}, but 'lora.{key}' "
                                  f"has shape {list(shape)}.{DAMAGED}")

    tensors, _ = load_safetensors(path, "FineFace file")
    parts: dict[str, dict[str, torch.Tensor]] = {"encoder": {}, "adapter": {}, "lora": {}}
    for key, tensor in tensors.items():
        head, _, rest = key.partition(".")
        parts[head][rest] = tensor
    au_to_v, au_to_k = {}, {}
    for key, tensor in parts["adapter"].items():
        layer, name, _ = key.rsplit(".", 2)
        (au_to_v if name == "au_to_v" else au_to_k)[layer] = tensor
    lora = None
    if parts["lora"]:
        down = {k[: -len(".lora_A.weight")]: t for k, t in parts["lora"].items() if k.endswith(".lora_A.weight")}
        up = {k[: -len(".lora_B.weight")]: t for k, t in parts["lora"].items() if k.endswith(".lora_B.weight")}
        lora = LoRAWeights(down=down, up=up, alpha=meta.lora_alpha)
        lora.validate()
    return FineFaceWeights(
        family=meta.family,
        encoder=_encoder(meta.encoder, parts["encoder"], path),
        au_to_v=au_to_v, au_to_k=au_to_k, lora=lora, lambda_au=meta.lambda_au,
        source=meta.source or os.path.basename(path), files=(path,),
    )


def _encoder(config: dict, state_dict: dict[str, torch.Tensor], path: str):
    try:
        return load_encoder(config, state_dict, where=f"{path}: metadata field '{_M}encoder'")
    except WeightFileError as e:
        raise WeightFileError(f"{e}.{DAMAGED}") from None


def _foreign_message(path: str, shapes: dict[str, tuple[int, ...]]) -> str:
    lora = describe_lora(shapes)
    sd21 = RELEASES["sd21"]
    beside_release = os.path.basename(path) == sd21.lora_file and \
        "sd21" in official_variants_in(os.path.dirname(os.path.abspath(path)))
    if lora is not None and (beside_release or is_official_sd21_lora(shapes)):
        # In a release folder, loading the folder checks this LoRA against the release's adapter.
        return (
            f"{path} is the LoRA part of the official FineFace release, not a complete model. Point the loader "
            f"at the folder holding {sd21.encoder_file}, {sd21.processors_file} and this file, or convert the folder "
            "with `python -m fineface_core convert FOLDER OUT.safetensors`."
        )
    if lora is not None:
        return (f"{path} is {lora}, not FineFace's: FineFace weights are a FineFace .safetensors file or an official "
                "release folder. Load this LoRA with a LoRA loader.")
    return (foreign_file_message(path, shapes)
            or f"{path} is not a FineFace file (no 'fineface.format' metadata; first keys: {list(shapes)[:3]}).")
