"""Regional expressions: Apply FineFace Adapter's ``mask`` on real ComfyUI UNets (tiny SD 2.1 / SD 1.5 layouts).

The AU contribution of every cross-attention layer is recorded as the attn2 chain adds it, and checked
token by token: exactly the unmasked rows inside a region, exactly zero outside, exactly half under a
0.5 mask, for square, non-square and odd latents (21x13 = 168x104 px), both cond/uncond orders, per-image
masks, and two Apply nodes whose masks add. Composition with IPAdapter_plus' attn_mask uses the protocol
reproduction (tests/support/ipadapter_protocol.py), in both orders.
"""
import math

import pytest
import torch

from fineface_core.errors import FineFaceError
from fineface_core.regional import mask_tokens, token_grid
from tests.support import ipadapter_protocol
from tests.support.animatediff_protocol import TemporalMixer
from tests.support.animation_windows import SPECS, TOL, WINDOWS, call
from tests.support.patched_unet import Family, aus, ip_layers, rel, run_comfy

LATENTS = {"square": (8, 8), "wide": (8, 12), "odd": (13, 21)}  # (h, w); odd = 104x168 px (grids 13x21, 7x11, 4x6, 2x3)


@pytest.fixture(scope="module")
def fams(tmp_path_factory):
    return {f: Family(f, tmp_path_factory.mktemp(f"regional_{f}")) for f in ("sd21", "sd15")}


class Recorder:
    """Stands in the chain for one callback and keeps what it added (the AU or IP contribution)."""

    def __init__(self, callback, log, key):
        self.callback, self.log, self.key = callback, log, key

    def __call__(self, out, q, k, v, extra_options, **kwargs):
        result = self.callback(out, q, k, v, extra_options, **kwargs)
        self.log.setdefault(self.key, []).append(torch.as_tensor(result).expand(out.shape).clone())
        return result


def record(model, log, name_of):
    """Wrap every callback in the model's attn2 chains; ``name_of(callback)`` names what it is."""
    for key, chain in model.model_options["transformer_options"]["patches_replace"]["attn2"].items():
        chain.callback = [Recorder(cb, log, (name_of(cb), key)) for cb in chain.callback]


def kind(callback):
    return "ip" if callback is ipadapter_protocol.ip_attention else type(callback).__name__


def apply(pack, fam, spec, model=None, mask=None, weight=1.0, start=0.0, end=1.0):
    emb, = pack.encode(fam.weights, aus(pack, *([spec] if isinstance(spec, str) else spec)))
    patched, = pack.apply(model or fam.model, fam.weights, emb, weight, 0.0, start, end, mask)
    return patched


