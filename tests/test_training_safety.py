"""training/: what keeps a run safe. A diverging loss stops the run and nothing non-finite is written;
options, folders, data and the checkpoint to resume are checked before any model loads; a kill at
any moment of saving or pruning leaves a checkpoint to resume; a new run never mixes with another's.

Real runs of the trainer (in this process, or `python -m training.train` subprocesses for the kills)
on the tiny SD 2.1-architecture model of tests/support/tiny_sd.py; nothing is downloaded.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from fineface_core.weightfiles.single_file import load_fineface, save_fineface
from training import train as trainer
from training.checkpoints import KILL_ENV, KILL_SIGNAL_ENV, list_checkpoints, save_trainable, to_weights
from training.config import TRAINABLE_FILE, parse_args
from training.errors import TrainingError
from training.export import export_weights
from training.export import main as export_main
from training.finite import params_error
from training.folder_lock import RUN_LOCK
from training.model import attach_trainable, load_base_model
from training.preflight import preflight

from tests.support.training_runs import ROOT, one_thread, subprocess_env, train_args, trainer_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny_sd, data: tests/conftest.py

# A hub id that cannot load here (offline): a run that got as far as loading the base model fails with
# an OSError about it, so an error of another kind proves that nothing was loaded.
UNLOADABLE = "nonexistent-org/nonexistent-model"


@pytest.fixture(scope="session")
def finished_run(tiny_sd, data, tmp_path_factory):
    """A finished 2-step run with a checkpoint at each step (read only: copy it to change it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    with one_thread():
        trainer.main(train_args(tiny_sd, data, out, "--max_train_steps", 2, "--checkpointing_steps", 1))
    return out


def snapshot(folder) -> dict:
    """relative path -> content hash of every file under ``folder``."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha1(f.read()).hexdigest()
    return found


# -- 6. a diverging run ---------------------------------------------------------------------------------

def test_a_nonfinite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_sd, data, tmp_path, capsys):
    out = tmp_path / "run"
    assert trainer.cli(train_args(tiny_sd, data, out, "--max_train_steps", 1, "--checkpointing_steps", 1)) == 0
    before = snapshot(out)
    capsys.readouterr()
    # Resumed with a noise offset so large that the loss overflows from the first step on.
    diverging = train_args(tiny_sd, data, out, "--max_train_steps", 4, "--checkpointing_steps", 1,
                           "--resume_from_checkpoint", "latest", "--noise_offset", "1e30")
    assert trainer.cli(diverging) == 1
    err = capsys.readouterr().err
    assert re.search(r"^error: the training loss became (nan|inf) at step 2\b", err, re.M), err
    assert f"the last good checkpoint is {out / 'checkpoint-1'}" in err
    for advice in ("--learning_rate", "--lr_warmup_steps", "--resume_from_checkpoint latest"):
        assert advice in err, advice
    assert "Traceback" not in err
    # Nothing written: no checkpoint-2 (complete or partial), the earlier export untouched.
    after = snapshot(out)
    log = after.pop("train_log.txt")
    assert after == {k: v for k, v in before.items() if k != "train_log.txt"} and log != before["train_log.txt"]
    assert "error: the training loss became" in (out / "train_log.txt").read_text()
    # The kept checkpoint carries on.
    result = trainer.main(train_args(tiny_sd, data, out, "--max_train_steps", 2, "--checkpointing_steps", 1,
                                     "--resume_from_checkpoint", "latest"))
    assert result["start_step"] == 1 and result["global_step"] == 2 and np.isfinite(result["losses"]).all()


def test_nonfinite_weights_are_never_written_and_the_tensor_is_named(tiny_sd, tmp_path, capsys):
    base = load_base_model(tiny_sd)
    model = attach_trainable(base.unet, base.family, lora_rank=4, lora_alpha=4, seed=0)
    path, proc = next(iter(model.au_processors().items()))
    proc.au_to_v.weight.data[0, 0] = float("nan")
    tensor = f"adapter.{path}.au_to_v.weight"
    with pytest.raises(TrainingError, match=re.escape(tensor)):  # a checkpoint's weights
        save_trainable(model, str(tmp_path / "checkpoint"), {"global_step": 1})
    assert not (tmp_path / "checkpoint").exists()
    with pytest.raises(TrainingError, match=re.escape(tensor)):  # the final export
        export_weights(to_weights(model), str(tmp_path / "final.safetensors"), {})
    assert not (tmp_path / "final.safetensors").exists()
    # The trainer's check before each save names the parameter, the step and what to try.
    error = params_error(model, 7, parse_args(["--train_data_dir", "x"]), "fp16", None)
    assert error is not None and "at step 7" in str(error) and ".au_to_v.weight" in str(error)
    assert "--mixed_precision bf16" in str(error) and "no checkpoint had been saved yet" in str(error)
    assert params_error(attach_trainable(load_base_model(tiny_sd).unet, base.family, seed=0), 7,
                        parse_args(["--train_data_dir", "x"]), "no", None) is None
    # python -m training.export of a checkpoint written before these checks existed.
    old = tmp_path / "old-checkpoint"
    save_fineface(to_weights(model), str(old / TRAINABLE_FILE))
    capsys.readouterr()
    assert export_main([str(old), str(tmp_path / "exported.safetensors")]) == 1
    err = capsys.readouterr().err
    # refused where the checkpoint is read (the weight-file check), before anything is written
    assert err.startswith("error: ") and "NaN or infinite values" in err and tensor in err and "Traceback" not in err
    assert not (tmp_path / "exported.safetensors").exists()
    # Finite in fp32 but not in fp16: refused too.
    proc.au_to_v.weight.data[0, 0] = 1e6
    with pytest.raises(TrainingError, match=r"overflow torch.float16 \(first: " + re.escape(tensor)):
        export_weights(to_weights(model), str(tmp_path / "half.safetensors"), {}, dtype=torch.float16)


# -- 7. checked before any model loads --------------------------------------------------------------------

def _bad_folder(tmp_path, kind):
    """Paths for the cases below."""
    if kind == "file":
        (tmp_path / "a-file").write_text("x")
        return tmp_path / "a-file" / "out"
    if kind == "empty-data":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "metadata.jsonl").write_text("")
        return tmp_path / "empty"
    if kind == "not-a-checkpoint":
        (tmp_path / "ckpt").mkdir()
        (tmp_path / "ckpt" / "notes.txt").write_text("x")
        return tmp_path / "ckpt"
    if kind == "not-a-model":
        (tmp_path / "model").mkdir()
        return tmp_path / "model"
    return tmp_path / kind


CASES = {  # name: (arguments replaced or added, message)
    "validation AU outside FineFace's 12": ({"--validation_aus": "neutral; AU7@3"}, "spec 2 of 2 ('AU7@3'): AU7"),
    "infinite learning rate": ({"--learning_rate": "inf"}, "--learning_rate must be a finite number, not inf"),
    "learning rate typo": ({"--learning_rate": "1e4"}, "--learning_rate 10000 must be in (0, 1]"),
    "output folder under a file": ({"--output_dir": "file"}, "a-file is a file, not a folder"),
    "no dataset folder": ({"--train_data_dir": "nowhere"}, "--train_data_dir {p}: no such folder"),
    "empty dataset": ({"--train_data_dir": "empty-data"}, "no usable samples in {p}"),
    "resume target missing": ({"--resume_from_checkpoint": "nowhere"}, "no such folder (looked for {p}"),
    "resume target not a checkpoint": ({"--resume_from_checkpoint": "not-a-checkpoint"},
                                       "{p} is not a complete checkpoint (no fineface_trainable.safetensors"),
    "base model folder missing": ({"--pretrained_model_name_or_path": "nowhere"}, "{p}: no such folder"),
    "base model folder not diffusers": ({"--pretrained_model_name_or_path": "not-a-model"},
                                        "not a diffusers model folder (no scheduler, tokenizer"),
}


@pytest.mark.parametrize("case", CASES)
def test_mistakes_fail_before_the_model_loads(case, data, tmp_path, capsys):
    changes, message = CASES[case]
    args = train_args(UNLOADABLE, data, tmp_path / "out", "--max_train_steps", 1)
    path = None
    for flag, value in changes.items():
        if value in ("file", "empty-data", "not-a-checkpoint", "not-a-model", "nowhere"):
            path = str(_bad_folder(tmp_path, value))
            value = path
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    message = message.format(p=path)
    with pytest.raises((TrainingError, SystemExit)) as err:
        trainer.main(args)
    text = str(err.value) if err.type is TrainingError else capsys.readouterr().err
    assert message in text, text
    assert not (tmp_path / "out").exists()  # nothing written either


def test_valid_options_do_reach_the_model_load(data, tmp_path):
    """The control for the test above: the same command without a mistake gets to loading the base model."""
    with pytest.raises(OSError, match=UNLOADABLE):
        trainer.main(train_args(UNLOADABLE, data, tmp_path / "out", "--max_train_steps", 1))


def test_all_problems_are_listed_at_once_and_a_small_dataset_is_a_warning(data, tmp_path):
    args = parse_args(train_args(str(tmp_path / "no-model"), str(tmp_path / "no-data"), tmp_path / "out"))
    with pytest.raises(TrainingError) as err:
        preflight(args)
    assert str(err.value).startswith("cannot start training:\n  - ")
    assert "no-model: no such folder" in str(err.value) and "no-data: no such folder" in str(err.value)
    plan = preflight(parse_args(train_args(UNLOADABLE, data, tmp_path / "out", "--train_batch_size", 16)))
    assert len(plan.dataset) == 8
    assert any("fewer than one batch (16)" in w for w in plan.warnings), plan.warnings


def test_resuming_with_another_model_shape_is_refused(finished_run, tiny_sd, data):
    with pytest.raises(TrainingError, match=r"trained with --lora_rank 32 \(now 4\)"):
        trainer.main(train_args(UNLOADABLE, data, finished_run, "--resume_from_checkpoint", "latest",
                                "--lora_rank", 4, "--max_train_steps", 3))


# -- 8. checkpoints that survive a kill ------------------------------------------------------------------

# kill point (while saving checkpoint-2), complete checkpoints left, what `latest` skips
KILLS = [("after_tmp_write", [1], "checkpoint-2.partial"), ("after_rename", [1, 2], None),
         ("mid_prune", [2], "checkpoint-1.deleting")]


@pytest.mark.slow
def test_a_kill_while_saving_or_pruning_leaves_the_newest_complete_checkpoint(tiny_sd, data, tmp_path):
    """Real `python -m training.train` processes with --checkpoints_total_limit 1 kill themselves
    (SIGKILL, the checkpoint code's test hook) at each point of saving checkpoint-2 and pruning
    checkpoint-1; `--resume_from_checkpoint latest` then finds the newest complete checkpoint, says
    what it skipped, and continues exactly as an uninterrupted run."""
    common = ("--checkpointing_steps", 1, "--checkpoints_total_limit", 1)
    procs = {}
    try:
        for point, _, _ in KILLS:  # side by side: most of each run is importing
            with open(tmp_path / f"{point}.log", "w") as log:
                procs[point] = subprocess.Popen(
                    trainer_command(train_args(tiny_sd, data, tmp_path / point, "--max_train_steps", 2, *common)),
                    cwd=ROOT, env=subprocess_env(**{KILL_ENV: f"{point}:2"}), stdout=log, stderr=subprocess.STDOUT)
        reference = trainer.main(train_args(tiny_sd, data, tmp_path / "reference", "--max_train_steps", 3, *common))
        for point, proc in procs.items():
            proc.wait(timeout=240)
            assert proc.returncode == -signal.SIGKILL, (point, (tmp_path / f"{point}.log").read_text()[-3000:])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for point, left, skipped in KILLS:
        out = tmp_path / point
        assert [s for s, _ in list_checkpoints(str(out))] == left, point
        step = left[-1]
        if skipped:
            assert (out / skipped).is_dir(), point
        result = trainer.main(train_args(tiny_sd, data, out, "--max_train_steps", 3, *common,
                                         "--resume_from_checkpoint", "latest"))
        assert result["resumed_from"] == str(out / f"checkpoint-{step}") and result["start_step"] == step, point
        assert result["losses"] == pytest.approx(reference["losses"][step:], rel=1e-6), point
        log = (out / "train_log.txt").read_text()
        if skipped:
            assert f"skipped incomplete checkpoint(s) {skipped} (an interrupted" in log, point
        # The resumed run's own save pruned to the limit and cleared the leftovers.
        assert sorted(n for n in os.listdir(out) if n.startswith("checkpoint")) == ["checkpoint-3"], point


# -- 9. one run per output folder ------------------------------------------------------------------------

def test_a_new_run_never_mixes_with_another_runs_files(finished_run, tiny_sd, data, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = snapshot(out)
    new_run = train_args(tiny_sd, data, out, "--max_train_steps", 1, "--checkpointing_steps", 1, "--seed", 5)
    with pytest.raises(TrainingError) as err:
        trainer.main(new_run)
    for text in ("holds another run's files: checkpoint-1/, checkpoint-2/, fineface_run.json, fineface_sd21.safetensors",
                 "--resume_from_checkpoint latest", "--overwrite_output_dir"):
        assert text in str(err.value), str(err.value)
    # Resuming an older checkpoint while newer ones are there would replace them: refused too.
    with pytest.raises(TrainingError, match=r"holds newer checkpoints \(checkpoint-2\)"):
        trainer.main(train_args(tiny_sd, data, out, "--max_train_steps", 3, "--resume_from_checkpoint", "checkpoint-1"))
    with pytest.raises(TrainingError, match="contradict"):
        trainer.main(new_run + ["--overwrite_output_dir", "--resume_from_checkpoint", "latest"])
    assert snapshot(out) == before
    # --overwrite_output_dir: the earlier run's files move, unchanged, into replaced-<date-time>/.
    trainer.main(new_run + ["--overwrite_output_dir"])
    replaced = [n for n in os.listdir(out) if n.startswith("replaced-")]
    # (the lock file of the earlier run stays: empty, it names no run)
    assert len(replaced) == 1 and snapshot(out / replaced[0]) == {f: h for f, h in before.items() if f != RUN_LOCK}
    assert [s for s, _ in list_checkpoints(str(out))] == [1]
    assert '"seed": 5' in (out / "checkpoint-1" / "fineface_run.json").read_text()
    assert "moved the earlier run's checkpoint-1, checkpoint-2" in (out / "train_log.txt").read_text()


# -- 10. damaged checkpoints, a full disk, Ctrl-C ----------------------------------------------------------

def _cut(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside a zip member: the archive opens, its checksum fails
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [("fineface_trainable.safetensors", _cut), ("optimizer.bin", _cut),
                                    ("optimizer.bin", _flip), ("training_random_0.pt", _cut)])
def test_a_damaged_checkpoint_is_named_before_the_model_loads(finished_run, data, tmp_path, damage):
    name, how = damage
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    how(out / "checkpoint-2" / name)
    before = snapshot(out)
    with pytest.raises(TrainingError) as err:  # not the OSError of loading UNLOADABLE: nothing was loaded
        trainer.main(train_args(UNLOADABLE, data, out, "--max_train_steps", 3, "--resume_from_checkpoint", "latest"))
    message = str(err.value)
    assert f"{out / 'checkpoint-2'} is damaged" in message and name in message, message
    assert "move checkpoint-2 out of" in message and "latest then resumes from checkpoint-1" in message
    with pytest.raises(TrainingError, match=f"{name}.*resume from another checkpoint"):
        trainer.main(train_args(UNLOADABLE, data, out, "--max_train_steps", 3, "--resume_from_checkpoint",
                                str(out / "checkpoint-2")))
    assert snapshot(out) == before


def _limit_file_size():
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 2**20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


@pytest.mark.slow
def test_a_failed_checkpoint_write_keeps_the_last_checkpoint_and_says_so(finished_run, tiny_sd, data, tmp_path):
    """A real write failure (RLIMIT_FSIZE: no file over 20 MiB, which binds root too, as a full disk would stop
    optimizer.bin's 33 MB): the run stops with a message, checkpoint-2 is untouched, nothing half-written is
    left, and the same command without the limit goes on."""
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = snapshot(out / "checkpoint-2")
    args = train_args(tiny_sd, data, out, "--max_train_steps", 3, "--checkpointing_steps", 1,
                      "--resume_from_checkpoint", "latest")
    proc = subprocess.run(trainer_command(args), cwd=ROOT, env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"),
                          capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"error: could not write checkpoint-3 in {out}" in proc.stderr and "is the disk full?" in proc.stderr
    assert f"the newest complete checkpoint, {out / 'checkpoint-2'}, is kept" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(out / "checkpoint-2") == before
    assert sorted(n for n in os.listdir(out) if n.startswith("checkpoint")) == ["checkpoint-1", "checkpoint-2"]
    result = trainer.main(args)
    assert result["start_step"] == 2 and result["global_step"] == 3


def test_ctrl_c_keeps_the_checkpoints_and_says_how_to_go_on(tiny_sd, data, tmp_path):
    out = tmp_path / "run"
    args = train_args(tiny_sd, data, out, "--max_train_steps", 3, "--checkpointing_steps", 1)
    proc = subprocess.run(trainer_command(args), cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=subprocess_env(**{KILL_ENV: "after_rename:2", KILL_SIGNAL_ENV: "SIGINT"}))
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "interrupted: the checkpoints saved so far are kept" in proc.stderr and "Traceback" not in proc.stderr
    assert "--resume_from_checkpoint latest" in (out / "train_log.txt").read_text()
    assert [s for s, _ in list_checkpoints(str(out))] == [1, 2]
    result = trainer.main(args + ["--resume_from_checkpoint", "latest"])
    assert result["start_step"] == 2 and result["global_step"] == 3


def test_export_never_replaces_an_existing_file_unless_asked(finished_run, tmp_path, capsys):
    mine = tmp_path / "my_fineface.safetensors"
    mine.write_bytes(b"an earlier export the user keeps")
    assert export_main([str(finished_run / "checkpoint-1"), str(mine)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and mine.read_bytes() == b"an earlier export the user keeps"
    assert export_main([str(finished_run / "checkpoint-1"), str(mine), "--overwrite"]) == 0
    assert "step 1" in load_fineface(str(mine)).source


def test_a_second_run_in_the_same_output_dir_is_refused(tiny_sd, data, tmp_path):
    """Two runs in one folder would remove each other's checkpoint-N.partial and replace or prune each other's
    checkpoints. Another process holds the folder's lock (as a run does, for the whole run): refused before
    anything is written; once it is gone, the same command trains."""
    out = tmp_path / "run"
    hold = (f"import sys\nfrom training.folder_lock import RUN_LOCK, take\nlock = take({str(out)!r}, RUN_LOCK)\n"
            "print('held' if lock else 'busy', flush=True)\nsys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", hold], cwd=ROOT, env=subprocess_env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    args = train_args(tiny_sd, data, out, "--max_train_steps", 1, "--checkpointing_steps", 1)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TrainingError, match="is in use by another training run"):
            trainer.main(args)
        assert os.listdir(out) == [RUN_LOCK]
    finally:
        holder.communicate("", timeout=30)
    assert trainer.main(args)["global_step"] == 1


@pytest.mark.slow
def test_a_validation_grid_that_cannot_be_written_stops_the_run_with_a_message(tiny_sd, data, tmp_path):
    """RLIMIT_FSIZE of 8 KiB stops the 18 KB grid of step 1 (as a full disk would): a message, not PIL's
    traceback, and no grid cut short left behind."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    out = tmp_path / "run"
    args = train_args(tiny_sd, data, out, "--max_train_steps", 2, "--checkpointing_steps", 100, "--validation_steps",
                      1, "--validation_resolution", 32, "--validation_inference_steps", 1)
    proc = subprocess.run(trainer_command(args), cwd=ROOT, env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"),
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"error: could not write the validation grid {out / 'validation' / 'step-000001.png'}" in proc.stderr
    assert "no checkpoint had been saved yet" in proc.stderr and "Traceback" not in proc.stderr
    assert os.listdir(out / "validation") == []


@pytest.mark.slow
def test_final_weights_that_cannot_be_written_leave_the_earlier_ones_and_say_so(finished_run, tiny_sd, data, tmp_path):
    """Resumed at its last step, a finished run only writes its final weights again: with no file over 10 MiB
    allowed (RLIMIT_FSIZE, as a full disk) the 16 MB trainable file fails; a message, nothing changed."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 2**20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = {f: h for f, h in snapshot(out).items() if f != "train_log.txt"}
    args = train_args(tiny_sd, data, out, "--max_train_steps", 2, "--resume_from_checkpoint", "latest")
    proc = subprocess.run(trainer_command(args), cwd=ROOT, env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"),
                          capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"error: could not write the final weights in {out}" in proc.stderr and "Traceback" not in proc.stderr
    assert f"the newest complete checkpoint, {out / 'checkpoint-2'}, is kept" in proc.stderr
    assert {f: h for f, h in snapshot(out).items() if f != "train_log.txt"} == before
