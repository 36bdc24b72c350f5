"""Base model families FineFace weights exist for, told apart by the text encoder's width."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelMismatchError


@dataclass(frozen=True)
class Family:
    key: str
    display_name: str
    context_dim: int
    # The UNet's cross-attention (attn2) layers: what a complete set of weights for the real base model holds.
    adapter_layers: int

    def __str__(self):
        return f"{self.display_name} (text width {self.context_dim})"


SD21 = Family("sd21", "Stable Diffusion 2.x", 1024, 16)
SD15 = Family("sd15", "Stable Diffusion 1.x", 768, 16)
# SDXL: CLIP ViT-L (768) and OpenCLIP bigG (1280) concatenated; transformer depths 2 and 10 give
# 2*2 + 2*10 down, 10 middle, 3*10 + 3*2 up = 70 cross-attention layers.
SDXL = Family("sdxl", "SDXL", 2048, 70)
FAMILIES = {f.key: f for f in (SD21, SD15, SDXL)}

# Models with cross-attention but no FineFace family, for messages that say what was found and what to do.
OTHER_CONTEXT_WIDTHS = {1280: "the SDXL refiner", 4096: "a T5-conditioned model"}
_ADVICE = {
    1280: "The refiner has its own UNet and text encoder (OpenCLIP bigG only): apply FineFace to the SDXL base "
          "model and refine without it.",
}


def known_families_text() -> str:
    """'Stable Diffusion 2.x (text width 1024), Stable Diffusion 1.x (text width 768) and SDXL (text width 2048)'."""
    names = [str(f) for f in FAMILIES.values()]
    return ", ".join(names[:-1]) + " and " + names[-1]


def family_for_context_dim(context_dim: int, what: str = "this model") -> Family:
    for family in FAMILIES.values():
        if family.context_dim == context_dim:
            return family
    known = OTHER_CONTEXT_WIDTHS.get(context_dim)
    found = f"{known} (text width {context_dim})" if known else f"text width {context_dim}"
    advice = _ADVICE.get(context_dim, (
        "Use an SD 2.1 checkpoint with the SD 2.1 FineFace weights, an SD 1.5 checkpoint with the SD 1.5 ones, or "
        "an SDXL checkpoint with FineFace weights trained for SDXL (training/)."))
    raise ModelMismatchError(f"{what} is {found}; FineFace weights exist only for {known_families_text()}. {advice}")


def not_a_unet_message(what: str, class_name: str) -> str:
    """For a model without the UNet FineFace patches (DiT models: SD3, Flux, ...; video and cascade models)."""
    return (f"{what} ({class_name}) is not a Stable Diffusion UNet: FineFace adds its AU adapter to the UNet's "
            "cross-attention layers, which diffusion-transformer (DiT) models such as SD3 and Flux do not have. "
            f"FineFace works on {known_families_text()} checkpoints.")
