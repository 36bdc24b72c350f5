"""Other tools' files, recognised from their tensor names alone: what a user pointed a FineFace loader at instead.

Every loader asks here (the single-file reader, the official release's LoRA), so each kind is named one way.
A diffusers / peft LoRA is ``lora_layout``'s to describe (its layout, not only its names, tells whose it is).
"""
from __future__ import annotations

KOHYA_PREFIXES = ("lora_unet_", "lora_te")  # lora_te_, lora_te1_, lora_te2_
CHECKPOINT_PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")
UNET_PREFIXES = ("input_blocks.", "down_blocks.", "conv_in.")


def foreign_file_message(name: str, keys) -> str | None:
    """What the file named ``name`` is and where it belongs, when its tensor names are another tool's
    (a kohya LoRA, a Stable Diffusion checkpoint, a UNet, text-encoder LoRA weights); None otherwise."""
    keys = list(keys)
    kohya = [k for k in keys if k.startswith(KOHYA_PREFIXES) or ".lora_up." in k or ".lora_down." in k]
    if kohya:
        return (f"{name} is a kohya-style Stable Diffusion LoRA (keys like {kohya[0]!r}), not FineFace weights. "
                "Load it with ComfyUI's LoraLoader; FineFace needs its own files.")
    if any(k.startswith(CHECKPOINT_PREFIXES) for k in keys):
        return f"{name} is a Stable Diffusion checkpoint, not FineFace weights. It belongs in models/checkpoints."
    if any(k.startswith(UNET_PREFIXES) for k in keys) and not any("lora" in k for k in keys):
        return f"{name} is a UNet / diffusion model file, not FineFace weights."
    if any(k.startswith("text_encoder.") for k in keys):
        return f"{name} carries text-encoder LoRA weights; FineFace's LoRA touches the UNet only."
    return None
