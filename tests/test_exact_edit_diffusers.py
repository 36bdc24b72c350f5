"""The exact edit on diffusers (fineface_core.editing.diffusers_edit) equals the ComfyUI nodes' on the same inputs.

A tiny diffusers SD 2.1 UNet with FineFace attached by fineface_core.reference, and its ComfyUI twin patched by
the pack's nodes (the same weights, mapped as tests/test_patch_equals_reference.py maps them): the same photo
latent, prompts, AUs, sigmas and seed give the same recorded steps, the photo back exactly, and the same edit.
"""
import copy
import os

import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

from fineface_core.aus import parse_aus
from fineface_core.editing.ddpm_inversion import invert, replay
from fineface_core.editing.diffusers_edit import DiffusersDenoiser, sigma_schedule
from fineface_core.reference import attach_fineface
from tests.support.exact_edit import SOURCE, TARGET, Fam, exact_edit_nodes, rel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = 0.1


def scheduler():
    # tests/support/tiny_pipeline.py's scheduler: SD's scaled-linear betas, as ComfyUI's SD models have them
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def unit_scale_diffusers(unet, scale):
    """The diffusers side of tests/test_exact_edit.py's make_unit_scale."""
    inner = unet.forward

    def forward(sample, *args, **kwargs):
        return UNet2DConditionOutput(sample=sample + scale * inner(sample, *args, **kwargs).sample)

    unet.forward = forward
    return unet


class Twins:
    """A tiny diffusers UNet with FineFace attached and its ComfyUI twin (tests/test_exact_edit.py's Fam)."""

    def __init__(self, pack, tmp, unit_scale):
        self.comfy = Fam(pack, "sd21", tmp, unit_scale=unit_scale)
        self.unet = copy.deepcopy(self.comfy.unet)
        attach_fineface(self.unet, self.comfy.weights, lora_strength=1.0)
        if unit_scale:
            unit_scale_diffusers(self.unet, unit_scale)
        self.alphas = scheduler().alphas_cumprod
        self.x0 = self.comfy.model.model.process_latent_in(self.comfy.photo["samples"])  # the photo in the model's space

    def denoiser(self, aus, cfg):
        return DiffusersDenoiser(self.unet, self.comfy.weights, self.alphas, "epsilon", self.comfy.pos[0][0],
                                 self.comfy.neg[0][0], torch.stack([parse_aus(a) for a in aus.split("\n")]), cfg)


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    return Twins(exact_edit_nodes(), tmp_path_factory.mktemp("twins"), 0.0)


@pytest.fixture(scope="module")
def unit_twins(tmp_path_factory):
    return Twins(exact_edit_nodes(), tmp_path_factory.mktemp("unit_twins"), UNIT)


@pytest.mark.parametrize("name", ["normal", "karras"])
def test_the_schedules_are_comfyuis(twins, name):
    from tests.support.comfy_env import pack_module

    comfy_sigmas = pack_module("nodes.exact_edit_sampling").schedule(twins.comfy.model, name, 20)
    ours = sigma_schedule(twins.alphas, name, 20)
    assert ours.shape == comfy_sigmas.shape and float(ours[-1]) == 0.0
    assert torch.allclose(ours, comfy_sigmas, rtol=2e-5, atol=0)


@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_the_same_inversion_and_the_photo_back_exactly(twins, cfg):
    record = twins.comfy.invert(cfg, 20, "karras", start_step=3)
    ours = invert(twins.denoiser(SOURCE, cfg), record.sigmas, twins.x0, seed=1, start_step=3)
    assert torch.equal(ours.drawn, record.drawn)  # the same noise, drawn the same way
    for j in range(ours.means.shape[0]):  # every step's mean: one UNet evaluation on each side
        assert rel(ours.means[j], record.means[j]) <= 1e-4, j
    assert torch.equal(replay(twins.denoiser(SOURCE, cfg), ours), twins.x0)
    # (replaying one side's record on the other side's UNet is compared on the unit-scale twins below: this random
    # UNet amplifies the two UNets' 1e-6 disagreement step after step, NOTES section 8)


@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_the_same_edit_as_the_nodes(unit_twins, cfg):
    t = unit_twins
    record = t.comfy.invert(cfg, 20, "normal")
    targets = f"{TARGET}\nAU1@2 + AU2@2 + AU26@3"
    batch_latent, = t.comfy.pack.batch_latent(t.comfy.photo, t.comfy.aus(targets))
    comfy_edit = t.comfy.model.model.process_latent_in(t.comfy.regenerate(record, targets, cfg, batch_latent))
    ours = invert(t.denoiser(SOURCE, cfg), record.sigmas, t.x0, seed=1)
    edit = replay(t.denoiser(targets, cfg), ours, batch=2)
    assert rel(edit, comfy_edit) <= 1e-4
    assert rel(edit, t.x0.expand_as(edit)) > 1e-2  # and it is an edit
