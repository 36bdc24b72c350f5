"""training/data: the generic format and its report, DISFA and AffectNet preparation with the paper's
(and the official code's) constants, merging, and the command line. Synthetic trees, tiny images."""
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
from training.data import cli
from training.data.affectnet import AffectNetOptions, corrected, prepare_affectnet
from training.data.disfa import OFFICIAL_NEUTRAL_COUNT, DisfaOptions, prepare_disfa
from training.data.generic import AUImageDataset, Record, read_metadata, write_metadata
from training.data.merge import merge_folders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDX = {code: i for i, code in enumerate(AU_ORDER)}


def image(path, size=(40, 24), seed=0, fmt=None):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(str(path), format=fmt)


def row(file, caption=None, **aus):
    return {"file": file, "caption": caption if caption is not None else f"a face {file}",
            **{c: aus.get(c, 0.0) for c in AU_ORDER}}


def append_jsonl(path, *lines):
    with open(path, "a") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")


# -- generic format ----------------------------------------------------------------------------------

@pytest.fixture
def messy(tmp_path):
    """A generic folder: 3 good rows, one row of each problem kind, and one corrupt image."""
    for i in range(3):
        image(tmp_path / "img" / f"ok{i}.png", seed=i)
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = [row("img/ok0.png", AU12=4.0, AU6=2.5), row("img/ok1.png", AU1=1.5, AU2=2), row("img/ok2.png", "")]
    write_metadata(str(tmp_path), good + [row("img/broken.png", AU9=2)])
    no_au5 = row("img/ok0.png")
    del no_au5["AU5"]
    append_jsonl(
        tmp_path / "metadata.jsonl",
        row("img/gone.png", AU4=1),                  # missing_file
        row("img/ok0.png", AU26=7.5),                # out_of_range (above 5)
        row("img/ok0.png", AU26=-0.5),               # out_of_range (below 0)
        no_au5,                                      # missing_value (column absent)
        dict(row("img/ok0.png"), AU17=None),         # missing_value (null)
        dict(row("img/ok0.png"), AU17=""),           # missing_value (empty)
        dict(row("img/ok1.png"), AU5="wide"),        # not_a_number
        dict(row("img/ok1.png"), AU5=True),          # not_a_number (a JSON boolean)
        dict(row("img/ok1.png"), AU5=float("nan")),  # not_finite (json writes NaN)
        dict(row("img/ok1.png"), AU9=float("inf")),  # not_finite
        "[1, 2]",                                    # bad_row
        "{broken json",                              # bad_row
    )
    return tmp_path


def test_read_metadata_keeps_good_rows_and_counts_each_problem_kind(messy):
    records, report = read_metadata(str(messy))
    assert [os.path.basename(r.file) for r in records] == ["ok0.png", "ok1.png", "ok2.png", "broken.png"]
    assert all(os.path.isabs(r.file) for r in records)
    assert records[0] == Record(str(messy / "img" / "ok0.png"), "a face img/ok0.png",
                                tuple(4.0 if c == "AU12" else 2.5 if c == "AU6" else 0.0 for c in AU_ORDER))
    assert records[2].caption == ""  # an empty caption is allowed (the column must exist)
    assert report.rows == 16 and report.kept == 4
    assert dict(report.problems) == {"missing_file": 1, "out_of_range": 2, "missing_value": 3, "not_a_number": 2,
                                     "not_finite": 2, "bad_row": 2}
    assert report.skipped == 12 == report.rows - report.kept
    summary = report.summary()
    assert summary.startswith(f"{messy / 'metadata.jsonl'}: 16 rows, 4 usable samples, 12 skipped")
    for text in ("1 image file missing", "img/gone.png", "2 value out of range", "AU26=7.5", "AU26=-0.5",
                 "3 column or value missing", "no AU5", "2 value not a number", "'wide'", "2 value NaN or inf",
                 "2 row unreadable", "line 15"):
        assert text in summary, text


def test_au_range_is_an_option(messy):
    records, report = read_metadata(str(messy), au_range=(-1.0, 10.0))
    assert report.problems["out_of_range"] == 0
    # the two rows now in range label img/ok0.png differently from its first row: all three are dropped
    assert report.problems["conflicting_labels"] == 3 and len(records) == 6 - 3


