"""Apply FineFace Adapter on SDXL: ComfyUI's own SDXL model (comfy.model_base.SDXL, tiny widths, the real 70-layer
layout) patched by the node equals the diffusers reference within 1e-4 (float32): cond/uncond in both orders,
per-image AUs, a mask, a start/end window; the 70 layers sit at ComfyUI's three-element keys and each is reached
once per call; IP-Adapter (IPAdapter_plus' SDXL keys) chains in either order (the protocol reproduction, and the
real IPAdapter_plus where IPADAPTER_PLUS_PATH is set); refusals name SDXL, the refiner and DiT models."""
import pytest
import torch
import torch.nn.functional as F

from fineface_core.errors import ModelMismatchError
from tests.support.patched_sdxl import (IPAUReference, MaskedReference, XLFamily, apply_ip_adapter_xl, au_tokens,
                                        embeds_state_xl, inputs, ip_layers_xl, reference_unet, run_comfy_xl,
                                        run_reference_xl)
from tests.support.chaining import ORDERS, chained, ip_image_tokens
from tests.support.patched_unet import Family, aus, rel
from tests.support.tiny_sdxl import comfy_sdxl_model

TOL = 1e-4


@pytest.fixture(scope="module")
def xl():
    return XLFamily(seed=0)


def patch(pack, fam, specs, weight=1.0, lora=1.0, start=0.0, end=1.0, model=None, mask=None):
    emb, = pack.encode(fam.weights, aus(pack, *specs))
    patched, = pack.apply(model or fam.model, fam.weights, emb, weight, lora, start, end, mask)
    return patched


@pytest.mark.parametrize("layout", [(0, 1), (1, 0)])
def test_cond_and_uncond_chunks_match_the_reference(pack, xl, layout):
    specs = ["AU6@3 + AU12@4 + AU25@1"]
    x, sigma, ctx, pooled = inputs()
    got = run_comfy_xl(pack, patch(pack, xl, specs), x, sigma, ctx, pooled, layout)
    want = run_reference_xl(xl, reference_unet(xl), x, sigma, ctx, pooled, layout, au_tokens(xl.weights, specs, 1))
    assert rel(got, want) < TOL
    assert rel(run_comfy_xl(pack, xl.model, x, sigma, ctx, pooled, layout), want) > 100 * TOL


def test_per_image_aus_with_lambda_and_lora_strengths_match_the_reference(pack, xl):
    specs = ["AU12@5", "AU4@3 + AU15@2", "AU1@2 + AU2@2 + AU26@4"]
    x, sigma, ctx, pooled = inputs(batch=3, seed=1)
    got = run_comfy_xl(pack, patch(pack, xl, specs, weight=0.6, lora=0.4), x, sigma, ctx, pooled, (1, 0))
    want = run_reference_xl(xl, reference_unet(xl, lora=0.4), x, sigma, ctx, pooled, (1, 0),
                            au_tokens(xl.weights, specs, 3), au_scale=0.6)
    assert rel(got, want) < TOL
    # the images differ in their AUs only: image 0 alone gives its rows of the batch
    one = run_comfy_xl(pack, patch(pack, xl, specs[:1], weight=0.6, lora=0.4), x[:1], sigma, ctx, pooled, (1, 0))
    assert rel(one[1:2], got[3:4]) < TOL and rel(one[0:1], got[0:1]) < TOL


def test_a_mask_limits_the_au_branch_as_in_the_reference(pack, xl):
    specs = ["AU4@4 + AU15@3"]
    hw = (8, 12)
    mask = torch.zeros(1, hw[0] * 8, hw[1] * 8)
    mask[:, :, : hw[1] * 4] = 1.0
    mask[:, :16] = 0.5
    x, sigma, ctx, pooled = inputs(seed=2, hw=hw)
    got = run_comfy_xl(pack, patch(pack, xl, specs, lora=0.0, mask=mask), x, sigma, ctx, pooled, (0, 1))
    unet = reference_unet(xl, lora=0.0, wrap=lambda path, proc: MaskedReference(proc, mask, hw))
    want = run_reference_xl(xl, unet, x, sigma, ctx, pooled, (0, 1), au_tokens(xl.weights, specs, 1))
    assert rel(got, want) < TOL
    unmasked = run_comfy_xl(pack, patch(pack, xl, specs, lora=0.0), x, sigma, ctx, pooled, (0, 1))
    assert rel(got, unmasked) > 100 * TOL


