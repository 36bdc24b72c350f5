"""FineFace on a diffusers ``UNet2DConditionModel``: the reference (oracle) implementation.

It follows the official inference math literally -- the AU branch is a real attention over
the AU token, ``Z = Attn(Q, K_text, V_text) + lambda_AU * Attn(Q, K_AU, V_AU)`` before
``to_out`` -- so that the ComfyUI nodes' shortcut (a broadcast add) is tested against it.
The trainer uses the same processors and LoRA setup, so trained and exported weights run
here unchanged.

The AU embedding travels through ``cross_attention_kwargs={"au_embedding": e, "au_scale": s}``,
batched like the UNet input (the diffusers pipelines put uncond first, then cond).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn

from .conditioning import guided_batch
from .errors import ModelMismatchError
from .families import family_for_context_dim
from .weightfiles.releases import weights_for
from .weights import LORA_TARGETS, FineFaceWeights, LoRAWeights, unet_order

ADAPTER_NAME = "fineface"


class SelfAttnProcessor(AttnProcessor2_0):
    """Self-attention (attn1), unchanged; it accepts and ignores the AU kwargs that reach every layer."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 au_embedding=None, au_scale=1.0):
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class AUAttnProcessor(nn.Module):
    """Cross-attention (attn2) with the decoupled AU branch of FineFace / IP-Adapter."""

    def __init__(self, hidden_size: int, cross_attention_dim: int):
        super().__init__()
        self.au_to_k = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.au_to_v = nn.Linear(cross_attention_dim, hidden_size, bias=False)

    def __call__(self, attn: Attention, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 temb=None, au_embedding=None, au_scale=1.0):
        if attn.spatial_norm is not None or attn.group_norm is not None or hidden_states.ndim != 3:
            raise NotImplementedError("AUAttnProcessor supports the UNet's transformer cross-attention only")
        batch, _, _ = hidden_states.shape
        heads = attn.heads
        query = attn.to_q(hidden_states)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key, value = attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // heads

        def split(t):
            return t.view(t.shape[0], -1, heads, head_dim).transpose(1, 2)

        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
            attention_mask = attention_mask.view(batch, heads, -1, attention_mask.shape[-1])
        out = F.scaled_dot_product_attention(split(query), split(key), split(value), attn_mask=attention_mask)
        out = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)

        if au_embedding is not None and au_scale != 0:
            if au_embedding.shape[0] not in (1, batch):
                raise ValueError(f"au_embedding has batch {au_embedding.shape[0]}, the UNet input has {batch}")
            e = au_embedding.to(query.dtype).expand(batch, -1, -1)
            au_key, au_value = split(self.au_to_k(e)), split(self.au_to_v(e))
            au_out = F.scaled_dot_product_attention(split(query), au_key, au_value)
            out = out + au_scale * au_out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)

        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def attn2_modules(unet: UNet2DConditionModel) -> dict[str, Attention]:
    return {n: m for n, m in unet.named_modules() if n.endswith("attn2") and isinstance(m, Attention)}


def add_au_adapter(unet: UNet2DConditionModel, init_from_unet: bool = True) -> dict[str, AUAttnProcessor]:
    """Install AU processors on every attn2 (au_to_k / au_to_v copied from to_k / to_v, as in
    training, or zeros), plain processors on attn1. Returns {attn2 path: processor}."""
    context_dim = unet.config.cross_attention_dim
    family_for_context_dim(context_dim, "the UNet")
    layers = attn2_modules(unet)
    ref = next(unet.parameters())
    processors, created = {}, {}
    for name in unet.attn_processors:
        path = name[: -len(".processor")]
        if path in layers:
            attn = layers[path]
            proc = AUAttnProcessor(attn.to_v.out_features, context_dim).to(ref.device, ref.dtype)
            with torch.no_grad():
                if init_from_unet:
                    proc.au_to_k.weight.copy_(_base_linear(attn.to_k).weight)
                    proc.au_to_v.weight.copy_(_base_linear(attn.to_v).weight)
                else:
                    proc.au_to_k.weight.zero_()
                    proc.au_to_v.weight.zero_()
            processors[name] = created[path] = proc
        else:
            processors[name] = SelfAttnProcessor()
    unet.set_attn_processor(processors)
    return created


def _base_linear(module: nn.Module) -> nn.Linear:
    """The original Linear under a peft LoRA wrapper, or the Linear itself."""
    return getattr(module, "base_layer", module)


def add_lora(unet: UNet2DConditionModel, rank: int, alpha: float, init: str | bool = "gaussian"):
    """peft LoRA on to_q / to_k / to_v / to_out.0 of every UNet attention (self and cross)."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=init, target_modules=list(LORA_TARGETS))
    unet.add_adapter(config, adapter_name=ADAPTER_NAME)


def lora_paths(unet: UNet2DConditionModel) -> dict[str, nn.Linear]:
    """{module path: Linear} of the layers FineFace's LoRA targets."""
    out = {}
    for name, attn in unet.named_modules():
        if isinstance(attn, Attention) and name.rsplit(".", 1)[-1] in ("attn1", "attn2"):
            out[f"{name}.to_q"], out[f"{name}.to_k"], out[f"{name}.to_v"] = attn.to_q, attn.to_k, attn.to_v
            out[f"{name}.to_out.0"] = attn.to_out[0]
    return out


