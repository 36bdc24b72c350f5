"""The shipped exact-edit workflows (fineface_exact_edit, fineface_neutralize, fineface_edit_sweep) through ComfyUI's
executor on the small SD 2.1 checkpoint and FineFace weights of the ``models_dir`` fixture, a random LibreFace AU model
and a real photo (scikit-image's astronaut) set in a larger striped frame.

Each run also decodes the photo's own latent (the VAE round trip) in the same prompt, so the edit is compared with
the round trip of the same encoding: with no change the edit is that round trip pixel for pixel, and outside the
face's square every pixel is the photo's."""
import numpy as np
import pytest

from fineface_core.aus import AU_ORDER
from workflows.api_format import workflow_to_prompt
from workflows.exact_edit_cli import evaluate
from workflows.overrides import find_entry, input_value, set_input

from tests.support.exact_edit_runs import CROP, away_from_the_face as outside, framed_photo
from tests.support.exact_edit_runs import prompt_with_round_trip as prompt_of, run_with_round_trip as run
from tests.support.shipped_workflows import load_shipped, photo_name


@pytest.fixture
def photo_dirs(comfy_dirs, models_dir):
    return comfy_dirs, framed_photo(comfy_dirs / "input" / photo_name("edit"), models_dir)


def reading(prompt, comfy):
    """The AUs the graph's AU From Image reads off the photo, by the node itself."""
    read_id, _ = find_entry(prompt, "FineFaceAUFromImage")
    return evaluate(prompt, read_id, comfy.nodes.NODE_CLASS_MAPPINGS, {})[0].values[0]


@pytest.mark.slow
def test_exact_edit_gives_the_photo_back_with_no_change_and_changes_only_the_face_with_one(photo_dirs, node_info, comfy):
    _, photo = photo_dirs
    same, round_trip, _ = run(prompt_of("edit", node_info, [("Target AUs", "spec", "")]))
    assert same.shape == photo.shape
    assert np.array_equal(same, round_trip)  # the photo's reading as the target: its VAE round trip, bit for bit
    a, b = outside(same, photo)
    assert np.array_equal(a, b)
    assert np.abs(round_trip - photo).max(axis=2).astype(bool).any()  # the round trip is not the photo itself
    prompt = prompt_of("edit", node_info)
    assert input_value(prompt, "Target AUs", "spec") == "AU12@2"  # the shipped change, relative to the reading
    smile, round_trip, _ = run(prompt)
    a, b = outside(smile, photo)
    assert np.array_equal(a, b)
    assert np.abs(smile - round_trip).mean() > 0.05 and not np.array_equal(smile, round_trip)


@pytest.mark.slow
def test_neutralize_renders_every_au_at_zero_whatever_the_photo_shows(photo_dirs, node_info, comfy):
    """The neutral target has no base: its output is the exact edit whose change cancels the photo's reading
    (reading + (-reading) = 0 exactly in float32), and not the photo's round trip."""
    _, photo = photo_dirs
    prompt = prompt_of("neutralize", node_info)
    _, target = find_entry(prompt, "Neutral target")
    assert "base" not in target["inputs"] and target["inputs"]["spec"] == "neutral"
    read = reading(prompt, comfy)
    assert read.abs().sum() > 1  # the random LibreFace model reads something: neutral is a change
    neutral, round_trip, _ = run(prompt)
    cancel = " + ".join(f"{au}@{-float(v)!r}" for au, v in zip(AU_ORDER, read.tolist()) if v)
    cancelled, _, _ = run(prompt_of("edit", node_info, [("Target AUs", "spec", cancel)]))
    assert np.array_equal(neutral, cancelled)
    assert not np.array_equal(neutral, round_trip)
    a, b = outside(neutral, photo)
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_edit_sweep_is_one_inversion_over_a_row_of_intensities_in_a_labelled_grid(photo_dirs, node_info, comfy):
    """The sweep starts at the AU12 the photo shows: its first cell is the photo's round trip, the others move."""
    prompt = prompt_of("edit_sweep", node_info)
    au12 = float(reading(prompt, comfy)[AU_ORDER.index("AU12")])
    for field, value in (("start", au12), ("end", au12 + 4.0), ("cells", 3)):
        set_input(prompt, "FineFaceAUSweep", field, value)
    grid, _, crop = run(prompt)
    size, pad = crop.shape[0], 4  # the crop's side; fineface_core.grid.labelled_grid's padding
    assert size == CROP and grid.shape[1] == 3 * size + 4 * pad and grid.shape[0] > size + 2 * pad + 10
    cells = [grid[pad:pad + size, pad + i * (size + pad):pad + i * (size + pad) + size] for i in range(3)]
    # the photo's own AUs: the round trip of its square, up to the rounding of a batch of 3 against one image
    # (the random test UNet amplifies it, tests/support/exact_edit.make_unit_scale); the other cells move
    diffs = [float(np.abs(cell - crop).mean()) for cell in cells]
    peaks = [int(np.abs(cell - crop).max()) for cell in cells]
    assert peaks[0] <= 1, (diffs, peaks)  # measured: mean 0.44, max 1; the other cells 65 and 72, max 255
    assert min(diffs[1:]) > 20 * diffs[0] and not np.array_equal(cells[2], cells[1]), (diffs, peaks)
    # one Invert Photo and one Regenerate Exact Edit for all the cells
    assert [v["class_type"] for v in prompt.values()].count("FineFaceInvertPhoto") == 1
    regen = next(v for v in prompt.values() if v["class_type"] == "FineFaceRegenerateEdit")
    assert prompt[regen["inputs"]["latent_image"][0]]["class_type"] == "FineFaceAUSweep"


