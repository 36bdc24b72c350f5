"""training/ on SDXL: the tiny SDXL folder (two text encoders) trains a few steps, exports a family-sdxl file that
ComfyUI's SDXL model loads (its output changes with the AUs and equals the trained model's own prediction), a
resumed run equals an uninterrupted one; the micro-conditioning time ids, caption dropout with the empty caption's
embeddings (both encoders' states and the pooled one); the dry run on the real SDXL architecture (meta device)."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from torchvision import transforms

from fineface_core.families import SDXL
from fineface_core.weightfiles.loading import load_weights
from tests.support.patched_sdxl import XLFamily, inputs, run_comfy_xl
from tests.support.patched_unet import aus, rel
from tests.support.tiny_sdxl import write_tiny_sdxl
from tests.support.training_runs import train_args
from training import train as trainer
from training.errors import TrainingError
from training.sdxl import XLText, center_crop_time_ids, drop_captions, empty_caption, image_size

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EXTRA = ("--max_train_steps", 4, "--checkpointing_steps", 2, "--caption_dropout_prob", 0.5, "--gradient_checkpointing",
         "--lora_rank", 4, "--lora_alpha", 2)


@pytest.fixture(scope="module")
def tiny_xl(tmp_path_factory):
    return write_tiny_sdxl(str(tmp_path_factory.mktemp("tiny_sdxl") / "sdxl"), seed=1)


@pytest.fixture(scope="module")
def runs(tiny_xl, data, tmp_path_factory):
    """4 steps with a checkpoint at 2 (caption dropout and gradient checkpointing on), and the same run resumed
    from its checkpoint-2."""
    root = tmp_path_factory.mktemp("xl_runs")
    extra = EXTRA
    full = trainer.main(train_args(tiny_xl, data, root / "full", *extra))
    os.makedirs(root / "resumed")
    shutil.copytree(root / "full" / "checkpoint-2", root / "resumed" / "checkpoint-2")
    resumed = trainer.main(train_args(tiny_xl, data, root / "resumed", *extra, "--resume_from_checkpoint", "latest"))
    return full, resumed, root


@pytest.mark.slow
def test_a_resumed_run_equals_the_uninterrupted_one(runs):
    full, resumed, root = runs
    assert full["global_step"] == resumed["global_step"] == 4 and len(full["losses"]) == 4
    assert all(np.isfinite(full["losses"]))
    assert resumed["losses"] == pytest.approx(full["losses"][2:], rel=1e-5)
    a, b = load_weights(full["export"]), load_weights(resumed["export"])
    for path in a.layers:
        torch.testing.assert_close(a.au_to_v[path], b.au_to_v[path], rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_a_run_from_the_sdxl_latent_cache_equals_the_run_without_it(tiny_xl, data, tmp_path):
    """Both encoders' states, the pooled embeddings and each image's time ids come from the cache: the losses equal
    the run without it, to 1e-6 before any update (step 0: the inputs alone) and to 1e-5 over 4 steps at lr 1e-5.

    Why lr 1e-5. The cache is encoded in other batches than training's, so its numbers differ from the trainer's own
    by float32 rounding. AdamW's first steps move each weight by about the lr whatever the size of its gradient, so
    a rounding-sized change flips the step of weights whose gradient is near zero, and this deep random net turns
    the flips into loss differences. Measured (these settings, one thread): the step-0 losses part by 1.4e-7; at lr
    1e-3 by 5e-4 at step 1 and 1.7 % at step 2 -- and a run with no cache at all, its latent means times
    (1 + 1e-7 noise), parts from the plain run as much (6.5e-7 at step 0, 1.7 % at step 2), while with
    --adam_epsilon 1e-4 (tiny gradients no longer scaled up to the lr) the same perturbation moves step 2 by 2e-5.
    So at lr 1e-3 the difference is the optimizer amplifying rounding, not the cache. At lr 1e-5 the flipped steps
    are 100 times smaller: cached vs uncached 2.1e-6 at most (the 1e-7 perturbation: 3.4e-6). The figures:
    python -m tests.benchmarks.bench_sdxl_cache_drift."""
    slow = (*EXTRA, "--learning_rate", "1e-5")
    plain = trainer.main(train_args(tiny_xl, data, tmp_path / "plain", *slow))
    cache = tmp_path / "cache"
    cached = trainer.main(train_args(tiny_xl, data, tmp_path / "cached", *slow, "--latent_cache", cache,
                                     "--cache_shard_size", 3, "--cache_batch_size", 2, "--validation_steps", 4,
                                     "--validation_inference_steps", 2, "--validation_aus", "neutral; AU12@5"))
    assert cached["losses"][0] == pytest.approx(plain["losses"][0], rel=1e-6)
    assert cached["losses"] == pytest.approx(plain["losses"], rel=1e-5)
    assert os.path.isfile(tmp_path / "cached" / "validation" / "step-000004.png")  # rendered by the XL pipeline
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["settings"]["time_ids"] and len(manifest["images"]) == 8 and len(manifest["captions"]) == 9
    with safe_open(str(cache / "latents-00000.safetensors"), framework="pt") as f:
        assert f.get_tensor("time_ids").tolist()[0] == [32.0, 32.0, 0.0, 0.0, 32.0, 32.0]
    with safe_open(str(cache / "text-00000.safetensors"), framework="pt") as f:
        assert f.get_tensor("text").shape[1:] == (77, 2048) and f.get_tensor("pooled").shape[0] == 3


@pytest.mark.slow
def test_the_export_is_an_sdxl_file_that_comfyui_applies(runs, tiny_xl, pack):
    from diffusers import UNet2DConditionModel

    full, _, _ = runs
    assert full["export"].endswith("fineface_sdxl.safetensors")
    weights = load_weights(full["export"])
    assert weights.family is SDXL and len(weights.layers) == 70 and weights.lora is not None
    base = UNet2DConditionModel.from_pretrained(tiny_xl, subfolder="unet")
    fam = XLFamily(unet=base, weights=weights)
    x, sigma, ctx, pooled = inputs(seed=4)
    outs = []
    for spec in ("AU12@5 + AU6@3", "AU4@4 + AU15@4"):
        emb, = pack.encode(weights, aus(pack, spec))
        patched, = pack.apply(fam.model, weights, emb, 1.0, 1.0, 0.0, 1.0)
        outs.append(run_comfy_xl(pack, patched, x, sigma, ctx, pooled, (1, 0)))
    assert rel(outs[0][1:], outs[1][1:]) > 1e-4  # the cond half follows the AUs
    assert rel(outs[0][:1], outs[1][:1]) < 1e-6  # the uncond half is encoder(zeros) in both
    # and the trained adapter moved away from its initialisation (to_v copied): training did something
    assert any(not torch.equal(weights.au_to_v[p], base.get_submodule(p).to_v.weight) for p in weights.layers)


def test_time_ids_are_the_resize_and_center_crop_of_the_pixel_transform(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    path = str(tmp_path / "wide.png")
    Image.fromarray(arr).save(path)
    assert image_size(path) == (40, 64)
    ids = center_crop_time_ids(image_size(path), 32)
    h, w, top, left, th, tw = (int(v) for v in ids)
    assert (h, w, th, tw) == (40, 64, 32, 32)
    resized = transforms.Resize(32, antialias=True)(transforms.ToTensor()(Image.open(path)))
    cropped = transforms.CenterCrop(32)(resized)
    assert torch.equal(cropped, resized[:, top:top + 32, left:left + 32]) and left > 0 and top == 0
    tall = center_crop_time_ids((100, 50), 32)
    assert tall.tolist() == [100, 50, 16, 0, 32, 32]


def test_caption_dropout_takes_the_empty_captions_states_and_pooled_embedding(tiny_xl):
    from training.model import load_base_model

    base = load_base_model(tiny_xl)
    empty = empty_caption(base, torch.device("cpu"))
    assert empty.embeds.shape == (1, 77, 2048) and empty.pooled.shape[0] == 1
    text = XLText(torch.randn(3, 77, 2048), torch.randn(3, empty.pooled.shape[1]), torch.ones(3, 6))
    dropped = drop_captions(text, torch.tensor([True, False, True]), empty)
    assert torch.equal(dropped.embeds[0], empty.embeds[0]) and torch.equal(dropped.pooled[2], empty.pooled[0])
    assert torch.equal(dropped.embeds[1], text.embeds[1]) and torch.equal(dropped.pooled[1], text.pooled[1])
    assert torch.equal(dropped.time_ids, text.time_ids)


def test_sdxl_refuses_a_random_crop(tiny_xl, data, tmp_path):
    with pytest.raises(TrainingError, match="SDXL needs --center_crop"):
        trainer.main(train_args(tiny_xl, data, tmp_path / "a", "--max_train_steps", 1, "--no-center_crop"))


def test_an_sdxl_folder_without_its_second_text_encoder_is_refused_before_loading(tiny_xl, data, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(tiny_xl, partial, ignore=shutil.ignore_patterns("text_encoder_2"))
    with pytest.raises(TrainingError, match="an SDXL UNet without text_encoder_2; SDXL is trained with both"):
        trainer.main(train_args(partial, data, tmp_path / "out", "--max_train_steps", 1))


@pytest.mark.slow
def test_the_dry_run_on_the_real_sdxl_architecture_prints_its_figures(capsys):
    """Built from the published configs on the meta device: nothing downloaded, nothing allocated."""
    est = trainer.main(["--dry_run", "--pretrained_model_name_or_path", "builtin:sdxl-base-1.0", "--resolution", "1024",
                        "--train_batch_size", "16", "--mixed_precision", "bf16", "--gradient_checkpointing"])
    out = capsys.readouterr().out
    assert "SDXL (text width 2048)" in out
    # au_to_v: 10 layers of 640 and 60 of 1280 channels, 2048 wide
    assert est["counts"]["au_to_v"] == (10 * 640 + 60 * 1280) * 2048
    assert "total at batch 1 / 4 / 16:" in out and "TFLOP/sample" in out and "GPU-hours per epoch" in out
    assert "text encoder 2 (frozen)" in out
    b1, b4, b16 = est["total_at_batch"].values()
    assert b1 < b4 < b16
    assert 3e12 < est["unet_forward_flops"] < 1e13  # SDXL's UNet at 1024 px: about 6 TFLOP a forward