def test_the_au_branch_acts_only_inside_its_window(pack, xl):
    specs = ["AU12@4"]
    patched = patch(pack, xl, specs, start=0.3, end=0.6, lora=0.0)
    sampling = xl.model.model.model_sampling
    inside, outside = sampling.percent_to_sigma(0.45), sampling.percent_to_sigma(0.1)
    for sigma, on in ((inside, True), (outside, False)):
        x, s, ctx, pooled = inputs(seed=3, sigma=float(sigma))
        got = run_comfy_xl(pack, patched, x, s, ctx, pooled, (1, 0))
        want = run_reference_xl(xl, reference_unet(xl, lora=0.0), x, s, ctx, pooled, (1, 0),
                                au_tokens(xl.weights, specs, 1), au_scale=1.0 if on else 0.0)
        assert rel(got, want) < TOL


def test_the_70_layers_sit_at_three_element_keys_and_each_is_reached_once_per_call(pack, xl):
    layers = pack.comfy_model.attn2_layers(xl.model)
    assert len(layers) == 70 and len({layer.key for layer in layers.values()}) == 70
    counting = patch(pack, xl, ["AU12@3"]).clone()
    attn2 = counting.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert set(attn2) == {layer.key for layer in layers.values()} and all(len(k) == 3 for k in attn2)
    calls = []
    for key, chain in attn2.items():
        assert len(chain.callback) == 1  # one layer's rows per chain: no block-wide sum

        def counted(out, q, k, v, extra, _inner=chain.callback[0], _key=key, **kw):
            assert (*extra["block"], extra["block_index"]) == _key  # ComfyUI called the patch of this layer
            calls.append(_key)
            return _inner(out, q, k, v, extra, **kw)
        chain.callback[0] = counted
    x, sigma, ctx, pooled = inputs()
    run_comfy_xl(pack, counting, x, sigma, ctx, pooled, (1, 0))
    assert sorted(calls) == sorted(attn2) and len(calls) == 70


def test_a_block_wide_patch_stays_in_force_in_every_transformer(pack, xl):
    """Another pack's two-element patch on a 10-deep block: FineFace's three-element keys wrap it, not shadow it."""
    seen = []

    def foreign(q, k, v, extra_options):
        seen.append(extra_options["block_index"])
        return pack.attn2_patch.Attn2Chain().attention(q, k, v, extra_options) * 1.5

    model = xl.model.clone()
    model.set_model_attn2_replace(foreign, "input", 7)
    patched = patch(pack, xl, ["AU12@3"], model=model)
    x, sigma, ctx, pooled = inputs()
    run_comfy_xl(pack, patched, x, sigma, ctx, pooled, (1, 0))
    assert sorted(seen) == list(range(10))


@pytest.mark.parametrize("order", ORDERS)
def test_chaining_with_ip_adapter_keeps_both_contributions(pack, xl, order):
    ip_cond, ip_uncond = ip_image_tokens(2048)
    ordered, by_path = ip_layers_xl(pack, xl)
    specs = ["AU1@3 + AU4@2 + AU15@3"]
    both = chained(order, xl.model, lambda model: apply_ip_adapter_xl(model, ordered, ip_cond, ip_uncond, weight=0.8),
                   lambda model: patch(pack, xl, specs, model=model))
    x, sigma, ctx, pooled = inputs(seed=7)
    got = run_comfy_xl(pack, both, x, sigma, ctx, pooled, (1, 0))
    tokens = torch.cat([ip_uncond, ip_cond])
    unet = reference_unet(xl, wrap=lambda path, proc: IPAUReference(proc, (*by_path[path], tokens, 0.8) if path in by_path else None))
    want = run_reference_xl(xl, unet, x, sigma, ctx, pooled, (1, 0), au_tokens(xl.weights, specs, 1))
    assert rel(got, want) < TOL
    # IP-Adapter acts in the 60 layers it registers for (its middle-block keys are never reached), FineFace in all 70
    assert len(by_path) == 60 and not any(p.startswith("mid_block") for p in by_path)
    assert rel(got, run_comfy_xl(pack, patch(pack, xl, specs), x, sigma, ctx, pooled, (1, 0))) > 100 * TOL


