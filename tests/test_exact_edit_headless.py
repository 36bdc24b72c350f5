"""The headless exact edits (``python -m workflows.run --workflow edit / --neutral / edit_sweep``, workflows/run.py and
workflows/exact_edit_cli.py) on the small models of the ``models_dir`` fixture, a random LibreFace AU model and a real
photo (scikit-image's astronaut in a larger striped frame): what it prints (the AUs read, the target), what it writes,
and the options it refuses before anything renders."""
import re

import numpy as np
import pytest
from PIL import Image

from fineface_core.aus import AU_ORDER
from workflows import run as headless
from workflows.exact_edit_cli import evaluate

from tests.support.exact_edit_runs import CROP, away_from_the_face, framed_photo, prompt_with_round_trip
from tests.support.shipped_runs import comfy_path
from tests.support.shipped_workflows import photo_name

FAST = ["--steps", "6", "--start-step", "2", "--crop-size", str(CROP)]


@pytest.fixture
def photo(comfy, models_dir, tmp_path):
    return tmp_path / "photo.png", framed_photo(tmp_path / "photo.png", models_dir)


def edit(models_dir, tmp_path, capsys, *options, out="edit.png"):
    out = tmp_path / out
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--image", str(tmp_path / "photo.png"), *FAST, *options, "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    return printed.out, np.asarray(Image.open(out).convert("RGB")).astype(int)


def printed_table(text) -> dict[str, list[float]]:
    """AU code -> the numbers on its row of the printed table (read, target)."""
    rows = {}
    for au in AU_ORDER:
        m = re.search(rf"^  {au} +\D+?((?: +-?\d+\.\d\d)+)$", text, re.MULTILINE)
        assert m, (au, text)
        rows[au] = [float(v) for v in m[1].split()]
    return rows


@pytest.mark.slow
def test_headless_edit_prints_the_reading_and_the_target_relative_to_it_and_writes_the_edit(photo, models_dir, tmp_path, capsys):
    _, pixels = photo
    text, image = edit(models_dir, tmp_path, capsys, "--workflow", "edit", "--aus", "AU12@2 + AU4@-1")
    assert "AUs read off" in text and "fineface_exact_edit.json" in text
    table = printed_table(text)
    read = {au: row[0] for au, row in table.items()}
    assert sum(read.values()) > 1  # the random LibreFace model reads something off the face
    assert table["AU12"][1] == pytest.approx(read["AU12"] + 2, abs=0.011)
    assert table["AU4"][1] == pytest.approx(read["AU4"] - 1, abs=0.011)
    assert all(table[au][1] == read[au] for au in AU_ORDER if au not in ("AU4", "AU12"))
    assert "target: " in text and "step 4/4" in text  # steps 2..5 of 6, replayed
    assert image.shape == pixels.shape
    a, b = away_from_the_face(image, pixels)
    assert np.array_equal(a, b)  # Face Paste: nothing outside the face's square moved


@pytest.mark.slow
def test_headless_edit_without_a_change_renders_what_the_graph_renders(photo, models_dir, tmp_path, capsys, comfy,
                                                                      comfy_dirs, node_info):
    """--aus "": the target is the reading, and the runner writes what the shipped graph gives with that target, pixel
    for pixel -- which tests/test_exact_edit_workflows.py shows is the photo's VAE round trip (the same encoding
    decoded in one prompt). Then "AU12@0" is the same target bit for bit, and "AU12@1" a change."""
    import torch

    from tests.support import comfy_env

    Image.open(tmp_path / "photo.png").save(comfy_dirs / "input" / photo_name("edit"))
    prompt = prompt_with_round_trip("edit", node_info, [("FineFaceInvertPhoto", "steps", 6),
                                                        ("FineFaceInvertPhoto", "start_step", 2), ("Target AUs", "spec", "")])
    read_id = next(k for k, v in prompt.items() if v["class_type"] == "FineFaceAUFromImage")
    # LibreFace's model is built (random init, then its weights) on first use and kept: built here, before any run sets
    # the seed, so that every run draws the same VAE Encode sample (the test VAE's distribution is wide)
    evaluate(prompt, read_id, comfy.nodes.NODE_CLASS_MAPPINGS, {})
    for node in [k for k in prompt if k.startswith("rt_")]:
        del prompt[node]  # the shipped graph alone, as the runner sends it
    torch.manual_seed(0)
    text, image = edit(models_dir, tmp_path, capsys, "--workflow", "edit", "--aus", "")
    assert all(row[0] == row[1] for row in printed_table(text).values())  # the target is the reading
    torch.manual_seed(0)
    outputs = comfy_env.run_prompt(prompt)
    (path,) = next(v for k, v in outputs.items() if prompt[k]["class_type"] == "SaveImage")
    assert np.array_equal(image, np.asarray(Image.open(path).convert("RGB")).astype(int))
    torch.manual_seed(0)
    _, plus_zero = edit(models_dir, tmp_path, capsys, "--aus", "AU12@0", out="zero.png")
    torch.manual_seed(0)
    _, plus_one = edit(models_dir, tmp_path, capsys, "--aus", "AU12@1", out="one.png")
    assert np.array_equal(plus_zero, image) and not np.array_equal(plus_one, image)


