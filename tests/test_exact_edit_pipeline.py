"""The exact edit in one call on a FineFacePipeline (fineface_core.editing.pipeline_edit.edit_photo), on the suite's
tiny diffusers SD 2.1 pipeline with FineFace weights made for its UNet, and scikit-image's astronaut as the photo.

With the source as target the latent is the photo's (bit for bit) and the image its VAE round trip; neutral and
relative targets edit it; the call equals the same steps composed by hand (diffusers_edit + ddpm_inversion).
"""
import numpy as np
import pytest
import torch
from PIL import Image

from fineface_core.editing.ddpm_inversion import invert, replay
from fineface_core.editing.diffusers_edit import DiffusersDenoiser, sigma_schedule
from fineface_core.editing.pipeline_edit import edit_photo
from fineface_core.errors import FineFaceError
from fineface_core.pipeline import FineFacePipeline
from fineface_core.weightfiles.loading import load_weights
from tests.support.libreface_files import skimage_photo
from tests.support.official_files import write_official_release
from tests.support.tiny_pipeline import tiny_pipeline

SOURCE = "AU6@2 + AU12@3"


@pytest.fixture(scope="module")
def ff(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipe")
    pipe = tiny_pipeline(str(tmp / "pipe"), "sd21")
    weights = load_weights(write_official_release(str(tmp / "release"), pipe.unet, "sd21", seed=5))
    return FineFacePipeline(pipe, weights)


@pytest.fixture(scope="module")
def photo():
    return Image.fromarray(skimage_photo("astronaut.png")).resize((64, 64), Image.LANCZOS)


def test_one_call_gives_the_photo_back_and_edits_it(ff, photo):
    kwargs = dict(prompt="a photo of an astronaut", negative_prompt="blurry", num_inference_steps=12, start_step=3)
    same = edit_photo(ff, photo, SOURCE, SOURCE, **kwargs)
    assert same.record.means.shape[0] == 12 - 3
    assert torch.equal(same.latents, same.photo_latent)  # the source: the photo's latent, bit for bit
    vae = ff.pipe.vae
    with torch.no_grad():
        round_trip = ff.pipe.image_processor.postprocess(  # decoded as the pipeline decodes: a contiguous latent
            vae.decode(same.photo_latent.contiguous() / vae.config.scaling_factor).sample)[0]
    assert np.array_equal(np.asarray(same.images[0]), np.asarray(round_trip))  # the image: its VAE round trip
    # a batch of targets from one inversion (batched rows are compared with single edits on unit-scale models:
    # tests/test_exact_edit.py; this random UNet amplifies the batch's rounding, NOTES section 8)
    result = edit_photo(ff, photo, SOURCE, ["neutral", "AU12@2"], **kwargs)
    assert result.latents.shape == (2, 4, 8, 8) and len(result.images) == 2
    assert torch.equal(result.targets[0], torch.zeros(12))  # neutral: a target of zeros, rendered
    for i in (0, 1):
        assert float((result.latents[i] - result.photo_latent[0]).abs().max()) > 1e-2
    assert not torch.equal(result.latents[0], result.latents[1])


def test_relative_targets_add_to_the_source_and_equal_the_steps_by_hand(ff, photo):
    result = edit_photo(ff, photo, SOURCE, "AU12@1 + AU4@2", num_inference_steps=8, start_step=2, guidance_scale=1.0,
                        relative=True, scheduler="karras", seed=4)
    source = torch.zeros(12)
    source[[4, 6]] = torch.tensor([2.0, 3.0])  # AU6, AU12 in FineFace's order
    want = source.clone()
    want[[2, 6]] += torch.tensor([2.0, 1.0])  # AU4 +2, AU12 +1
    assert torch.equal(result.targets, want[None])
    pipe = ff.pipe
    cond, _ = pipe.encode_prompt("", pipe.unet.device, 1, False, "")
    by_hand = DiffusersDenoiser(pipe.unet, ff.weights, pipe.scheduler.alphas_cumprod, "epsilon", cond, None, source[None], 1.0)
    record = invert(by_hand, sigma_schedule(pipe.scheduler.alphas_cumprod, "karras", 8), result.photo_latent, 4, 2)
    assert torch.equal(record.means, result.record.means)
    assert torch.equal(replay(by_hand.with_aus(want[None]), record), result.latents)


def test_two_photos_or_two_sources_are_refused(ff, photo):
    with pytest.raises(FineFaceError, match="one source AU vector"):
        edit_photo(ff, photo, ["AU12@1", "AU4@1"], "neutral", num_inference_steps=2, start_step=0)
    with pytest.raises(FineFaceError, match="one photo at a time"):
        edit_photo(ff, [photo, photo], SOURCE, "neutral", num_inference_steps=2, start_step=0)
