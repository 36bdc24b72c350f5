"""ComfyUI_IPAdapter_plus' attn2 chaining protocol, reproduced from how the pack behaves
(its CrossAttentionPatch.py and IPAdapterPlus.py, read, not copied), so that chaining is tested in CI,
where the real pack cannot be installed; ``IPADAPTER_PLUS_PATH`` runs the tests against the real one.

What the real pack does and this module reproduces:
- it registers its patch under two-element keys ("input", id) for ids 1, 2, 4, 5, 7, 8,
  ("output", id) for 3..11 and ("middle", 1) -- a key ComfyUI never looks up (ComfyUI names
  the middle block ("middle", 0)), so IP-Adapter does not act in the middle block;
- when an object already sits at a key it calls ``existing.add(callback, **kwargs)``
  instead of replacing it, with kwargs that include ``sigma_start`` and ``sigma_end``;
- its own object computes ``optimized_attention(q, k, v, heads)`` and adds
  ``callback(out, q, k, v, extra_options, **kwargs)`` for each callback whose window
  ``sigma_end <= sigma <= sigma_start`` holds the current sigma (``sigmas[0]``).
The IP callback here is a plain decoupled cross-attention over image tokens (Eq. 5 of the
paper) with per-layer ``to_k_ip`` / ``to_v_ip`` and separate cond / uncond tokens, and the pack's
``attn_mask``: resized bilinearly to a grid guessed from the latent's aspect ratio and the layer's
token count, one mask per image (the last repeated), the same for cond and uncond, padded or cut
in the middle when the guessed grid misses the token count.
"""
from __future__ import annotations

import math

import comfy.ldm.modules.attention as comfy_attention
import torch
import torch.nn.functional as F

IP_KEYS = [("input", i) for i in (1, 2, 4, 5, 7, 8)] + [("output", i) for i in range(3, 12)] + [("middle", 1)]


class ProtocolAttn2Replace:
    def __init__(self, callback, **kwargs):
        self.callback = [callback]
        self.kwargs = [kwargs]

    def add(self, callback, **kwargs):
        self.callback.append(callback)
        self.kwargs.append(kwargs)

    def __call__(self, q, k, v, extra_options):
        dtype = q.dtype
        out = comfy_attention.optimized_attention(q, k, v, extra_options["n_heads"])
        sigma = float(extra_options["sigmas"].detach().cpu()[0].item()) if "sigmas" in extra_options else 999999999.9
        for callback, kwargs in zip(self.callback, self.kwargs):
            if kwargs["sigma_end"] <= sigma <= kwargs["sigma_start"]:
                out = out + callback(out, q, k, v, extra_options, **kwargs)
        return out.to(dtype)


def ip_attention(out, q, k, v, extra_options, to_k_ip=None, to_v_ip=None, cond=None, uncond=None, weight=1.0, mask=None, **kwargs):
    """Attention of the queries over IP tokens: cond tokens for cond chunks, uncond for uncond."""
    chunks = extra_options["cond_or_uncond"]
    per_chunk = q.shape[0] // len(chunks)
    tokens = torch.cat([(uncond if c == 1 else cond).expand(per_chunk, -1, -1) for c in chunks]).to(q)
    ip_k, ip_v = tokens @ to_k_ip.to(q).t(), tokens @ to_v_ip.to(q).t()
    out_ip = weight * comfy_attention.optimized_attention(q, ip_k, ip_v, extra_options["n_heads"])
    if mask is not None:
        out_ip = out_ip * ip_mask_on_tokens(mask.to(q), extra_options, q.shape[1], per_chunk, len(chunks), out.shape[2])
    return out_ip


def ip_mask_on_tokens(mask, extra_options, seq_len, per_chunk, n_chunks, channels):
    _, _, oh, ow = extra_options["original_shape"]
    mask_h = oh / math.sqrt(oh * ow / seq_len)
    mask_h = int(mask_h) + int((seq_len % int(mask_h)) != 0)
    mask_w = seq_len // mask_h
    mask = F.interpolate(mask.unsqueeze(1), size=(mask_h, mask_w), mode="bilinear").squeeze(1)
    if mask.shape[0] < per_chunk:
        mask = torch.cat([mask, mask[-1:].repeat(per_chunk - mask.shape[0], 1, 1)])
    mask = mask[:per_chunk].repeat(n_chunks, 1, 1).view(per_chunk * n_chunks, -1, 1).repeat(1, 1, channels)
    have = mask_h * mask_w
    if have < seq_len:
        pad = seq_len - have
        mask = F.pad(mask, (0, 0, pad // 2, pad - pad // 2), value=0.0)
    elif have > seq_len:
        start = (have - seq_len) // 2
        mask = mask[:, start:start + seq_len, :]
    return mask


def set_model_patch_replace(model, kwargs, key):
    to = model.model_options["transformer_options"].copy()
    to["patches_replace"] = dict(to.get("patches_replace", {}))
    to["patches_replace"]["attn2"] = dict(to["patches_replace"].get("attn2", {}))
    if key not in to["patches_replace"]["attn2"]:
        to["patches_replace"]["attn2"][key] = ProtocolAttn2Replace(ip_attention, **kwargs)
        model.model_options["transformer_options"] = to
    else:
        to["patches_replace"]["attn2"][key].add(ip_attention, **kwargs)


def apply_ip_adapter(model, ip_layers, cond, uncond, weight=1.0, start_at=0.0, end_at=1.0, attn_mask=None):
    """Like IPAdapter_plus' apply node: clone, then register every layer's patch.

    ``ip_layers``: list of 16 (to_k_ip, to_v_ip) pairs in IPAdapter_plus' layer order
    (input blocks, output blocks, middle).
    """
    model = model.clone()
    sampling = model.model.model_sampling
    sigma_start, sigma_end = sampling.percent_to_sigma(start_at), sampling.percent_to_sigma(end_at)
    for key, (to_k_ip, to_v_ip) in zip(IP_KEYS, ip_layers):
        set_model_patch_replace(model, {"to_k_ip": to_k_ip, "to_v_ip": to_v_ip, "cond": cond, "uncond": uncond,
                                        "weight": weight, "mask": attn_mask, "sigma_start": sigma_start, "sigma_end": sigma_end}, key)
    return model


def embeds_state(ordered, generator):
    """An IP-Adapter model in the layout IPAdapter_plus loads (its basic SD 1.5 model: 4 image tokens
    projected from 32-wide embeds), carrying the given per-layer (to_k_ip, to_v_ip) in its key order."""
    state = {"image_proj": {"proj.weight": torch.randn(4 * 768, 32, generator=generator) / 6, "proj.bias": torch.zeros(4 * 768),
                            "norm.weight": torch.ones(768), "norm.bias": torch.zeros(768)},
             "ip_adapter": {}}
    for i, (to_k_ip, to_v_ip) in enumerate(ordered):
        state["ip_adapter"][f"{2 * i + 1}.to_k_ip.weight"] = to_k_ip
        state["ip_adapter"][f"{2 * i + 1}.to_v_ip.weight"] = to_v_ip
    return state
