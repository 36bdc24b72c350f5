"""The nodes patch real ComfyUI models exactly as the diffusers reference computes FineFace.

Small SD 2.1- and SD 1.5-architecture UNets (16 cross-attention layers, like the real ones) are
built in diffusers with random weights, and the same weights are loaded into ComfyUI's own UNet.
The nodes are taken from ComfyUI's registry after the pack is loaded as a custom node, and the
ComfyUI model is called the way its samplers call it (calc_cond_uncond_batch, or apply_model
with an explicit cond/uncond layout). The oracle is fineface_core.reference on diffusers.
"""
import copy
import uuid

import pytest
import torch
import torch.nn.functional as F

from fineface_core.aus import parse_aus
from fineface_core.errors import AUSpecError, FineFaceError, ModelMismatchError
from fineface_core.weightfiles.loading import load_weights
from fineface_core.reference import attach_fineface, attn2_modules
from tests.support import ipadapter_protocol
from tests.support.chaining import ORDERS, chained, ip_image_tokens
from tests.support.comfy_models import comfy_model
from tests.support.official_files import write_official_release
from tests.support.patched_unet import Family, aus, ip_layers, rel, run_comfy

TOL = 1e-4


@pytest.fixture(scope="module")
def sd21(tmp_path_factory):
    return Family("sd21", tmp_path_factory.mktemp("w21"))


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    return Family("sd15", tmp_path_factory.mktemp("w15"))


def patch(pack, fam, specs, weight=1.0, lora=1.0, start=0.0, end=1.0, model=None):
    emb, = pack.encode(fam.weights, aus(pack, *specs))
    patched, = pack.apply(model or fam.model, fam.weights, emb, weight, lora, start, end)
    return patched, emb


def run_reference(fam, pack, x, sigma, ctx, layout, specs, au_scale, lora):
    """The same call on diffusers: FineFace attached by the reference, AU tokens per chunk."""
    unet = copy.deepcopy(fam.unet)
    attach_fineface(unet, fam.weights, lora_strength=lora)
    b = x.shape[0]
    vectors = torch.stack([parse_aus(s) for s in specs])
    vectors = vectors.expand(b, -1) if len(specs) == 1 else vectors
    tokens = {0: fam.weights.encode(vectors), 1: fam.weights.encode(torch.zeros_like(vectors))}
    s = sigma.expand(b * len(layout))
    ms = fam.model.model.model_sampling
    xs = torch.cat([x] * len(layout))
    c = torch.cat([ctx[k].expand(b, -1, -1) for k in layout])
    with torch.no_grad():
        eps = unet(xs / (s[:, None, None, None] ** 2 + 1).sqrt(), ms.timestep(s), c,
                   cross_attention_kwargs={"au_embedding": torch.cat([tokens[k] for k in layout]), "au_scale": au_scale}).sample
    return xs - s[:, None, None, None] * eps


def inputs(fam, batch=1, sigma=2.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, 8, 8, generator=g)
    ctx = {0: torch.randn(1, 77, fam.context_dim, generator=g), 1: torch.randn(1, 77, fam.context_dim, generator=g)}
    return x, torch.tensor([sigma]), ctx


# -- equality with the reference -------------------------------------------------------------------

@pytest.mark.parametrize("family", ["sd21", "sd15"])
@pytest.mark.parametrize("layout", [(0, 1), (1, 0)])
def test_cond_and_uncond_chunks_match_the_reference(pack, request, family, layout):
    fam = request.getfixturevalue(family)
    specs = ["AU6@3 + AU12@4 + AU25@1"]
    patched, _ = patch(pack, fam, specs)
    x, sigma, ctx = inputs(fam)
    got = run_comfy(pack, patched, x, sigma, ctx, layout)
    want = run_reference(fam, pack, x, sigma, ctx, layout, specs, 1.0, 1.0)
    assert rel(got, want) < TOL
    # and the AUs did something: without FineFace the output is clearly different
    plain = run_comfy(pack, fam.model, x, sigma, ctx, layout)
    assert rel(plain, want) > 100 * TOL


