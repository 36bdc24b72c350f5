"""What a diffusers / peft LoRA file is, from its key names and shapes alone (no tensor is read).

The official FineFace LoRA (the SD 2.1 release's LoRA file, see ``releases``) has one
layout: ``to_q``, ``to_k``, ``to_v`` and ``to_out.0`` of both attentions (attn1, attn2) of each
of the 16 transformer blocks of the SD 2.1 UNet, 128 layers, rank 32; widths 320 / 640 / 1280,
with attn2's ``to_k`` / ``to_v`` reading the 1024-wide text. Other LoRAs for Stable Diffusion
share the key names, so a file is called FineFace's only when all of this matches.
"""
from __future__ import annotations

import re

from ..families import FAMILIES, OTHER_CONTEXT_WIDTHS

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
# The SD 2.1 UNet's transformer blocks with their widths (block_out_channels 320, 640, 1280, 1280).
SD21_BLOCKS = tuple(
    [(f"down_blocks.{b}.attentions.{a}.transformer_blocks.0", 320 * 2**b) for b in range(3) for a in range(2)]
    + [("mid_block.attentions.0.transformer_blocks.0", 1280)]
    + [(f"up_blocks.{b}.attentions.{a}.transformer_blocks.0", 320 * 2 ** (3 - b)) for b in (1, 2, 3) for a in range(3)]
)
SD21_CONTEXT_DIM = 1024
OFFICIAL_RANK = 32

# peft (``lora_A``, optionally with an adapter name) and the older diffusers names.
_AB = re.compile(r"^(?:unet\.)?(?P<path>.+?)\.(?:(?P<peft>lora_[AB])(?:\.[^.]+)?|lora\.(?P<old>down|up))\.weight$")
_PROC = re.compile(r"^(?:unet\.)?(?P<attn>.+)\.processor\.(?P<t>to_q|to_k|to_v|to_out)_lora\.(?P<old>down|up)\.weight$")
_ALPHA = re.compile(r"^(?:unet\.)?.+\.alpha$")
_TEXT = ("text_encoder.", "text_encoder_2.")


def sd21_attn2_widths() -> dict[str, int]:
    return {f"{block}.attn2": width for block, width in SD21_BLOCKS}


def expected_layers(attn2_widths: dict[str, int], context_dim: int) -> dict[str, tuple[int, int]]:
    """Module path -> (in, out) of FineFace's LoRA for a UNet whose attn2 layers have these widths."""
    layers = {}
    for attn2, width in attn2_widths.items():
        block = attn2[: -len(".attn2")]
        for attn in ("attn1", "attn2"):
            for t in TARGETS:
                reads_text = attn == "attn2" and t in ("to_k", "to_v")
                layers[f"{block}.{attn}.{t}"] = (context_dim if reads_text else width, width)
    return layers


def _parse(shapes: dict[str, tuple[int, ...]]):
    """UNet layers {path: {"A": shape, "B": shape}}, text-encoder layer count, other keys."""
    unet, text, other = {}, 0, []
    for key, shape in shapes.items():
        if key.startswith(_TEXT):
            text += ".lora_A." in key or key.endswith("lora.down.weight")
            continue
        m = _PROC.match(key)
        if m:
            path, ab = f"{m['attn']}.{'to_out.0' if m['t'] == 'to_out' else m['t']}", "A" if m["old"] == "down" else "B"
        elif (m := _AB.match(key)):
            path = m["path"]
            ab = m["peft"][-1] if m["peft"] else ("A" if m["old"] == "down" else "B")
        elif _ALPHA.match(key):
            continue
        else:
            other.append(key)
            continue
        unet.setdefault(path, {})[ab] = tuple(shape)
    return unet, text, other


def describe_lora(shapes: dict[str, tuple[int, ...]]) -> str | None:
    """'a diffusers/peft LoRA for Stable Diffusion 1.x (128 layers, rank 4)', or None for no such LoRA."""
    unet, text, _ = _parse(shapes)
    if not unet and not text:
        return None
    ranks = sorted({s["A"][0] for s in unet.values() if "A" in s and len(s["A"]) == 2})
    rank = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}-{ranks[-1]}" if ranks else "rank unknown"
    if not unet:
        return f"a diffusers/peft LoRA for a Stable Diffusion text encoder ({_n(text, 'layer')})"
    # attn2's to_k reads the text: its width names the base model.
    text_widths = {s["A"][1] for p, s in unet.items() if p.endswith(".attn2.to_k") and len(s.get("A", ())) == 2}
    bases = {**{f.context_dim: f.display_name for f in FAMILIES.values()}, **OTHER_CONTEXT_WIDTHS}
    base = bases.get(text_widths.pop(), "Stable Diffusion") if len(text_widths) == 1 else "Stable Diffusion"
    layers = _n(len(unet), "layer") + (f" and {_n(text, 'text-encoder layer')}" if text else "")
    return f"a diffusers/peft LoRA for {base} ({layers}, {rank})"


def layout_problem(shapes: dict[str, tuple[int, ...]], attn2_widths: dict[str, int], context_dim: int,
                   rank: int | None = None) -> str | None:
    """How a LoRA file differs from FineFace's LoRA for these attn2 widths (None: it has that layout)."""
    unet, text, other = _parse(shapes)
    if text:
        return "it changes the text encoder too (FineFace's LoRA touches the UNet only)"
    if other:
        return f"it holds {_n(len(other), 'tensor')} that {'is' if len(other) == 1 else 'are'} not LoRA weights, such as {other[:2]}"
    expected = expected_layers(attn2_widths, context_dim)
    missing = [p for p in expected if p not in unet]
    if missing:
        return f"{len(missing)} of FineFace's {len(expected)} LoRA layers are missing, such as {missing[0]!r}"
    extra = sorted(set(unet) - set(expected))
    if extra:
        return f"it has {_n(len(extra), 'layer')} FineFace's LoRA does not have, such as {extra[0]!r}"
    ranks = set()
    for path, (n_in, n_out) in expected.items():
        a, b = unet[path].get("A"), unet[path].get("B")
        if a is None or b is None:
            return f"layer {path!r} has only one of its two LoRA matrices"
        if len(a) != 2 or len(b) != 2 or a[1] != n_in or b[0] != n_out or a[0] != b[1]:
            return (f"layer {path!r} has matrices {a} and {b}; FineFace's has [rank, {n_in}] and [{n_out}, rank] "
                    "(the widths of another UNet)")
        ranks.add(a[0])
    if len(ranks) > 1:
        return f"its layers use different ranks {sorted(ranks)}"
    if rank is not None and ranks != {rank}:
        return f"it has rank {ranks.pop()}; FineFace's LoRA has rank {rank}"
    return None


def is_official_sd21_lora(shapes: dict[str, tuple[int, ...]]) -> bool:
    return layout_problem(shapes, sd21_attn2_widths(), SD21_CONTEXT_DIM, rank=OFFICIAL_RANK) is None


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"
