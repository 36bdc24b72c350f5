"""python -m training.data annotate: real photos (scikit-image's, matplotlib's) -> a dataset the trainer reads,
with the random-weight LibreFace file and a tiny random BLIP-2 built here; resuming, a grown folder, bad files and
the refusals. Several processes: tests/test_data_annotate_parallel.py."""
from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from fineface_core.aus import AU_ORDER
from training.data.cli import main as data_main
from training.data.generic import load_records

from tests.support.face_photos import grace_hopper, write_good_photos, write_hard_photos
from tests.support.libreface_files import write_libreface_checkpoint
from tests.support.tiny_captioner import write_tiny_blip2
from tests.support.training_runs import one_thread, train_args

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RESOLUTION = 64


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotate_models")
    return {"libreface": write_libreface_checkpoint(str(root / "resnet.pt")),
            "captioner": write_tiny_blip2(str(root / "blip2")),
            "says_no": write_tiny_blip2(str(root / "blip2_no"), answer="no")}


def annotate_args(photos, out, models, *extra) -> list[str]:
    return ["annotate", str(photos), "--out", str(out), "--libreface", models["libreface"], "--captioner",
            models["captioner"], "--resolution", str(RESOLUTION), "--batch-size", "4", "--shard-size", "3",
            "--max-new-tokens", "4", *map(str, extra)]