def test_a_batch_carries_one_au_vector_per_image_with_lambda_and_lora_strengths(pack, sd21):
    specs = ["AU12@5", "AU4@3 + AU15@2", "AU1@2 + AU2@2 + AU26@4"]
    patched, _ = patch(pack, sd21, specs, weight=0.6, lora=0.4)
    x, sigma, ctx = inputs(sd21, batch=3, seed=1)
    got = run_comfy(pack, patched, x, sigma, ctx, (1, 0))
    want = run_reference(sd21, pack, x, sigma, ctx, (1, 0), specs, 0.6, 0.4)
    assert rel(got, want) < TOL
    # images differ in their AUs only: image 0 as its own one-image batch gives the same result
    single, _ = patch(pack, sd21, specs[:1], weight=0.6, lora=0.4)
    one = run_comfy(pack, single, x[:1], sigma, ctx, (1, 0))
    assert rel(one[1:2], got[3:4]) < TOL and rel(one[0:1], got[0:1]) < TOL


def test_comfy_sampler_batching_matches_the_reference(pack, sd21):
    """ComfyUI's own cond/uncond batching (calc_cond_uncond_batch) decides the layout itself."""
    import comfy.conds

    specs = ["AU9@3 + AU17@2", "AU20@4"]
    patched, _ = patch(pack, sd21, specs, weight=1.3)
    x, sigma, ctx = inputs(sd21, batch=2, seed=2)
    pack.mm.load_model_gpu(patched)
    # what ComfyUI's sampler makes of a CONDITIONING entry (2025 trees also key conds by uuid)
    cond = [{"model_conds": {"c_crossattn": comfy.conds.CONDCrossAttn(ctx[0])}, "cross_attn": ctx[0], "uuid": uuid.uuid4()}]
    uncond = [{"model_conds": {"c_crossattn": comfy.conds.CONDCrossAttn(ctx[1])}, "cross_attn": ctx[1], "uuid": uuid.uuid4()}]
    if hasattr(patched, "pre_run"):  # 2025 trees: the sampler announces the patcher before it runs
        patched.pre_run()
    with torch.no_grad():
        c, u = pack.samplers.calc_cond_uncond_batch(patched.model, cond, uncond, x, sigma.expand(2), patched.model_options)
    want = run_reference(sd21, pack, x, sigma, ctx, (0, 1), specs, 1.3, 1.0)
    assert rel(c, want[:2]) < TOL and rel(u, want[2:]) < TOL


def test_the_au_branch_acts_only_inside_its_window_and_the_lora_throughout(pack, sd21):
    specs = ["AU4@4 + AU15@3"]
    patched, _ = patch(pack, sd21, specs, start=0.3, end=0.6, lora=0.7)
    ms = sd21.model.model.model_sampling
    for percent, inside in ((0.45, True), (0.1, False), (0.8, False)):
        sigma = float(ms.percent_to_sigma(percent))
        x, s, ctx = inputs(sd21, sigma=sigma, seed=3)
        got = run_comfy(pack, patched, x, s, ctx, (1, 0))
        want = run_reference(sd21, pack, x, s, ctx, (1, 0), specs, 1.0 if inside else 0.0, 0.7)
        assert rel(got, want) < TOL, (percent, inside)