@pytest.mark.parametrize("order", ORDERS)
def test_real_ipadapter_plus_chains_with_fineface_on_sdxl(pack, xl, real_ipadapter, order):
    """IPAdapterEmbeds with an SDXL IP-Adapter model (4 tokens, 2048 wide) and FineFace, in either order, equals the
    reproduction fed the same layers and image tokens."""
    g = torch.Generator().manual_seed(11)
    ordered, _ = ip_layers_xl(pack, xl, seed=3)
    state = embeds_state_xl(ordered, g)
    pos, neg = torch.randn(1, 32, generator=g), torch.randn(1, 32, generator=g)
    node = real_ipadapter()

    def real(model):
        return node.apply_ipadapter(model, state, pos, 0.8, "linear", 0.0, 1.0, neg_embed=neg)[0]

    specs = ["AU6@3 + AU12@4"]
    got_model = chained(order, xl.model, real, lambda model: patch(pack, xl, specs, model=model))
    attn2 = got_model.model_options["transformer_options"]["patches_replace"]["attn2"]
    kwargs = next(kw for kw in attn2[("input", 4, 0)].kwargs if "ipadapter" in kw)
    cond, uncond = kwargs["cond"], kwargs["uncond"]
    proj = state["image_proj"]  # the real pack's image tokens are its ImageProjModel's: proj, 4 tokens, LayerNorm
    for tokens, embeds in ((cond, pos), (uncond, neg)):
        by_hand = F.layer_norm((embeds @ proj["proj.weight"].t() + proj["proj.bias"]).reshape(1, 4, 2048), (2048,),
                               proj["norm.weight"], proj["norm.bias"])
        assert tokens.shape == (1, 4, 2048) and rel(tokens, by_hand) < 1e-6
    want_model = chained(order, xl.model, lambda model: apply_ip_adapter_xl(model, ordered, cond, uncond, weight=0.8),
                         lambda model: patch(pack, xl, specs, model=model))
    x, sigma, ctx, pooled = inputs(seed=8)
    got = run_comfy_xl(pack, got_model, x, sigma, ctx, pooled, (1, 0))
    assert rel(got, run_comfy_xl(pack, want_model, x, sigma, ctx, pooled, (1, 0))) < 1e-5
    assert rel(got, run_comfy_xl(pack, patch(pack, xl, specs), x, sigma, ctx, pooled, (1, 0))) > 100 * TOL


def test_refusals_name_sdxl_the_refiner_and_the_sd_families(pack, xl, tmp_path):
    sd21 = Family("sd21", tmp_path)
    emb, = pack.encode(sd21.weights, aus(pack, "AU12"))
    with pytest.raises(ModelMismatchError, match=r"this MODEL is SDXL \(text width 2048\), but the FineFace weights are "
                                                 r"for Stable Diffusion 2.x .*trained for SDXL with training/ \(no official SDXL release exists\)"):
        pack.apply(xl.model, sd21.weights, emb, 1.0, 1.0, 0.0, 1.0)
    emb, = pack.encode(xl.weights, aus(pack, "AU12"))
    with pytest.raises(ModelMismatchError, match=r"this MODEL is Stable Diffusion 2.x .*weights are for SDXL .*use the SD 2.1 release"):
        pack.apply(sd21.model, xl.weights, emb, 1.0, 1.0, 0.0, 1.0)
    refiner = comfy_sdxl_model(None, refiner_width=True)
    with pytest.raises(ModelMismatchError, match=r"the SDXL refiner \(text width 1280\).*apply FineFace to the SDXL base model"):
        pack.apply(refiner, xl.weights, emb, 1.0, 1.0, 0.0, 1.0)
