"""The headless command (``python -m workflows.run``, workflows/run.py): renders with the shipped workflows on the
small models of the ``models_dir`` fixture (tests/conftest.py), and reports missing weights and bad options without
rendering anything. Its option checks before ComfyUI is imported are tests/test_run_checks.py's."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from workflows import run as headless

from tests.support.shipped_runs import TEST_STEPS, comfy_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_headless_command_renders_with_the_shipped_workflow(comfy, models_dir, tmp_path, capsys):
    out = tmp_path / "out.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a woman in a park", "--aus", "AU6@3 + AU12@4",
                        "--seed", "42", "--steps", str(TEST_STEPS), "--width", "64", "--height", "48", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert np.asarray(Image.open(out)).shape[:2] == (48, 64)
    assert "step 3/3" in printed.out  # the executor's progress, printed
    saved = list((tmp_path / "output").rglob("*.png"))
    assert len(saved) == 1
    meta = Image.open(saved[0]).info
    assert "workflow" in meta and "AU6@3 + AU12@4" in meta["workflow"]  # the PNG carries the graph that made it


@pytest.mark.slow
def test_headless_face_crop_redraws_one_face_of_a_photo(comfy, models_dir, tmp_path, capsys):
    from tests.support.libreface_files import skimage_photo

    photo = np.full((300, 420, 3), 120, np.uint8)
    photo[20:276, 150:406] = skimage_photo("astronaut.png")[:256, 96:352]
    Image.fromarray(photo).save(tmp_path / "photo.png")
    out = tmp_path / "face.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--workflow", "face_crop", "--image", str(tmp_path / "photo.png"), "--face", "0",
                        "--aus", "happiness", "--denoise", "0.5", "--steps", "2", "--crop-size", "64", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == photo.shape  # the photo keeps its size
    changed = np.abs(image.astype(int) - photo.astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.any() and xs.min() >= 150 and ys.max() < 276  # only the face's square changed
    assert "Face Crop" in printed.out or "FineFaceFaceCrop" in printed.out


@pytest.mark.slow
def test_headless_sweep(comfy, models_dir, tmp_path, capsys):
    out = tmp_path / "sweep.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a man", "--sweep", "AU4", "--from", "0", "--to", "4",
                        "--cells", "3", "--steps", "2", "--width", "64", "--height", "64",
                        "--fineface", "[official SD 2.1]", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    grid = np.asarray(Image.open(out))
    assert grid.shape[1] == 3 * 64 + 4 * 4 and grid.shape[0] > 64 + 8


@pytest.mark.slow
def test_headless_expression_grid(comfy, models_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a woman", "--aus", "neutral; happiness; AU4@4 + AU15@3",
                        "--steps", "2", "--width", "64", "--height", "64", "--fineface", "fineface_sd21.safetensors",
                        "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "fineface_expression_grid.json" in printed.out  # several expressions choose the grid
    grid = np.asarray(Image.open(out))
    assert grid.shape[1] == 3 * 64 + 4 * 4 and grid.shape[0] > 64 + 8


def test_headless_command_reports_missing_weights_and_renders_nothing(comfy, tmp_path, capsys):
    empty = tmp_path / "models"
    os.makedirs(empty)
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(empty), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a face", "--aus", "happiness", "--out", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "v2-1_512-ema-pruned.safetensors" in err and "stabilityai/stable-diffusion-2-1-base" in err
    assert os.path.join(str(empty), "checkpoints") in err
    for f in ("au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors"):
        assert f"https://huggingface.co/Tvaranka/fineface/resolve/main/{f}" in err
    assert os.path.join(str(empty), "fineface") in err and "--fineface fineface_sd21.safetensors" in err
    assert not (tmp_path / "out.png").exists()
    assert not (tmp_path / "output").exists() or not list((tmp_path / "output").rglob("*.png"))


def test_headless_command_reports_only_what_is_missing(comfy, models_dir, tmp_path, capsys):
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "o"),
                        "--prompt", "a face", "--fineface", "fineface_sd15.safetensors"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "v2-1_512" not in err  # the checkpoint is there
    assert "sd15_au_encoder.ckpt" in err and "sd15_attn_processors.ckpt" in err
    assert "fineface_sd21.safetensors" in err  # what the loader does list


def test_headless_command_usage_errors(comfy, tmp_path, capsys, monkeypatch):
    assert headless.main(["--comfyui", str(tmp_path), "--prompt", "x"]) == 2
    assert "not a ComfyUI folder" in capsys.readouterr().err
    if os.path.basename(os.path.dirname(ROOT)) != "custom_nodes":  # else ../.. is the ComfyUI to use
        monkeypatch.delenv("COMFYUI_PATH", raising=False)
        assert headless.main(["--prompt", "x"]) == 2
        assert "no ComfyUI found" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--aus", "AU7@3"]) == 2
    assert "AU7" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--workflow", "edit"]) == 2
    assert "--image" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--sweep", "AU12", "--aus", "happiness"]) == 2
    assert "sweep" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--workflow", "basic", "--aus", "happiness; sadness"]) == 2
    assert "grid workflow" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--aus", "happiness; AU7@2"]) == 2
    assert "AU7" in capsys.readouterr().err
    opaque = tmp_path / "opaque.png"
    Image.new("RGB", (16, 16)).save(opaque)
    assert headless.main(["--comfyui", comfy_path(), "--image", str(opaque), "--mask-from-alpha"]) == 2
    assert "transparent" in capsys.readouterr().err


@pytest.mark.slow
def test_headless_command_as_a_process(comfy, tmp_path):
    """`python -m workflows.run` itself: ComfyUI from $COMFYUI_PATH, exit status 2 and nothing written."""
    env = dict(os.environ, COMFYUI_PATH=comfy_path())
    os.makedirs(tmp_path / "m")  # an empty models folder
    proc = subprocess.run([sys.executable, "-m", "workflows.run", "--cpu", "--models-dir", str(tmp_path / "m"),
                           "--output-dir", str(tmp_path / "o"), "--prompt", "a face", "--out", str(tmp_path / "x.png")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Missing model files" in proc.stderr and "v2-1_512-ema-pruned.safetensors" in proc.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_headless_copies_the_expression_of_a_photo(comfy, models_dir, tmp_path, capsys):
    from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint

    write_libreface_checkpoint(str(models_dir / "libreface" / "resnet.pt"), seed=4)
    photo = tmp_path / "photo.png"
    Image.fromarray(skimage_photo("astronaut.png")).save(photo)
    out = tmp_path / "copied.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a man", "--aus-from", str(photo), "--steps", "2",
                        "--width", "64", "--height", "64", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "AU12  Lip Corner Puller" in printed.out and 'as --aus "' in printed.out
    assert np.asarray(Image.open(out)).shape[:2] == (64, 64)