def test_csv_metadata_with_a_bom_and_an_absent_column(tmp_path):
    image(tmp_path / "a.png")
    write_metadata(str(tmp_path), [row("a.png", AU26=3), row("a.png", AU25="x")], name="metadata.csv")
    raw = (tmp_path / "metadata.csv").read_text()
    (tmp_path / "metadata.csv").write_text("\ufeff" + raw)
    records, report = read_metadata(str(tmp_path))
    assert len(records) == 1 and records[0].aus[IDX["AU26"]] == 3.0 and report.problems == {"not_a_number": 1}
    # a header naming the AUs in lower case: every row lacks AU12, and the note says why
    lower = raw.replace(",AU12,", ",au12,")
    (tmp_path / "metadata.csv").write_text(lower)
    records, report = read_metadata(str(tmp_path))
    assert records == [] and report.problems == {"missing_value": 2}
    assert "AU12 in no row" in report.summary() and "'au12' (write 'AU12')" in report.summary()


def test_write_metadata_takes_numpy_numbers_and_keeps_extra_columns(tmp_path):
    image(tmp_path / "a.png")
    r = dict(row("a.png", AU4=np.float32(2.5), AU12=np.int64(3)), subject="SN001")
    for name in ("metadata.jsonl", "metadata.csv"):
        folder = tmp_path / name.split(".")[1]
        path = write_metadata(str(folder), [dict(r, file=os.path.join("..", "a.png"))], name=name)
        assert path == str(folder / name) and "SN001" in open(path).read()
        records, report = read_metadata(str(folder))
        assert records[0].aus[IDX["AU4"]] == 2.5 and records[0].aus[IDX["AU12"]] == 3.0 and report.kept == 1
    with pytest.raises(ValueError, match="jsonl or .csv"):
        write_metadata(str(tmp_path), [], name="metadata.txt")


def test_dataset_skips_unreadable_images_and_gives_training_tensors(messy):
    ds = AUImageDataset(str(messy), resolution=16)
    assert len(ds) == 3 and ds.report.kept == 3 and ds.report.problems["corrupt_image"] == 1
    assert "1 image unreadable (e.g. img/broken.png" in ds.report.summary()
    assert "3 usable samples, 13 skipped" in ds.report.summary()
    item = ds[0]
    assert set(item) == {"pixel_values", "aus", "caption"}
    px = item["pixel_values"]
    assert px.shape == (3, 16, 16) and px.dtype == torch.float32
    assert -1 <= float(px.min()) < 0 < float(px.max()) <= 1
    assert item["aus"].dtype == torch.float32 and item["aus"].shape == (12,)
    assert item["aus"][IDX["AU12"]] == 4.0 and item["aus"][IDX["AU6"]] == 2.5
    assert item["caption"] == "a face img/ok0.png"
    batch = torch.utils.data.default_collate([ds[i] for i in range(3)])
    assert batch["pixel_values"].shape == (3, 3, 16, 16) and batch["aus"].shape == (3, 12)


def test_dataset_resizes_the_short_side_then_crops_and_can_flip(tmp_path):
    # left half black, right half white: the centre crop of a 40x20 image keeps both halves
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, 20:] = 255
    Image.fromarray(a).save(tmp_path / "wide.png")
    write_metadata(str(tmp_path), [row("wide.png", AU1=1)])
    px = AUImageDataset(str(tmp_path), resolution=10)[0]["pixel_values"]
    assert px.shape == (3, 10, 10)
    assert float(px[:, :, 0].mean()) == pytest.approx(-1) and float(px[:, :, -1].mean()) == pytest.approx(1)
    flipped = AUImageDataset(str(tmp_path), resolution=10, random_flip=True)
    torch.manual_seed(0)
    seen = {float(flipped[0]["pixel_values"][0, 0, 0]) for _ in range(20)}
    assert seen == {-1.0, 1.0}


def test_verify_modes_open_verify_decode_or_nothing(tmp_path):
    image(tmp_path / "good.jpg", fmt="JPEG")
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])  # verify() passes it, decoding fails
    (tmp_path / "junk.png").write_bytes(b"junk")
    write_metadata(str(tmp_path), [row("good.jpg"), row("truncated.jpg"), row("junk.png")])
    assert len(AUImageDataset(str(tmp_path), resolution=8)) == 2
    decoded = AUImageDataset(str(tmp_path), resolution=8, verify_images="decode")
    assert len(decoded) == 1 and decoded.report.problems["corrupt_image"] == 2
    unchecked = AUImageDataset(str(tmp_path), resolution=8, verify_images=False)
    assert len(unchecked) == 3 and unchecked[0]["pixel_values"].shape == (3, 8, 8)
    with pytest.raises(RuntimeError, match="junk.png.*training.data check"):
        unchecked[2]