def test_an_au_schedule_of_two_applies_switches_aus_between_windows_and_keeps_one_lora(pack, sd21):
    early, late = ["AU1@4 + AU2@4 + AU26@3"], ["AU6@3 + AU12@5"]
    first, _ = patch(pack, sd21, early, start=0.0, end=0.4, lora=0.8)
    both, _ = patch(pack, sd21, late, start=0.6, end=1.0, lora=0.8, model=first)
    assert len(both.patches) == len(sd21.weights.lora.down) and all(len(p) == 1 for p in both.patches.values())
    ms = sd21.model.model.model_sampling
    for percent, specs, scale in ((0.2, early, 1.0), (0.8, late, 1.0), (0.5, late, 0.0)):
        sigma = float(ms.percent_to_sigma(percent))
        x, s, ctx = inputs(sd21, sigma=sigma, seed=10)
        got = run_comfy(pack, both, x, s, ctx, (1, 0))
        want = run_reference(sd21, pack, x, s, ctx, (1, 0), specs, scale, 0.8)
        assert rel(got, want) < TOL, percent
    with pytest.raises(FineFaceError, match="already carries this FineFace LoRA at strength 0.8.*lora_strength to 0.8, or to 0"):
        patch(pack, sd21, late, lora=1.0, model=first)
    no_lora, _ = patch(pack, sd21, late, lora=0.0, model=first)  # 0 adds nothing and is always fine
    assert no_lora.patches.keys() == first.patches.keys()


def test_two_loaders_of_one_file_work_together(pack, sd21, tmp_path):
    """Embeddings and the LoRA are recognised by their values, not by which loader made them."""
    again = load_weights(write_official_release(str(tmp_path / "again"), sd21.unet, "sd21", seed=5))
    assert again is not sd21.weights and again.lora.same_as(sd21.weights.lora)
    emb, = pack.encode(again, aus(pack, "AU12@4"))
    first, = pack.apply(sd21.model, sd21.weights, emb, 1.0, 1.0, 0.0, 0.5)
    second, = pack.apply(first, again, emb, 1.0, 1.0, 0.5, 1.0)
    assert all(len(p) == 1 for p in second.patches.values())


def test_lambda_zero_and_lora_zero_give_the_plain_model(pack, sd21):
    patched, _ = patch(pack, sd21, ["AU12@5"], weight=0.0, lora=0.0)
    x, sigma, ctx = inputs(sd21, seed=4)
    assert rel(run_comfy(pack, patched, x, sigma, ctx, (1, 0)), run_comfy(pack, sd21.model, x, sigma, ctx, (1, 0))) < 1e-6


def test_the_chain_reads_the_sigma_only_when_a_window_needs_it(pack):
    """Reading the current sigma waits for the GPU; over the whole schedule (the default) it is never read."""
    import comfy.ldm.modules.attention as attention

    patch_module = pack.attn2_patch
    g = torch.Generator().manual_seed(12)
    q, k, v = torch.randn(2, 5, 8, generator=g), torch.randn(2, 3, 8, generator=g), torch.randn(2, 3, 8, generator=g)
    plain = attention.optimized_attention(q, k, v, 2)
    rows = torch.tensor([[0.0] * 8, [1.0] * 8])  # layout (uncond, cond): uncond adds 0, cond adds 1
    branch = patch_module.AUBranch(torch.ones(1, 8), torch.zeros(1, 8))

    whole = patch_module.Attn2Chain()
    whole.add(branch, sigma_start=patch_module.NO_SIGMA, sigma_end=0.0)
    unreadable = {"n_heads": 2, "cond_or_uncond": [1, 0], "sigmas": torch.empty(2, device="meta")}
    assert torch.allclose(whole(q, k, v, unreadable), plain + rows[:, None], atol=1e-6)

    window = patch_module.Attn2Chain()
    window.add(branch, sigma_start=10.0, sigma_end=1.0)
    with pytest.raises((RuntimeError, NotImplementedError)):
        window(q, k, v, unreadable)
    for sigma, inside in ((5.0, True), (0.5, False), (20.0, False)):
        options = dict(unreadable, sigmas=torch.full((2,), sigma))
        assert torch.allclose(window(q, k, v, options), plain + inside * rows[:, None], atol=1e-6), sigma