def test_the_edit_target_adds_to_the_reading_and_the_neutral_one_has_no_base(node_info):
    edit = workflow_to_prompt(load_shipped("edit"), node_info)
    _, target = find_entry(edit, "Target AUs")
    read_id, _ = find_entry(edit, "FineFaceAUFromImage")
    assert target["inputs"]["base"] == [read_id, 0]
    _, source = find_entry(edit, "AU Encoder (photo)")
    assert source["inputs"]["aus"] == [read_id, 0]  # the inversion's model is patched with the photo's reading
    invert_id, invert = find_entry(edit, "FineFaceInvertPhoto")
    _, regen = find_entry(edit, "FineFaceRegenerateEdit")
    assert regen["inputs"]["inversion"] == [invert_id, 0] and regen["inputs"]["cfg"] == invert["inputs"]["cfg"]
    assert regen["inputs"]["latent_image"] == invert["inputs"]["latent_image"]  # the same (masked) photo latent
    assert 0 < invert["inputs"]["start_step"] < invert["inputs"]["steps"]


def test_the_runners_options_land_on_the_inversion_and_the_regeneration(node_info):
    from workflows import run as headless

    args = headless.build_parser().parse_args(
        ["--image", "x.png", "--aus", "AU12@2", "--cfg", "5", "--steps", "30", "--start-step", "9", "--seed", "3",
         "--scheduler", "karras", "--face", "1", "--crop-size", "256", "--prompt", "a man"])
    prompt, wf = headless.apply_overrides(load_shipped("edit"), "edit", args, node_info, "x.png")
    invert = find_entry(prompt, "FineFaceInvertPhoto")[1]["inputs"]
    assert (invert["cfg"], invert["steps"], invert["start_step"], invert["seed"], invert["scheduler"]) == (5.0, 30, 9, 3, "karras")
    assert input_value(prompt, "FineFaceRegenerateEdit", "cfg") == 5.0  # the replay takes the inversion's cfg
    crop = find_entry(prompt, "FineFaceFaceCrop")[1]["inputs"]
    assert (crop["which_face"], crop["index"], crop["size"]) == ("by index", 1, 256)
    assert input_value(prompt, "Target AUs", "spec") == "AU12@2" and input_value(prompt, "LoadImage", "image") == "x.png"
    assert workflow_to_prompt(wf, node_info) == prompt  # the graph saved with the image says the same
    neutral, _ = headless.apply_overrides(load_shipped("neutralize"), "neutralize",
                                          headless.build_parser().parse_args(["--neutral", "--image", "x.png"]), node_info, "x.png")
    assert input_value(neutral, "Neutral target", "spec") == "neutral"