def test_nothing_usable_is_a_value_error_naming_the_folder_and_the_counts(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"junk")
    write_metadata(str(tmp_path), [row("missing.png"), row("bad.png")])
    with pytest.raises(ValueError) as err:
        AUImageDataset(str(tmp_path), resolution=8)
    assert f"no usable samples in {tmp_path}" in str(err.value)
    assert "1 image file missing" in str(err.value) and "1 image unreadable" in str(err.value)
    os.makedirs(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="metadata.jsonl or metadata.csv"):
        read_metadata(str(tmp_path / "nowhere"))


# -- DISFA -------------------------------------------------------------------------------------------

def disfa_tree(root, subjects=("SN001", "SN002"), frames=24, neutral=(1, 2, 3, 4), seed=0,
               frames_dir="Images", name="{index:05d}.jpg"):
    """DISFA's label layout and the frames it points at. ``neutral`` frames have no AU; every other frame
    has AU12 active. Returns {subject: labels [frames, 12]} (row i = frame i + 1)."""
    rng = np.random.default_rng(seed)
    table = {}
    for s in subjects:
        values = rng.integers(0, 6, (frames, 12)) * (rng.random((frames, 12)) < 0.3)
        values[:, IDX["AU12"]] = np.maximum(values[:, IDX["AU12"]], 1)
        values[[f - 1 for f in neutral]] = 0
        table[s] = values
        os.makedirs(root / "ActionUnit_Labels" / s)
        for i, code in enumerate(AU_ORDER):
            with open(root / "ActionUnit_Labels" / s / f"{s}_{code.lower()}.txt", "w") as f:
                f.writelines(f"{frame},{values[frame - 1, i]}\n" for frame in range(1, frames + 1))
        for frame in range(1, frames + 1):
            path = os.path.join(str(root), frames_dir, s, name.format(subject=s, frame=frame, index=frame - 1))
            image(path, size=(8, 8), seed=frame)
    return table


def by_frame(records):
    return {(os.path.basename(os.path.dirname(r.file)), os.path.basename(r.file)): r for r in records}


def test_disfa_keeps_active_frames_and_a_tenth_as_many_neutral_ones(tmp_path):
    table = disfa_tree(tmp_path, frames=24)  # per subject 20 active, 4 neutral
    out = tmp_path / "out"
    report = prepare_disfa(str(tmp_path), str(out))
    records, check = read_metadata(str(out))
    o = DisfaOptions()
    active, neutral = 40, 8
    keep = round(o.neutral_fraction * active)  # the paper's ~10%, counted on the active frames
    assert o.neutral_fraction == 0.1 and o.neutral_of == "active" and keep == 4
    assert report.rows == 48 and report.kept == len(records) == active + keep and check.skipped == 0
    assert sum(1 for r in records if sum(r.aus) == 0) == keep
    assert report.filtered == {"neutral frame over the neutral share (0.1 x 40 active frames)": neutral - keep}
    assert report.skipped == report.rows - report.kept
    # labels land on the right images: label frame 10 of SN002 is image 00009.jpg; captions fall back
    r = by_frame(records)[("SN002", "00009.jpg")]
    assert r.aus == tuple(float(v) for v in table["SN002"][9]) and r.caption == "a closeup of a person"
    lines = [json.loads(line) for line in open(out / "metadata.jsonl")]
    assert lines[0]["subject"] == "SN001" and isinstance(lines[0]["frame"], int)
    assert [(x["subject"], x["frame"]) for x in lines] == sorted((x["subject"], x["frame"]) for x in lines)
    # the same seed picks the same neutral frames
    prepare_disfa(str(tmp_path), str(tmp_path / "again"))
    assert (tmp_path / "again" / "metadata.jsonl").read_text() == (out / "metadata.jsonl").read_text()


def test_disfa_neutral_share_options(tmp_path):
    disfa_tree(tmp_path, subjects=("SN001",), frames=30, neutral=range(1, 21))  # 10 active, 20 neutral

    def neutral_kept(**changes):
        report = prepare_disfa(str(tmp_path), str(tmp_path / "o"), **changes)
        return report.kept - 10

    assert neutral_kept() == round(0.1 * 10) == 1
    assert neutral_kept(neutral_of="neutral") == round(0.1 * 20) == 2
    assert neutral_kept(neutral_fraction=0.5) == 5
    assert neutral_kept(neutral_count=3) == 3
    official = prepare_disfa(str(tmp_path), str(tmp_path / "o"), DisfaOptions.official())
    assert DisfaOptions.official().neutral_count == OFFICIAL_NEUTRAL_COUNT == 8305
    assert official.kept == 10 + 20 and "only 20 neutral frames for the 8305 asked" in official.summary()
    with pytest.raises(ValueError, match="neutral_of"):
        prepare_disfa(str(tmp_path), str(tmp_path / "o"), neutral_of="all")
    with pytest.raises(ValueError, match="frame_step must be >= 1"):
        prepare_disfa(str(tmp_path), str(tmp_path / "o"), frame_step=0)


