"""Third hostile pass (issue 22), items 6-8, 11 and the prompts file of item 2: numbers a trained file cannot
hold, Face Paste inputs that pasted something else than asked, a merge into its own input, evaluation options
that failed only after the models loaded. Real files, real loaders and command lines."""
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fineface_core.errors import FineFaceError, WeightFileError
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- item 7: metadata numbers a trained file cannot hold ----------------------------------

@pytest.fixture(scope="module")
def single_file(tmp_path_factory):
    """(tensors, metadata) of a good FineFace file (a LoRA of rank 8), written by the real writer."""
    folder = tmp_path_factory.mktemp("weights")
    release = write_official_release(str(folder / "sd21"), tiny_unet("sd21"), "sd21", seed=3)
    path = str(folder / "good.safetensors")
    save_fineface(load_weights(release), path)
    with safe_open(path, "pt") as f:
        return load_file(path), dict(f.metadata())


@pytest.mark.parametrize("field,value,says", [
    ("lambda_au", "-1e300", "lambda_AU is -10 to 10"),
    ("lambda_au", "1e300", "lambda_AU is -10 to 10"),
    ("lambda_au", "50", "lambda_AU is -10 to 10"),
    ("lora_alpha", "1e-300", "alpha / rank of 1.25e-301 at rank 8"),
    ("lora_alpha", "1e300", "alpha / rank of 1.25e+299"),
])
def test_metadata_numbers_beyond_a_trained_file_are_refused_naming_the_field(single_file, tmp_path, field, value, says):
    tensors, meta = single_file
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={**meta, f"fineface.{field}": value})
    with pytest.raises(WeightFileError) as err:
        load_weights(str(path))
    message = str(err.value)
    assert str(path) in message and f"'fineface.{field}'" in message and says in message, message
    assert "metadata is damaged" in message


def test_metadata_numbers_a_trained_file_holds_still_load(single_file, tmp_path):
    tensors, meta = single_file
    for alpha, lam in (("8.0", "1.0"), ("32", "-3"), ("0.5", "10")):
        path = tmp_path / f"ok_{alpha}_{lam}.safetensors"
        save_file(tensors, str(path), metadata={**meta, "fineface.lora_alpha": alpha, "fineface.lambda_au": lam})
        weights = load_weights(str(path))
        assert weights.lora.alpha == float(alpha) and weights.lambda_au == float(lam)


# -- item 8: merge never writes into an input ---------------------------------------------

def dataset(folder, n: int, au12: float):
    from PIL import Image

    from training.data.generic import write_metadata

    os.makedirs(folder, exist_ok=True)
    rows = []
    for i in range(n):
        Image.new("RGB", (16, 16), (10 * i, 80, 120)).save(os.path.join(folder, f"img{i}.png"))
        rows.append({"file": f"img{i}.png", "caption": f"a face {i}", **{a: 0.0 for a in AU_COLUMNS}, "AU12": au12})
    write_metadata(str(folder), rows)
    return os.path.join(folder, "metadata.jsonl")


AU_COLUMNS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26")


def merge(capsys, *argv):
    from training.data import cli

    capsys.readouterr()
    rc = cli.main(["merge", *map(str, argv)])
    return rc, capsys.readouterr().err


