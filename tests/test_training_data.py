"""training/data: the generic format, DISFA and AffectNet preparation, the check command."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fineface_core.aus import AU_ORDER
from training.data.affectnet import AffectNetOptions, corrected, prepare_affectnet
from training.data.disfa import DisfaOptions, prepare_disfa
from training.data.generic import AUImageDataset, read_metadata, write_metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png(path, size=(40, 24), seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def row(file, **aus):
    return {"file": file, "caption": f"a face {file}", **{c: aus.get(c, 0.0) for c in AU_ORDER}}


@pytest.fixture
def messy(tmp_path):
    """A generic folder: 3 good rows and one of each problem."""
    for i in range(4):
        png(str(tmp_path / f"ok{i}.png"), seed=i)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rows = [row("ok0.png", AU12=4.0), row("ok1.png", AU1=1.5, AU2=2), row("ok2.png"),
            row("gone.png", AU4=1), row("ok3.png", AU6=7.5), row("broken.png", AU9=2)]
    write_metadata(str(tmp_path), rows)
    with open(tmp_path / "metadata.jsonl", "a") as f:
        f.write(json.dumps({"file": "ok0.png", "caption": "no AUs"}) + "\n")
        f.write(json.dumps(dict(row("ok1.png"), AU5="wide")) + "\n")
        f.write(json.dumps(dict(row("ok1.png"), AU5=float("nan"))).replace("NaN", "NaN") + "\n")
        f.write("[1, 2]\n")
    return tmp_path


def test_rows_with_problems_are_skipped_and_counted_by_kind(messy):
    records, report = read_metadata(str(messy))
    assert [os.path.basename(r.file) for r in records] == ["ok0.png", "ok1.png", "ok2.png", "broken.png"]
    assert records[1].aus[AU_ORDER.index("AU2")] == 2.0 and records[0].caption == "a face ok0.png"
    assert report.rows == 10 and report.kept == 4
    assert dict(report.problems) == {"missing_file": 1, "out_of_range": 1, "missing_value": 2, "not_a_number": 1,
                                     "not_finite": 1}
    summary = report.summary()
    assert "4 usable samples, 6 skipped" in summary and "gone.png" in summary and "AU6=7.5" in summary


def test_the_dataset_drops_undecodable_images_and_gives_training_tensors(messy):
    ds = AUImageDataset(str(messy), resolution=16)
    assert len(ds) == 3 and ds.report.problems["corrupt_image"] == 1 and ds.report.kept == 3
    item = ds[0]
    assert item["pixel_values"].shape == (3, 16, 16) and item["pixel_values"].dtype == torch.float32
    assert -1 <= item["pixel_values"].min() < item["pixel_values"].max() <= 1
    assert item["aus"].shape == (12,) and item["aus"][AU_ORDER.index("AU12")] == 4.0
    assert "broken.png" in ds.report.summary()


def test_a_csv_metadata_file_reads_like_jsonl(tmp_path):
    png(str(tmp_path / "a.png"))
    write_metadata(str(tmp_path), [row("a.png", AU26=3)], name="metadata.csv")
    records, report = read_metadata(str(tmp_path))
    assert len(records) == 1 and records[0].aus[-1] == 3.0 and report.kept == 1


def test_nothing_usable_is_an_error_that_says_why(tmp_path):
    write_metadata(str(tmp_path), [row("missing.png")])
    with pytest.raises(ValueError, match="no usable samples.*1 image file missing"):
        AUImageDataset(str(tmp_path), resolution=8)
    os.makedirs(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="metadata.jsonl"):
        read_metadata(str(tmp_path / "nowhere"))


# -- DISFA -------------------------------------------------------------------------------------------

def disfa_tree(root, subjects=("SN001", "SN002"), frames=20, seed=0):
    """Label files in DISFA's layout and the frames they point at; frames 1..4 of each subject neutral."""
    rng = np.random.default_rng(seed)
    labels, images = root / "labels", root / "frames"
    table = {}
    for s in subjects:
        os.makedirs(labels / s)
        values = rng.integers(0, 6, (frames, 12)) * (rng.random((frames, 12)) < 0.3)
        values[:4] = 0
        values[4:, 6] = np.maximum(values[4:, 6], 1)  # every other frame has AU12 active
        table[s] = values
        for i, code in enumerate(AU_ORDER):
            with open(labels / s / f"{s}_{code.lower()}.txt", "w") as f:
                f.writelines(f"{frame},{values[frame - 1, i]}\n" for frame in range(1, frames + 1))
        for frame in range(1, frames + 1):
            png(str(images / s / f"{frame - 1:05d}.jpg"), size=(8, 8), seed=frame)
    return labels, images, table