def test_disfa_layout_options_frame_step_and_captions(tmp_path):
    frames_root = tmp_path / "elsewhere" / "png"
    table = disfa_tree(tmp_path, subjects=("SN003", "SN004"), frames=10, neutral=(), frames_dir=str(frames_root),
                       name="{frame:05d}.png")
    captions = tmp_path / "captions.jsonl"
    append_jsonl(captions, {"file": "SN003/00005.png", "caption": "a woman smiling"},
                 {"file": str(frames_root / "SN004" / "00002.png"), "caption": "a man"})
    out = tmp_path / "out"
    report = prepare_disfa(str(tmp_path), str(out), frames_dir=str(frames_root), frame_name="{frame:05d}.png",
                           captions_file=str(captions), caption="a closeup of subject {subject}", subjects=("SN003",))
    records = by_frame(read_metadata(str(out))[0])
    assert report.kept == 10 and set(s for s, _ in records) == {"SN003"}
    assert records[("SN003", "00005.png")].caption == "a woman smiling"
    assert records[("SN003", "00005.png")].aus == tuple(float(v) for v in table["SN003"][4])
    assert records[("SN003", "00001.png")].caption == "a closeup of subject SN003"
    assert "9 of 10 kept frames got the caption 'a closeup of subject {subject}': not in captions_file" \
        in report.summary()
    report = prepare_disfa(str(tmp_path), str(out), frames_dir=str(frames_root), frame_name="{frame:05d}.png",
                           captions_file=str(captions), frame_step=3)
    records = by_frame(read_metadata(str(out))[0])
    assert sorted(records) == [(s, f"{f:05d}.png") for s in ("SN003", "SN004") for f in (1, 4, 7, 10)]
    assert records[("SN004", "00004.png")].caption == "a closeup of a person"
    assert report.filtered == {"frame_step 3: the frames in between": 12}
    # the default name ({index:05d}.jpg) finds none of these frames, and says so
    with pytest.raises(ValueError, match=r"20 image file missing \(e.g. SN003 frame 1: .*00000.jpg"):
        prepare_disfa(str(tmp_path), str(out), frames_dir=str(frames_root))


def test_disfa_bad_labels_and_missing_frames_are_counted(tmp_path):
    disfa_tree(tmp_path, subjects=("SN001",), frames=10, neutral=())
    au4 = tmp_path / "ActionUnit_Labels" / "SN001" / "SN001_au4.txt"
    lines = au4.read_text().splitlines()
    lines[4] = "5,x"      # not a number
    lines[5] = "6,9"      # outside DISFA's 0..5
    lines[6] = "7,nan"    # not finite
    del lines[7]          # frame 8 has no AU4 label
    lines.append("frame,intensity")  # a header-like line: no frame number
    au4.write_text("\n".join(lines) + "\n")
    os.remove(tmp_path / "Images" / "SN001" / "00009.jpg")  # frame 10's image (counted from 0)
    report = prepare_disfa(str(tmp_path), str(tmp_path / "out"))
    assert dict(report.problems) == {"not_a_number": 1, "out_of_range": 1, "not_finite": 1, "missing_value": 1,
                                     "bad_row": 1, "missing_file": 1}
    assert report.rows == 11 and report.kept == 10 - 5
    summary = report.summary()
    assert "SN001 frame 5: AU4='5,x'" in summary and "SN001 frame 6: AU4=9" in summary
    assert "SN001 frame 8: no AU4 label" in summary and "SN001_au4.txt line 10" in summary
    os.remove(au4)
    with pytest.raises(FileNotFoundError, match="SN001_au4.txt"):
        prepare_disfa(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="label folder"):
        prepare_disfa(str(tmp_path), str(tmp_path / "out"), labels_dir="Labels")


# -- AffectNet ---------------------------------------------------------------------------------------

AN_COLUMNS = ["ImageName", "TextDescription", "HasFace", "IsPhoto", "IsReal", "ImageResolutionX",
              "ImageResolutionY"] + [f"{c}_rec" for c in AU_ORDER]


