"""python -m fineface_core.evaluate on SDXL weights: the tiny SDXL of tests/support/tiny_sdxl.py (two text encoders,
micro-conditioning) with an SDXL FineFace file, end to end at a small --size and once at SDXL's own 1024 px; the
refusals that keep SDXL and SD 2.x / 1.x weights and base models apart, and the edit protocol on SDXL."""
import csv
import json
import os

import numpy as np
import pytest
from diffusers import UNet2DConditionModel
from PIL import Image

from fineface_core.aus import AU_ORDER
from fineface_core.evaluation.cli import main
from fineface_core.evaluation.generate import Generation
from fineface_core.evaluation.protocol import Protocol
from fineface_core.evaluation.run import Config, for_family
from fineface_core.families import SD15, SD21, SDXL
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint
from tests.support.official_files import write_official_release
from tests.support.tiny_clip import write_tiny_clip
from tests.support.tiny_sd import write_tiny_sd
from tests.support.tiny_sdxl import write_tiny_sdxl
from tests.support.tiny_sdxl_weights import write_sdxl_file
from tests.support.tiny_unets import tiny_unet

PROMPTS = ["a girl in a park", "an old man"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    sdxl = write_tiny_sdxl(str(root / "sdxl"), seed=0)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(sdxl, "unet"))
    sd21 = str(root / "sd21.safetensors")
    save_fineface(load_weights(write_official_release(str(root / "release"), tiny_unet("sd21", 0), "sd21", seed=3)),
                  sd21)
    prompts = root / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    return {"sdxl": sdxl, "sd_base": write_tiny_sd(str(root / "sd"), "sd21", seed=0),
            "xl": write_sdxl_file(str(root / "fineface_sdxl.safetensors"), unet, seed=1),
            "xl2": write_sdxl_file(str(root / "other_sdxl.safetensors"), unet, seed=2),
            "sd21": sd21, "release": str(root / "release"), "prompts": str(prompts),
            "estimator": write_libreface_checkpoint(str(root / "resnet.pt")), "clip": write_tiny_clip(str(root / "clip"))}


def results(out) -> list[dict]:
    """results.csv's rows (one per AU image)."""
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def argv(models, out, *extra, base="sdxl", weights="xl"):
    return ["--weights", f"ours={models[weights]}", "--estimator", models["estimator"], "--out", str(out),
            "--base-model", models[base], "--clip", models["clip"], "--prompts", models["prompts"],
            "--aus", "AU12,AU4", "--intensities", "3", "--combinations", "1", "--combination-size", "2", "2",
            "--steps", "1", "--no-face", "whole image", "--quiet", *extra]