def test_disfa_keeps_active_frames_and_a_tenth_as_many_neutral_ones(tmp_path):
    labels, images, table = disfa_tree(tmp_path, frames=24)
    out = tmp_path / "out"
    report = prepare_disfa(str(labels), str(images), str(out))
    records, _ = read_metadata(str(out))
    active = sum(int((t.sum(1) > 0).sum()) for t in table.values())  # 2 x 20
    assert report.kept == len(records) == active + round(0.1 * active)
    assert report.problems["filtered"] == 8 - round(0.1 * active)
    # the labels land on the right frames: SN002 frame 10 is image 00009.jpg
    by_file = {os.path.relpath(r.file, str(images)): r for r in records}
    r = by_file[os.path.join("SN002", "00009.jpg")]
    assert r.aus == tuple(float(v) for v in table["SN002"][9])
    assert r.caption == DisfaOptions().caption


def test_disfa_options_neutral_count_offset_and_captions(tmp_path):
    labels, images, table = disfa_tree(tmp_path, subjects=("SN003",), frames=10)
    captions = tmp_path / "captions.csv"
    out = tmp_path / "out"
    rel = os.path.relpath(str(images / "SN003" / "00005.jpg"), str(out))
    with open(captions, "w", newline="") as f:
        csv.writer(f).writerows([["file", "caption"], [rel, "a woman smiling"]])
    report = prepare_disfa(str(labels), str(images), str(out), DisfaOptions(neutral_count=3), captions=str(captions))
    records, _ = read_metadata(str(out))
    neutral = [r for r in records if sum(r.aus) == 0]
    assert len(neutral) == 3 and report.kept == 6 + 3
    assert {r.caption for r in records if r.file.endswith("00005.jpg")} == {"a woman smiling"}
    # frame_offset 0: label frame N is image N, so frame 10 (image 00010.jpg) is missing and counted
    report = prepare_disfa(str(labels), str(images), str(tmp_path / "o2"), DisfaOptions(frame_offset=0))
    assert report.problems["missing_file"] == 1


def test_disfa_bad_labels_are_counted(tmp_path):
    labels, images, _ = disfa_tree(tmp_path, subjects=("SN001",), frames=8)
    path = labels / "SN001" / "SN001_au4.txt"
    lines = path.read_text().splitlines()
    lines[5] = "6,x"  # not a number: frame 6 has no AU4 then
    lines[6] = "7,9"  # out of DISFA's 0..5
    path.write_text("\n".join(lines) + "\n")
    report = prepare_disfa(str(labels), str(images), str(tmp_path / "out"))
    assert report.problems["not_a_number"] == 1 and report.problems["missing_value"] == 1
    assert report.problems["out_of_range"] == 1


# -- AffectNet ---------------------------------------------------------------------------------------

def affectnet_csv(root, rows):
    images = root / "images"
    cols = ["ImageName", "TextDescription", "IsPhoto", "IsReal", "ImageResolutionX", "ImageResolutionY"] + \
           [f"{c}_rec" for c in AU_ORDER]
    for r in rows:
        if not r.get("absent"):
            png(str(images / r["ImageName"]), size=(8, 8))
    path = root / "libreface.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path, images


def an_row(name, aus, photo=True, size=600, **extra):
    r = {"ImageName": name, "TextDescription": f"caption of {name}", "IsPhoto": photo, "IsReal": True,
         "ImageResolutionX": size, "ImageResolutionY": size}
    r.update({f"{c}_rec": aus.get(c, 0.0) for c in AU_ORDER})
    r.update(extra)
    return r