def an_row(name, aus, photo="True", size=600, face="1.0", **extra):
    r = {"ImageName": name, "TextDescription": f"caption of {name}", "HasFace": face, "IsPhoto": photo,
         "IsReal": "True", "ImageResolutionX": size, "ImageResolutionY": size}
    r.update({f"{c}_rec": aus.get(c, 0.0) for c in AU_ORDER})
    r.update(extra)
    return r


def affectnet_tree(root, rows, columns=AN_COLUMNS):
    images = root / "images"
    for r in rows:
        if r.get("_image", True):
            image(images / r["ImageName"], size=r.get("_pixels", (8, 8)))
    path = root / "libreface.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path, images


def paper_correction(x, o=None):
    """The documented steps written out from the constants, column by column."""
    o = o or AffectNetOptions()
    x = np.asarray(x, dtype=np.float64)
    y = x.copy()
    steps = [(c, o.down_gamma, 1.0) for c in o.down_aus] + [(c, o.up_gamma, o.up_gain) for c in o.up_aus]
    for code, gamma, gain in steps:
        col = x[:, IDX[code]]
        top = x[:, IDX["AU17" if code == "AU15" and o.au15_max_from_au17 else code]].max()
        p = col ** gamma
        span = p.max() - p.min()  # a constant column (all 0) stays as it is
        y[:, IDX[code]] = ((p - p.min()) / span * top if span else col) * gain
    y = o.scale * y
    y[y < o.zero_below] = 0
    return np.minimum(y, o.clip_max)


def test_affectnet_constants_are_the_papers_and_official_differs_where_documented():
    o, off = AffectNetOptions(), AffectNetOptions.official()
    assert (o.min_size, o.min_intensity, o.intensity_of, o.down_aus, o.down_gamma) == (512, 0.2, "sum", ("AU1", "AU4"), 1.8)
    assert (o.up_aus, o.up_gamma, o.up_gain, o.scale, o.zero_below) == (("AU15", "AU17", "AU20"), 0.8, 1.0, 5.0, 1.0)
    changed = {k: (getattr(o, k), v) for k, v in vars(off).items() if getattr(o, k) != v}
    assert changed == {"intensity_of": ("sum", "max"), "up_gain": (1.0, 1.8), "au15_max_from_au17": (False, True),
                       "zero_below": (1.0, 1.1)}


@pytest.mark.parametrize("options", [AffectNetOptions(), AffectNetOptions.official(),
                                     AffectNetOptions(down_gamma=2.5, up_gamma=0.5, zero_below=0.0)])
def test_affectnet_corrections_follow_the_constants(options):
    x = np.random.default_rng(0).uniform(0, 0.9, (60, 12))
    y = corrected(x, options)
    np.testing.assert_allclose(y, paper_correction(x, options), rtol=1e-12, atol=0)
    # AUs without a correction are only scaled (and zeroed below the threshold)
    plain = 5 * x[:, IDX["AU12"]]
    np.testing.assert_allclose(y[:, IDX["AU12"]], np.where(plain < options.zero_below, 0, plain))
    # every value is 0 or in [zero_below, clip_max]
    assert ((y == 0) | ((y >= options.zero_below) & (y <= options.clip_max))).all()
    # the power transform keeps each corrected column's range: 0 .. 5 x its max (the official gain aside)
    i = IDX["AU1"]
    assert y[:, i].max() == pytest.approx(5 * x[:, i].max())
    # gamma 1.8 lowers the middle values, 0.8 raises them
    mid = (x[:, i] > 0.4) & (x[:, i] < 0.6)
    assert (y[mid, i] < 5 * x[mid, i]).all()
    j = IDX["AU20"]
    mid = (x[:, j] > 0.4) & (x[:, j] < 0.6) & (y[:, j] > 0)
    assert (y[mid, j] > 5 * x[mid, j]).all() or options.up_gamma != 0.8


def test_affectnet_official_gain_is_clipped_to_five_and_au15_takes_au17s_max():
    x = np.zeros((3, 12))
    x[:, IDX["AU15"]] = [0.0, 0.3, 0.6]
    x[:, IDX["AU17"]] = [0.0, 0.5, 0.9]
    y = corrected(x, AffectNetOptions.official(clip_max=100))
    assert y[2, IDX["AU15"]] == pytest.approx(0.9 * 1.8 * 5)  # rescaled to AU17's max, times the gain
    assert y[2, IDX["AU17"]] == pytest.approx(0.9 * 1.8 * 5)
    assert corrected(x, AffectNetOptions.official()).max() == 5.0
    assert corrected(x)[2, IDX["AU15"]] == pytest.approx(0.6 * 5)  # the paper: own max, no gain
    with pytest.raises(ValueError, match="AU7 not among"):
        corrected(x, AffectNetOptions(up_aus=("AU7",)))