def test_a_bfloat16_model_is_patched_in_its_own_precision(pack, sd21):
    """GPU users run half-precision UNets: the AU rows and the merged LoRA follow the model's dtype."""
    half = comfy_model(sd21.unet, "sd21", dtype=torch.bfloat16)
    specs = ["AU4@4 + AU15@3"]
    patched, _ = patch(pack, sd21, specs, weight=0.9, lora=0.7, model=half)
    x, sigma, ctx = inputs(sd21, seed=13)
    got = run_comfy(pack, patched, x, sigma, ctx, (1, 0))
    want = run_reference(sd21, pack, x, sigma, ctx, (1, 0), specs, 0.9, 0.7)
    plain = run_comfy(pack, half, x, sigma, ctx, (1, 0))
    floor = rel(plain.float(), run_comfy(pack, sd21.model, x, sigma, ctx, (1, 0)))  # bfloat16's own error
    assert half.model.get_dtype() == torch.bfloat16
    # as close to the float32 reference as bfloat16 allows, and far from the model without FineFace
    assert rel(got.float(), want) < 1.5 * floor and rel(plain.float(), want) > 10 * floor


# -- what gets patched -----------------------------------------------------------------------------

def test_every_cross_attention_layer_is_patched_and_reached_once_per_call(pack, sd21):
    patched, _ = patch(pack, sd21, ["AU12@3"])
    layers = pack.comfy_model.attn2_layers(sd21.model)
    assert len(layers) == 16 == len(attn2_modules(sd21.unet))
    counting = patched.clone()
    attn2 = counting.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert {k[:2] for k in attn2} == {layer.key[:2] for layer in layers.values()}
    calls = []
    for key, chain in attn2.items():
        def counted(out, q, k, v, extra, _inner=chain.callback[0], _key=key, **kw):
            assert tuple(extra["block"]) == _key[:2]  # ComfyUI called the patch of this layer
            calls.append(_key)
            return _inner(out, q, k, v, extra, **kw)
        chain.callback[0] = counted
    x, sigma, ctx = inputs(sd21)
    run_comfy(pack, counting, x, sigma, ctx, (1, 0))
    assert sorted(calls) == sorted(attn2) and len(calls) == 16
    run_comfy(pack, counting, x, sigma, ctx, (0, 1))
    assert len(calls) == 32 and len(set(calls)) == 16


def test_every_lora_key_lands_as_a_weight_patch(pack, sd21):
    patched, _ = patch(pack, sd21, ["AU12@3"], lora=0.5)
    lora = sd21.weights.lora
    assert lora is not None and len(lora.down) == len(patched.patches) == 16 * 2 * 4  # attn1 + attn2, q k v out
    keys = set(patched.model.state_dict())
    assert set(patched.patches) <= keys
    # the merged weight of one layer is W + strength * scale * up @ down
    path = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q"
    comfy_key = "diffusion_model." + pack.comfy_model.diffusers_to_comfy_keys(sd21.model)[path + ".weight"]
    pack.mm.load_model_gpu(sd21.model)  # the base weights (models share them; the last loaded patches them)
    before = sd21.model.model.state_dict()[comfy_key].clone()
    pack.mm.load_model_gpu(patched)
    after = patched.model.state_dict()[comfy_key].clone()
    pack.mm.load_model_gpu(sd21.model)
    assert torch.allclose(after - before, 0.5 * lora.scale * lora.up[path] @ lora.down[path], atol=1e-6)
    assert lora.scale == lora.alpha / lora.rank