def half_mask(h, w, side, batch=1):
    """Image-space mask (8 px per latent pixel): 1 on the left or right half of the image."""
    m = torch.zeros(batch, h * 8, w * 8)
    cut = (w // 2) * 8
    if side == "left":
        m[:, :, :cut] = 1.0
    else:
        m[:, :, cut:] = 1.0
    return m


def latent_inputs(fam, hw, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, *hw, generator=g)
    ctx = {0: torch.randn(1, 77, fam.context_dim, generator=g), 1: torch.randn(1, 77, fam.context_dim, generator=g)}
    return x, torch.tensor([2.0]), ctx


def contributions(pack, model, fam, hw, layout, batch=1):
    log = {}
    record(model, log, kind)
    x, sigma, ctx = latent_inputs(fam, hw, batch)
    run_comfy(pack, model, x, sigma, ctx, layout)
    return log


def on_grid(t, hw):
    """[B, T, C] -> [B, h, w, C] on the layer's token grid."""
    h, w = token_grid(hw, t.shape[1])
    return t.reshape(t.shape[0], h, w, t.shape[2])


def test_token_grids_follow_the_unet_halving():
    assert [token_grid((41, 65), n) for n in (41 * 65, 21 * 33, 11 * 17, 6 * 9)] == [(41, 65), (21, 33), (11, 17), (6, 9)]
    with pytest.raises(FineFaceError, match="does not fit a 41x65 latent"):
        token_grid((41, 65), 1000)
    # a region's cells: wholly inside 1, wholly outside exactly 0, the boundary cell in between
    m = mask_tokens(half_mask(41, 65, "left"), (41, 65), 21 * 33).reshape(21, 33)
    assert bool((m[:, :15] == 1).all()) and bool((m[:, 17:] == 0).all()) and 0 < float(m[0, 16]) < 1


@pytest.mark.parametrize("family", ["sd21", "sd15"])
@pytest.mark.parametrize("shape", sorted(LATENTS))
@pytest.mark.parametrize("layout", [(0, 1), (1, 0)])
def test_outside_the_mask_the_au_branch_adds_exactly_nothing(pack, fams, family, shape, layout):
    fam, hw = fams[family], LATENTS[shape]
    plain = contributions(pack, apply(pack, fam, "AU6@3 + AU12@4"), fam, hw, layout)
    masked = contributions(pack, apply(pack, fam, "AU6@3 + AU12@4", mask=half_mask(*hw, "left")), fam, hw, layout)
    keys = sorted(k for k in masked if k[0] == "MaskedAUBranch")
    assert len(keys) == 16 and all(len(masked[k]) == 1 for k in keys)
    for key in keys:
        rows = on_grid(plain[("AUBranch", key[1])][0], hw)
        got = on_grid(masked[key][0], hw)
        weights = on_grid(mask_tokens(half_mask(*hw, "left"), hw, masked[key][0].shape[1])[..., None], hw)
        weights = weights.repeat(len(layout), 1, 1, 1)
        inside, outside = weights[..., 0] == 1, weights[..., 0] == 0
        if got.shape[2] >= 4:  # a grid of 1 or 2 columns has no cell wholly on one side
            assert bool(outside.any()) and bool(inside.any()), key
        assert bool((got[outside] == 0).all()), key
        assert torch.equal(got[inside], rows[inside]), key
        assert torch.equal(got, rows * weights.to(rows.dtype)), key  # boundary cells scaled by their coverage


@pytest.mark.parametrize("family", ["sd21", "sd15"])
def test_constant_masks_are_exact(pack, fams, family):
    fam, hw, layout = fams[family], LATENTS["odd"], (1, 0)
    px = (hw[0] * 8, hw[1] * 8)
    x, sigma, ctx = latent_inputs(fam, hw, batch=2, seed=3)
    spec = ["AU1@3 + AU4@2", "AU12@5"]
    unmasked = run_comfy(pack, apply(pack, fam, spec), x, sigma, ctx, layout)
    off = run_comfy(pack, apply(pack, fam, spec, weight=0.0), x, sigma, ctx, layout)
    for ones in (torch.ones(1, *px), torch.ones(2, *px)):  # one for all; one per image
        assert torch.equal(run_comfy(pack, apply(pack, fam, spec, mask=ones), x, sigma, ctx, layout), unmasked)
    assert torch.equal(run_comfy(pack, apply(pack, fam, spec, mask=torch.zeros(1, *px)), x, sigma, ctx, layout), off)
    assert rel(unmasked, off) > 1e-3
    # 0.5: exactly half of the AU branch, at every layer
    plain = contributions(pack, apply(pack, fam, spec), fam, hw, layout, batch=2)
    half = contributions(pack, apply(pack, fam, spec, mask=torch.full((2, *px), 0.5)), fam, hw, layout, batch=2)
    for key, [got] in half.items():
        assert torch.equal(got, plain[("AUBranch", key[1])][0] * 0.5), key


def test_per_image_masks_follow_their_images(pack, fams):
    fam, hw = fams["sd21"], LATENTS["wide"]
    masks = torch.cat([half_mask(*hw, "left"), half_mask(*hw, "right")])
    spec = ["AU12@5", "AU4@4 + AU15@3"]
    plain = contributions(pack, apply(pack, fam, spec), fam, hw, (0, 1), batch=2)
    masked = contributions(pack, apply(pack, fam, spec, mask=masks), fam, hw, (0, 1), batch=2)
    for key, [got] in masked.items():
        rows = on_grid(plain[("AUBranch", key[1])][0], hw)
        got = on_grid(got, hw)
        w = got.shape[2]
        for b, side in enumerate((0, 1, 0, 1)):  # chunks (cond, uncond) x images (left, right)
            keep = slice(0, w // 2 - 1) if side == 0 else slice(w // 2 + 1, w)
            drop = slice(w // 2 + 1, w) if side == 0 else slice(0, w // 2 - 1)
            assert torch.equal(got[b, :, keep], rows[b, :, keep]) and bool((got[b, :, drop] == 0).all()), (key, b)


def test_two_regions_with_their_own_expressions_and_windows_add(pack, fams):
    """Left face smiles, right face frowns; the second mask also covers the left at 0.25, where both add."""
    fam, hw = fams["sd21"], LATENTS["square"]
    smile, frown = "AU6@3 + AU12@5", "AU4@4 + AU15@3"
    m_left, m_right = half_mask(*hw, "left"), torch.full((1, 64, 64), 0.25) + half_mask(*hw, "right") * 0.75
    left = apply(pack, fam, smile, mask=m_left, start=0.0, end=0.6)
    both = apply(pack, fam, frown, model=left, mask=m_right, start=0.2, end=1.0)
    rows = {spec: contributions(pack, apply(pack, fam, spec), fam, hw, (1, 0)) for spec in (smile, frown)}
    ms = fam.model.model.model_sampling
    x, _, ctx = latent_inputs(fam, hw)
    log = {}
    record(both, log, kind)
    run_comfy(pack, both, x, torch.tensor([float(ms.percent_to_sigma(0.4))]), ctx, (1, 0))  # both windows hold
    assert all(len(v) == 2 for v in log.values()) and len(log) == 16
    for key, (first, second) in log.items():
        t = first.shape[1]
        want_first = rows[smile][("AUBranch", key[1])][0] * mask_tokens(m_left, hw, t)[..., None]
        want_second = rows[frown][("AUBranch", key[1])][0] * mask_tokens(m_right, hw, t)[..., None]
        assert torch.equal(first, want_first) and torch.equal(second, want_second), key
        if on_grid(first, hw).shape[2] >= 4:
            assert bool((on_grid(first, hw)[:, :, -1] == 0).all()) and bool((on_grid(second, hw)[:, :, 0] != 0).any())
    # outside the second window (10 % into the schedule) only the first region acts
    log.clear()
    run_comfy(pack, both, x, torch.tensor([float(ms.percent_to_sigma(0.1))]), ctx, (1, 0))
    assert all(len(v) == 1 for v in log.values()) and len(log) == 16


@pytest.mark.parametrize("order", ["ip_first", "fineface_first"])
def test_ip_adapter_and_fineface_masks_both_act(pack, fams, order):
    """Two identities and two expressions: IP-Adapter masked to the left face, FineFace to the right."""
    fam, hw = fams["sd15"], LATENTS["square"]
    g = torch.Generator().manual_seed(9)
    ip_cond, ip_uncond = torch.randn(1, 4, 768, generator=g), torch.randn(1, 4, 768, generator=g)
    ordered, _ = ip_layers(pack, fam)
    ip_mask, au_mask = half_mask(*hw, "left"), half_mask(*hw, "right")
    if order == "ip_first":
        ip = ipadapter_protocol.apply_ip_adapter(fam.model, ordered, ip_cond, ip_uncond, weight=0.8, attn_mask=ip_mask)
        both = apply(pack, fam, "AU6@3 + AU12@4", model=ip, mask=au_mask)
    else:
        ff = apply(pack, fam, "AU6@3 + AU12@4", mask=au_mask)
        both = ipadapter_protocol.apply_ip_adapter(ff, ordered, ip_cond, ip_uncond, weight=0.8, attn_mask=ip_mask)
    log = contributions(pack, both, fam, hw, (1, 0))
    assert {k[0] for k in log} == {"ip", "MaskedAUBranch"}
    assert len([k for k in log if k[0] == "MaskedAUBranch"]) == 16 and len([k for k in log if k[0] == "ip"]) == 15
    for (what, _), [got] in log.items():
        grid = on_grid(got, hw)
        w = grid.shape[2]
        outside = grid[:, :, w // 2:] if what == "ip" else grid[:, :, : max(w // 2 - 1, 0)]
        inside = grid[:, :, : max(w // 2 - 1, 1)] if what == "ip" else grid[:, :, w // 2 + (w > 2):]
        assert bool((outside == 0).all()) and float(inside.abs().max()) > 0, what


@pytest.mark.parametrize("order", ["ip_first", "fineface_first"])
def test_real_ipadapter_plus_masks_chain_like_the_reproduction(pack, fams, real_ipadapter, order):
    """IPAdapterEmbeds with its attn_mask and a masked FineFace, in either order, equal the reproduction."""
    fam, hw = fams["sd15"], LATENTS["wide"]
    g = torch.Generator().manual_seed(12)
    ordered, _ = ip_layers(pack, fam, seed=4)
    state = ipadapter_protocol.embeds_state(ordered, g)
    pos, neg = torch.randn(1, 32, generator=g), torch.randn(1, 32, generator=g)
    ip_mask, au_mask = half_mask(*hw, "left"), half_mask(*hw, "right")
    node = real_ipadapter()

    def real(model):
        return node.apply_ipadapter(model, state, pos, 0.8, "linear", 0.0, 1.0, neg_embed=neg, attn_mask=ip_mask)[0]

    if order == "ip_first":
        got_model = apply(pack, fam, "AU6@3 + AU12@4", model=real(fam.model), mask=au_mask)
    else:
        got_model = real(apply(pack, fam, "AU6@3 + AU12@4", mask=au_mask))
    kwargs = next(kw for kw in got_model.model_options["transformer_options"]["patches_replace"]["attn2"][("input", 1)].kwargs
                  if "ipadapter" in kw)
    tokens = dict(cond=kwargs["cond"], uncond=kwargs["uncond"], weight=0.8, attn_mask=ip_mask)
    if order == "ip_first":
        want_model = apply(pack, fam, "AU6@3 + AU12@4", mask=au_mask,
                           model=ipadapter_protocol.apply_ip_adapter(fam.model, ordered, **tokens))
    else:
        want_model = ipadapter_protocol.apply_ip_adapter(apply(pack, fam, "AU6@3 + AU12@4", mask=au_mask), ordered, **tokens)
    x, sigma, ctx = latent_inputs(fam, hw, seed=5)
    got = run_comfy(pack, got_model, x, sigma, ctx, (1, 0))
    assert rel(got, run_comfy(pack, want_model, x, sigma, ctx, (1, 0))) < 1e-5
    unmasked = real(apply(pack, fam, "AU6@3 + AU12@4"))
    assert rel(got, run_comfy(pack, unmasked, x, sigma, ctx, (1, 0))) > 1e-3


def test_bad_masks_are_refused_with_what_to_do(pack, fams):
    fam = fams["sd21"]
    nan = torch.ones(1, 64, 64)
    nan[0, 3, 5] = math.nan
    with pytest.raises(FineFaceError, match="the mask holds 1 NaN or infinite values"):
        apply(pack, fam, "AU12", mask=nan)
    with pytest.raises(FineFaceError, match="values run from 0 to 2"):
        apply(pack, fam, "AU12", mask=torch.ones(1, 64, 64) * 2 - torch.ones(1, 64, 64).tril() * 2)
    x, sigma, ctx = latent_inputs(fam, (8, 8), batch=2)
    with pytest.raises(FineFaceError, match="3 masks were given for a latent batch of 2 images"):
        run_comfy(pack, apply(pack, fam, "AU12", mask=torch.rand(3, 64, 64)), x, sigma, ctx, (1, 0))
    x, sigma, ctx = latent_inputs(fam, (8, 12))
    with pytest.raises(FineFaceError, match="the mask is 64x64 but the image is 96x64 px"):
        run_comfy(pack, apply(pack, fam, "AU12", mask=torch.rand(1, 64, 64)), x, sigma, ctx, (1, 0))
    # a mask at the latent's own size (or any size of the same aspect) is resized
    run_comfy(pack, apply(pack, fam, "AU12", mask=torch.rand(1, 8, 12)), x, sigma, ctx, (1, 0))


def test_per_frame_masks_follow_the_frames_of_an_animation_s_context_windows(pack, fams):
    """AnimateDiff runs the UNet on windows of the frames (ad_params' sub_idxs): frame i keeps mask i wherever it
    sits in a window, as it keeps AU vector i. The oracle: a model patched with the window's vectors and masks."""
    fam, frames = fams["sd15"], len(SPECS)
    masks = torch.zeros(frames, 64, 64)
    for i in range(frames):
        masks[i, :, : 8 * (i + 1)] = 1.0  # frame i: the left (i + 1) / 8 of the image
    base = fam.model.clone()
    base.set_model_input_block_patch(TemporalMixer(seed=1))  # mixes a window's frames: a wrong mask shows in all
    animated = apply(pack, fam, SPECS, model=base, mask=masks)
    g = torch.Generator().manual_seed(2)
    x_all, sigma = torch.randn(frames, 4, 8, 8, generator=g), torch.tensor([3.0])
    ctx = {0: torch.randn(1, 77, 768, generator=g), 1: torch.randn(1, 77, 768, generator=g)}
    for window in WINDOWS["wrapped"] + WINDOWS["strided"]:
        ad = {"full_length": frames, "context_length": len(window), "sub_idxs": window}
        got = call(pack, animated, x_all[window], sigma, ctx, (1, 0), ad)
        oracle = apply(pack, fam, [SPECS[i] for i in window], model=base, mask=masks[window])
        assert rel(got, call(pack, oracle, x_all[window], sigma, ctx, (1, 0))) < TOL, window
    # as many masks as a window holds, not as the animation has frames: by position they would repeat
    four = apply(pack, fam, SPECS, model=base, mask=masks[:4])
    with pytest.raises(FineFaceError, match=r"4 masks were given for an animation of 8 frames: give one mask \(used "
                                            r"for every frame\) or exactly 8 \(one per frame\)"):
        call(pack, four, x_all[4:], sigma, ctx, (1, 0), {"full_length": frames, "context_length": 4, "sub_idxs": [4, 5, 6, 7]})
