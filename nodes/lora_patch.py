"""FineFace's LoRA as ComfyUI weight patches, which ComfyUI merges into the weights on load.

ComfyUI's own LoRA key map does not know the peft names of the official file (its
LoraLoader would drop every key with a console warning), so the names are mapped here
through ``comfy.utils.unet_to_diffusers`` and every key is checked to land.

A model carries a FineFace LoRA at most once: a second Apply FineFace Adapter on the way (an
AU schedule, other AUs in another start/end window) adds its AU branch and finds the LoRA in
place, recorded in ``model_options`` (which ComfyUI copies with every clone).
"""
from __future__ import annotations

import comfy.lora
import torch

from fineface_core.errors import FineFaceError, ModelMismatchError
from fineface_core.weights import LoRAWeights

from .comfy_model import diffusers_to_comfy_keys

_PREFIX = "fineface_lora"
APPLIED = "fineface_applied_lora"  # model_options key: [AppliedLoRA, ...]


class AppliedLoRA:
    """A FineFace LoRA this model already carries, and at which strength."""

    def __init__(self, lora: LoRAWeights, strength: float):
        self.lora, self.strength = lora, strength

    def __deepcopy__(self, memo):
        return self  # ComfyUI deep-copies model_options on every clone; the record never changes


def lora_patches(model, lora: LoRAWeights) -> dict:
    """ComfyUI patch dict {model weight name: patch} for every LoRA layer (all must map)."""
    to_comfy = diffusers_to_comfy_keys(model)
    model_keys = set(model.model.state_dict().keys())
    lora_sd, to_load, unmapped = {}, {}, []
    for i, path in enumerate(lora.down):
        comfy_key = to_comfy.get(f"{path}.weight")
        target = f"diffusion_model.{comfy_key}" if comfy_key else None
        if target is None or target not in model_keys:
            unmapped.append(path)
            continue
        name = f"{_PREFIX}.{i}"
        lora_sd[f"{name}.lora_up.weight"] = lora.up[path]
        lora_sd[f"{name}.lora_down.weight"] = lora.down[path]
        lora_sd[f"{name}.alpha"] = torch.tensor(float(lora.alpha))
        to_load[name] = target
    if unmapped:
        raise ModelMismatchError(
            f"{len(unmapped)} of {len(lora.down)} FineFace LoRA layers have no counterpart in this MODEL "
            f"(e.g. {unmapped[:2]})"
        )
    patches = comfy.lora.load_lora(lora_sd, to_load)
    if len(patches) != len(lora.down):
        raise ModelMismatchError(f"ComfyUI accepted {len(patches)} of {len(lora.down)} FineFace LoRA layers")
    return patches


def add_lora(model, lora: LoRAWeights, strength: float) -> int:
    """Add the LoRA to a cloned ModelPatcher at ``strength``; returns how many weights it patches
    (0 when the model carries this LoRA at this strength already)."""
    applied = model.model_options.setdefault(APPLIED, [])
    for record in applied:
        if record.lora.same_as(lora):
            if record.strength != strength:
                raise FineFaceError(
                    f"this MODEL already carries this FineFace LoRA at strength {record.strength:g} (from an earlier "
                    f"Apply FineFace Adapter); another Apply adds its AUs but cannot change the LoRA: set its "
                    f"lora_strength to {record.strength:g}, or to 0"
                )
            return 0
    if applied:
        # Two FineFace LoRAs merged into one UNet are neither model's method: each was trained alone.
        raise FineFaceError(
            "this MODEL already carries the LoRA of another FineFace model (an earlier Apply FineFace Adapter with "
            "different weights); merging two FineFace LoRAs gives neither model's results. Use one FineFace Model "
            "Loader for every Apply on this path, or set lora_strength to 0 on this Apply to add only its AU branch"
        )
    patches = lora_patches(model, lora)
    landed = model.add_patches(patches, strength)
    if len(landed) != len(patches):
        missed = sorted(set(patches) - set(landed))[:3]
        raise ModelMismatchError(f"{len(patches) - len(landed)} LoRA patches did not land in the MODEL (e.g. {missed})")
    applied.append(AppliedLoRA(lora, strength))
    return len(landed)