@pytest.mark.slow
def test_the_command_runs_end_to_end_on_an_sdxl_file(models, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(argv(models, out, "--weights", f"ours={models['xl']}", f"other={models['xl2']}", "--limit", "2",
                   "--resolution", "64", "--batch-size", "2"))
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    settings = json.loads((out / "settings.json").read_text())["common"]
    assert settings["generation"]["size"] == 64 and settings["base_model"] == models["sdxl"]
    for label in ("ours", "other"):
        names = sorted(os.listdir(out / "images" / label))
        assert len(names) == 4 and len([n for n in names if "reference" in n]) == 2  # 2 AU images, 2 no-AU images
        for name in names:
            with Image.open(out / "images" / label / name) as im:
                assert im.size == (64, 64) and im.format == "PNG"
    rows = results(out)
    assert len(rows) == 4 and {r["weights"] for r in rows} == {"ours", "other"}
    for r in rows:
        asked = np.array([float(r[f"asked_{a}"]) for a in AU_ORDER])
        measured = np.array([float(r[f"measured_{a}"]) for a in AU_ORDER])
        assert float(r["au_l2_error"]) == pytest.approx(np.linalg.norm(asked - measured), abs=1e-3)
        assert -1 <= float(r["clip_i"]) <= 1
    # the two SDXL files make different images from the same noise: the weights reach the SDXL UNet
    a = np.asarray(Image.open(out / "images" / "ours" / os.path.basename(rows[0]["image"])), dtype=float)
    b = np.asarray(Image.open(out / "images" / "other" / os.path.basename(rows[0]["image"])), dtype=float)
    assert np.abs(a - b).max() > 0
    summary = (out / "summary.md").read_text()
    assert summary in printed and any(line.startswith("| ours |") for line in summary.splitlines())
    assert sorted(os.listdir(out / "plots")) == ["au_response.png", "cross_talk_other.png", "cross_talk_ours.png"]
    # resumed: nothing made again; another size is another evaluation, refused in this folder
    assert main(argv(models, out, "--weights", f"ours={models['xl']}", f"other={models['xl2']}", "--limit", "2",
                     "--size", "64", "--batch-size", "2")) == 0
    assert "0 images generated, 0 measured" in capsys.readouterr().out
    assert main(argv(models, out, "--weights", f"ours={models['xl']}", f"other={models['xl2']}", "--limit", "2",
                     "--size", "128")) == 2
    assert "made with other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_sdxl_weights_render_at_1024_px_when_no_size_is_given(models, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(argv(models, out, "--limit", "1")) == 0, capsys.readouterr().err
    names = os.listdir(out / "images" / "ours")
    assert len(names) == 2
    for name in names:
        with Image.open(out / "images" / "ours" / name) as im:
            assert im.size == (1024, 1024)
    assert json.loads((out / "settings.json").read_text())["common"]["generation"]["size"] == 1024
    assert len(results(out)) == 1


def test_the_family_fills_in_base_model_and_size():
    protocol = Protocol(tuple(PROMPTS), aus=("AU12",), combinations=0, combination_size=(1, 1))
    plain = Config(weights=[("a", "a.safetensors")], estimator="e.pt", out="o", protocol=protocol)
    xl = for_family(plain, SDXL)
    assert xl.generation.size == 1024 and xl.base_model == "stabilityai/stable-diffusion-xl-base-1.0"
    sd = for_family(plain, SD21)
    assert sd.generation.size == 512 and sd.base_model == "stabilityai/stable-diffusion-2-1-base"  # the paper's
    assert for_family(plain, SD15).generation.size == 512
    given = Config(weights=plain.weights, estimator="e.pt", out="o", protocol=protocol, base_model="my/xl",
                   generation=Generation(size=768))
    assert for_family(given, SDXL).generation.size == 768 and for_family(given, SDXL).base_model == "my/xl"


def test_wrong_base_models_and_files_are_refused_naming_sdxl(models, tmp_path, capsys):
    out = tmp_path / "eval"
    cases = [
        # SDXL weights on an SD 2.1 diffusers folder, SD 2.1 weights on the SDXL one: refused before loading
        ({"base": "sd_base"}, [], "is a StableDiffusionPipeline (not SDXL) but the FineFace weights are for SDXL"),
        ({"weights": "sd21"}, [], "is an SDXL pipeline but the FineFace weights are for Stable Diffusion 2.x"),
        # one run, one family
        ({}, ["--weights", f"xl={models['xl']}", f"sd={models['sd21']}"], "'xl' for SDXL (text width 2048), 'sd' for "
                                                                          "Stable Diffusion 2.x"),
        # no official SDXL release: the variant says so
        ({}, ["--weights", models["release"], "--variant", "sdxl"], "no official FineFace release exists for SDXL"),
        ({}, ["--resolution", "1004"], "--size 1004: give a multiple of 8"),
    ]
    for kw, extra, message in cases:
        assert main(argv(models, out, "--size", "64", *extra, **kw)) == 2, extra
        err = capsys.readouterr().err
        assert message in err, (extra, err)
        assert "Traceback" not in err and not out.exists()


def test_the_default_base_model_of_sdxl_weights_is_sdxl_base(models, tmp_path, capsys):
    """No --base-model: SDXL weights ask for SDXL base 1.0 (the tests are offline: the hub is not reached)."""
    args = argv(models, tmp_path / "eval", "--size", "64")
    i = args.index("--base-model")
    del args[i:i + 2]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cannot load the base model 'stabilityai/stable-diffusion-xl-base-1.0' as SDXL" in err
    assert not (tmp_path / "eval").exists()


@pytest.mark.slow
def test_the_edit_protocol_runs_on_sdxl_weights_and_its_replay_is_exact(models, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skimage_photo("astronaut.png")).save(photos / "astronaut.png")
    out = tmp_path / "edit"
    rc = main(["--protocol", "edit", "--photos", str(photos), "--weights", f"ours={models['xl']}",
               "--estimator", models["estimator"], "--out", str(out), "--base-model", models["sdxl"],
               "--aus", "AU12", "--intensities", "3", "--size", "64", "--steps", "3", "--start-step", "1",
               "--guidance", "7.5", "--no-face", "whole image", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    rows = results(out)
    assert rows and {r["photo"] for r in rows} == {"astronaut"}
    replay = [r for r in rows if r["kind"] == "replay"]
    assert len(replay) == 1 and replay[0]["psnr"] == "inf"  # no change: the photo's VAE round trip, pixel for pixel
    with Image.open(out / rows[0]["image"]) as im:
        assert im.size == (64, 64)
