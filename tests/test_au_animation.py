"""The AU animation workflows: keyframes -> frames from one noise -> an animated WEBP and PNG frames, through
ComfyUI's executor; the AnimateDiff workflow checked against ComfyUI-AnimateDiff-Evolved's declarations; the
headless command (--keyframes).

Graph runs (marked slow) use the small SD 2.1-architecture checkpoint and FineFace weights of the
``models_dir`` fixture (tests/conftest.py) and change only resolution, steps and the frame count in the shipped file.
"""
import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.support import animatediff_nodes, comfy_env
from tests.support.shipped_runs import comfy_path
from tests.support.shipped_workflows import load_shipped
from workflows import keyframes_cli, workflow_path
from workflows.api_format import workflow_to_prompt
from workflows.overrides import input_value, set_input

ANIMATION, ANIMATEDIFF = "fineface_au_animation.json", "fineface_animatediff.json"
README = os.path.join(os.path.dirname(workflow_path("basic")), "README.md")
SIZE, STEPS = 64, 3


def load(name):
    with open(workflow_path(name), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def ad_info(node_info, node_outputs):
    """INPUT_TYPES / RETURN_TYPES of core ComfyUI + this pack + IPAdapter_plus + AnimateDiff-Evolved (parsed)."""
    return node_info, node_outputs


def test_the_animation_workflow_keeps_the_grid_workflows_loaders_and_frames_share_one_noise(node_info):
    wf, grid = load(ANIMATION), load_shipped("grid")
    loaders = ("CheckpointLoaderSimple", "FineFaceReleaseLoader", "CLIPTextEncode", "EmptyLatentImage")
    assert [n for n in wf["nodes"] if n["type"] in loaders] == [n for n in grid["nodes"] if n["type"] in loaders]
    prompt = workflow_to_prompt(wf, node_info)
    by_type = {v["class_type"]: (k, v["inputs"]) for k, v in prompt.items()}
    keys_id, _ = by_type["FineFaceAUKeyframes"]
    assert by_type["FineFaceAUBatchLatent"][1]["aus"] == [keys_id, 0] and by_type["FineFaceAUEncoder"][1]["aus"] == [keys_id, 0]
    assert by_type["KSampler"][1]["latent_image"][0] == by_type["FineFaceAUBatchLatent"][0]
    assert "ancestral" not in by_type["KSampler"][1]["sampler_name"] and by_type["KSampler"][1]["cfg"] == 7.5
    assert {"SaveAnimatedWEBP", "SaveImage"} <= set(by_type)
    # the shipped keyframes make an animation of the shipped length
    cls = comfy_env.pack_module("nodes.au_keyframes").FineFaceAUKeyframes
    aus, _ = cls().build(**by_type["FineFaceAUKeyframes"][1])["result"]
    assert len(aus) == 16


def test_the_animatediff_workflow_uses_animatediff_evolved_as_declared(ad_info):
    info, _ = ad_info
    prompt = workflow_to_prompt(load(ANIMATEDIFF), info)
    ids = {v["class_type"]: k for k, v in prompt.items()}
    inputs = {v["class_type"]: v["inputs"] for v in prompt.values()}
    loader = inputs["ADE_AnimateDiffLoaderGen1"]
    assert loader["model_name"] == "mm_sd_v15_v2.ckpt" and loader["beta_schedule"] == "autoselect"
    assert loader["context_options"] == [ids["ADE_StandardUniformContextOptions"], 0]
    context = inputs["ADE_StandardUniformContextOptions"]
    assert (context["context_length"], context["context_overlap"], context["fuse_method"]) == (16, 4, "pyramid")
    assert (inputs["FineFaceReleaseLoader"]["au_encoder"], inputs["FineFaceReleaseLoader"]["lora"]) == ("sd15_au_encoder.ckpt", "none")
    assert inputs["CheckpointLoaderSimple"]["ckpt_name"] == "Realistic_Vision_V4.0_noVAE.safetensors"
    # KSampler <- Apply FineFace <- AnimateDiff Loader <- checkpoint (start/end follow the motion model's schedule)
    assert inputs["KSampler"]["model"][0] == ids["FineFaceApplyAdapter"]
    assert inputs["FineFaceApplyAdapter"]["model"][0] == ids["ADE_AnimateDiffLoaderGen1"]
    assert loader["model"][0] == ids["CheckpointLoaderSimple"]
    # more frames than one context: the windows slide, each with its own frames' AUs
    assert inputs["FineFaceAUKeyframes"]["frames"] > context["context_length"]


@pytest.mark.skipif(animatediff_nodes.source_path() is None, reason="set ANIMATEDIFF_EVOLVED_PATH to a ComfyUI-AnimateDiff-Evolved checkout")
def test_animatediff_snapshot_matches_the_source():
    """tests/data/animatediff_nodes.json (used where the source is absent) is what the source declares."""
    with open(animatediff_nodes.SNAPSHOT, encoding="utf-8") as f:
        saved = json.load(f)
    fresh = animatediff_nodes.snapshot(animatediff_nodes.source_path())
    assert saved["nodes"] == json.loads(json.dumps(fresh["nodes"], ensure_ascii=False)), \
        "regenerate: python -m tests.support.animatediff_nodes <folder> > tests/data/animatediff_nodes.json"


def test_the_readme_lists_the_animation_workflows_and_the_motion_model():
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    for text in (ANIMATION, ANIMATEDIFF, "mm_sd_v15_v2.ckpt", "guoyww/animatediff", "animatediff_models", "--keyframes"):
        assert text in readme, text


# -- a run through ComfyUI's executor --------------------------------------------------------------

def frames_of(outputs, prompt, class_type):
    ids = [k for k, v in prompt.items() if v["class_type"] == class_type]
    assert len(ids) == 1
    return outputs.get(ids[0], [])


@pytest.mark.slow
def test_the_animation_renders_one_frame_per_vector_from_one_noise(comfy_dirs, node_info):
    """Hold easing over 6 frames alternating two expressions: frames with the same AU vector are the same image,
    frames with different ones differ, and the WEBP holds the 6 frames (no two neighbours alike, so its encoder
    merges none)."""
    prompt = workflow_to_prompt(load(ANIMATION), node_info)
    a, b = "happiness@4", "AU1@4 + AU2@4 + AU4@4 + AU26@5"
    keys = "\n".join(f"{f}: {a if f % 2 == 0 else b}" for f in range(6))
    for node_name, field, value in [("EmptyLatentImage", "width", SIZE), ("EmptyLatentImage", "height", SIZE),
                                    ("KSampler", "steps", STEPS), ("Keyframes", "frames", 6), ("Keyframes", "easing", "hold"),
                                    ("Keyframes", "keyframes", keys), ("Animation", "lossless", True)]:  # to compare pixels
        set_input(prompt, node_name, field, value)
    outputs = comfy_env.run_prompt(prompt)
    frames = [np.asarray(Image.open(p).convert("RGB")).astype(int) for p in frames_of(outputs, prompt, "SaveImage")]
    assert len(frames) == 6 and all(f.shape == (SIZE, SIZE, 3) for f in frames)
    for i, j in ((0, 2), (2, 4), (1, 3), (3, 5)):
        assert np.abs(frames[i] - frames[j]).max() <= 1, (i, j)
    for i in range(5):
        assert np.abs(frames[i] - frames[i + 1]).mean() > 0.5, i
    assert frames[0].std() > 1
    (webp,) = frames_of(outputs, prompt, "SaveAnimatedWEBP")
    with Image.open(webp) as im:
        assert im.format == "WEBP" and im.n_frames == 6 and im.size == (SIZE, SIZE)
        for i in range(6):
            im.seek(i)
            assert np.abs(np.asarray(im.convert("RGB")).astype(int) - frames[i]).max() <= 1, i
            assert im.info.get("duration") == round(1000 / input_value(prompt, "Animation", "fps"))


# -- the headless command ----------------------------------------------------------------------------

def headless(models_dir, tmp_path, *extra):
    from workflows import run

    return run.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                               "--prompt", "a close-up photo of a woman", "--width", "64", "--height", "64", "--steps", "2", *extra])


