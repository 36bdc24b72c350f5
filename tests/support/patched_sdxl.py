"""Calling a tiny SDXL patched by this pack's nodes and the diffusers reference the same way (tests/test_sdxl_patch.py,
tests/test_sdxl_training.py): the SDXL twin of tests/support/patched_unet.py, with the pooled text and the six
size / crop numbers that SDXL's UNet also reads, and IPAdapter_plus' SDXL keys (three elements: block, id, index)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from fineface_core.aus import parse_aus
from fineface_core.reference import attach_fineface
from fineface_core.regional import mask_tokens
from tests.support import ipadapter_protocol
from tests.support.tiny_sdxl import POOLED_DIM, comfy_adm, comfy_sdxl_model, tiny_sdxl_unet
from tests.support.tiny_sdxl_weights import sdxl_weights

SIZE = (64, 64, 0, 0, 64, 64)  # original h, w, crop top, left, target h, w: the micro-conditioning of these tests
# IPAdapter_plus registers SDXL under (block, id, index): input 4, 5 (depth 2), 7, 8 (depth 10); output 0-2 (10),
# 3-5 (2); ("middle", 1, index), which ComfyUI never reaches (it names the middle block ("middle", 0)).
IP_KEYS_SDXL = ([("input", i, t) for i in (4, 5, 7, 8) for t in range(2 if i in (4, 5) else 10)]
                + [("output", i, t) for i in range(6) for t in range(2 if i in (3, 4, 5) else 10)]
                + [("middle", 1, t) for t in range(10)])


class XLFamily:
    """A tiny diffusers SDXL UNet, its ComfyUI twin (comfy.model_base.SDXL) and FineFace weights for it."""

    def __init__(self, seed=0, unet=None, weights=None):
        self.unet = unet if unet is not None else tiny_sdxl_unet(seed=seed)
        self.model = comfy_sdxl_model(self.unet)
        self.weights = weights if weights is not None else sdxl_weights(self.unet, seed=seed + 5)
        self.context_dim = 2048


def inputs(batch=1, seed=0, hw=(8, 8), sigma=2.5, pooled_dim=POOLED_DIM):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, *hw, generator=g)
    ctx = {k: torch.randn(1, 77, 2048, generator=g) for k in (0, 1)}
    pooled = {k: torch.randn(1, pooled_dim, generator=g) for k in (0, 1)}
    return x, torch.tensor([sigma]), ctx, pooled


def run_comfy_xl(pack, patcher, x, sigma, ctx, pooled, layout):
    """One UNet call through ComfyUI's SDXL with the chunk layout ``layout`` (0 = cond, 1 = uncond)."""
    pack.mm.load_model_gpu(patcher)
    b = x.shape[0]
    xs = torch.cat([x] * len(layout))
    c = torch.cat([ctx[k].expand(b, -1, -1) for k in layout])
    h, w, ch, cw, th, tw = SIZE
    y = torch.cat([comfy_adm(patcher, pooled[k], h, w, ch, cw, th, tw).expand(b, -1) for k in layout])
    s = sigma.expand(b * len(layout))
    to = copy.copy(patcher.model_options["transformer_options"])
    to.update(cond_or_uncond=list(layout), sigmas=s)
    with torch.no_grad():
        return patcher.model.apply_model(xs, s, c_crossattn=c, y=y, transformer_options=to)


def au_tokens(weights, specs, batch):
    vectors = torch.stack([parse_aus(s) for s in specs])
    vectors = vectors.expand(batch, -1) if len(specs) == 1 else vectors
    return {0: weights.encode(vectors), 1: weights.encode(torch.zeros_like(vectors))}


def run_reference_xl(fam, unet, x, sigma, ctx, pooled, layout, tokens, au_scale=1.0):
    """The same call on diffusers (``unet`` patched already): eps -> ComfyUI's denoised output."""
    b = x.shape[0]
    s = sigma.expand(b * len(layout))
    xs = torch.cat([x] * len(layout))
    c = torch.cat([ctx[k].expand(b, -1, -1) for k in layout])
    added = {"text_embeds": torch.cat([pooled[k].expand(b, -1) for k in layout]),
             "time_ids": torch.tensor([SIZE], dtype=torch.float32).expand(b * len(layout), -1)}
    ms = fam.model.model.model_sampling
    with torch.no_grad():
        eps = unet(xs / (s[:, None, None, None] ** 2 + 1).sqrt(), ms.timestep(s), c, added_cond_kwargs=added,
                   cross_attention_kwargs={"au_embedding": torch.cat([tokens[k] for k in layout]), "au_scale": au_scale}).sample
    return xs - s[:, None, None, None] * eps


