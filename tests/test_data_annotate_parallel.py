"""python -m training.data annotate over several processes (accelerate launch, and torchrun, on this CPU, no GPU):
two processes make the dataset one process makes, byte for byte, and a run killed part way and resumed with
another number of processes too."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from training.data.cli import main as data_main

from tests.support.face_photos import write_good_photos
from tests.support.libreface_files import write_libreface_checkpoint
from tests.support.tiny_captioner import write_tiny_blip2
from tests.support.training_runs import one_thread, subprocess_env

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    photos = root / "photos"
    write_good_photos(str(photos))
    os.remove(photos / "people" / "two.png")  # the largest photo: detection in it is the slowest step here
    (photos / "people" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    models = {"libreface": write_libreface_checkpoint(str(root / "resnet.pt")),
              "captioner": write_tiny_blip2(str(root / "blip2"))}
    return root, photos, models


def argv(photos, out, models) -> list[str]:
    return ["annotate", str(photos), "--out", str(out), "--libreface", models["libreface"], "--captioner",
            models["captioner"], "--resolution", "64", "--faces", "every", "--batch-size", "2", "--shard-size", "1",
            "--max-new-tokens", "4"]


def launch(n: int, args: list[str], launcher: str = "accelerate", **env) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu`` (on this CPU it hands the processes to torchrun), or torchrun itself."""
    if launcher == "accelerate":
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
                   "29617", "-m", "training.data", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_port", "29618",
                   "-m", "training.data", *args]
    return subprocess.run(command, env=subprocess_env(**env), capture_output=True, text=True, timeout=600)


def dataset_files(folder) -> dict[str, str]:
    """relative path -> sha1 of the dataset's records, images, report and pictures (not its shards, whose
    number depends on how the run went)."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), folder)
            if not rel.startswith("shards"):
                with open(os.path.join(root, name), "rb") as f:
                    found[rel] = hashlib.sha1(f.read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def one_process(setup):
    root, photos, models = setup
    with one_thread():
        assert data_main(argv(photos, root / "one", models)) == 0
    return dataset_files(root / "one")


def test_two_processes_make_the_dataset_one_process_makes(setup, one_process):
    root, photos, models = setup
    result = launch(2, argv(photos, root / "two", models))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[process 1/2]" in result.stderr and "[process 2/2]" in result.stderr
    assert "merged:" in result.stderr
    assert "metadata.jsonl" in one_process and any(k.startswith("faces/") for k in one_process)
    assert dataset_files(root / "two") == one_process  # records, AU values, order, images, report, pictures
    # each process wrote its own blocks: 4 photos, one shard each
    assert len(os.listdir(root / "two" / "shards")) == 4


def test_killed_and_resumed_with_another_number_of_processes(setup, one_process, capsys):
    root, photos, models = setup
    out = root / "killed"
    result = launch(2, argv(photos, out, models), launcher="torchrun", FINEFACE_TEST_KILL_AFTER_SHARDS="1")
    assert result.returncode != 0
    written = os.listdir(out / "shards")
    assert 1 <= len(written) < 4 and not (out / "metadata.jsonl").exists()
    with one_thread():
        assert data_main(argv(photos, out, models)) == 0
    err = capsys.readouterr().err
    assert f"{len(written)} annotated before, {4 - len(written)} to do" in err
    assert dataset_files(out) == one_process


def test_the_blocks_left_after_whole_blocks_are_the_blocks_first_planned():
    """Why a resumed run (any number of processes) computes each face in the batch an uninterrupted run would."""
    import itertools

    from training.data.shards import plan_blocks

    photos = [f"p{i:02d}" for i in range(23)]
    blocks = plan_blocks(photos, 5)
    assert [len(b) for b in blocks] == [5, 5, 5, 5, 3]
    for k in range(len(blocks) + 1):
        for done in itertools.combinations(range(len(blocks)), k):
            finished = {p for i in done for p in blocks[i]}
            left = plan_blocks([p for p in photos if p not in finished], 5)
            assert left == [b for i, b in enumerate(blocks) if i not in done]
    # process i of N takes blocks i, i + N, ...: together every block once
    for n in (1, 2, 3, 7):
        dealt = [b for i in range(n) for b in blocks[i::n]]
        assert sorted(map(tuple, dealt)) == sorted(map(tuple, blocks))


def test_a_damaged_shard_is_named_and_its_photos_done_again(tmp_path):
    from training.data.shards import read_shards, write_shard

    write_shard(str(tmp_path), [{"key": "a|1|1", "rel": "a", "status": "no face found", "faces": [], "dropped": []}])
    good = write_shard(str(tmp_path), [{"key": "b|1|1", "rel": "b", "status": "no face found", "faces": [],
                                        "dropped": []}])
    (tmp_path / "shards" / "0000cut.json").write_text('{"format": 1, "photos": [{"key": "c|1')
    done, damaged = read_shards(str(tmp_path))
    assert set(done) == {"a|1|1", "b|1|1"} and damaged == ["0000cut.json"]
    with open(good, "w") as f:
        f.write("")
    done, damaged = read_shards(str(tmp_path))
    assert set(done) == {"a|1|1"} and sorted(damaged) == sorted(["0000cut.json", os.path.basename(good)])
