"""The exact edit on diffusers with SDXL (fineface_core.editing.pipeline_edit.edit_photo on the tiny SDXL pipeline of
tests/support/tiny_sdxl.py): the UNet gets SDXL's pooled text embedding and size ids
(fineface_core.editing.prompt_conditioning) in the inversion and the replay alike, so the photo's own AUs give its
latent back bit for bit at cfg 1 and 7.5 and other AUs change it; the ids are the photo's size, uncropped."""
import numpy as np
import pytest
import torch
from PIL import Image

from fineface_core.editing.diffusers_edit import DiffusersDenoiser
from fineface_core.editing.pipeline_edit import edit_photo
from fineface_core.editing.prompt_conditioning import encode_prompts, is_sdxl
from fineface_core.pipeline import FineFacePipeline
from tests.support.libreface_files import skimage_photo
from tests.support.tiny_pipeline import tiny_pipeline
from tests.support.tiny_sdxl import tiny_sdxl_pipeline
from tests.support.tiny_sdxl_weights import sdxl_weights

SOURCE = "AU6@2 + AU12@3"


@pytest.fixture(scope="module")
def ff(tmp_path_factory):
    pipe = tiny_sdxl_pipeline(str(tmp_path_factory.mktemp("sdxl")), seed=0)
    return FineFacePipeline(pipe, sdxl_weights(pipe.unet, seed=5))


@pytest.fixture(scope="module")
def photo():
    return Image.fromarray(skimage_photo("astronaut.png")).resize((64, 48), Image.LANCZOS)


@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_the_photos_own_aus_give_its_sdxl_latent_back_and_others_change_it(ff, photo, cfg):
    kwargs = dict(prompt="a photo of an astronaut", negative_prompt="blurry", num_inference_steps=8, start_step=2,
                  guidance_scale=cfg)
    same = edit_photo(ff, photo, SOURCE, SOURCE, **kwargs)
    assert same.latents.shape == (1, 4, 6, 8)
    assert torch.equal(same.latents, same.photo_latent)
    vae = ff.pipe.vae
    with torch.no_grad():
        round_trip = ff.pipe.image_processor.postprocess(
            vae.decode(same.photo_latent.contiguous() / vae.config.scaling_factor).sample)[0]
    assert np.array_equal(np.asarray(same.images[0]), np.asarray(round_trip))
    edited = edit_photo(ff, photo, SOURCE, ["neutral", "AU4@3"], **kwargs)
    for i in (0, 1):
        assert float((edited.latents[i] - edited.photo_latent[0]).abs().max()) > 1e-3


def test_the_size_ids_are_the_photos_and_the_pooled_embedding_follows_the_prompt(ff):
    pipe = ff.pipe
    assert is_sdxl(pipe)
    a = encode_prompts(pipe, "a smile", "blurry", 7.5, 48, 64, "cpu")
    b = encode_prompts(pipe, "a frown", "blurry", 7.5, 48, 64, "cpu")
    assert a.added_cond["time_ids"].tolist() == [[48, 64, 0, 0, 48, 64]]
    assert a.added_cond["text_embeds"].shape == (1, pipe.text_encoder_2.config.projection_dim)
    assert not torch.equal(a.added_cond["text_embeds"], b.added_cond["text_embeds"])
    assert torch.equal(a.uncond_added["text_embeds"], b.uncond_added["text_embeds"])
    assert encode_prompts(pipe, "a smile", None, 1.0, 48, 64, "cpu").uncond_added is None  # cfg 1: no uncond pass


def test_the_pooled_embedding_and_size_ids_reach_the_unet(ff):
    pipe = ff.pipe
    text = encode_prompts(pipe, "a smile", None, 1.0, 48, 64, "cpu")
    x, sigma = torch.randn(1, 4, 6, 8, generator=torch.Generator().manual_seed(0)), torch.tensor(2.0)

    def denoised(added):
        return DiffusersDenoiser(pipe.unet, ff.weights, pipe.scheduler.alphas_cumprod, "epsilon", text.cond, None,
                                 torch.zeros(1, 12), 1.0, added_cond=added)(x, sigma)

    base = denoised(text.added_cond)
    assert not torch.equal(base, denoised({**text.added_cond, "text_embeds": torch.zeros_like(text.added_cond["text_embeds"])}))
    assert not torch.equal(base, denoised({**text.added_cond, "time_ids": torch.tensor([[96.0, 128, 0, 0, 96, 128]])}))


def test_sd_pipelines_keep_their_two_embeddings(tmp_path):
    pipe = tiny_pipeline(str(tmp_path / "pipe"), "sd21")
    text = encode_prompts(pipe, "a smile", "blurry", 7.5, 64, 64, "cpu")
    assert not is_sdxl(pipe) and text.added_cond is None and text.uncond_added is None
    assert text.cond.shape == text.uncond.shape