def test_affectnet_filters_and_problems_are_counted(tmp_path):
    rows = [
        an_row("keep1.jpg", {"AU12": 0.8, "AU6": 0.5, "AU1": 0.9}),
        an_row("keep2.jpg", {"AU1": 0.45, "AU15": 0.3, "AU4": 0.7}),
        an_row("keep3.jpg", {"AU4": 0.1, "AU17": 0.6, "AU20": 0.05, "AU1": 0.2}),
        an_row("spread.jpg", {c: 0.05 for c in AU_ORDER[:5]}),  # sum 0.25 passes (paper); max 0.05 would not
        an_row("small.jpg", {"AU12": 0.8}, size=511),
        an_row("drawing.jpg", {"AU12": 0.8}, photo="False"),
        an_row("noface.jpg", {"AU12": 0.8}, face=""),
        an_row("faint.jpg", {"AU12": 0.05, "AU6": 0.1}),  # sum 0.15 < 0.2
        an_row("gone.jpg", {"AU12": 0.5}, _image=False),
        an_row("nan.jpg", {"AU12": "nan"}),
        an_row("big.jpg", {"AU12": 3.0}),  # not LibreFace's 0..1
        an_row("word.jpg", {"AU12": "high"}),
        an_row("empty.jpg", {"AU12": ""}),
        an_row("", {"AU12": 0.5}, _image=False),
    ]
    path, images = affectnet_tree(tmp_path, rows)
    out = tmp_path / "out"
    report = prepare_affectnet(str(path), str(images), str(out))
    records, check = read_metadata(str(out))
    names = [os.path.basename(r.file) for r in records]
    assert names == ["keep1.jpg", "keep2.jpg", "keep3.jpg", "spread.jpg"] and check.skipped == 0
    assert report.rows == 14 and report.kept == 4
    assert dict(report.problems) == {"missing_file": 1, "not_finite": 1, "out_of_range": 1, "not_a_number": 1,
                                     "missing_value": 2}
    assert dict(report.filtered) == {"smaller than 512 px": 1, "not a real photo (IsPhoto and IsReal)": 1,
                                     "no face found (HasFace)": 1, "AU sum under 0.2": 1}
    # the kept AUs are the corrections of the kept rows' raw values
    raw = np.array([[float(r[f"{c}_rec"]) for c in AU_ORDER] for r in rows[:4]])
    np.testing.assert_allclose(np.array([r.aus for r in records]), paper_correction(raw), rtol=1e-6)
    assert records[0].aus[IDX["AU12"]] == pytest.approx(4.0) and records[0].aus[IDX["AU1"]] == pytest.approx(4.5)
    assert records[0].caption == "caption of keep1.jpg"
    assert sum(records[3].aus) == 0 and "1 kept samples have every AU 0" in report.summary()
    # the official code's filter takes the max (and keeps only what exceeds 0.2 there)
    official = prepare_affectnet(str(path), str(images), str(tmp_path / "o2"), intensity_of="max")
    assert official.kept == 3 and official.filtered["AU max under 0.2"] == 2


def test_affectnet_sizes_from_images_scale_and_absent_columns(tmp_path):
    rows = [an_row("big.png", {"AU12": 2.5}, _pixels=(64, 48)), an_row("tiny.png", {"AU12": 4.0}, _pixels=(64, 20)),
            an_row("corrupt.png", {"AU12": 4.0}, _image=False), an_row("over.png", {"AU26": 5.5}, _pixels=(64, 48))]
    columns = ["ImageName"] + [f"{c}_rec" for c in AU_ORDER]  # no caption, size, face or photo columns
    path, images = affectnet_tree(tmp_path, rows, columns)
    (images / "corrupt.png").write_bytes(b"junk")
    report = prepare_affectnet(str(path), str(images), str(tmp_path / "out"), input_scale=5, min_size=30)
    records, _ = read_metadata(str(tmp_path / "out"))
    assert [os.path.basename(r.file) for r in records] == ["big.png"]
    assert records[0].aus[IDX["AU12"]] == pytest.approx(2.5) and records[0].caption == "a closeup of a person"
    assert dict(report.problems) == {"corrupt_image": 1, "out_of_range": 1}
    assert report.filtered == {"smaller than 30 px": 1}
    summary = report.summary()
    for text in ("no HasFace column", "no IsPhoto column", "no IsReal column", "1 rows without a TextDescription"):
        assert text in summary, text
    clipped = prepare_affectnet(str(path), str(images), str(tmp_path / "out"), input_scale=5, min_size=30,
                                clip_input=True)
    assert clipped.kept == 2 and read_metadata(str(tmp_path / "out"))[0][1].aus[IDX["AU26"]] == 5.0
    with pytest.raises(ValueError, match="(?s)no usable AffectNet row.*smaller than 512 px"):
        prepare_affectnet(str(path), str(images), str(tmp_path / "out"), input_scale=5)


