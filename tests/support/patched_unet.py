"""Calling a ComfyUI UNet patched by this pack's nodes, as the patch tests do (tests/test_patch_equals_reference.py,
tests/test_regional.py, tests/test_animatediff.py): a tiny family (diffusers UNet, its ComfyUI twin, FineFace weights),
AU vectors from the AU Vector node, one UNet call with a chosen cond/uncond layout, the relative error, and random
IP-Adapter layers in IPAdapter_plus' key order. ``pack`` is the fixture of tests/conftest.py."""
import copy

import torch

from fineface_core.aus import ACTION_UNITS
from fineface_core.weightfiles.loading import load_weights
from tests.support import ipadapter_protocol
from tests.support.comfy_models import comfy_model
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet


class Family:
    """A tiny diffusers UNet, its ComfyUI twin and FineFace weights in the official layout for it."""

    def __init__(self, family, tmp, seed=0):
        self.family = family
        self.unet = tiny_unet(family, seed=seed)
        self.model = comfy_model(self.unet, family)
        # rank 8 with the release's alpha (8 for SD 2.1 is written by official_files) -- the scale is checked in
        # tests/test_patch_equals_reference.py
        self.weights = load_weights(write_official_release(str(tmp / family), self.unet, family, seed=seed + 5))
        self.context_dim = self.unet.config.cross_attention_dim


def aus(pack, *specs):
    sliders = {au.code: 0.0 for au in ACTION_UNITS}
    vectors = None
    for spec in specs:
        vectors, _ = pack.vector(spec=spec, append_to=vectors, **sliders)
    return vectors


def run_comfy(pack, patcher, x, sigma, ctx, layout):
    """One UNet call through ComfyUI's model with the chunk layout ``layout`` (0 = cond, 1 = uncond);
    ``ctx`` = {0: cond text, 1: uncond text}. Returns ComfyUI's denoised output."""
    pack.mm.load_model_gpu(patcher)
    b = x.shape[0]
    xs = torch.cat([x] * len(layout))
    c = torch.cat([ctx[k].expand(b, -1, -1) for k in layout])
    s = sigma.expand(b * len(layout))
    to = copy.copy(patcher.model_options["transformer_options"])
    to.update(cond_or_uncond=list(layout), sigmas=s)
    with torch.no_grad():
        return patcher.model.apply_model(xs, s, c_crossattn=c, transformer_options=to)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def ip_layers(pack, fam, seed=0):
    """Random to_k_ip / to_v_ip per layer, in IPAdapter_plus' key order, and per diffusers path."""
    g = torch.Generator().manual_seed(seed)
    by_key = {layer.key[:2]: (path, layer.channels) for path, layer in pack.comfy_model.attn2_layers(fam.model).items()}
    ordered, by_path = [], {}
    for key in ipadapter_protocol.IP_KEYS:
        path, channels = by_key.get(key, (None, 320))  # ("middle", 1): a key ComfyUI never reaches
        pair = (torch.randn(channels, fam.context_dim, generator=g) / 30, torch.randn(channels, fam.context_dim, generator=g) / 30)
        ordered.append(pair)
        if path is not None:
            by_path[path] = pair
    return ordered, by_path
