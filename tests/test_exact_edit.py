"""Exact edits through ComfyUI's own sampling code: Invert Photo, then Regenerate Exact Edit (the plain node)
or Exact Edit Sampler in core SamplerCustom, on tiny SD 2.1 / SD 1.5 UNets patched by the pack's own nodes.

With the photo's own AUs the regeneration gives the photo's latent back (bit for bit from the plain node,
to ComfyUI's latent scaling round trip from SamplerCustom); other AUs change it, only inside a noise mask;
one inversion serves a batch of targets; every mismatch is refused before the model runs.
"""

import pytest
import torch

from fineface_core.conditioning import AUVectors
from fineface_core.editing.record import InversionMismatchError
from fineface_core.errors import FineFaceError

from tests.support.exact_edit import (SOURCE, TARGET, Fam, exact_edit_nodes, rel)

@pytest.fixture(scope="module")
def pack():
    return exact_edit_nodes()


@pytest.fixture(scope="module")
def sd21(pack, tmp_path_factory):
    return Fam(pack, "sd21", tmp_path_factory.mktemp("sd21"))


@pytest.fixture(scope="module")
def sd15(pack, tmp_path_factory):
    return Fam(pack, "sd15", tmp_path_factory.mktemp("sd15"))


@pytest.fixture(scope="module")
def sd21_v(pack, tmp_path_factory):
    return Fam(pack, "sd21", tmp_path_factory.mktemp("sd21v"), prediction="v")


@pytest.fixture(scope="module")
def unit(pack, tmp_path_factory):
    return Fam(pack, "sd21", tmp_path_factory.mktemp("unit"), unit_scale=0.1)


def latent_cells(n=1, left=0, right=4):
    """A noise mask at the image's size (64x64 px) that is 1 on latent columns left..right-1, 0 elsewhere."""
    mask = torch.zeros(n, 64, 64)
    mask[:, :, left * 8:right * 8] = 1.0
    return mask


# -- exactness --------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheduler", ["normal", "karras"])
@pytest.mark.parametrize("steps", [20, 50])
@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_the_photos_own_aus_give_its_latent_back_exactly(sd21, cfg, steps, scheduler):
    record = sd21.invert(cfg, steps, scheduler)
    photo = sd21.photo["samples"]
    assert torch.equal(sd21.regenerate(record, cfg=cfg), photo)  # the plain node: bit for bit
    # SamplerCustom returns ComfyUI's latent scaling out of the replayed latent: the photo to that round trip
    assert rel(sd21.custom(record, cfg=cfg), photo) <= 1e-5
    # and the replay did not merely copy the photo: other AUs move it
    assert rel(sd21.regenerate(record, TARGET, cfg=cfg), photo) > 1e-2


@pytest.mark.parametrize("name", ["sd15", "sd21_v"])
def test_sd15_and_v_prediction_with_a_start_step_are_exact(request, name):
    fam = request.getfixturevalue(name)
    for start in (0, 8):
        record = fam.invert(7.5, 20, "karras", start_step=start)
        assert record.means.shape[0] == 20 - start and record.start_step == start
        assert torch.equal(fam.regenerate(record), fam.photo["samples"])
        assert rel(fam.custom(record), fam.photo["samples"]) <= 1e-5
    assert record.prediction == ("V_PREDICTION" if name == "sd21_v" else "EPS")


def test_a_later_start_step_keeps_more_of_the_photo(sd21):
    photo = sd21.photo["samples"]
    changes = [rel(sd21.regenerate(sd21.invert(1.0, 20, start_step=s), TARGET, cfg=1.0), photo) for s in (0, 10, 18)]
    assert changes[0] > changes[1] > changes[2] > 0


def test_the_record_states_its_memory_and_lives_on_the_samplers_device(sd21):
    record = sd21.invert(7.5, 20, start_step=5)
    one = 4 * 8 * 8 * 4  # a 4x8x8 float32 latent
    assert record.nbytes == (15 + 16) * one
    assert record.device == torch.device("cpu")  # the device the test's ComfyUI samples on
    info = sd21.pack.invert(sd21.patched(SOURCE), sd21.pos, sd21.neg, sd21.photo, 7.5, 20, "normal", 5, 1)[1]
    assert "15 step means" in info and "16 drawn latents" in info and "31.0 KiB" in info and "start step 5" in info


# -- noise mask -------------------------------------------------------------------------------------

def test_outside_the_noise_mask_nothing_moves_and_inside_the_aus_act(sd21):
    masked, = sd21.pack.set_mask(sd21.photo, latent_cells(left=2, right=6))
    photo = sd21.photo["samples"]
    record = sd21.invert(latent=masked)
    assert torch.equal(sd21.regenerate(record, latent=masked), photo)
    edit = sd21.regenerate(record, TARGET, latent=masked)
    outside = torch.ones(8, dtype=torch.bool)
    outside[2:6] = False
    assert torch.equal(edit[..., outside], photo[..., outside])  # bit-equal
    assert rel(edit[..., 2:6], photo[..., 2:6]) > 1e-2  # the face moved
    # SamplerCustom: outside the mask, ComfyUI's scaling round trip of the photo, bit for bit
    model = sd21.model.model
    round_trip = model.process_latent_out(model.process_latent_in(photo))
    custom = sd21.custom(record, TARGET, latent=masked)
    assert torch.equal(custom[..., outside], round_trip[..., outside])


# -- one inversion, a batch of targets ---------------------------------------------------------------

