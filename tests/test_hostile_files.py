"""Third hostile pass (issue 22), items 6-8, 11 and the prompts file of item 2: numbers a trained file cannot
hold, Face Paste inputs that pasted something else than asked, a merge into its own input, evaluation options
that failed only after the models loaded. Real files, real loaders and command lines."""
import json
import os
import resource
import subprocess
import sys
import textwrap
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