def test_a_style_lora_from_the_core_lora_loader_stays_in_force_beside_fineface(pack, sd21):
    """A LoRA loaded with ComfyUI's own loader (comfy.sd.load_lora_for_models, LoraLoader's code) on the same
    attention weights: after Apply, the merged weight carries both, W + style + FineFace's up @ down."""
    import comfy.lora
    import comfy.sd

    path = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q"
    comfy_key = "diffusion_model." + pack.comfy_model.diffusers_to_comfy_keys(sd21.model)[path + ".weight"]
    key_map = comfy.lora.model_lora_keys_unet(sd21.model.model, {})
    style_name = next(name for name, target in key_map.items() if target == comfy_key and name.startswith("lora_unet_"))
    g = torch.Generator().manual_seed(21)
    rows, cols = sd21.model.model.state_dict()[comfy_key].shape
    up, down = torch.randn(rows, 4, generator=g) * 0.1, torch.randn(4, cols, generator=g) * 0.1
    style = {f"{style_name}.lora_up.weight": up, f"{style_name}.lora_down.weight": down, f"{style_name}.alpha": torch.tensor(4.0)}
    styled, _ = comfy.sd.load_lora_for_models(sd21.model, None, style, 0.8, 0.0)
    patched, _ = patch(pack, sd21, ["AU12@3"], lora=0.5, model=styled)
    assert len(patched.patches[comfy_key]) == 2  # the style LoRA's patch and FineFace's, neither replaced

    lora = sd21.weights.lora
    pack.mm.load_model_gpu(sd21.model)
    before = sd21.model.model.state_dict()[comfy_key].clone()
    pack.mm.load_model_gpu(patched)
    after = patched.model.state_dict()[comfy_key].clone()
    pack.mm.load_model_gpu(sd21.model)
    want = before + 0.8 * up @ down + 0.5 * lora.scale * lora.up[path] @ lora.down[path]
    assert torch.allclose(after, want, atol=1e-5)

def test_the_input_model_is_unchanged(pack, sd15):
    x, sigma, ctx = inputs(sd15, seed=5)
    before = run_comfy(pack, sd15.model, x, sigma, ctx, (1, 0))
    options = copy.deepcopy(sd15.model.model_options)
    patched, _ = patch(pack, sd15, ["AU1@4"])
    run_comfy(pack, patched, x, sigma, ctx, (1, 0))
    after = run_comfy(pack, sd15.model, x, sigma, ctx, (1, 0))
    assert torch.equal(before, after)
    assert sd15.model.model_options == options and not sd15.model.patches


def test_a_foreign_attn2_patch_stays_in_force(pack, sd21):
    """A pack that replaces attn2 without the IPAdapter protocol (plain callable) is wrapped, not lost."""
    import comfy.ldm.modules.attention as attention

    other = sd21.model.clone()
    seen = []

    def scaled(q, k, v, extra):
        seen.append(1)
        return 0.5 * attention.optimized_attention(q, k, v, extra["n_heads"])

    for layer in pack.comfy_model.attn2_layers(other).values():
        other.set_model_attn2_replace(scaled, layer.key[0], layer.key[1], layer.key[2])
    patched, _ = patch(pack, sd21, ["AU12@4"], model=other, lora=0.0)
    x, sigma, ctx = inputs(sd21, seed=6)
    both = run_comfy(pack, patched, x, sigma, ctx, (1, 0))
    assert len(seen) == 16
    only_other = run_comfy(pack, other, x, sigma, ctx, (1, 0))
    fineface_only, _ = patch(pack, sd21, ["AU12@4"], lora=0.0)
    assert rel(both, only_other) > 100 * TOL and rel(both, run_comfy(pack, fineface_only, x, sigma, ctx, (1, 0))) > 100 * TOL



