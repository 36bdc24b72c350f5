"""python -m fineface_core.evaluate --protocol edit: exact edits of real photos (scikit-image's astronaut) on the
tiny diffusers SD 2.1 model, measured by the random-weight LibreFace file the suite builds; the metrics by hand."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from fineface_core.aus import AU_ORDER
from fineface_core.errors import FineFaceError
from fineface_core.evaluation import edit_metrics
from fineface_core.evaluation.cli import main
from fineface_core.evaluation.edit_jobs import EditProtocol, list_photos, photo_seed, targets
from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint
from tests.support.official_files import write_official_release
from tests.support.tiny_clip import write_tiny_vit
from tests.support.tiny_sd import write_tiny_sd
from tests.support.tiny_unets import tiny_unet

TARGETS = 1 + 2 + 1 + 1  # replay, AU12 at 2 and 4, AU12 +1, neutral


# ------------------------------------------------------------------------------------------
# The protocol and the metrics, by hand
# ------------------------------------------------------------------------------------------

def test_targets_are_built_on_the_photo_s_reading():
    source = np.zeros(12)
    au12 = AU_ORDER.index("AU12")
    source[au12], source[0] = 4.5, 1.0
    ts = {t.name: t for t in targets(EditProtocol(aus=("AU12",), intensities=(2.0,), deltas=(-1.0, 1.0)))}
    assert list(ts) == ["replay", "abs_AU12_2", "rel_AU12_m1", "rel_AU12_p1", "neutral"]
    np.testing.assert_array_equal(ts["replay"].vector(source), source)
    absolute = ts["abs_AU12_2"].vector(source)
    assert absolute[au12] == 2 and absolute[0] == 1.0  # the other AUs as the photo shows them
    assert ts["rel_AU12_m1"].vector(source)[au12] == 3.5
    assert ts["rel_AU12_p1"].vector(source)[au12] == 5.0  # kept within 0..5
    assert not ts["neutral"].vector(source).any()
    with pytest.raises(FineFaceError, match="--deltas"):
        EditProtocol(deltas=(0.0,))
    with pytest.raises(FineFaceError, match="unknown AUs"):
        EditProtocol(aus=("AU7",))


def test_a_photo_s_seed_depends_on_its_name_only(tmp_path):
    for name in ("b.png", "a.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    photos = list_photos(str(tmp_path), 7)
    assert [p.name for p in photos] == ["a", "b"]
    (tmp_path / "0.png").write_bytes((tmp_path / "a.png").read_bytes())  # a photo joins the folder
    again = {p.name: p.seed for p in list_photos(str(tmp_path), 7)}
    assert again["a"] == photos[0].seed == photo_seed(7, "a") and again["b"] == photos[1].seed
    assert photo_seed(8, "a") != photo_seed(7, "a")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FineFaceError, match="holds no photos"):
        list_photos(str(tmp_path / "empty"), 0)


def test_edit_metrics_by_hand():
    assert edit_metrics.gain([0, 2, 0], [0.5, 1.0, 0]) == pytest.approx(0.5)
    assert edit_metrics.gain([0, -2, -2], [0, -2, 0]) == pytest.approx(4 / 8)  # the projection on the asked change
    assert np.isnan(edit_metrics.gain([0, 0], [1, 1]))
    assert edit_metrics.edit_cross_talk([0, 2, 0], [1.0, 5.0, 0.0], [0.0, 1.0, 2.0]) == pytest.approx(1.5)
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    assert edit_metrics.psnr(a, b) == float("inf")
    b[0, 0, 0] = 255  # MSE = 255^2 / 48
    assert edit_metrics.psnr(a, b) == pytest.approx(10 * np.log10(48))
    face = np.zeros((4, 4), bool)
    face[1:3, 1:3] = True
    b[1, 1] = 9  # inside the face: not counted
    assert edit_metrics.identical_outside(a, b, face) == pytest.approx(11 / 12)


# ------------------------------------------------------------------------------------------
# The tool, end to end on tiny models and real photos
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("edit_models")
    photos = root / "photos"
    os.makedirs(photos / "more")
    astronaut = skimage_photo("astronaut.png")
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    Image.fromarray(astronaut[:, ::-1].copy()).save(photos / "more" / "mirrored.jpg", quality=95)
    rng = np.random.default_rng(0)  # no face in it: skipped and counted
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(photos / "noise.png")
    return {"base": write_tiny_sd(str(root / "sd"), "sd21", seed=0),
            "release": write_official_release(str(root / "release"), tiny_unet("sd21", seed=0), "sd21", seed=3),
            "estimator": write_libreface_checkpoint(str(root / "resnet.pt")),
            "vit": write_tiny_vit(str(root / "vit")), "photos": str(photos)}


def argv(models, out, *extra):
    return ["--protocol", "edit", "--photos", models["photos"], "--weights", f"ours={models['release']}",
            "--estimator", models["estimator"], "--out", str(out), "--base-model", models["base"],
            "--aus", "AU12", "--intensities", "2,4", "--deltas", "1", "--size", "64", "--steps", "3",
            "--start-step", "1", "--no-face", "whole image", "--batch-size", "3", "--quiet", *extra]


def _rows(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_the_edit_protocol_writes_its_table_and_the_replay_is_exact(models, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(argv(models, out, "--identity-model", models["vit"], "--guidance", "7.5"))
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert f"{2 * TARGETS} images edited, {2 * TARGETS} measured this run" in printed
    rows = _rows(out)
    assert len(rows) == 2 * TARGETS and {r["photo"] for r in rows} == {"astronaut", "more__mirrored"}
    assert [r["target"] for r in rows[:TARGETS]] == ["replay", "abs_AU12_2", "abs_AU12_4", "rel_AU12_p1", "neutral"]
    for r in rows:
        source = np.array([float(r[f"source_{a}"]) for a in AU_ORDER])
        asked = np.array([float(r[f"asked_{a}"]) for a in AU_ORDER])
        measured = np.array([float(r[f"measured_{a}"]) for a in AU_ORDER])
        assert ((0 <= source) & (source <= 5)).all() and ((0 <= measured) & (measured <= 5)).all()
        assert float(r["au_l2_error"]) == pytest.approx(np.linalg.norm(asked - measured), abs=1e-3)
        assert -1 <= float(r["identity"]) <= 1
        with Image.open(out / r["image"]) as im:
            assert im.size == (64, 64)
        if r["kind"] == "replay":  # no change: the photo's VAE round trip, pixel for pixel
            assert r["psnr"] == "inf" and float(r["outside_identical"]) == 1.0
            np.testing.assert_allclose(asked, source, atol=1e-4)
        elif r["kind"] == "absolute":
            assert asked[AU_ORDER.index("AU12")] == float(r["level"])
    edits = [r for r in rows if r["kind"] != "replay"]
    assert all(np.isfinite(float(r["psnr"])) for r in edits)  # changed AUs change the image
    assert min(float(r["outside_identical"]) for r in edits) < 1.0
    summary = (out / "summary.md").read_text()
    assert summary in printed
    head = next(line for line in summary.splitlines() if line.startswith("| Weights"))
    for column in ("Absolute AU MSE", "Relative AU MSE", "Neutral AU MSE", "Gain relative", "Linearity r",
                   "Slope", "Cross-talk", "Identity", "Replay PSNR", "Outside face identical, replay"):
        assert column in head
    ours = next(line for line in summary.splitlines() if line.startswith("| ours |"))
    assert "∞ (exact)" in ours and "| 3 (1) |" in ours  # three photos, the noise skipped
    assert "### ours: per AU" in summary and "| AU12 |" in summary
    for name in ("edit_response.png", "edit_cross_talk_ours.png"):
        with Image.open(out / "plots" / name) as im:
            assert im.format == "PNG" and im.size[0] > 300


@pytest.mark.slow
def test_a_resumed_run_skips_what_is_done_and_limit_takes_the_first_photos(models, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(argv(models, out, "--limit", "1", "--guidance", "1")) == 0
    assert f"{TARGETS} images edited, {TARGETS} measured this run" in capsys.readouterr().out
    assert sorted(os.listdir(out / "images" / "ours")) == ["astronaut"]
    folder = out / "images" / "ours" / "astronaut"
    kept = {n: os.stat(folder / n).st_mtime_ns for n in os.listdir(folder)}
    table = (out / "summary.md").read_text()
    assert main(argv(models, out, "--limit", "1", "--guidance", "1")) == 0
    assert "0 images edited, 0 measured this run" in capsys.readouterr().out
    assert (out / "summary.md").read_text() == table
    # an edit lost (its image and record): only it is made again, from a new inversion of the same seed
    os.remove(folder / "abs_AU12_4.png")
    os.remove(out / "records" / "ours" / "astronaut" / "abs_AU12_4.json")
    before = _rows(out)
    assert main(argv(models, out, "--limit", "1", "--guidance", "1")) == 0
    assert "1 images edited, 1 measured this run" in capsys.readouterr().out
    after = {n: os.stat(folder / n).st_mtime_ns for n in os.listdir(folder)}
    assert {n: after[n] for n in kept if n != "abs_AU12_4.png"} == {n: t for n, t in kept.items()
                                                                       if n != "abs_AU12_4.png"}
    assert _rows(out) == before  # the same edit again, measured the same
    # other settings are refused rather than mixed
    assert main(argv(models, out, "--limit", "1", "--guidance", "3")) == 2
    assert "other settings" in capsys.readouterr().err
    # a record damaged outside the tool is named before any work, and left as it is
    damaged = out / "records" / "ours" / "astronaut" / "neutral.json"
    damaged.write_text("{")
    assert main(argv(models, out, "--limit", "1", "--guidance", "1")) == 2
    err = capsys.readouterr().err
    assert "1 damaged file(s)" in err and str(damaged) in err and "Traceback" not in err
    assert damaged.read_text() == "{"
    os.remove(damaged)
    assert main(argv(models, out, "--limit", "1", "--guidance", "1")) == 0
    assert "0 images edited, 1 measured this run" in capsys.readouterr().out
    assert _rows(out) == before
    # all photos: the rest join the folder
    assert main(argv(models, out, "--guidance", "1")) == 0
    assert f"{TARGETS} images edited, {TARGETS} measured this run" in capsys.readouterr().out


def test_edit_options_are_checked_before_any_work(models, tmp_path, capsys):
    assert main(argv(models, tmp_path / "a", "--start-step", "3")) == 2
    assert "--start-step 3" in capsys.readouterr().err
    assert main(argv(models, tmp_path / "b", "--size", "96")) == 2
    assert "multiple of 64" in capsys.readouterr().err
    assert main([a for a in argv(models, tmp_path / "c") if a not in ("--photos", models["photos"])]) == 2
    assert "--photos" in capsys.readouterr().err
    assert not any(os.path.exists(tmp_path / n) for n in "abc")