@pytest.mark.slow
def test_headless_neutral_targets_zeros_whatever_the_photo_shows(photo, models_dir, tmp_path, capsys):
    text, neutral = edit(models_dir, tmp_path, capsys, "--neutral", out="neutral.png")
    assert "fineface_neutralize.json" in text
    table = printed_table(text)
    assert sum(row[0] for row in table.values()) > 1 and all(row[1] == 0 for row in table.values())
    _, same = edit(models_dir, tmp_path, capsys, "--aus", "", out="same.png")  # --image alone: the edit
    inside = (slice(100, 356), slice(380, 636))
    assert np.abs(neutral[inside] - same[inside]).mean() > 1  # zeros are a change of this face
    a, b = away_from_the_face(neutral, photo[1])
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_headless_edit_sweep_is_one_inversion_in_a_grid(photo, models_dir, tmp_path, capsys):
    text, grid = edit(models_dir, tmp_path, capsys, "--sweep", "AU12", "--from", "0", "--to", "4", "--cells", "3",
                      out="sweep.png")
    assert "fineface_edit_sweep.json" in text and "targets (3, one inversion)" in text
    assert text.count("Invert Photo") == 1 or text.count("FineFaceInvertPhoto") == 1
    assert grid.shape[1] == 3 * CROP + 4 * 4 and grid.shape[0] > CROP + 8


def test_headless_exact_edit_options_are_checked_before_anything_renders(comfy, tmp_path, capsys):
    png = tmp_path / "photo.png"
    Image.new("RGB", (64, 64)).save(png)
    cases = [
        (["--image", str(png), "--neutral", "--aus", "AU12@2"], "either --neutral"),
        (["--workflow", "basic", "--neutral"], "--neutral renders the neutralize workflow"),
        (["--workflow", "edit", "--image", str(png), "--denoise", "0.5"], "--start-step (lower = stronger)"),
        (["--workflow", "edit", "--image", str(png), "--sampler", "euler"], "--sampler does not apply to the edit"),
        (["--workflow", "edit", "--image", str(png), "--width", "512"], "--width / --height do not apply to the edit"),
        (["--workflow", "neutralize", "--image", str(png), "--aus", "AU12@2"], "sets every AU to 0"),
        (["--workflow", "edit_sweep", "--image", str(png), "--aus", "AU12@2"], "sweeps one AU"),
        (["--image", str(png), "--start-step", "6", "--steps", "6"], "must be below --steps (6)"),
        (["--image", str(png), "--start-step", "-1"], "--start-step -1"),
        (["--prompt", "a face", "--start-step", "3"], "--start-step belongs to the edit, neutralize and edit_sweep"),
        (["--workflow", "edit", "--image", str(png), "--aus-from", str(png)], "reads the photo's own AUs off --image"),
        (["--workflow", "edit"], "the edit workflow needs --image"),
    ]
    for args, expected in cases:
        assert headless.main(["--comfyui", comfy_path(), *args]) == 2, args
        err = capsys.readouterr().err
        assert expected in err, (args, err)
    # redraw-only options choose the img2img workflow, --image alone the exact edit
    parse = headless.build_parser().parse_args
    assert headless.choose_workflow(parse(["--image", "x.png"])) == "edit"
    assert headless.choose_workflow(parse(["--image", "x.png", "--denoise", "0.5"])) == "redraw"
    assert headless.choose_workflow(parse(["--image", "x.png", "--aus-from", "y.png"])) == "redraw"
    assert headless.choose_workflow(parse(["--image", "x.png", "--sweep", "AU12"])) == "edit_sweep"
    assert headless.choose_workflow(parse(["--workflow", "edit", "--neutral"])) == "neutralize"


def test_headless_edit_of_a_photo_without_a_face_stops_before_rendering(comfy, models_dir, tmp_path, capsys):
    from tests.support.libreface_files import write_libreface_checkpoint

    write_libreface_checkpoint(str(models_dir / "libreface" / "resnet.pt"), seed=4)
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--image", str(tmp_path / "wall.png"), "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "no face" in err and "nothing was rendered" in err
    assert not (tmp_path / "x.png").exists() and not list((tmp_path / "output").rglob("*.png"))
