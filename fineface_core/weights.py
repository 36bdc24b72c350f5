"""FineFaceWeights: everything a FineFace model adds to a UNet, in one checked container.

Layer names are diffusers module paths (``down_blocks.0.attentions.0.transformer_blocks.0.attn2``),
the names of the official release; the ComfyUI glue maps them onto its own block keys.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from .aus import validate_intensities
from .encoders import AUEncoder
from .errors import WeightFileError
from .families import FAMILIES, Family

ATTN2_PATH = re.compile(
    r"^(down_blocks\.\d+\.attentions\.\d+|mid_block\.attentions\.\d+|up_blocks\.\d+\.attentions\.\d+)"
    r"\.transformer_blocks\.\d+\.attn2$"
)
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
LORA_PATH = re.compile(
    r"^(down_blocks\.\d+\.attentions\.\d+|mid_block\.attentions\.\d+|up_blocks\.\d+\.attentions\.\d+)"
    r"\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$"
)


def unet_order(path: str):
    """Sort key: down blocks, then the middle block, then up blocks, as the UNet runs them."""
    part = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}[path.split(".", 1)[0]]
    return (part, [int(t) if t.isdigit() else t for t in re.split(r"\.", path)[1:]])


@dataclass
class LoRAWeights:
    """LoRA on the UNet's attention projections: W' = W + strength * (alpha / rank) * up @ down."""

    down: dict[str, torch.Tensor]  # module path -> [rank, in_features]   (peft lora_A)
    up: dict[str, torch.Tensor]  # module path -> [out_features, rank]  (peft lora_B)
    alpha: float

    @property
    def rank(self) -> int:
        return int(next(iter(self.down.values())).shape[0])

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def delta(self, path: str) -> torch.Tensor:
        """The weight change at strength 1, in float32."""
        return self.scale * (self.up[path].float() @ self.down[path].float())

    def same_as(self, other: "LoRAWeights") -> bool:
        """The same layers, alpha and values (two loads of one file are the same LoRA)."""
        return self is other or (
            self.alpha == other.alpha and self.down.keys() == other.down.keys()
            and all(torch.equal(self.down[p], other.down[p]) and torch.equal(self.up[p], other.up[p]) for p in self.down)
        )

    def validate(self):
        if not self.down:
            raise WeightFileError("the LoRA holds no layers")
        if set(self.down) != set(self.up):
            only = sorted(set(self.down) ^ set(self.up))[:4]
            raise WeightFileError(f"the LoRA has layers with only one of lora_A / lora_B: {only}")
        ranks = set()
        for path in self.down:
            if not LORA_PATH.match(path):
                raise WeightFileError(f"unexpected LoRA layer {path!r}: FineFace's LoRA targets {LORA_TARGETS} of the UNet's attentions")
            d, u = self.down[path], self.up[path]
            if d.ndim != 2 or u.ndim != 2 or d.shape[0] != u.shape[1]:
                raise WeightFileError(f"LoRA layer {path!r} has inconsistent shapes: lora_A {tuple(d.shape)}, lora_B {tuple(u.shape)}")
            ranks.add(d.shape[0])
        if len(ranks) != 1:
            raise WeightFileError(f"the LoRA mixes ranks {sorted(ranks)}; FineFace uses one rank for all layers")
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise WeightFileError(f"LoRA alpha must be a positive number, got {self.alpha}")


@dataclass
class FineFaceWeights:
    """AU encoder + per-layer AU projections (+ LoRA) for one base model family."""

    family: Family
    encoder: AUEncoder
    au_to_v: dict[str, torch.Tensor]  # attn2 path -> [C, context_dim]
    au_to_k: dict[str, torch.Tensor] = field(default_factory=dict)  # unused at inference (one token)
    lora: LoRAWeights | None = None
    lambda_au: float = 1.0
    source: str = ""
    # Keys that were present in the input files but deliberately not used, with the reason.
    ignored: dict[str, str] = field(default_factory=dict)
    # The files these weights were read from (a writer refuses to overwrite them).
    files: tuple[str, ...] = ()

    def __post_init__(self):
        if isinstance(self.family, str):
            self.family = FAMILIES[self.family]
        self.validate()

    # -- checks -------------------------------------------------------------------------
    def validate(self):
        ctx = self.family.context_dim
        if self.encoder.width != ctx:
            raise WeightFileError(
                f"the AU encoder emits {self.encoder.width}-wide tokens but the adapter expects {ctx} ({self.family})"
            )
        if not self.au_to_v:
            raise WeightFileError("no AU value projections (au_to_v) found")
        for path, w in self.au_to_v.items():
            if not ATTN2_PATH.match(path):
                raise WeightFileError(f"unexpected adapter layer {path!r}: AU projections belong to cross-attention (attn2) layers")
            if w.ndim != 2 or w.shape[1] != ctx:
                raise WeightFileError(f"au_to_v of {path} has shape {tuple(w.shape)}; expected [channels, {ctx}] for {self.family}")
        for path, w in self.au_to_k.items():
            if path not in self.au_to_v:
                raise WeightFileError(f"au_to_k of {path} has no matching au_to_v")
            if w.shape != self.au_to_v[path].shape:
                raise WeightFileError(f"au_to_k of {path} has shape {tuple(w.shape)}, au_to_v {tuple(self.au_to_v[path].shape)}")
        if self.au_to_k and set(self.au_to_k) != set(self.au_to_v):
            raise WeightFileError("au_to_k is given for some layers only; give it for all or none")
        if self.lora is not None:
            self.lora.validate()
        if not math.isfinite(self.lambda_au):
            raise WeightFileError(f"default lambda_AU is {self.lambda_au}; it must be a finite number")

    # -- facts --------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        return sorted(self.au_to_v, key=unet_order)

    @property
    def layer_widths(self) -> dict[str, int]:
        return {p: int(self.au_to_v[p].shape[0]) for p in self.layers}

    def width_summary(self) -> str:
        """'320 x5, 640 x5, 1280 x6' in UNet order of first appearance."""
        counts: dict[int, int] = {}
        for w in self.layer_widths.values():
            counts[w] = counts.get(w, 0) + 1
        return ", ".join(f"{w} x{n}" for w, n in sorted(counts.items()))

    def parameter_counts(self) -> dict[str, int]:
        counts = {
            "encoder": sum(p.numel() for p in self.encoder.parameters()),
            "au_to_v": sum(t.numel() for t in self.au_to_v.values()),
            "au_to_k": sum(t.numel() for t in self.au_to_k.values()),
            "lora": 0,
        }
        if self.lora is not None:
            counts["lora"] = sum(t.numel() for t in self.lora.down.values()) + sum(t.numel() for t in self.lora.up.values())
        return counts

    # -- the method -----------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, aus: torch.Tensor) -> torch.Tensor:
        """[N, 12] intensities -> [N, 1, context_dim] AU tokens (checked: finite, in the safe range)."""
        aus = validate_intensities(torch.as_tensor(aus, dtype=torch.float32))
        if aus.ndim == 1:
            aus = aus[None]
        return self.encoder(aus.to(next(self.encoder.parameters(), aus).device))

    @torch.no_grad()
    def au_values(self, embedding: torch.Tensor, lambda_au: float | None = None) -> dict[str, torch.Tensor]:
        """Per layer, the AU branch's whole contribution before ``to_out``: lambda * au_to_v(e).

        With a single AU token, Attn(Q, K_AU, V_AU) = V_AU for every query (softmax over one
        key is 1), so the branch is this [N, C] vector, whatever the query, timestep or au_to_k.
        """
        lam = self.lambda_au if lambda_au is None else float(lambda_au)
        if embedding.ndim != 3 or embedding.shape[1] != 1:
            raise ValueError(f"expected AU embeddings of shape [N, 1, {self.family.context_dim}], got {tuple(embedding.shape)}")
        token = embedding[:, 0].float()
        return {p: lam * (token @ self.au_to_v[p].float().t()) for p in self.layers}