@pytest.mark.slow
def test_headless_keyframes_write_an_animated_webp(comfy, models_dir, tmp_path, capsys):
    out = tmp_path / "smile.webp"
    rc = headless(models_dir, tmp_path, "--keyframes", "0: neutral; 4: happiness@4", "--frames", "4", "--fps", "4", "--out", str(out))
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    with Image.open(out) as im:
        im.seek(3)
        im.load()
        assert im.n_frames == 4 and im.size == (64, 64) and im.info.get("duration") == 250
    assert len(list((tmp_path / "output").rglob("*.png"))) == 4  # the frames
    assert "step 2/2" in printed.out


@pytest.mark.parametrize("extra, message", [
    (["--keyframes", "0: neutral; 20: happiness", "--frames", "16"], "line 1 .*frame 20 is past the end"),
    (["--keyframes", "0: neutral; 4: smirk"], "smirk"),
    (["--keyframes", "0: neutral", "--aus", "happiness"], "--aus belong"),
    (["--keyframes", "0: neutral", "--out", "x.png"], r"--out x\.png: must be a \.webp"),
    (["--frames", "8"], "give --keyframes"),
])
def test_headless_keyframes_usage_errors_render_nothing(comfy, models_dir, tmp_path, capsys, extra, message):
    import re

    assert headless(models_dir, tmp_path, *extra) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "output").exists()


def test_headless_keyframes_report_missing_weights(comfy, tmp_path, capsys):
    empty = tmp_path / "models"
    os.makedirs(empty)
    assert headless(empty, tmp_path, "--keyframes", "0: neutral; 16: happiness@4", "--out", str(tmp_path / "x.webp")) == 2
    err = capsys.readouterr().err
    assert "v2-1_512-ema-pruned.safetensors" in err and "au_encoder.ckpt" in err
    assert not (tmp_path / "x.webp").exists()


def test_keyframes_choose_the_animation_workflow():
    """--keyframes picks the animation (its bad options are among tests/test_run_checks.py's, refused before ComfyUI
    is imported)."""
    from workflows import run

    args = run.build_parser().parse_args(["--keyframes", "0: neutral; 16: happiness@4", "--frames", "16", "--out", "smile.webp"])
    assert run.choose_workflow(args) == keyframes_cli.NAME
    assert run.choose_workflow(run.build_parser().parse_args(["--aus", "happiness"])) == "basic"
