"""The diffusers reference on SDXL (``attach_fineface`` on an SDXL UNet: 70 layers, text_time micro-conditioning)
and ``FineFacePipeline`` on a StableDiffusionXLPipeline (two text encoders), on the tiny SDXL the tests build."""
import copy

import pytest
import torch
from diffusers import StableDiffusionXLPipeline

from fineface_core.aus import parse_au_batch
from fineface_core.errors import ModelMismatchError
from fineface_core.pipeline import FineFacePipeline
from fineface_core.reference import AUAttnProcessor, attach_fineface, au_kwargs
from fineface_core.weightfiles.single_file import save_fineface
from tests.support.au_branch import au_branch_before_to_out
from tests.support.pipeline_renders import assert_renders_follow_the_aus
from tests.support.tiny_pipeline import tiny_pipeline
from tests.support.tiny_sdxl import POOLED_DIM, tiny_sdxl_pipeline, tiny_sdxl_unet, write_tiny_sdxl
from tests.support.tiny_sdxl_weights import sdxl_weights

AUS = parse_au_batch(["AU6@3 + AU12@4", "AU1@2 + AU4@5 + AU26@3"])


@pytest.fixture(scope="module")
def setup():
    base = tiny_sdxl_unet(seed=7)
    weights = sdxl_weights(base, seed=11)
    patched = copy.deepcopy(base)
    attach_fineface(patched, weights)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, 8, 8, generator=g)
    ctx = torch.randn(4, 77, 2048, generator=g)
    added = {"text_embeds": torch.randn(4, POOLED_DIM, generator=g),
             "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]] * 2 + [[96.0, 64.0, 8.0, 0.0, 64.0, 64.0]] * 2)}
    t = torch.tensor([999, 999, 400, 400])
    return base, patched, weights, x, t, ctx, added


def run(unet, x, t, ctx, added, **kw):
    with torch.no_grad():
        return unet(x, t, ctx, added_cond_kwargs=added, cross_attention_kwargs=kw or None).sample


def test_every_one_of_the_70_layers_gets_the_au_adapter(setup):
    _, patched, weights, *_ = setup
    procs = {n[: -len(".processor")] for n, p in patched.attn_processors.items() if isinstance(p, AUAttnProcessor)}
    assert procs == set(weights.layers) and len(procs) == 70


def test_output_changes_with_aus_and_is_the_plain_unet_at_lambda_and_lora_zero(setup):
    base, patched, weights, x, t, ctx, added = setup
    a = run(patched, x, t, ctx, added, **au_kwargs(weights, AUS.repeat(2, 1), cfg=False))
    b = run(patched, x, t, ctx, added, **au_kwargs(weights, parse_au_batch(["AU15@4"]).expand(4, -1), cfg=False))
    assert (a - b).abs().max() > 1e-3
    off = copy.deepcopy(base)
    attach_fineface(off, weights, lora_strength=0.0)
    plain = run(base, x, t, ctx, added)
    torch.testing.assert_close(run(off, x, t, ctx, added, **au_kwargs(weights, AUS.repeat(2, 1), 0.0, cfg=False)), plain,
                               rtol=1e-5, atol=1e-6)
    assert (run(patched, x, t, ctx, added, **au_kwargs(weights, AUS.repeat(2, 1), 0.0, cfg=False)) - plain).abs().max() > 1e-4


def test_the_au_branch_is_lambda_times_au_to_v_in_deep_transformer_stacks(setup):
    """The one-token fact holds in SDXL's 10-deep stacks too: the branch adds lambda * au_to_v(e) before to_out."""
    _, patched, weights, _, _, ctx, _ = setup
    kw = au_kwargs(weights, AUS.repeat(2, 1), au_scale=0.7, cfg=False)
    g = torch.Generator().manual_seed(3)
    for layer in ("down_blocks.2.attentions.1.transformer_blocks.9.attn2", "mid_block.attentions.0.transformer_blocks.5.attn2",
                  "up_blocks.1.attentions.2.transformer_blocks.1.attn2"):
        attn = patched.get_submodule(layer)
        h = torch.randn(4, 16, attn.to_q.in_features, generator=g)
        added = au_branch_before_to_out(attn, h, ctx, kw["au_embedding"], 0.7)
        expected = weights.au_values(kw["au_embedding"].float(), 0.7)[layer]
        torch.testing.assert_close(added, expected[:, None, :].expand_as(added), rtol=1e-4, atol=1e-5)


def test_sdxl_weights_on_an_sd_unet_and_sd_weights_on_sdxl_are_refused(setup, tmp_path):
    _, _, weights, *_ = setup
    pipe = tiny_pipeline(str(tmp_path / "sd"), "sd21")
    with pytest.raises(ModelMismatchError, match=r"weights are for SDXL \(text width 2048\) but the UNet is Stable Diffusion 2.x"):
        attach_fineface(pipe.unet, weights)


def test_the_xl_pipeline_renders_prompt_plus_aus(tmp_path):
    pipe = tiny_sdxl_pipeline(str(tmp_path / "pipe"), seed=2)
    assert_renders_follow_the_aus(FineFacePipeline(pipe, sdxl_weights(pipe.unet, seed=3)))


def test_from_pretrained_picks_the_xl_pipeline_from_the_weights(tmp_path):
    folder = write_tiny_sdxl(str(tmp_path / "sdxl"), seed=4)
    probe = StableDiffusionXLPipeline.from_pretrained(folder)
    path = str(tmp_path / "fineface_sdxl.safetensors")
    save_fineface(sdxl_weights(probe.unet, seed=5), path)
    ff = FineFacePipeline.from_pretrained(folder, path, device="cpu")
    assert isinstance(ff.pipe, StableDiffusionXLPipeline) and ff.weights.family.key == "sdxl"
    ff.pipe.set_progress_bar_config(disable=True)
    out = ff("a face", "AU12@3", num_inference_steps=2, height=64, width=64, output_type="np",
             generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 64, 64, 3)