def test_affectnet_corrections_follow_the_documented_constants():
    o = AffectNetOptions()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.9, (50, 12))
    y = corrected(x, o)
    for code, gamma in (("AU1", 1.8), ("AU4", 1.8), ("AU15", 0.8), ("AU17", 0.8), ("AU20", 0.8), ("AU12", None)):
        col = x[:, AU_ORDER.index(code)]
        if gamma is None:
            want = 5 * col
        else:
            p = col ** gamma
            want = 5 * (p - p.min()) / (p.max() - p.min()) * col.max()
        want = np.where(want < 1.0, 0.0, want)
        np.testing.assert_allclose(y[:, AU_ORDER.index(code)], want, rtol=1e-12)
    assert y.max() <= 5 and (y[(y > 0)] >= 1).all()
    official = corrected(x, AffectNetOptions(up_gain=1.8, zero_below=1.1))
    i = AU_ORDER.index("AU17")
    assert (official[:, i] >= 1.1).sum() >= (y[:, i] >= 1.1).sum() and (official[(official > 0)] >= 1.1).all()


def test_affectnet_filters_and_counts(tmp_path):
    rows = [
        an_row("keep1.jpg", {"AU12": 0.8, "AU6": 0.5}),
        an_row("keep2.jpg", {"AU1": 0.9, "AU15": 0.3}),
        an_row("keep3.jpg", {"AU4": 0.1, "AU17": 0.6, "AU20": 0.05}),
        an_row("small.jpg", {"AU12": 0.8}, size=300),
        an_row("drawing.jpg", {"AU12": 0.8}, photo=False),
        an_row("faint.jpg", {"AU12": 0.05, "AU6": 0.1}),  # sum 0.15 < 0.2
        an_row("gone.jpg", {"AU12": 0.5}, absent=True),
        an_row("nan.jpg", {"AU12": float("nan")}),
        an_row("big.jpg", {"AU12": 3.0}),  # not LibreFace's 0..1
    ]
    path, images = affectnet_csv(tmp_path, rows)
    out = tmp_path / "out"
    report = prepare_affectnet(str(path), str(images), str(out))
    records, _ = read_metadata(str(out))
    assert sorted(os.path.basename(r.file) for r in records) == ["keep1.jpg", "keep2.jpg", "keep3.jpg"]
    assert report.problems == {"filtered": 3, "missing_file": 1, "not_finite": 1, "out_of_range": 1}
    keep1 = next(r for r in records if r.file.endswith("keep1.jpg"))
    assert keep1.aus[AU_ORDER.index("AU12")] == pytest.approx(4.0) and keep1.aus[AU_ORDER.index("AU6")] == pytest.approx(2.5)
    assert keep1.caption == "caption of keep1.jpg"
    # the official filter takes the max: a spread-out expression (sum 0.25, max 0.05) is kept only by the paper's sum
    os.makedirs(tmp_path / "b")
    path, images = affectnet_csv(tmp_path / "b", rows + [an_row("spread.jpg", {c: 0.05 for c in AU_ORDER[:5]})])
    by_sum = prepare_affectnet(str(path), str(images), str(tmp_path / "o_sum"))
    by_max = prepare_affectnet(str(path), str(images), str(tmp_path / "o_max"), AffectNetOptions(intensity_of="max"))
    assert by_sum.kept == 4 and by_max.kept == 3


def test_check_command_prints_the_counts(messy):
    proc = subprocess.run([sys.executable, "-m", "training.data", "check", str(messy)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "3 usable samples, 7 skipped" in proc.stdout and "1 image unreadable" in proc.stdout


def test_prepare_commands_run_from_the_command_line(tmp_path):
    labels, images, _ = disfa_tree(tmp_path, subjects=("SN001",), frames=12)
    proc = subprocess.run([sys.executable, "-m", "training.data", "disfa", str(labels), str(images),
                           str(tmp_path / "out"), "--neutral-count", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "10 usable samples" in proc.stdout
    assert len(read_metadata(str(tmp_path / "out"))[0]) == 10