def test_an_attention_override_reaches_the_patched_cross_attention_layers(pack, sd21):
    """ComfyUI 0.3.6x+: a pack swaps the attention kernel via transformer_options; FineFace's layers use it too."""
    import comfy.ldm.modules.attention as attention

    if not hasattr(attention, "wrap_attn"):
        pytest.skip("this ComfyUI tree has no optimized_attention_override")
    patched, _ = patch(pack, sd21, ["AU12@4"], lora=0.0)
    x, sigma, ctx = inputs(sd21, seed=7)
    want = run_comfy(pack, patched, x, sigma, ctx, (1, 0))
    calls = {}

    def counted(name):
        def override(func, *args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return func(*args, **kwargs)
        return override

    for name, model in (("plain", sd21.model), ("fineface", patched)):
        model = model.clone()  # clones deep-copy model_options: the fixtures stay without the override
        model.model_options["transformer_options"]["optimized_attention_override"] = counted(name)
        got = run_comfy(pack, model, x, sigma, ctx, (1, 0))
    assert calls["plain"] == calls["fineface"] == 32  # all 16 attn1 and 16 attn2 calls, patched or not
    assert torch.allclose(got, want, atol=1e-6)  # the override computes the same attention here

# -- chaining with IPAdapter_plus' protocol (SD 1.5) -----------------------------------------------

class IPAUProcessor:
    """diffusers reference for one attn2 with both decoupled branches: text + IP tokens + the AU token."""

    def __init__(self, au, ip):
        self.au, self.ip = au, ip  # AUAttnProcessor; (to_k_ip, to_v_ip, tokens, weight) or None

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 au_embedding=None, au_scale=1.0):
        b, heads = hidden_states.shape[0], attn.heads
        q = attn.to_q(hidden_states)

        def split(t):
            return t.view(t.shape[0], -1, heads, t.shape[-1] // heads).transpose(1, 2)

        def merge(t):
            return t.transpose(1, 2).reshape(b, -1, q.shape[-1])

        out = merge(F.scaled_dot_product_attention(split(q), split(attn.to_k(encoder_hidden_states)),
                                                   split(attn.to_v(encoder_hidden_states))))
        if self.ip is not None:
            to_k_ip, to_v_ip, tokens, weight = self.ip
            out = out + weight * merge(F.scaled_dot_product_attention(split(q), split(tokens @ to_k_ip.t()),
                                                                      split(tokens @ to_v_ip.t())))
        e = au_embedding.expand(b, -1, -1)
        out = out + au_scale * merge(F.scaled_dot_product_attention(split(q), split(self.au.au_to_k(e)),
                                                                    split(self.au.au_to_v(e))))
        return attn.to_out[1](attn.to_out[0](out))


@pytest.mark.parametrize("order", ORDERS)
def test_chaining_with_ip_adapter_keeps_both_contributions(pack, sd15, order):
    ip_cond, ip_uncond = ip_image_tokens(768)
    ordered, by_path = ip_layers(pack, sd15)
    specs = ["AU1@3 + AU4@2 + AU15@3"]
    emb, = pack.encode(sd15.weights, aus(pack, *specs))
    both = chained(order, sd15.model,
                   lambda model: ipadapter_protocol.apply_ip_adapter(model, ordered, ip_cond, ip_uncond, weight=0.8),
                   lambda model: pack.apply(model, sd15.weights, emb, 1.0, 1.0, 0.0, 1.0)[0])
    layout = (1, 0)
    x, sigma, ctx = inputs(sd15, seed=7)
    got = run_comfy(pack, both, x, sigma, ctx, layout)

    unet = copy.deepcopy(sd15.unet)
    processors = attach_fineface(unet, sd15.weights)
    tokens = torch.cat([ip_uncond, ip_cond])  # layout (uncond, cond), one image each
    unet.set_attn_processor({
        name: IPAUProcessor(processors[name[: -len(".processor")]],
                            (*by_path[name[: -len(".processor")]], tokens, 0.8) if name[: -len(".processor")] in by_path else None)
        if name[: -len(".processor")] in processors else proc
        for name, proc in unet.attn_processors.items()
    })
    vec = parse_aus(specs[0])[None]
    e = torch.cat([sd15.weights.encode(torch.zeros_like(vec)), sd15.weights.encode(vec)])
    s = sigma.expand(2)
    xs = torch.cat([x, x])
    with torch.no_grad():
        eps = unet(xs / (s[:, None, None, None] ** 2 + 1).sqrt(), sd15.model.model.model_sampling.timestep(s),
                   torch.cat([ctx[1], ctx[0]]), cross_attention_kwargs={"au_embedding": e, "au_scale": 1.0}).sample
    want = xs - s[:, None, None, None] * eps
    assert rel(got, want) < TOL
    # IP-Adapter acts in the 15 layers it registers for (none in the middle block), FineFace in all 16
    assert len(by_path) == 15 and "mid_block.attentions.0.transformer_blocks.0.attn2" not in by_path
    fineface_only, _ = patch(pack, sd15, specs)
    assert rel(got, run_comfy(pack, fineface_only, x, sigma, ctx, layout)) > 100 * TOL


# -- refusals --------------------------------------------------------------------------------------

def test_a_family_mismatch_names_both_families_and_the_fix(pack, sd21, sd15):
    emb, = pack.encode(sd15.weights, aus(pack, "AU12"))
    with pytest.raises(ModelMismatchError, match=r"this MODEL is Stable Diffusion 2.x .*FineFace weights are for Stable Diffusion 1.x .*use the SD 2.1 release"):
        pack.apply(sd21.model, sd15.weights, emb, 1.0, 1.0, 0.0, 1.0)
    emb, = pack.encode(sd21.weights, aus(pack, "AU12"))
    with pytest.raises(ModelMismatchError, match=r"this MODEL is Stable Diffusion 1.x .*FineFace weights are for Stable Diffusion 2.x .*use the SD 1.5 release"):
        pack.apply(sd15.model, sd21.weights, emb, 1.0, 1.0, 0.0, 1.0)


def test_a_model_without_fineface_weights_is_refused(pack, sd21):
    refiner_width = comfy_model(None, "sd15", context_dim=1280)  # the SDXL refiner's text width
    emb, = pack.encode(sd21.weights, aus(pack, "AU12"))
    with pytest.raises(ModelMismatchError, match="SDXL refiner .*1280.*only for Stable Diffusion 2.x .*1.x"):
        pack.apply(refiner_width, sd21.weights, emb, 1.0, 1.0, 0.0, 1.0)


def test_weights_for_other_layer_widths_are_refused(pack, sd21):
    import dataclasses

    path = "down_blocks.1.attentions.0.transformer_blocks.0.attn2"
    au_to_v = dict(sd21.weights.au_to_v)
    au_to_v[path] = torch.zeros(96, 1024)
    odd = dataclasses.replace(sd21.weights, au_to_v=au_to_v, au_to_k={}, lora=None)
    emb, = pack.encode(odd, aus(pack, "AU12"))
    with pytest.raises(ModelMismatchError, match=f"layer {path}: the FineFace weights are 96 channels wide, this MODEL's layer has 64"):
        pack.apply(sd21.model, odd, emb, 1.0, 1.0, 0.0, 1.0)


def test_an_embedding_from_another_fineface_model_is_refused(pack, sd21, tmp_path):
    other = load_weights(write_official_release(str(tmp_path / "other"), sd21.unet, "sd21", seed=99))
    emb, = pack.encode(other, aus(pack, "AU12"))
    with pytest.raises(ModelMismatchError, match="different FineFace model"):
        pack.apply(sd21.model, sd21.weights, emb, 1.0, 1.0, 0.0, 1.0)


def test_an_au_batch_that_does_not_fit_the_latent_batch_is_refused(pack, sd21):
    patched, _ = patch(pack, sd21, ["AU12@1", "AU12@3"])
    x, sigma, ctx = inputs(sd21, batch=3)
    with pytest.raises(AUSpecError, match="2 AU vectors were given for a latent batch of 3 images"):
        run_comfy(pack, patched, x, sigma, ctx, (1, 0))


@pytest.mark.parametrize("field, value, message", [
    ("weight", float("nan"), "weight must be a finite number"),
    ("lora", float("inf"), "lora_strength must be a finite number"),
    ("start", 0.7, "start_at <= end_at"),
])
def test_bad_strengths_and_windows_are_refused(pack, sd21, field, value, message):
    kwargs = {"weight": 1.0, "lora": 1.0, "start": 0.0, "end": 0.5}
    kwargs[field] = value
    with pytest.raises(FineFaceError, match=message):
        patch(pack, sd21, ["AU12"], **kwargs)


def test_empty_or_malformed_au_input_is_refused(pack, sd21):
    from fineface_core.conditioning import AUVectors

    with pytest.raises(AUSpecError, match=r"shape \[N >= 1, 12\]"):
        AUVectors(torch.zeros(0, 12))
    with pytest.raises(AUSpecError, match=r"shape \[N >= 1, 12\]"):
        AUVectors(torch.zeros(2, 11))
    with pytest.raises(AUSpecError):
        AUVectors(torch.tensor([[float("nan")] + [0.0] * 11]))


# -- the real ComfyUI_IPAdapter_plus (where its source is on the machine) -------------------------

@pytest.mark.parametrize("order", ["ip_first", "fineface_first"])
def test_real_ipadapter_plus_chains_with_fineface_like_the_reproduction(pack, sd15, real_ipadapter, order):
    """IPAdapterEmbeds (its basic SD 1.5 model: 4 tokens) with FineFace, in either order, equals the
    protocol reproduction used by the other tests, fed the same layers and image tokens."""
    g = torch.Generator().manual_seed(11)
    ordered, _ = ip_layers(pack, sd15, seed=3)
    state = ipadapter_protocol.embeds_state(ordered, g)
    pos, neg = torch.randn(1, 32, generator=g), torch.randn(1, 32, generator=g)
    emb, = pack.encode(sd15.weights, aus(pack, "AU6@3 + AU12@4"))
    node = real_ipadapter()

    def real(model):
        return node.apply_ipadapter(model, state, pos, 0.8, "linear", 0.0, 1.0, neg_embed=neg)[0]

    if order == "ip_first":
        got_model, = pack.apply(real(sd15.model), sd15.weights, emb, 1.0, 1.0, 0.0, 1.0)
    else:
        got_model = real(pack.apply(sd15.model, sd15.weights, emb, 1.0, 1.0, 0.0, 1.0)[0])
    # the image tokens the real pack made from the embeds, read from its own patch
    attn2 = got_model.model_options["transformer_options"]["patches_replace"]["attn2"]
    kwargs = next(kw for kw in attn2[("input", 1)].kwargs if "ipadapter" in kw)
    cond, uncond = kwargs["cond"], kwargs["uncond"]
    assert cond.shape == (1, 4, 768)
    if order == "ip_first":
        want_model, = pack.apply(ipadapter_protocol.apply_ip_adapter(sd15.model, ordered, cond, uncond, weight=0.8),
                                 sd15.weights, emb, 1.0, 1.0, 0.0, 1.0)
    else:
        want_model = ipadapter_protocol.apply_ip_adapter(pack.apply(sd15.model, sd15.weights, emb, 1.0, 1.0, 0.0, 1.0)[0],
                                                         ordered, cond, uncond, weight=0.8)
    x, sigma, ctx = inputs(sd15, seed=8)
    got = run_comfy(pack, got_model, x, sigma, ctx, (1, 0))
    want = run_comfy(pack, want_model, x, sigma, ctx, (1, 0))
    assert rel(got, want) < 1e-5
    fineface_only, _ = patch(pack, sd15, ["AU6@3 + AU12@4"])
    assert rel(got, run_comfy(pack, fineface_only, x, sigma, ctx, (1, 0))) > 100 * TOL
    assert rel(got, run_comfy(pack, real(sd15.model), x, sigma, ctx, (1, 0))) > 100 * TOL
