"""What FineFace needs to know about a ComfyUI MODEL: its family, its cross-attention layers
under ComfyUI's patch keys, and its weight names for the LoRA."""
from __future__ import annotations

import re
from dataclasses import dataclass

import comfy.utils

from fineface_core.errors import ModelMismatchError
from fineface_core.families import Family, family_for_context_dim, not_a_unet_message
from fineface_core.weightfiles.releases import weights_for
from fineface_core.weights import FineFaceWeights, unet_order

_COMFY_ATTN2 = re.compile(
    r"^(?:(?P<io>input|output)_blocks\.(?P<id>\d+)|middle_block)\.\d+\.transformer_blocks\.(?P<t>\d+)\.attn2$"
)


@dataclass(frozen=True)
class Attn2Layer:
    path: str  # diffusers path, as in the weight files
    comfy_path: str  # module path under diffusion_model
    key: tuple  # ComfyUI's patches_replace key: (block_name, block_id, transformer_index)
    channels: int


def unet_config(model) -> dict:
    config = getattr(getattr(model.model, "model_config", None), "unet_config", None)
    if not isinstance(config, dict) or "context_dim" not in config or "num_res_blocks" not in config:
        raise ModelMismatchError(not_a_unet_message("this MODEL", type(model.model).__name__))
    return config


def model_family(model) -> Family:
    return family_for_context_dim(unet_config(model)["context_dim"], "this MODEL")


def diffusers_to_comfy_keys(model) -> dict[str, str]:
    """diffusers weight name -> ComfyUI weight name (without the ``diffusion_model.`` prefix)."""
    return comfy.utils.unet_to_diffusers(unet_config(model))


def attn2_layers(model) -> dict[str, Attn2Layer]:
    """Every cross-attention layer of the UNet, keyed by its diffusers path, found in the model itself."""
    diffusion_model = model.model.diffusion_model
    layers = {}
    for d_key, c_key in diffusers_to_comfy_keys(model).items():
        if not d_key.endswith(".attn2.to_v.weight"):
            continue
        path, comfy_path = d_key[: -len(".to_v.weight")], c_key[: -len(".to_v.weight")]
        m = _COMFY_ATTN2.match(comfy_path)
        if m is None:
            raise ModelMismatchError(f"unexpected cross-attention layer {comfy_path} in this MODEL")
        key = ("middle", 0, int(m["t"])) if m["io"] is None else (m["io"], int(m["id"]), int(m["t"]))
        module = diffusion_model.get_submodule(comfy_path)
        layers[path] = Attn2Layer(path, comfy_path, key, int(module.to_v.weight.shape[0]))
    return dict(sorted(layers.items(), key=lambda kv: unet_order(kv[0])))


def check_fits(model, weights: FineFaceWeights) -> dict[str, Attn2Layer]:
    """The weights fit this MODEL (family, every layer, widths); returns the model's attn2 layers."""
    family = model_family(model)
    if family.key != weights.family.key:
        raise ModelMismatchError(
            f"this MODEL is {family}, but the FineFace weights are for {weights.family}. "
            f"For this checkpoint use {weights_for(family.key)}."
        )
    layers = attn2_layers(model)
    missing = [p for p in weights.layers if p not in layers]
    uncovered = [p for p in layers if p not in weights.au_to_v]
    if missing or uncovered:
        raise ModelMismatchError(
            f"the FineFace weights' cross-attention layers do not match this MODEL: {len(missing)} layers of the "
            f"weights are not in the model (e.g. {missing[:2]}), {len(uncovered)} model layers have no weights "
            f"(e.g. {uncovered[:2]})."
        )
    for path, layer in layers.items():
        width = int(weights.au_to_v[path].shape[0])
        if width != layer.channels:
            raise ModelMismatchError(
                f"layer {path}: the FineFace weights are {width} channels wide, this MODEL's layer has "
                f"{layer.channels}; the weights were made for a different UNet."
            )
    return layers
