"""python -m fineface_core.evaluate: the paper's protocol, its metrics and the tool around them, on the tiny
diffusers model, a random-weight LibreFace estimator of the real architecture and a tiny random CLIP."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from fineface_core.aus import AU_ORDER
from fineface_core.errors import FineFaceError
from fineface_core.evaluation import metrics, report
from fineface_core.evaluation.cli import main
from fineface_core.evaluation.protocol import (PROMPTS_FILE, Protocol, enumerate_jobs, read_prompts,
                                               reference_jobs, subset)
from fineface_core.evaluation.run import Config, evaluate
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from tests.support.libreface_files import write_libreface_checkpoint
from tests.support.official_files import write_official_release
from tests.support.tiny_clip import write_tiny_clip, write_tiny_vit
from tests.support.tiny_sd import write_tiny_sd
from tests.support.tiny_unets import tiny_unet

PROMPTS = ["a girl in a park", "an old man", "a boy on a beach"]


# ------------------------------------------------------------------------------------------
# The protocol
# ------------------------------------------------------------------------------------------

def test_the_full_protocol_is_1650_jobs_with_one_seed_per_prompt():
    protocol = Protocol(read_prompts(PROMPTS_FILE))
    assert len(protocol.prompts) == 15
    jobs = enumerate_jobs(protocol)
    assert len(jobs) == 15 * 12 * 5 + 15 * 50 == 1650
    assert len({(j.prompt, j.aus, j.seed) for j in jobs}) == 1650
    assert len({j.name for j in jobs}) == 1650
    singles = [j for j in jobs if j.kind == "single"]
    combos = [j for j in jobs if j.kind == "combination"]
    assert len(singles) == 900 and len(combos) == 750
    for j in singles:  # one AU, at 1..5
        assert sum(v != 0 for v in j.aus) == 1 and j.aus[j.single_au] in (1, 2, 3, 4, 5)
    assert {(AU_ORDER[j.single_au], j.aus[j.single_au]) for j in singles if j.prompt_index == 0} == \
        {(a, float(k)) for a in AU_ORDER for k in range(1, 6)}
    for j in combos:
        active = [v for v in j.aus if v]
        assert 2 <= len(active) <= 5 and set(active) <= {1, 2, 3, 4, 5}
    # the no-AU image of each prompt shares the prompt's seed with all of its AU images
    refs = reference_jobs(protocol)
    assert len(refs) == 15 and all(not any(r.aus) for r in refs)
    for r in refs:
        assert {j.seed for j in jobs if j.prompt_index == r.prompt_index} == {r.seed}
    assert len({r.seed for r in refs}) == 15
    # seeded: the same combinations every time, other ones for another combination seed
    assert enumerate_jobs(protocol) == jobs
    other = enumerate_jobs(Protocol(protocol.prompts, combination_seed=1))
    assert [j.aus for j in other if j.kind == "combination"] != [j.aus for j in combos]


def test_every_constant_is_an_option_and_limit_spreads_over_the_protocol():
    protocol = Protocol(tuple(PROMPTS), aus=("AU12", "AU4"), intensities=(2.0, 4.0), combinations=3,
                        combination_size=(2, 2), seed=100)
    jobs = enumerate_jobs(protocol)
    assert len(jobs) == 3 * 2 * 2 + 3 * 3
    assert {j.seed for j in jobs} == {100, 101, 102}
    assert all(sum(v != 0 for v in j.aus) == 2 for j in jobs if j.kind == "combination")
    picked = subset(jobs, 5)
    assert len(picked) == 5 and picked[0] == jobs[0] and picked[-1] == jobs[-1]
    assert len({j.prompt_index for j in picked}) == 3
    with pytest.raises(FineFaceError, match="combination-size"):
        Protocol(tuple(PROMPTS), aus=("AU12",), combination_size=(2, 3))
    with pytest.raises(FineFaceError, match="unknown AUs"):
        Protocol(tuple(PROMPTS), aus=("AU7",))


def test_prompts_file_comments_and_empty_file(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# header\n\na girl\n  # indented comment\nan old man  \n")
    assert read_prompts(str(path)) == ("a girl", "an old man")
    path.write_text("# only comments\n")
    with pytest.raises(FineFaceError, match="holds no prompts"):
        read_prompts(str(path))
    with pytest.raises(FineFaceError, match="not found"):
        read_prompts(str(tmp_path / "missing.txt"))


# ------------------------------------------------------------------------------------------
# The metrics, against hand computations
# ------------------------------------------------------------------------------------------

def _vec(**aus):
    v = np.zeros(12)
    for code, value in aus.items():
        v[AU_ORDER.index(code)] = value
    return v


def test_au_mse_reductions_by_hand():
    asked = np.stack([_vec(AU12=3), _vec(AU1=2, AU26=4)])
    measured = np.stack([_vec(AU12=1, AU6=1), _vec(AU1=2, AU26=1, AU25=4)])
    # image 0: errors AU12 2, AU6 1 -> L2 sqrt(5); image 1: AU26 3, AU25 4 -> L2 5
    np.testing.assert_allclose(metrics.l2_errors(asked, measured), [np.sqrt(5), 5.0])
    assert metrics.paper_au_mse(asked, measured) == pytest.approx((np.sqrt(5) + 5) / 2)
    np.testing.assert_allclose(metrics.per_image_mse(asked, measured), [5 / 12, 25 / 12])
    expected = np.zeros(12)
    expected[AU_ORDER.index("AU12")] = 4 / 2
    expected[AU_ORDER.index("AU6")] = 1 / 2
    expected[AU_ORDER.index("AU26")] = 9 / 2
    expected[AU_ORDER.index("AU25")] = 16 / 2
    np.testing.assert_allclose(metrics.per_au_mse(asked, measured), expected)
    assert np.isnan(metrics.paper_au_mse(np.zeros((0, 12)), np.zeros((0, 12))))


def test_linearity_by_hand():
    x = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5], dtype=float)
    assert metrics.linearity(x, x) == pytest.approx((1.0, 1.0))  # a perfect estimator of a perfect model
    assert metrics.linearity(x, 0.5 * x + 1) == pytest.approx((1.0, 0.5))
    assert metrics.linearity(x, 6 - x) == pytest.approx((-1.0, -1.0))
    y = np.array([1, 1, 2, 2, 3, 0, 2, 3, 3, 5], dtype=float)
    dx, dy = x - x.mean(), y - y.mean()
    r_hand = (dx * dy).sum() / np.sqrt((dx ** 2).sum() * (dy ** 2).sum())
    assert metrics.linearity(x, y) == pytest.approx((r_hand, (dx * dy).sum() / (dx ** 2).sum()))
    assert metrics.linearity(x, y)[0] == pytest.approx(np.corrcoef(x, y)[0, 1])
    r, slope = metrics.linearity(x, np.zeros(10))  # the AU never moves: r undefined, slope 0
    assert np.isnan(r) and slope == 0
    assert all(np.isnan(metrics.linearity([3, 3], [1, 2])))


def test_cross_talk_by_hand():
    asked = np.stack([_vec(AU12=4), _vec(AU12=4)])
    reference = np.stack([_vec(AU6=1), _vec(AU6=1)])
    assert metrics.cross_talk(asked, asked + reference, reference) == pytest.approx([0.0, 0.0])
    measured = np.stack([_vec(AU12=2, AU6=2, AU25=3), _vec(AU12=5, AU6=0.5)])
    # 11 AUs not asked; image 0 moved AU6 by 1 and AU25 by 3, image 1 moved AU6 by 0.5
    # (AU12's own error is not cross-talk)
    np.testing.assert_allclose(metrics.cross_talk(asked, measured, reference), [4 / 11, 0.5 / 11])
    matrix = metrics.cross_talk_matrix([6, 6], measured, reference)
    assert np.isnan(matrix[6, 6]) and np.isnan(matrix[0]).all()
    assert matrix[6, AU_ORDER.index("AU6")] == pytest.approx(0.75)
    assert matrix[6, AU_ORDER.index("AU25")] == pytest.approx(1.5)
    assert metrics.cosine_similarity([[1, 0], [1, 1]], [[0, 2], [2, 2]]) == pytest.approx([0.0, 1.0])


def _row(job, measured, reference, clip_i=0.9, identity=None):
    return report.Row("w", job, "found" if measured is not None else "none",
                      None if measured is None else np.asarray(measured, float), np.asarray(reference, float),
                      clip_i, identity)


def test_summary_of_a_perfect_estimator_and_model():
    protocol = Protocol(tuple(PROMPTS[:2]), combinations=4)
    jobs = enumerate_jobs(protocol)
    neutral = np.zeros(12)
    rows = [_row(j, j.aus, neutral, clip_i=0.8 if j.kind == "single" else 0.6) for j in jobs]
    s = report.summarise("w", rows)
    assert (s.single_mse, s.combo_mse, s.cross_talk) == (0.0, 0.0, 0.0)
    assert s.linearity_r == pytest.approx(1.0) and s.slope == pytest.approx(1.0)
    assert (s.single_clip, s.combo_clip) == pytest.approx((0.8, 0.6))
    assert (s.images, s.no_face) == (len(jobs), 0)
    assert [p[0] for p in s.per_au] == list(AU_ORDER) and all(p[1:] == pytest.approx((0, 1, 1, 0)) for p in s.per_au)


def test_summary_by_hand_with_a_missing_face():
    protocol = Protocol((PROMPTS[0],), aus=("AU12",), intensities=(1.0, 3.0), combinations=1, combination_size=(1, 1))
    single1, single3, combo = enumerate_jobs(protocol)
    reference = _vec(AU6=1)
    rows = [_row(single1, _vec(AU12=2, AU6=1), reference, 0.9),
            _row(single3, _vec(AU12=2, AU6=3), reference, 0.7),
            _row(combo, None, reference, 0.5)]  # no face found: no AU reading, still a CLIP-I
    s = report.summarise("w", rows)
    # errors against the asked vector (AU6 was asked at 0): AU12 1 and AU6 1; AU12 1 and AU6 3
    assert s.single_mse == pytest.approx((np.sqrt(2) + np.sqrt(10)) / 2)
    assert s.single_clip == pytest.approx(0.8) and s.combo_clip == pytest.approx(0.5)
    assert np.isnan(s.combo_mse) and (s.images, s.no_face) == (3, 1)
    assert s.cross_talk == pytest.approx((0 + 2 / 11) / 2)
    r, slope = s.per_au[0][2], s.per_au[0][3]
    assert np.isnan(r) and slope == 0  # AU12 read 2 at both intensities
    table = report.markdown([s])
    assert "| w | 2.29 | 0.80 | n/a | 0.50 | n/a | 0.00 | 0.09 | 1 / 3 |" in table


# ------------------------------------------------------------------------------------------
# The tool, end to end on tiny models
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    base = write_tiny_sd(str(root / "sd"), "sd21", seed=0)
    unet = tiny_unet("sd21", seed=0)
    release = write_official_release(str(root / "release"), unet, "sd21", seed=3)
    single = str(root / "other.safetensors")
    save_fineface(load_weights(write_official_release(str(root / "release2"), unet, "sd21", seed=5)), single)
    sd15 = str(root / "sd15.safetensors")
    save_fineface(load_weights(write_official_release(str(root / "r15"), tiny_unet("sd15", 0), "sd15", seed=1)), sd15)
    prompts = root / "prompts.txt"
    prompts.write_text("# three prompts for the tests\n" + "\n".join(PROMPTS) + "\n")
    return {"base": base, "release": release, "sd15": sd15, "single": single, "prompts": str(prompts),
            "estimator": write_libreface_checkpoint(str(root / "resnet.pt")),
            "clip": write_tiny_clip(str(root / "clip")), "vit": write_tiny_vit(str(root / "vit"))}


def argv(models, out, *extra):
    return ["--weights", f"ours={models['release']}", "--estimator", models["estimator"], "--out", str(out),
            "--base-model", models["base"], "--clip", models["clip"], "--prompts", models["prompts"],
            "--combinations", "2", "--size", "64", "--steps", "1", "--batch-size", "4", "--quiet", *extra]


def config(models, out, **kw):
    protocol = Protocol(tuple(PROMPTS[:2]), aus=("AU1", "AU12"), intensities=(1.0, 5.0), combinations=1,
                        combination_size=(2, 2))
    from fineface_core.evaluation.generate import Generation

    defaults = dict(weights=[("ours", models["release"])], estimator=models["estimator"], out=str(out),
                    protocol=protocol, clip=models["clip"], base_model=models["base"],
                    generation=Generation(steps=1, size=64), batch_size=3, no_face="whole image")
    return Config(**{**defaults, **kw})


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


@pytest.mark.slow
def test_a_limit_run_writes_images_csv_table_and_plots(models, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(argv(models, out, "--weights", f"ours={models['release']}", models["single"], "--limit", "3",
                   "--no-face", "whole image", "--identity-model", models["vit"]))
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    for label in ("ours", "other"):
        images = sorted(os.listdir(out / "images" / label))
        # 3 AU images spread over the 3 prompts' 3 x (12 x 5 + 2) jobs, and the no-AU image of each prompt
        assert len([n for n in images if "reference" not in n]) == 3
        assert [n for n in images if "reference" in n] == [f"p0{p}_reference.png" for p in range(3)]
        with Image.open(out / "images" / label / images[0]) as im:
            assert im.size == (64, 64)
        assert len(os.listdir(out / "records" / label)) == 6
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["weights"] for r in rows} == {"ours", "other"}
    assert {r["kind"] for r in rows} == {"single", "combination"}
    for r in rows:
        asked = np.array([float(r[f"asked_{a}"]) for a in AU_ORDER])
        measured = np.array([float(r[f"measured_{a}"]) for a in AU_ORDER])
        assert r["face"] == "whole image" and ((0 <= measured) & (measured <= 5)).all()
        assert float(r["au_l2_error"]) == pytest.approx(np.linalg.norm(asked - measured), abs=1e-3)
        assert -1 <= float(r["clip_i"]) <= 1 and -1 <= float(r["identity"]) <= 1
        assert os.path.isfile(out / r["image"])
    summary = (out / "summary.md").read_text()
    assert summary in printed
    head = [line for line in summary.splitlines() if line.startswith("| Weights")][0]
    assert "Single AU MSE" in head and "Combination CLIP-I" in head and "Linearity r" in head \
        and "Cross-talk" in head and "Identity" in head
    assert any(line.startswith("| ours |") for line in summary.splitlines())
    assert any(line.startswith("| other |") for line in summary.splitlines())
    for name in ("au_response.png", "cross_talk_ours.png", "cross_talk_other.png"):
        with Image.open(out / "plots" / name) as im:
            assert im.format == "PNG" and im.size[0] > 300


@pytest.mark.slow
def test_images_share_their_prompt_s_noise(models, tmp_path):
    """With the AU branch and the LoRA switched off, every AU image is its prompt's no-AU image: same seed,
    same noise; so CLIP-I is 1 and nothing moves (cross-talk 0), whatever batch an image fell in."""
    from fineface_core.evaluation.generate import Generation

    outcome = evaluate(config(models, tmp_path / "eval", generation=Generation(steps=1, size=64, au_scale=0.0,
                                                                               lora_strength=0.0)), progress=False)
    s = outcome.summaries[0]
    assert s.single_clip == pytest.approx(1.0, abs=1e-4) and s.combo_clip == pytest.approx(1.0, abs=1e-4)
    assert s.cross_talk == pytest.approx(0.0, abs=1e-3)
    assert outcome.generated == 2 + 2 * 2 * 2 + 2
    ref = np.asarray(Image.open(tmp_path / "eval" / "images" / "ours" / "p01_reference.png"), dtype=float)
    au = np.asarray(Image.open(tmp_path / "eval" / "images" / "ours" / "p01_AU12_5.png"), dtype=float)
    assert np.abs(ref - au).max() <= 1


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_finished_images(models, tmp_path, capsys):
    """The command itself, killed (SIGKILL, no clean-up) while it writes images: every image left is whole,
    and the next run keeps them and makes only the rest; a third finds nothing to do."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "eval"
    folder = out / "images" / "ours"
    cmd = [sys.executable, "-m", "fineface_core.evaluate", *argv(models, out, "--limit", "8", "--batch-size", "1")]
    proc = subprocess.Popen(cmd, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if folder.is_dir() and len([n for n in os.listdir(folder) if n.endswith(".png")]) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = {n: os.stat(folder / n).st_mtime_ns for n in os.listdir(folder) if n.endswith(".png")}
    assert 3 <= len(kept) < 8 + 3
    for name in kept:
        with Image.open(folder / name) as im:
            im.load()  # whole, readable
    capsys.readouterr()
    assert main(argv(models, out, "--limit", "8", "--batch-size", "1")) == 0
    assert f"{8 + 3 - len(kept)} images generated, 11 measured this run" in capsys.readouterr().out
    assert not [n for n in os.listdir(folder) if n.endswith(".partial")]
    after = {n: os.stat(folder / n).st_mtime_ns for n in os.listdir(folder)}
    assert {n: after[n] for n in kept} == kept
    assert len(after) == 8 + 3  # 8 AU images over the 3 prompts, and their no-AU images
    table = (out / "summary.md").read_text()
    assert main(argv(models, out, "--limit", "8", "--batch-size", "1")) == 0
    assert "0 images generated, 0 measured this run" in capsys.readouterr().out
    assert (out / "summary.md").read_text() == table


@pytest.mark.slow
def test_no_face_is_counted_other_settings_are_refused_and_weights_can_join(models, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(argv(models, out, "--limit", "2")) == 0
    # The tiny model's images hold no face: by default each is recorded as such, left out of the AU metrics
    # and counted in the table; CLIP-I is still measured.
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["face"] for r in rows] == ["none"] * 2 and all(r["measured_AU12"] == "" for r in rows)
    assert all(r["clip_i"] for r in rows)
    line = next(line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| ours"))
    assert line.endswith("| 2 / 2 |") and "n/a" in line
    before = {f: os.stat(out / f).st_mtime_ns for f in _files(out)}
    capsys.readouterr()
    assert main(argv(models, out, "--limit", "2", "--steps", "2")) == 2
    err = capsys.readouterr().err
    assert "made with other settings" in err and "steps: 1 there, 2 now" in err and "another --out" in err
    assert {f: os.stat(out / f).st_mtime_ns for f in _files(out)} == before  # nothing touched
    # another weights file joins the same folder; the first one's images are kept
    assert main(argv(models, out, "--limit", "2", "--weights", f"ours={models['release']}", models["single"])) == 0
    assert {f: os.stat(out / f).st_mtime_ns for f in before if f.startswith("images")} == \
        {f: t for f, t in before.items() if f.startswith("images")}
    assert len(os.listdir(out / "images" / "other")) == 4
    # another file under a name the folder knows: refused (a weights file is known by its contents)
    capsys.readouterr()
    assert main(argv(models, out, "--limit", "2", "--weights", f"ours={models['single']}")) == 2
    assert "weights ours: sha256:" in capsys.readouterr().err
    # a folder that is not an evaluation's is never written into
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main(argv(models, foreign, "--limit", "1")) == 2
    assert "not an evaluation folder" in capsys.readouterr().err and os.listdir(foreign) == ["notes.txt"]


def test_bad_inputs_are_named_before_any_work(models, tmp_path, capsys):
    out = tmp_path / "eval"
    cases = [
        (["--estimator", str(tmp_path / "nope.pt")], "LibreFace AU model not found"),
        (["--clip", str(tmp_path)], "cannot load the CLIP model"),
        (["--clip", str(tmp_path / "no_clip")], "is not a folder"),
        (["--base-model", str(tmp_path / "no_sd")], "is not a diffusers folder"),
        (["--weights", models["sd15"]], "these FineFace weights are for"),  # SD 1.5 weights, an SD 2.1 base
        (["--weights", str(tmp_path / "missing.safetensors")], "FineFace weights not found"),
        (["--weights", f"a={models['release']}", f"a={models['single']}"], "both named 'a'"),
        (["--prompts", str(tmp_path / "none.txt")], "prompts file not found"),
        (["--aus", "AU7"], "unknown AUs"),
        (["--size", "60"], "multiple of 8"),
        (["--steps", "0"], "--steps must be 1 or more"),
        (["--limit", "0"], "--limit must be 1 or more"),
    ]
    for extra, message in cases:
        assert main(argv(models, out, *extra)) == 2, extra
        assert message in capsys.readouterr().err, extra
        assert not out.exists()


def test_an_identity_model_stored_as_a_pickle_is_refused(models, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    pickled = write_tiny_vit(str(tmp_path / "vit_bin"))
    weights = os.path.join(pickled, "model.safetensors")
    torch.save(load_file(weights), os.path.join(pickled, "pytorch_model.bin"))
    os.remove(weights)
    assert main(argv(models, tmp_path / "eval", "--identity-model", pickled)) == 2
    assert "cannot load the identity model" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Hostile inputs: options, a resumed folder's files, a failing disk, a broken model
# ------------------------------------------------------------------------------------------

def test_help_and_option_mistakes_answer_before_torch_is_imported():
    """--help and a bad option must not wait for torch and diffusers (seconds on a loaded machine)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom fineface_core.evaluation.cli import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "assert main(['--weights', 'w.safetensors', '--estimator', 'e.pt', '--out', 'o', '--limit', '0']) == 2\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'transformers')))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--limit must be 1 or more, not 0" in r.stderr and "usage: python -m fineface_core.evaluate" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_option_values_that_would_crash_or_mislead_are_refused_before_any_work(models, tmp_path, capsys):
    out = tmp_path / "eval"
    (tmp_path / "a-file").write_text("x")
    cases = [
        (["--intensities", "0,1"], "--intensities: 0 cannot be asked"),  # a "single" job asking no AU
        (["--intensities", "1,2,1"], "--intensities: 1 is given twice"),  # two jobs, one file
        (["--aus", "AU12,12"], "--aus: AU12 is given twice"),
        (["--combination-intensities", "nan"], "--combination-intensities: nan cannot be asked"),
        (["--intensities", "20"], "give intensities from -10 to 10"),
        (["--combination-seed", "-1"], "--combination-seed must be a whole number from 0"),
        (["--seed", str(2**70)], "--seed must be a whole number from 0"),
        (["--guidance", "nan"], "--guidance must be a finite number, not nan"),
        (["--au-scale", "inf"], "--au-scale must be a finite number, not inf"),
        (["--lora-strength", "nan"], "--lora-strength must be a finite number"),
        (["--limit", "-3"], "--limit must be 1 or more, not -3"),
        (["--weights", f"..={models['release']}"], "cannot name folders"),  # images/.. is the --out folder
        (["--weights", f"Ours={models['release']}", f"ours={models['single']}"], "both named 'Ours'"),
        (["--out", str(tmp_path / "a-file" / "eval")], "a-file is a file, not a folder"),
    ]
    for extra, message in cases:
        code = main(argv(models, out, *extra))
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (extra, err)
        assert not out.exists(), extra


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_an_unwritable_out_folder_is_refused_before_any_work(models, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o555)
    try:
        assert main(argv(models, locked / "eval", "--limit", "1")) == 2
        assert "cannot write in" in capsys.readouterr().err
    finally:
        os.chmod(locked, 0o755)


def test_a_prompts_file_saved_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a girl\n\n   \nan old man\n", encoding="utf-8-sig")  # Windows Notepad's UTF-8
    assert read_prompts(str(path)) == ("a girl", "an old man")


def test_written_files_get_the_usual_permissions(tmp_path):
    from fineface_core.evaluation.folder import atomic_write

    umask = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / "results.csv"), b"x")
    finally:
        os.umask(umask)
    assert (tmp_path / "results.csv").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600


@pytest.mark.slow
def test_damaged_files_in_a_resumed_folder_are_named_and_left_alone(models, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(argv(models, out, "--limit", "2")) == 0
    records, images = out / "records" / "ours", out / "images" / "ours"
    au_images = sorted(n for n in os.listdir(images) if "reference" not in n)
    (records / au_images[0].replace(".png", ".json")).write_text('{"job": ')  # a record cut short
    half = images / au_images[1]
    half.write_bytes(half.read_bytes()[:300])  # an image cut short, not yet measured
    os.remove(records / au_images[1].replace(".png", ".json"))
    before = {f: (out / f).read_bytes() for f in _files(out)}
    capsys.readouterr()
    assert main(argv(models, out, "--limit", "2")) == 2
    err = capsys.readouterr().err
    assert "2 damaged file(s)" in err and au_images[0].replace(".png", ".json") in err and au_images[1] in err
    assert "Delete them and run the same command again" in err and "Traceback" not in err
    assert {f: (out / f).read_bytes() for f in _files(out)} == before  # nothing used, nothing replaced
    os.remove(records / au_images[0].replace(".png", ".json"))
    os.remove(half)
    assert main(argv(models, out, "--limit", "2")) == 0
    assert "1 images generated, 2 measured this run" in capsys.readouterr().out


def _limit_file_size():
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.slow
def test_a_failed_write_is_named_and_the_next_run_finishes(models, tmp_path):
    """A real write failure (RLIMIT_FSIZE: no file over 4 KiB, which binds root too; a 64 px PNG is ~10 KiB)
    ends the run with the file named, nothing half-written left, and the same command finishing later."""
    import subprocess
    import sys

    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "fineface_core.evaluate", *argv(models, out, "--limit", "2")]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300, env=env,
                       preexec_fn=_limit_file_size)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "error: cannot write " + str(out / "images" / "ours") in r.stderr and "free some disk space" in r.stderr
    assert "Traceback" not in r.stderr
    assert not [f for f in _files(out) if f.endswith(".partial")]
    r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "4 images generated, 4 measured this run" in r.stdout  # 2 AU images and their prompts' no-AU ones


@pytest.mark.slow
def test_nan_from_the_estimator_stops_the_run_naming_the_estimator_file(models, tmp_path, capsys):
    """An estimator whose activations overflow reads NaN: stop, naming the file as damaged (the estimator's own
    check), rather than a table of "n/a"; the generated images are kept for the next run."""
    import torch

    from tests.support.libreface_files import random_state_dict

    state = {k: v * 1e6 if k.endswith("weight") and v.ndim == 4 else v for k, v in random_state_dict().items()}
    estimator = str(tmp_path / "overflowing.pt")
    torch.save({"model": state}, estimator)
    out = tmp_path / "eval"
    assert main(argv(models, out, "--limit", "2", "--no-face", "whole image", "--estimator", estimator)) == 2
    err = capsys.readouterr().err
    # the two no-AU images are read first, on their own (the AU images' records need theirs)
    assert f"error: {estimator} computes NaN AU intensities (for 2 of 2 faces): its weights are damaged" in err
    assert "Traceback" not in err
    assert not (out / "records").exists() and not (out / "results.csv").exists()
    assert len(os.listdir(out / "images" / "ours")) == 4  # the images are kept