def run(argv, capsys) -> tuple[int, str, str]:
    with one_thread():
        code = data_main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(folder) -> list[dict]:
    with open(os.path.join(folder, "metadata.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    folder = tmp_path_factory.mktemp("collection") / "photos"
    write_good_photos(str(folder))
    return folder, write_hard_photos(str(folder))


@pytest.fixture(scope="module")
def annotated(collection, models, tmp_path_factory):
    folder, _ = collection
    out = tmp_path_factory.mktemp("annotated") / "dataset"
    with one_thread():
        code = data_main(annotate_args(folder, out, models, "--faces", "every"))
    assert code == 0
    return out


def test_records_have_12_aus_a_caption_and_an_image_at_the_trainers_resolution(annotated):
    records = rows(annotated)
    photos = [r["photo"] for r in records]
    assert photos == sorted(photos)  # the collection's order
    # hopper, astronaut, both in two.png, and the EXIF-rotated, CMYK and 16-bit copies: all read, upright
    for name in ("people/astronaut.png", "people/hopper.jpg", "odd/exif_rotated.jpg", "odd/cmyk.jpg", "odd/gray16.png"):
        assert name in photos, name
    assert photos.count("people/two.png") >= 2  # --faces every: both people
    for r in records:
        values = [r[c] for c in AU_ORDER]
        assert all(isinstance(v, float) and math.isfinite(v) and 0 <= v <= 5 for v in values), r
        assert isinstance(r["caption"], str) and r["caption"].strip()
        with Image.open(os.path.join(annotated, r["file"])) as im:
            assert im.size == (RESOLUTION, RESOLUTION) and im.mode == "RGB"
    assert any(v > 0 for r in records for v in (r[c] for c in AU_ORDER))
    # the trainer's own reader takes every row
    kept, report = load_records(str(annotated), verify_images="decode")
    assert len(kept) == len(records) and not report.problems


def test_report_counts_drops_and_bad_files_by_reason_with_examples(annotated, collection):
    _, hard = collection
    report = json.loads((annotated / "report.json").read_text())
    for rel, kind in hard.items():
        if kind in report["problems"]:
            assert rel in " ".join(report["examples"][kind]), (rel, report["examples"])
    assert report["problems"] == {"truncated_image": 1, "not_an_image": 1, "too_many_pixels": 1}
    assert report["dropped"]["no face found"] == 1 and "pets/chelsea.png" in report["examples"]["no face found"][0]
    notes = " ".join(report["notes"])
    for what in ("CMYK converted", "16-bit scaled", "EXIF orientation", "not photos by their name"):
        assert what in notes, what
    assert report["faces_kept"] == len(rows(annotated))
    text = (annotated / "report.txt").read_text()
    assert "1 image cut short (truncated) (e.g. odd/truncated.jpg" in text
    for name in ("au_histograms.png", "au_cooccurrence.png"):
        with Image.open(annotated / name) as im:
            assert im.format == "PNG" and min(im.size) > 300


def test_the_trainer_trains_on_the_output(annotated, tiny_sd, tmp_path):
    from training import train as trainer

    with one_thread():
        result = trainer.main(train_args(tiny_sd, annotated, tmp_path / "run", "--max_train_steps", 2))
    assert result["global_step"] == 2 and len(result["losses"]) == 2 and all(map(math.isfinite, result["losses"]))


def test_second_run_annotates_only_the_new_photos(annotated, collection, models, tmp_path, capsys):
    folder, _ = collection
    grown, out = tmp_path / "photos", tmp_path / "dataset"
    shutil.copytree(folder, grown)
    shutil.copytree(annotated, out)
    shards = {f: os.stat(out / "shards" / f).st_mtime_ns for f in os.listdir(out / "shards")}
    before = rows(out)
    # the same folder again: nothing to do, the dataset is the same
    code, _, err = run(annotate_args(grown, out, models, "--faces", "every"), capsys)
    assert code == 0 and "0 to do" in err and rows(out) == before
    Image.fromarray(np.ascontiguousarray(grace_hopper()[:, ::-1])).save(grown / "people" / "hopper_mirrored.png")
    code, _, err = run(annotate_args(grown, out, models, "--faces", "every"), capsys)
    assert code == 0 and "1 to do" in err
    after = rows(out)
    # the same faces, files and captions; the AU labels may move a little: the paper's corrections rescale each AU
    # by the dataset's range, which the new photo is now part of
    same = lambda records: [{k: v for k, v in r.items() if k not in AU_ORDER} for r in records]  # noqa: E731
    assert same([r for r in after if r["photo"] != "people/hopper_mirrored.png"]) == same(before)
    assert [r["photo"] for r in after].count("people/hopper_mirrored.png") == 1
    now = {f: os.stat(out / "shards" / f).st_mtime_ns for f in os.listdir(out / "shards")}
    assert {f: now[f] for f in shards} == shards and len(now) == len(shards) + 1  # old shards untouched, one new


def test_largest_face_and_too_small_faces(annotated, collection, models, tmp_path, capsys):
    folder = tmp_path / "two"
    os.makedirs(folder)
    shutil.copy(collection[0] / "people" / "two.png", folder / "two.png")
    shutil.copy(collection[0] / "people" / "astronaut.png", folder / "astronaut.png")
    out = tmp_path / "out"
    code, _, _ = run(annotate_args(folder, out, models, "--min-face", 300, "--captioner", "none"), capsys)
    assert code == 0
    (record,) = rows(out)  # the largest face of two.png; the astronaut's face (a square of 186 px) is too small
    assert record["photo"] == "two.png" and record["caption"] == "a closeup of a person"
    report = json.loads((out / "report.json").read_text())
    assert report["dropped"] == {"face too small": 1}
    assert "astronaut.png face 0: its square is 186 px, under --min-face 300" in report["examples"]["face too small"][0]
    every = [r for r in rows(annotated) if r["photo"] == "people/two.png"]  # --faces every of the same photo
    assert record["box"] == max((r["box"] for r in every), key=lambda b: b[2] * b[3])


def test_photo_check_drops_what_the_captioner_says_is_not_a_real_photo(collection, models, tmp_path, capsys):
    folder = tmp_path / "one"
    os.makedirs(folder)
    shutil.copy(collection[0] / "people" / "astronaut.png", folder / "astronaut.png")
    argv = annotate_args(folder, tmp_path / "out", models, "--photo-check", "--min-face", 64)
    argv[argv.index("--captioner") + 1] = models["says_no"]
    code, _, err = run(argv, capsys)
    assert code == 1 and "no usable face" in err and "1 filtered: not a real photo" in err and "answered 'no" in err


def test_bad_input_is_refused_with_what_to_do(collection, models, tmp_path, capsys):
    folder, _ = collection
    empty = tmp_path / "empty"
    os.makedirs(empty)
    code, _, err = run(annotate_args(empty, tmp_path / "o1", models), capsys)
    assert code == 1 and "no photos in" in err and "it is empty" in err
    texts = tmp_path / "texts"
    os.makedirs(texts)
    (texts / "a.txt").write_text("x")
    (texts / "b.json").write_text("{}")
    code, _, err = run(annotate_args(texts, tmp_path / "o2", models), capsys)
    assert code == 1 and "2 other file(s), e.g. a.txt, b.json" in err
    fakes = tmp_path / "fakes"
    os.makedirs(fakes)
    (fakes / "a.jpg").write_text("not a photo")
    code, _, err = run(annotate_args(fakes, tmp_path / "o3", models), capsys)
    assert code == 1 and "no usable face" in err and "1 not an image" in err
    cat = tmp_path / "cat"
    os.makedirs(cat)
    shutil.copy(folder / "pets" / "chelsea.png", cat / "chelsea.png")
    code, _, err = run(annotate_args(cat, tmp_path / "o4", models), capsys)
    assert code == 1 and "1 filtered: no face found (e.g. chelsea.png" in err
    # the output inside the photos folder
    code, _, err = run(annotate_args(cat, cat / "dataset", models), capsys)
    assert code == 1 and "lies inside the photos folder" in err and not (cat / "dataset").exists()
    # a device this machine lacks, half precision on the CPU: refused before anything is written
    if not torch.cuda.is_available():
        code, _, err = run(annotate_args(cat, tmp_path / "o5", models, "--device", "cuda"), capsys)
        assert code == 1 and "no GPU is visible" in err and not (tmp_path / "o5").exists()
    code, _, err = run(annotate_args(cat, tmp_path / "o6", models, "--device", "cpu", "--mixed-precision", "fp16"), capsys)
    assert code == 1 and "--mixed-precision fp16 is for a GPU" in err and not (tmp_path / "o6").exists()
    # a folder of something else
    other = tmp_path / "other"
    os.makedirs(other)
    (other / "mine.txt").write_text("keep")
    code, _, err = run(annotate_args(cat, other, models), capsys)
    assert code == 1 and "already holds files (mine.txt)" in err and os.listdir(other) == ["mine.txt"]


def test_a_dataset_made_with_other_settings_is_refused_naming_the_difference(annotated, collection, models, capsys):
    folder, _ = collection
    before = rows(annotated)
    code, _, err = run(annotate_args(folder, annotated, models, "--faces", "every", "--resolution", 128), capsys)
    assert code == 1 and "other settings" in err and "resolution: 64 in the dataset, 128 now" in err
    code, _, err = run(annotate_args(folder, annotated, models), capsys)  # --faces largest now
    assert code == 1 and "faces: 'every' in the dataset, 'largest' now" in err
    assert rows(annotated) == before


def test_captioners_that_could_run_code_are_refused(collection, models, tmp_path, capsys):
    folder, _ = collection
    pickled = tmp_path / "pickled"
    shutil.copytree(models["captioner"], pickled)
    os.remove(pickled / "model.safetensors")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x02")
    code, _, err = run(annotate_args(folder, tmp_path / "o1", models, "--captioner", pickled), capsys)
    assert code == 1 and "pytorch_model.bin, a pickle" in err and "refused" in err
    remote = tmp_path / "remote"
    shutil.copytree(models["captioner"], remote)
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageTextToText": "modeling_evil.EvilModel"}
    (remote / "config.json").write_text(json.dumps(config))
    code, _, err = run(annotate_args(folder, tmp_path / "o2", models, "--captioner", remote), capsys)
    assert code == 1 and "needs its own Python code" in err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_aus_are_read_as_au_from_image_reads_them(collection, models, tmp_path, capsys):
    """--no-corrections: LibreFace's own values, the same as AU From Image's (its "LibreFace raw" scale) for the
    same photo."""
    from fineface_core.faces.libreface import load_estimator
    from fineface_core.faces.photo_aus import read_expressions
    from tests.support.libreface_files import as_image_batch, skimage_photo

    folder = tmp_path / "one"
    os.makedirs(folder)
    shutil.copy(collection[0] / "people" / "astronaut.png", folder / "astronaut.png")
    code, _, _ = run(annotate_args(folder, tmp_path / "raw", models, "--min-face", 64, "--no-corrections",
                                   "--captioner", "none"), capsys)
    assert code == 0
    (record,) = rows(tmp_path / "raw")
    with one_thread():
        node = read_expressions(as_image_batch(skimage_photo("astronaut.png")).numpy(),
                                load_estimator(models["libreface"]), scale="LibreFace raw")
    got = torch.tensor([record[c] for c in AU_ORDER])
    assert torch.allclose(got, node.aus.values[0], atol=1e-5), (got, node.aus.values[0])