def test_merge_into_one_of_its_inputs_is_refused_and_the_input_kept(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    meta_one, meta_two = dataset(one, 6, 2.0), dataset(two, 7, 3.0)
    before = open(meta_one, "rb").read(), open(meta_two, "rb").read()
    proc = subprocess.run([sys.executable, "-m", "training.data", "merge", str(one), str(one), str(two)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # the command
    assert proc.returncode != 0 and "is the input folder" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    os.symlink(one, tmp_path / "link_to_one")
    for out in (tmp_path / "link_to_one", str(two) + os.sep, one / "." / ".." / "two"):
        for extra in ((), ("--overwrite",)):  # --overwrite never onto an input
            rc, err = merge(capsys, out, one, two, *extra)
            assert rc != 0 and "is the input folder" in err, err
    assert (open(meta_one, "rb").read(), open(meta_two, "rb").read()) == before


def test_merge_over_another_dataset_needs_overwrite(tmp_path, capsys):
    one, two, other = tmp_path / "one", tmp_path / "two", tmp_path / "other"
    dataset(one, 2, 2.0), dataset(two, 3, 3.0)
    kept = dataset(other, 1, 1.0)
    before = open(kept, "rb").read()
    rc, err = merge(capsys, other, one, two)
    assert rc != 0 and "already holds metadata.jsonl" in err and "--overwrite" in err
    assert open(kept, "rb").read() == before
    assert merge(capsys, other, one, two, "--overwrite")[0] == 0
    assert sum(1 for _ in open(kept)) == 5
    assert merge(capsys, tmp_path / "new", one, two)[0] == 0


# -- item 11 and item 2: the evaluation's options and prompts file, before anything loads ---------------

def evaluate_command(tmp_path, *extra, timeout=300):
    """python -m fineface_core.evaluate with weights and estimator that do not exist: whatever is refused here
    is refused before any model is looked at. Memory is capped: a read without bound fails, not the machine."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    argv = [sys.executable, "-m", "fineface_core.evaluate", "--weights", str(tmp_path / "none.safetensors"),
            "--estimator", str(tmp_path / "none.pt"), "--out", str(tmp_path / "eval"), "--quiet", *extra]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, preexec_fn=cap)


def test_prompts_from_a_device_are_refused_after_one_megabyte(tmp_path):
    t0 = time.monotonic()
    proc = evaluate_command(tmp_path, "--prompts", "/dev/zero")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "prompts file /dev/zero is larger than 1 MB" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 120 and not (tmp_path / "eval").exists()


def test_prompts_file_parser_is_linear_on_long_adversarial_lines(tmp_path):
    from fineface_core.evaluation.protocol import MAX_PROMPTS_BYTES, read_prompts

    n = MAX_PROMPTS_BYTES - 16
    cases = {
        "spaces": "a" + " " * (n - 2) + "x",
        "hashes": "#" * (n // 2) + "\n" + "a face " * (n // 14),
        "blank lines": "\n" * (n - 7) + "a face",
        "carriage returns": "\r" * (n - 7) + "a face",
        "mixed": ("  # x\n\t\r\n" * (n // 10))[: n - 7] + "\na face",
        "one long prompt": "a face, " * (n // 8),
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        prompts = read_prompts(str(path))
        assert time.perf_counter() - t0 < 1.0, name  # linear: milliseconds; quadratic would take minutes
        assert prompts and all(p == p.strip() and not p.startswith("#") for p in prompts), name
    path = tmp_path / "just_over.txt"
    path.write_bytes(b"a face\n" * (MAX_PROMPTS_BYTES // 7 + 1))
    with pytest.raises(FineFaceError, match="larger than 1 MB"):
        read_prompts(str(path))
    path.write_bytes(b"a face\n\0\0\0\n")
    with pytest.raises(FineFaceError, match="NUL bytes"):
        read_prompts(str(path))


def test_evaluation_size_and_weights_name_are_checked_before_anything_loads(tmp_path, capsys):
    from fineface_core.evaluation.cli import main

    weights = str(tmp_path / "none.safetensors")
    for extra, says in ((["--size", "100000"], "--size 100000: give a multiple of 8 from 64 to 2048"),
                        (["--size", "4096"], "from 64 to 2048")):
        capsys.readouterr()
        assert main(["--weights", weights, "--estimator", "x.pt", "--out", str(tmp_path / "eval"), *extra]) == 2
        assert says in capsys.readouterr().err
    capsys.readouterr()
    assert main(["--weights", "w" * 300 + "=" + weights, "--estimator", "x.pt", "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert "is 300 characters long" in err and "at most 64" in err
    assert not (tmp_path / "eval").exists()


# -- item 6: Face Paste pastes what it was given, or says why not -------------------------

def cropped(n: int = 1):
    """A photo batch of ``n`` (the astronaut in a plain picture) and Face Crop's outputs for it."""
    from fineface_core.faces.crop import face_crops
    from tests.support.libreface_files import skimage_photo

    canvas = np.full((400, 600, 3), 0.3, np.float32)
    canvas[60:316, 200:456] = skimage_photo("astronaut.png")[:256, 96:352] / 255.0
    images = np.repeat(canvas[None], n, axis=0)
    crops, squares, _, _ = face_crops(images, "largest", 0, 1.0, 128)
    return images, crops, squares


def test_face_paste_refuses_what_would_paste_something_else(tmp_path):
    import dataclasses

    from fineface_core.faces.crop import paste_faces

    images, crops, squares = cropped(2)
    (q, _) = squares
    cases = [
        (crops[..., :1], "1 channel(s) (gray) but the images 3 (RGB)"),  # only the red channel was replaced
        (crops * 255.0, "an IMAGE holds 0..1 (they look scaled 0..255: divide them by 255)"),  # white square
    ]
    for bad, says in cases:
        with pytest.raises(FineFaceError, match=re_escape(says)):
            paste_faces(images, bad, squares)
    three = np.concatenate([images, images[:1]])
    with pytest.raises(FineFaceError, match="from 2 image\\(s\\), to paste into 3 images"):
        paste_faces(three, crops, squares)  # a larger batch than Face Crop cut
    for square in (dataclasses.replace(q, image=-1), dataclasses.replace(q, x=550),
                   dataclasses.replace(q, y=-5), dataclasses.replace(q, side=0), dataclasses.replace(q, x=1.5)):
        with pytest.raises(FineFaceError, match="does not lie in an image of the batch"):
            paste_faces(images[:1], crops[:1], (square,))
    for hand_made in ([{"x": 0}], "square", None):
        with pytest.raises(FineFaceError, match="not Face Crop's output"):
            paste_faces(images[:1], crops[:1], hand_made)


def test_face_paste_node_still_pastes_face_crops_own_output():
    import torch

    from tests.support import comfy_env

    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)  # the pack as ComfyUI loads it
    import nodes

    FineFaceFaceCrop, FineFaceFacePaste = (nodes.NODE_CLASS_MAPPINGS[k] for k in ("FineFaceFaceCrop", "FineFaceFacePaste"))
    images, _, _ = cropped(2)
    crop, face_crop, _, _ = FineFaceFaceCrop().crop(torch.from_numpy(images), "largest", 0, 1.0, 128)["result"]
    (pasted,) = FineFaceFacePaste().paste(torch.from_numpy(images), 1.0 - crop, face_crop, 0.0)
    q = face_crop[0]
    inside = pasted[0, q.y + 5:q.y + q.side - 5, q.x + 5:q.x + q.side - 5].numpy()
    original = images[0, q.y + 5:q.y + q.side - 5, q.x + 5:q.x + q.side - 5]
    assert np.abs(inside - (1.0 - original)).mean() < 0.05  # the inverted crop, in all three channels
    assert torch.equal(pasted[:, :q.y], torch.from_numpy(images)[:, :q.y])
    with pytest.raises(FineFaceError, match="to paste into 1 image"):
        FineFaceFacePaste().paste(torch.from_numpy(images[:1]), crop, face_crop, 0.1)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)
