"""What the exact-edit tests share: the pack's nodes, a tiny model family with FineFace weights and a photo
latent (``Fam``), twins of a model (v-prediction, unit-scale predictions), a UNet call counter."""
import os
from types import SimpleNamespace

import torch

from fineface_core.aus import ACTION_UNITS
from fineface_core.weightfiles.loading import load_weights
from tests.support import comfy_env
from tests.support.comfy_models import comfy_model
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = "AU6@2 + AU12@3"
TARGET = "AU4@3 + AU15@2"


def exact_edit_nodes():
    """The nodes the tests call, from ComfyUI's registry with this pack loaded as a custom node."""
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import nodes

    n = nodes.NODE_CLASS_MAPPINGS

    def node(name):
        return getattr(n[name](), n[name].FUNCTION)

    return SimpleNamespace(
        vector=node("FineFaceAUVector"), encode=node("FineFaceAUEncoder"), apply=node("FineFaceApplyAdapter"),
        invert=node("FineFaceInvertPhoto"), regenerate=node("FineFaceRegenerateEdit"), sampler=node("FineFaceExactEditSampler"),
        batch_latent=node("FineFaceAUBatchLatent"), custom=node("SamplerCustom"), scheduler=node("BasicScheduler"),
        set_mask=node("SetLatentNoiseMask"), registry=n,
    )


class Fam:
    """A tiny UNet of ``family`` as a ComfyUI MODEL, FineFace weights for it, prompts and a photo latent."""

    def __init__(self, pack, family, tmp, unit_scale=0.0, prediction="eps"):
        self.pack, self.family = pack, family
        self.unet = unet = tiny_unet(family, seed=0)
        self.model = comfy_model(unet, family)
        if prediction == "v":
            self.model = v_prediction_twin(self.model)
        if unit_scale:
            make_unit_scale(self.model, unit_scale)
        self.weights = load_weights(write_official_release(str(tmp / family), unet, family, seed=5))
        g = torch.Generator().manual_seed(0)
        ctx = unet.config.cross_attention_dim
        self.pos = [[torch.randn(1, 77, ctx, generator=g), {}]]
        self.neg = [[torch.randn(1, 77, ctx, generator=g), {}]]
        self.photo = {"samples": torch.randn(1, 4, 8, 8, generator=g)}
        self.calls = count_unet_calls(self.model)

    def aus(self, spec):
        sliders = {au.code: 0.0 for au in ACTION_UNITS}
        return self.pack.vector(spec=spec, append_to=None, **sliders)[0]

    def patched(self, aus):
        aus = self.aus(aus) if isinstance(aus, str) else aus
        emb, = self.pack.encode(self.weights, aus)
        return self.pack.apply(self.model, self.weights, emb, 1.0, 1.0, 0.0, 1.0)[0]

    def invert(self, cfg=7.5, steps=20, scheduler="normal", start_step=0, seed=1, latent=None, aus=SOURCE):
        return self.pack.invert(self.patched(aus), self.pos, self.neg, latent or self.photo, cfg, steps, scheduler, start_step, seed)[0]

    def regenerate(self, record, aus=SOURCE, cfg=7.5, latent=None):
        return self.pack.regenerate(self.patched(aus), self.pos, self.neg, record, cfg, latent or self.photo)[0]["samples"]

    def custom(self, record, aus=SOURCE, cfg=7.5, latent=None, sigmas=None, add_noise=False):
        sampler, own_sigmas = self.pack.sampler(record)
        out, _ = self.pack.custom(self.patched(aus), add_noise, 0, cfg, self.pos, self.neg, sampler,
                                  own_sigmas if sigmas is None else sigmas, latent or self.photo)
        return out["samples"]


def v_prediction_twin(patcher):
    """The same UNet weights in a ComfyUI model that samples as v-prediction (as SD 2.1 768-v)."""
    import comfy.model_base
    import comfy.model_patcher

    base = patcher.model
    cpu = torch.device("cpu")
    model = comfy.model_base.BaseModel(base.model_config, model_type=comfy.model_base.ModelType.V_PREDICTION, device=cpu)
    model.diffusion_model.load_state_dict(base.diffusion_model.state_dict())
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def make_unit_scale(patcher, scale):
    """A UNet that predicts its (unit-variance) input as the noise, plus ``scale`` x the random UNet: its predictions
    are of unit scale, as a trained model's are. A random UNet alone predicts noise that does not shrink with sigma,
    so its denoised x0 grows with sigma and it amplifies float rounding step after step (NOTES section 8): two runs
    batched differently can then be compared only on a model like this one."""
    unet = patcher.model.diffusion_model
    inner = unet.forward
    unet.forward = lambda x, *args, **kwargs: x + scale * inner(x, *args, **kwargs)


def count_unet_calls(patcher):
    calls = [0]
    patcher.model.diffusion_model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