# -- merge and the command line ----------------------------------------------------------------------

def test_merge_makes_one_folder_with_paths_relative_to_it(tmp_path, messy):
    disfa_tree(tmp_path / "disfa", subjects=("SN001",), frames=6, neutral=(1,))
    prepare_disfa(str(tmp_path / "disfa"), str(tmp_path / "disfa_data"))
    report = merge_folders(str(tmp_path / "all"), [str(tmp_path / "disfa_data"), str(messy)])
    records, _ = read_metadata(str(tmp_path / "all"))
    assert report.kept == len(records) == 5 + 4 and report.problems["missing_file"] == 1
    assert all(os.path.isfile(r.file) for r in records)
    sources = [json.loads(line)["source"] for line in open(tmp_path / "all" / "metadata.jsonl")]
    assert sources.count("disfa_data") == 5


def test_cli_prepares_disfa_and_affectnet_with_paper_or_official_values(tmp_path, capsys):
    disfa_tree(tmp_path / "disfa", subjects=("SN001",), frames=30, neutral=range(1, 21))
    assert cli.main(["disfa", str(tmp_path / "disfa"), str(tmp_path / "d1")]) == 0
    assert "11 usable samples" in capsys.readouterr().out  # 10 active + 10%
    assert cli.main(["disfa", str(tmp_path / "disfa"), str(tmp_path / "d2"), "--official", "--frame-step", "1"]) == 0
    assert "30 usable samples" in capsys.readouterr().out  # 8305 asked, 20 there
    assert cli.main(["disfa", str(tmp_path / "disfa"), str(tmp_path / "d3"), "--neutral-of", "neutral",
                     "--subjects", "SN001"]) == 0
    assert "12 usable samples" in capsys.readouterr().out

    x = {"AU12": 0.2, "AU15": 0.2, "AU17": 0.1}
    rows = [an_row(f"{i}.jpg", {k: v * (i + 1) for k, v in x.items()}) for i in range(4)]
    os.makedirs(tmp_path / "an")
    path, images = affectnet_tree(tmp_path / "an", rows)
    assert cli.main(["affectnet", str(path), str(images), str(tmp_path / "a1")]) == 0
    paper = np.array([r.aus for r in read_metadata(str(tmp_path / "a1"))[0]])
    assert cli.main(["affectnet", str(path), str(images), str(tmp_path / "a2"), "--official", "--clip-max", "9"]) == 0
    official = np.array([r.aus for r in read_metadata(str(tmp_path / "a2"))[0]])
    raw = np.array([[float(r[f"{c}_rec"]) for c in AU_ORDER] for r in rows])
    np.testing.assert_allclose(paper, paper_correction(raw), rtol=1e-6)
    np.testing.assert_allclose(official, paper_correction(raw, AffectNetOptions.official(clip_max=9)), rtol=1e-6)
    assert paper[:, IDX["AU15"]].max() == pytest.approx(0.8 * 5)  # AU15 rescaled to its own max
    assert official[:, IDX["AU15"]].max() == pytest.approx(0.4 * 1.8 * 5)  # to AU17's max, times the gain
    assert cli.main(["affectnet", str(path), str(images), str(tmp_path / "a3"), "--min-size", "4000"]) == 1
    assert "smaller than 4000 px" in capsys.readouterr().err