def reference_unet(fam, lora=1.0, wrap=None):
    """A copy of the family's diffusers UNet with FineFace attached; ``wrap(path, processor)`` may replace each
    cross-attention processor (masks, IP-Adapter)."""
    unet = copy.deepcopy(fam.unet)
    processors = attach_fineface(unet, fam.weights, lora_strength=lora)
    if wrap is not None:
        unet.set_attn_processor({
            name: wrap(name[: -len(".processor")], processors[name[: -len(".processor")]])
            if name[: -len(".processor")] in processors else proc
            for name, proc in unet.attn_processors.items()})
    return unet


class MaskedReference:
    """The reference processor with its AU branch limited to a mask. ``to_out`` is affine and the mask one number per
    token, so plain + mask * (with AUs - plain) is to_out(attention + mask * AU branch)."""

    def __init__(self, proc, mask, latent_hw):
        self.proc, self.mask, self.latent_hw = proc, mask, latent_hw

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 au_embedding=None, au_scale=1.0):
        full = self.proc(attn, hidden_states, encoder_hidden_states, au_embedding=au_embedding, au_scale=au_scale)
        plain = self.proc(attn, hidden_states, encoder_hidden_states, au_embedding=au_embedding, au_scale=0.0)
        m = mask_tokens(self.mask, self.latent_hw, hidden_states.shape[1])[..., None]  # [M, T, 1]
        return plain + m * (full - plain)


class IPAUReference:
    """Reference cross-attention with FineFace and an IP-Adapter branch (Eq. 5: attention over the image tokens)."""

    def __init__(self, proc, ip=None):
        self.proc, self.ip = proc, ip  # ip: (to_k_ip, to_v_ip, tokens [B, n, 2048], weight) or None

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 au_embedding=None, au_scale=1.0):
        out = self.proc(attn, hidden_states, encoder_hidden_states, au_embedding=au_embedding, au_scale=au_scale)
        if self.ip is None:
            return out
        to_k_ip, to_v_ip, tokens, weight = self.ip
        q = attn.to_q(hidden_states)
        heads, b = attn.heads, q.shape[0]

        def split(t):
            return t.view(b, -1, heads, t.shape[-1] // heads).transpose(1, 2)

        ip = F.scaled_dot_product_attention(split(q), split(tokens @ to_k_ip.t()), split(tokens @ to_v_ip.t()))
        return out + attn.to_out[0](weight * ip.transpose(1, 2).reshape(b, -1, q.shape[-1])) - attn.to_out[0].bias


def ip_layers_xl(pack, fam, seed=0):
    """Random to_k_ip / to_v_ip per layer in IPAdapter_plus' SDXL key order, and per diffusers path."""
    g = torch.Generator().manual_seed(seed)
    by_key = {layer.key: (path, layer.channels) for path, layer in pack.comfy_model.attn2_layers(fam.model).items()}
    ordered, by_path = [], {}
    for key in IP_KEYS_SDXL:
        path, channels = by_key.get(key, (None, 128))  # ("middle", 1, t): keys ComfyUI never reaches
        pair = (torch.randn(channels, 2048, generator=g) / 60, torch.randn(channels, 2048, generator=g) / 60)
        ordered.append(pair)
        if path is not None:
            by_path[path] = pair
    return ordered, by_path


def apply_ip_adapter_xl(model, ip_layers, cond, uncond, weight=1.0):
    """IPAdapter_plus' apply on an SDXL model, through the protocol reproduction, at its three-element keys."""
    model = model.clone()
    sampling = model.model.model_sampling
    for key, (to_k_ip, to_v_ip) in zip(IP_KEYS_SDXL, ip_layers):
        ipadapter_protocol.set_model_patch_replace(model, {
            "to_k_ip": to_k_ip, "to_v_ip": to_v_ip, "cond": cond, "uncond": uncond, "weight": weight, "mask": None,
            "sigma_start": sampling.percent_to_sigma(0.0), "sigma_end": sampling.percent_to_sigma(1.0)}, key)
    return model


def embeds_state_xl(ordered, generator):
    """An SDXL IP-Adapter model in the layout IPAdapter_plus loads (basic model: 4 tokens from 32-wide embeds,
    to_k_ip 2048 wide, which is how the pack tells SDXL), carrying the given per-layer pairs in its key order."""
    state = {"image_proj": {"proj.weight": torch.randn(4 * 2048, 32, generator=generator) / 6,
                            "proj.bias": torch.zeros(4 * 2048), "norm.weight": torch.ones(2048), "norm.bias": torch.zeros(2048)},
             "ip_adapter": {}}
    for i, (to_k_ip, to_v_ip) in enumerate(ordered):
        state["ip_adapter"][f"{2 * i + 1}.to_k_ip.weight"] = to_k_ip
        state["ip_adapter"][f"{2 * i + 1}.to_v_ip.weight"] = to_v_ip
    return state
