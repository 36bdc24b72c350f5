"""Base model families FineFace weights exist for, told apart by the text encoder's width."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ModelMismatchError


@dataclass(frozen=True)
class Family:
    key: str
    display_name: str
    context_dim: int

    def __str__(self):
        return f"{self.display_name} (text width {self.context_dim})"


SD21 = Family("sd21", "Stable Diffusion 2.x", 1024)
SD15 = Family("sd15", "Stable Diffusion 1.x", 768)
FAMILIES = {f.key: f for f in (SD21, SD15)}

# Models with cross-attention but no FineFace weights, for messages that say what was found.
OTHER_CONTEXT_WIDTHS = {2048: "SDXL", 1280: "SDXL refiner", 4096: "a T5-conditioned model"}


def family_for_context_dim(context_dim: int, what: str = "this model") -> Family:
    for family in FAMILIES.values():
        if family.context_dim == context_dim:
            return family
    known = OTHER_CONTEXT_WIDTHS.get(context_dim)
    found = f"{known} (text width {context_dim})" if known else f"text width {context_dim}"
    raise ModelMismatchError(
        f"{what} is {found}; FineFace weights exist only for {SD21} and {SD15}. "
        "Use an SD 2.1 checkpoint with the SD 2.1 FineFace weights, or an SD 1.5 checkpoint with the SD 1.5 ones."
    )