def test_check_command_prints_the_report_and_au_table(messy):
    proc = subprocess.run([sys.executable, "-m", "training.data", "check", str(messy)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "16 rows, 3 usable samples, 13 skipped" in out
    for text in ("1 image unreadable", "1 image file missing", "2 value out of range", "3 column or value missing",
                 "2 value not a number", "2 value NaN or inf", "2 row unreadable"):
        assert text in out, text
    au_line = next(line for line in out.splitlines() if line.strip().startswith("AU "))
    active_line = next(line for line in out.splitlines() if line.strip().startswith("active"))
    assert au_line.split()[1:] == list(AU_ORDER) and active_line.split()[IDX["AU12"] + 1] == "33%"


def test_check_command_fails_when_nothing_is_usable(tmp_path, capsys):
    write_metadata(str(tmp_path), [row("nothing.png")])
    assert cli.main(["check", str(tmp_path), "--quick"]) == 1
    err = capsys.readouterr().err
    assert f"no usable samples in {tmp_path}" in err and "1 image file missing" in err


# -- an image listed more than once ------------------------------------------------------------------

def test_an_image_with_conflicting_labels_is_dropped_and_repeats_are_kept_once(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        image(tmp_path / name)
    write_metadata(str(tmp_path), [
        row("a.png", "a smile", AU12=4),
        row("b.png", "a frown", AU4=3),
        row("./a.png", "a smile", AU12=2, AU6=1),  # line 3: the same image, other labels
        row("c.png", "brows up", AU1=2),
        row("c.png", "brows up", AU1=2),  # line 5: repeats line 4
        row("d.png", "a face", AU25=1),
        row("d.png", "an open mouth", AU25=1),  # same labels, another caption
    ])
    records, report = read_metadata(str(tmp_path))
    assert [(os.path.basename(r.file), r.caption) for r in records] == [
        ("b.png", "a frown"), ("c.png", "brows up"), ("d.png", "a face"), ("d.png", "an open mouth")]
    assert dict(report.problems) == {"conflicting_labels": 2, "duplicate_row": 1}
    assert report.rows == 7 and report.kept == 4 and report.skipped == report.rows - report.kept
    summary = report.summary()
    for text in ("2 rows of an image with conflicting AU labels (all dropped) (e.g. a.png: line 1 and line 3 "
                 "(AU6 0 vs 1, AU12 4 vs 2))", "1 row repeating an earlier one (kept once) (e.g. c.png: line 5 "
                 "repeats line 4)", "1 images have several rows with the same AUs and different captions"):
        assert text in summary, summary
    assert len(AUImageDataset(str(tmp_path), resolution=8)) == 4  # what training reads


def test_merge_drops_an_image_two_folders_label_differently(tmp_path):
    image(tmp_path / "shared.png")
    image(tmp_path / "own.png")
    write_metadata(str(tmp_path / "one"), [row("../shared.png", AU12=4), row("../own.png", AU4=2)])
    write_metadata(str(tmp_path / "two"), [row("../shared.png", AU12=1)])
    report = merge_folders(str(tmp_path / "all"), [str(tmp_path / "one"), str(tmp_path / "two")])
    records, _ = read_metadata(str(tmp_path / "all"))
    assert [os.path.basename(r.file) for r in records] == ["own.png"]
    assert report.problems == {"conflicting_labels": 2} and report.kept == 1
    assert "AU12 4 vs 1" in report.summary() and str(tmp_path / "two") in report.summary()


def test_affectnet_and_disfa_report_an_image_labelled_twice(tmp_path):
    rows = [an_row("twice.jpg", {"AU12": 0.8}), an_row("twice.jpg", {"AU12": 0.4}), an_row("ok.jpg", {"AU4": 0.6}),
            an_row("again.jpg", {"AU1": 0.5}), an_row("again.jpg", {"AU1": 0.5})]
    os.makedirs(tmp_path / "an")
    path, images = affectnet_tree(tmp_path / "an", rows)
    report = prepare_affectnet(str(path), str(images), str(tmp_path / "an_out"))
    assert [os.path.basename(r.file) for r in read_metadata(str(tmp_path / "an_out"))[0]] == ["ok.jpg", "again.jpg"]
    assert report.problems == {"conflicting_labels": 2, "duplicate_row": 1} and report.kept == 2
    assert "twice.jpg: line 2 (twice.jpg) and line 3 (twice.jpg) (AU12 0.8 vs 0.4)" in report.summary()

    disfa_tree(tmp_path / "disfa", subjects=("SN001",), frames=6, neutral=())
    au12 = tmp_path / "disfa" / "ActionUnit_Labels" / "SN001" / "SN001_au12.txt"
    lines = au12.read_text().splitlines()
    frame3 = lines[2].split(",")
    lines += [f"3,{int(frame3[1]) + 1}", lines[3]]  # frame 3 labelled again, differently; frame 4 repeated as is
    au12.write_text("\n".join(lines) + "\n")
    report = prepare_disfa(str(tmp_path / "disfa"), str(tmp_path / "disfa_out"))
    assert report.problems == {"conflicting_labels": 1} and report.kept == 5
    assert f"SN001 frame 3: SN001_au12.txt lines 3 and 7 give {frame3[1]} and {int(frame3[1]) + 1}" in report.summary()
