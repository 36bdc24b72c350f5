"""``accelerate launch -m fineface_core.evaluate``: two processes on this CPU (gloo) give the same records, table
and plots as one, for the generation and the edit protocols, and a folder begun with two processes is finished
by one (and the other way) with the same result. Tiny diffusers model, random-weight LibreFace, tiny CLIP."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fineface_core.evaluation.cli import main
from fineface_core.evaluation.processes import Processes
from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint
from tests.support.official_files import write_official_release
from tests.support.tiny_clip import write_tiny_clip
from tests.support.tiny_sd import write_tiny_sd
from tests.support.tiny_unets import tiny_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The one-process run is in this process and the launched ones run one thread each: float sums on one thread in
# both, or the records differ in the last bits (CI's pytest has two threads)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_batches_do_not_depend_on_the_number_of_processes():
    items = list(range(11))
    one = Processes().batches(items, 3)
    assert one == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]
    two = [Processes(k, 2).batches(items, 3) for k in range(2)]
    assert two == [[[0, 1, 2], [6, 7, 8]], [[3, 4, 5], [9, 10]]]
    three = [b for k in range(3) for b in Processes(k, 3).batches(items, 3)]
    assert sorted(three) == one  # every batch once, whole
    assert sorted(x for k in range(4) for x in Processes(k, 4).share(items)) == items


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("proc_models")
    photos = root / "photos"
    os.makedirs(photos)
    astronaut = skimage_photo("astronaut.png")
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    Image.fromarray(astronaut[:, ::-1].copy()).save(photos / "mirrored.png")
    prompts = root / "prompts.txt"
    prompts.write_text("a girl in a park\nan old man\n")
    return {"base": write_tiny_sd(str(root / "sd"), "sd21", seed=0),
            "release": write_official_release(str(root / "release"), tiny_unet("sd21", seed=0), "sd21", seed=3),
            "estimator": write_libreface_checkpoint(str(root / "resnet.pt")), "clip": write_tiny_clip(str(root / "clip")),
            "photos": str(photos), "prompts": str(prompts)}


def generation_args(models, out):
    return ["--weights", f"ours={models['release']}", "--estimator", models["estimator"], "--out", str(out),
            "--base-model", models["base"], "--clip", models["clip"], "--prompts", models["prompts"],
            "--aus", "AU12,AU4", "--intensities", "2,4", "--combinations", "1", "--combination-size", "2", "2", "--size", "64", "--steps", "1",
            "--batch-size", "3", "--no-face", "whole image", "--quiet"]


def edit_args(models, out):
    return ["--protocol", "edit", "--photos", models["photos"], "--weights", f"ours={models['release']}",
            "--estimator", models["estimator"], "--out", str(out), "--base-model", models["base"], "--aus", "AU12",
            "--intensities", "2", "--deltas", "1", "--size", "64", "--steps", "2", "--start-step", "0",
            "--no-face", "whole image", "--batch-size", "2", "--quiet"]


def run(args, processes: int, capsys):
    """The command: in this process (one), or under accelerate launch with ``processes`` CPU processes (gloo)."""
    if processes == 1:
        capsys.readouterr()
        assert main(args) == 0, capsys.readouterr().err
        return capsys.readouterr().out
    # --multi_gpu is accelerate's name for "several processes"; without a GPU they join over gloo
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--main_process_port", "0", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "fineface_core.evaluate", *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("by this process") == processes  # each did its share
    return done.stdout


def outputs(out) -> dict:
    """Every file the run wrote but settings.json, by path: bytes (images, records, CSV, table, plots)."""
    files = {}
    for folder, _, names in os.walk(out):
        for name in names:
            path = os.path.join(folder, name)
            if name != "settings.json":
                with open(path, "rb") as f:
                    files[os.path.relpath(path, out)] = f.read()
    return files


def _forget_half(out):
    """What a run killed part way leaves: some images and records (the later half of each folder) gone."""
    for sub in ("images", "records"):
        for folder, _, names in os.walk(os.path.join(out, sub)):
            for name in sorted(names)[len(names) // 2:]:
                if name != "source.json":
                    os.remove(os.path.join(folder, name))
    for name in ("results.csv", "summary.md"):
        os.remove(os.path.join(out, name))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["generation", "edit"])
def test_two_processes_make_what_one_makes_and_resume_across_counts(models, tmp_path, protocol, capsys):
    args = generation_args if protocol == "generation" else edit_args
    one, two = tmp_path / "one", tmp_path / "two"
    assert "| ours |" in run(args(models, one), 1, capsys)
    printed = run(args(models, two), 2, capsys)
    assert "| ours |" in printed and "measured by this process" in printed  # the main process' table, once
    assert printed.count("| ours |") == 1
    want = outputs(one)
    assert len([n for n in want if n.endswith(".png") and n.startswith("images")]) >= 8
    got = outputs(two)
    assert sorted(got) == sorted(want)
    assert [n for n in want if got[n] != want[n]] == []
    # begun with two processes, killed part way, finished by one; and the other way round
    _forget_half(two)
    run(args(models, two), 1, capsys)
    assert outputs(two) == want
    _forget_half(one)
    run(args(models, one), 2, capsys)
    assert outputs(one) == want
    csv = (one / "results.csv").read_text().splitlines()
    assert len(csv) > 1 and np.all([line.count(",") == csv[0].count(",") for line in csv])
