"""The exact edit on SDXL through ComfyUI's own sampling (what workflows/fineface_sdxl_exact_edit.json runs): Invert
Photo, then Regenerate Exact Edit, on ComfyUI's tiny SDXL (tests/support/tiny_sdxl.py) patched by Apply FineFace
Adapter with SDXL weights; the conditioning carries the pooled text, from which ComfyUI makes SDXL's size
conditioning. The photo's own AUs give its latent back bit for bit; other AUs change it."""
import pytest
import torch

from fineface_core.aus import ACTION_UNITS
from tests.support.exact_edit import SOURCE, TARGET, exact_edit_nodes
from tests.support.tiny_sdxl import POOLED_DIM, comfy_sdxl_model, tiny_sdxl_unet
from tests.support.tiny_sdxl_weights import sdxl_weights


@pytest.fixture(scope="module")
def xl():
    pack = exact_edit_nodes()
    unet = tiny_sdxl_unet(seed=3)
    g = torch.Generator().manual_seed(0)

    def cond():
        return [[torch.randn(1, 77, 2048, generator=g), {"pooled_output": torch.randn(1, POOLED_DIM, generator=g)}]]

    return {"pack": pack, "model": comfy_sdxl_model(unet), "weights": sdxl_weights(unet, seed=4), "pos": cond(),
            "neg": cond(), "photo": {"samples": torch.randn(1, 4, 8, 8, generator=g)}}


def patched(xl, spec):
    pack = xl["pack"]
    aus = pack.vector(spec=spec, append_to=None, **{au.code: 0.0 for au in ACTION_UNITS})[0]
    emb, = pack.encode(xl["weights"], aus)
    return pack.apply(xl["model"], xl["weights"], emb, 1.0, 1.0, 0.0, 1.0)[0]


@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_the_photos_own_aus_give_its_sdxl_latent_back_and_others_change_it(xl, cfg):
    pack, photo = xl["pack"], xl["photo"]
    record = pack.invert(patched(xl, SOURCE), xl["pos"], xl["neg"], photo, cfg, 6, "normal", 1, 7)[0]
    back = pack.regenerate(patched(xl, SOURCE), xl["pos"], xl["neg"], record, cfg, photo)[0]["samples"]
    assert torch.equal(back, photo["samples"])
    edited = pack.regenerate(patched(xl, TARGET), xl["pos"], xl["neg"], record, cfg, photo)[0]["samples"]
    assert torch.isfinite(edited).all() and (edited - photo["samples"]).abs().max() > 1e-3