def check_fits(unet: UNet2DConditionModel, weights: FineFaceWeights):
    """Every layer of the weights exists in the UNet with matching widths (and vice versa)."""
    family = family_for_context_dim(unet.config.cross_attention_dim, "the UNet")
    if family.key != weights.family.key:
        raise ModelMismatchError(
            f"these FineFace weights are for {weights.family} but the UNet is {family}; use {weights_for(family.key)}."
        )
    layers = attn2_modules(unet)
    missing = sorted(set(weights.au_to_v) - set(layers), key=unet_order)
    extra = sorted(set(layers) - set(weights.au_to_v), key=unet_order)
    if missing or extra:
        raise ModelMismatchError(
            f"the weights' cross-attention layers do not match the UNet: not in the UNet {missing[:3]}, "
            f"not in the weights {extra[:3]}"
        )
    for path, w in weights.au_to_v.items():
        c = layers[path].to_v.out_features
        if w.shape[0] != c:
            raise ModelMismatchError(f"{path}: the weights are {w.shape[0]} channels wide, the UNet layer {c}")
    if weights.lora is not None:
        targets = lora_paths(unet)
        for path in weights.lora.down:
            if path not in targets:
                raise ModelMismatchError(f"LoRA layer {path} does not exist in the UNet")
            lin = _base_linear(targets[path])
            if weights.lora.down[path].shape[1] != lin.in_features or weights.lora.up[path].shape[0] != lin.out_features:
                raise ModelMismatchError(f"LoRA layer {path} does not fit {lin.in_features}->{lin.out_features}")


def attach_fineface(unet: UNet2DConditionModel, weights: FineFaceWeights, lora_strength: float = 1.0) -> dict[str, AUAttnProcessor]:
    """Patch ``unet`` in place with FineFace (AU adapter + LoRA at ``lora_strength``)."""
    check_fits(unet, weights)
    processors = add_au_adapter(unet, init_from_unet=False)
    with torch.no_grad():
        for path, proc in processors.items():
            proc.au_to_v.weight.copy_(weights.au_to_v[path])
            if weights.au_to_k:
                proc.au_to_k.weight.copy_(weights.au_to_k[path])
            # Without au_to_k (inference files) the zero key is exact: softmax over one key is 1.
    if weights.lora is not None:
        load_lora(unet, weights.lora, strength=lora_strength)
    unet.requires_grad_(False)
    return processors


def load_lora(unet: UNet2DConditionModel, lora: LoRAWeights, strength: float = 1.0):
    from peft import set_peft_model_state_dict

    add_lora(unet, lora.rank, lora.alpha, init=True)
    state = {}
    for path in lora.down:
        state[f"{path}.lora_A.weight"] = lora.down[path]
        state[f"{path}.lora_B.weight"] = lora.up[path]
    result = set_peft_model_state_dict(unet, state, adapter_name=ADAPTER_NAME)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise ModelMismatchError(f"LoRA keys that did not land in the UNet: {unexpected[:3]}")
    set_lora_strength(unet, strength)


def set_lora_strength(unet: UNet2DConditionModel, strength: float):
    unet.set_adapters([ADAPTER_NAME], weights=[float(strength)])


def au_kwargs(weights: FineFaceWeights, aus: torch.Tensor, au_scale: float | None = None,
              cfg: bool = True, device=None, dtype=None) -> dict:
    """cross_attention_kwargs for a diffusers call: [uncond = encoder(zeros), cond = encoder(aus)] with CFG."""
    aus = torch.as_tensor(aus, dtype=torch.float32)
    aus = aus[None] if aus.ndim == 1 else aus
    emb = guided_batch(weights.encode, aus, cfg)
    scale = weights.lambda_au if au_scale is None else float(au_scale)
    return {"au_embedding": emb.to(device=device, dtype=dtype), "au_scale": scale}


def extract_weights(unet: UNet2DConditionModel, encoder, *, lora_alpha: float | None, source: str = "",
                    lambda_au: float = 1.0, include_au_to_k: bool = True) -> FineFaceWeights:
    """Read trained FineFace weights back out of a patched UNet (for export)."""
    family = family_for_context_dim(unet.config.cross_attention_dim, "the UNet")
    au_to_v, au_to_k = {}, {}
    for name, proc in unet.attn_processors.items():
        if isinstance(proc, AUAttnProcessor):
            path = name[: -len(".processor")]
            au_to_v[path] = proc.au_to_v.weight.detach().float().cpu().clone()
            if include_au_to_k:
                au_to_k[path] = proc.au_to_k.weight.detach().float().cpu().clone()
    lora = None
    if lora_alpha is not None and getattr(unet, "peft_config", None) and ADAPTER_NAME in unet.peft_config:
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME)
        down = {k[: -len(".lora_A.weight")]: v.detach().float().cpu().clone() for k, v in state.items() if k.endswith(".lora_A.weight")}
        up = {k[: -len(".lora_B.weight")]: v.detach().float().cpu().clone() for k, v in state.items() if k.endswith(".lora_B.weight")}
        lora = LoRAWeights(down=down, up=up, alpha=float(lora_alpha))
    enc = copy.deepcopy(encoder).float().cpu().eval().requires_grad_(False)
    return FineFaceWeights(family=family, encoder=enc, au_to_v=au_to_v, au_to_k=au_to_k, lora=lora,
                           lambda_au=lambda_au, source=source)
