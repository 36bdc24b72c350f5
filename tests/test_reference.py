"""The diffusers reference implementation: the oracle the nodes and the trainer are tested against."""
import copy
import dataclasses

import pytest
import torch

from fineface_core.aus import parse_au_batch
from fineface_core.errors import ModelMismatchError
from fineface_core.weightfiles.loading import load_weights
from fineface_core.pipeline import FineFacePipeline
from fineface_core.reference import AUAttnProcessor, attach_fineface, au_kwargs, set_lora_strength
from tests.support.official_files import write_official_release
from tests.support.pipeline_renders import assert_renders_follow_the_aus
from tests.support.au_branch import au_branch_before_to_out
from tests.support.tiny_pipeline import tiny_pipeline
from tests.support.tiny_unets import tiny_unet

AUS = parse_au_batch(["AU6@3 + AU12@4", "AU1@2 + AU4@5 + AU26@3"])


@pytest.fixture(scope="module", params=["sd21", "sd15"])
def setup(request, tmp_path_factory):
    family = request.param
    base = tiny_unet(family, seed=7)
    folder = write_official_release(str(tmp_path_factory.mktemp(family)), base, family, seed=11)
    weights = load_weights(folder)
    patched = copy.deepcopy(base)
    attach_fineface(patched, weights)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, 8, 8, generator=g)
    ctx = torch.randn(4, 77, base.config.cross_attention_dim, generator=g)
    t = torch.tensor([999, 999, 400, 400])
    return family, base, patched, weights, x, t, ctx


def run(unet, x, t, ctx, **kw):
    with torch.no_grad():
        return unet(x, t, ctx, cross_attention_kwargs=kw or None).sample


def test_output_changes_with_aus(setup):
    _, _, patched, weights, x, t, ctx = setup
    kw = au_kwargs(weights, AUS)  # [uncond x2, cond x2]
    out = run(patched, x, t, ctx, **kw)
    swapped = dict(kw, au_embedding=kw["au_embedding"][[0, 1, 3, 2]])
    out2 = run(patched, x, t, ctx, **swapped)
    assert torch.allclose(out[:2], out2[:2])  # the uncond half did not change
    assert (out[2:] - out2[2:]).abs().max() > 1e-2  # swapping the AU vectors changes the cond half


def test_zero_lambda_and_zero_lora_strength_is_the_plain_unet(setup):
    family, base, patched, weights, x, t, ctx = setup
    kw = dict(au_kwargs(weights, AUS), au_scale=0.0)
    if weights.lora is not None:
        set_lora_strength(patched, 0.0)
    try:
        torch.testing.assert_close(run(patched, x, t, ctx, **kw), run(base, x, t, ctx), rtol=1e-5, atol=1e-6)
    finally:
        if weights.lora is not None:
            set_lora_strength(patched, 1.0)
    if weights.lora is not None:
        # ...while the LoRA alone does change it.
        assert (run(patched, x, t, ctx, **kw) - run(base, x, t, ctx)).abs().max() > 1e-3


def test_au_branch_does_not_depend_on_au_to_k(setup):
    _, _, patched, weights, x, t, ctx = setup
    kw = au_kwargs(weights, AUS)
    before = run(patched, x, t, ctx, **kw)
    other = copy.deepcopy(patched)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for proc in other.attn_processors.values():
            if isinstance(proc, AUAttnProcessor):
                proc.au_to_k.weight.copy_(torch.randn(proc.au_to_k.weight.shape, generator=g) * 10)
    assert torch.equal(run(other, x, t, ctx, **kw), before)


def test_au_branch_is_lambda_times_au_to_v(setup):
    """The one-token fact, per layer: what the AU branch adds before to_out is lambda * au_to_v(e)
    for every query, exactly as FineFaceWeights.au_values computes it."""
    _, _, patched, weights, x, t, ctx = setup
    kw = au_kwargs(weights, AUS, au_scale=0.7)
    g = torch.Generator().manual_seed(3)
    for layer in (weights.layers[0], weights.layers[7], weights.layers[-1]):
        attn = patched.get_submodule(layer)
        h = torch.randn(4, 64, attn.to_q.in_features, generator=g)
        added = au_branch_before_to_out(attn, h, ctx, kw["au_embedding"], 0.7)
        expected = weights.au_values(kw["au_embedding"].float(), 0.7)[layer]  # [B, C]
        torch.testing.assert_close(added, expected[:, None, :].expand_as(added), rtol=1e-4, atol=1e-5)


def test_lora_is_applied_at_strength_times_alpha_over_rank(setup):
    family, base, patched, weights, x, t, ctx = setup
    if weights.lora is None:
        pytest.skip("the SD 1.5 release has no LoRA")
    strength = 0.6
    merged = copy.deepcopy(base)
    with torch.no_grad():
        for path in weights.lora.down:
            merged.get_submodule(path).weight += strength * weights.lora.delta(path)
    attach_fineface(merged, dataclasses.replace(weights, lora=None))
    kw = au_kwargs(weights, AUS)
    set_lora_strength(patched, strength)
    try:
        torch.testing.assert_close(run(patched, x, t, ctx, **kw), run(merged, x, t, ctx, **kw), rtol=1e-4, atol=1e-5)
    finally:
        set_lora_strength(patched, 1.0)


def test_family_and_width_mismatches_are_refused(setup):
    family, base, _, weights, *_ = setup
    other = tiny_unet("sd15" if family == "sd21" else "sd21")
    with pytest.raises(ModelMismatchError, match="use the SD"):
        attach_fineface(other, weights)
    from diffusers import UNet2DConditionModel

    from tests.support.tiny_unets import tiny_unet_config
    cfg = tiny_unet_config(family)
    cfg["block_out_channels"] = (32, 64, 64, 64)
    if family == "sd21":
        cfg["attention_head_dim"] = (4, 8, 8, 8)
    narrow = UNet2DConditionModel(**cfg)
    with pytest.raises(ModelMismatchError, match="channels wide"):
        attach_fineface(narrow, weights)


def test_pipeline_renders_prompt_plus_aus(tmp_path):
    pipe = tiny_pipeline(str(tmp_path / "pipe"), "sd21", seed=2)
    weights = load_weights(write_official_release(str(tmp_path / "ff"), pipe.unet, "sd21", seed=3))
    assert_renders_follow_the_aus(FineFacePipeline(pipe, weights))