@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_a_batch_of_targets_equals_single_edits_and_inverts_once(unit, cfg):
    targets = unit.aus(f"{SOURCE}\n{TARGET}\nAU1@2 + AU2@2 + AU26@3")
    unit.calls[0] = 0
    record = unit.invert(cfg, 20)
    assert unit.calls[0] == 20  # one UNet call per step (cond and uncond in one batch)
    unit.calls[0] = 0
    batch_latent, = unit.pack.batch_latent(unit.photo, targets)
    batch = unit.regenerate(record, targets, cfg, batch_latent)
    assert unit.calls[0] == 20  # the whole batch in one call per step: the inversion is not repeated
    floor = 2e-6 if cfg == 1.0 else 1e-5  # CFG scales the batch's rounding differences by 7.5
    singles = []
    for i in range(3):
        single = unit.regenerate(record, AUVectors(targets.values[i:i + 1]), cfg)
        singles.append(single)
        assert rel(batch[i:i + 1], single) <= floor
    assert torch.equal(singles[0], unit.photo["samples"])
    assert rel(singles[1], singles[0]) > 1e-2 and rel(singles[2], singles[1]) > 1e-2  # the targets differ


# -- bad input ---------------------------------------------------------------------------------------

def refused(fam, match, fn, *args, **kwargs):
    """``fn`` raises an error matching ``match`` and the UNet does not run."""
    fam.calls[0] = 0
    with pytest.raises(FineFaceError, match=match):
        fn(*args, **kwargs)
    assert fam.calls[0] == 0


def test_an_inversion_for_another_model_latent_or_schedule_is_refused(sd21, sd15, sd21_v):
    record = sd21.invert(7.5, 20, start_step=5)
    refused(sd15, r"made with a Stable Diffusion 2\.x .*model is Stable Diffusion 1\.x", sd15.regenerate, record)
    refused(sd15, r"made with a Stable Diffusion 2\.x", sd15.custom, record)
    refused(sd21_v, r"noise \(eps\) prediction model, the regeneration's model uses v-prediction", sd21_v.regenerate, record)
    big = {"samples": torch.randn(1, 4, 16, 8)}
    refused(sd21, r"holds a 4x8x8 latent \(64x64 px\), the latent given here is 4x16x8", sd21.regenerate, record, latent=big)
    refused(sd21, r"holds a 4x8x8 latent", sd21.custom, record, latent=big)
    thirty, = sd21.pack.scheduler(sd21.model, "normal", 30, 1.0)
    refused(sd21, r"recorded for 15 steps \(steps 5\.\.19 of 20\), these sigmas have 30", sd21.custom, record, sigmas=thirty)
    whole, = sd21.pack.scheduler(sd21.model, "normal", 20, 1.0)
    refused(sd21, r"whole 20-step schedule, but the inversion starts at step 5", sd21.custom, record, sigmas=whole)
    karras, = sd21.pack.scheduler(sd21.model, "karras", 20, 1.0)
    refused(sd21, r"not the ones the inversion was recorded with", sd21.custom, record, sigmas=karras[5:])


def test_another_photo_fresh_noise_or_another_mask_is_refused(sd21):
    record = sd21.invert()
    other = {"samples": torch.randn(1, 4, 8, 8)}
    refused(sd21, r"not the photo that was inverted", sd21.regenerate, record, latent=other)
    refused(sd21, r"add_noise off in SamplerCustom", sd21.custom, record, add_noise=True)
    masked, = sd21.pack.set_mask(sd21.photo, latent_cells())
    refused(sd21, r"made with no noise mask, the regeneration's latent has one", sd21.regenerate, record, latent=masked)
    masked_record = sd21.invert(latent=masked)
    refused(sd21, r"made with a noise mask, the regeneration's latent has none", sd21.regenerate, masked_record)
    other_mask, = sd21.pack.set_mask(sd21.photo, latent_cells(left=0, right=2))
    refused(sd21, r"not the one the inversion was made with", sd21.regenerate, masked_record, latent=other_mask)


def test_bad_latents_masks_and_settings_are_refused_before_sampling(sd21):
    nan = {"samples": sd21.photo["samples"].clone()}
    nan["samples"][0, 0, 0, 0] = float("nan")
    refused(sd21, r"1 NaN or infinite values; encode the photo again", sd21.invert, latent=nan)
    refused(sd21, r"1 NaN", sd21.regenerate, sd21.invert(), latent=nan)
    wide, = sd21.pack.set_mask(sd21.photo, torch.ones(1, 32, 64))
    refused(sd21, r"the mask is 64x32 but the image is 64x64 px .*aspect ratios differ", sd21.invert, latent=wide)
    three, = sd21.pack.set_mask({"samples": torch.randn(2, 4, 8, 8)}, latent_cells(n=3))
    refused(sd21, r"3 masks for 2 images", sd21.invert, latent=three)
    refused(sd21, r"start step must be below the number of steps \(20\), got 20", sd21.invert, start_step=20)
    batch = {"samples": sd21.photo["samples"].repeat(2, 1, 1, 1)}
    two = sd21.invert(latent=batch)
    refused(sd21, r"holds 2 photos, the latent given here holds 3", sd21.regenerate, two,
            latent={"samples": sd21.photo["samples"].repeat(3, 1, 1, 1)})
    with pytest.raises(InversionMismatchError):  # the error type the editing package raises
        sd21.regenerate(two, latent=sd21.photo)
