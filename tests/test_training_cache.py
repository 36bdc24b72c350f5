"""training/cache: the latent cache. A run from the cache equals the run without it (losses per step,
trained weights); a cache for another resolution, crop, flip or VAE is refused; a damaged shard is
refused, never trained on; an interrupted build resumes; several processes build one cache.

Real builds and runs (in this process, or `python -m training.cache` subprocesses for the kill) on
the tiny SD 2.1-architecture model of tests/support/tiny_sd.py; nothing is downloaded.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from diffusers import AutoencoderKL
from safetensors import safe_open
from safetensors.torch import load_file

from training import train as trainer
from training.cache.__main__ import main as cache_main
from training.checkpoints import KILL_ENV, KILL_SIGNAL_ENV
from training.errors import TrainingError

from tests.support.training_runs import ROOT, run_two_processes, subprocess_env, train_args, write_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny_sd, data: tests/conftest.py

SHARDS = ("--cache_shard_size", 3, "--cache_batch_size", 2)  # 8 images, 9 captions: several shards of each


def build(tiny_sd, data, cache, *extra) -> int:
    return cache_main(["build", *train_args(tiny_sd, data, "unused", "--latent_cache", cache, *SHARDS, *extra)])


def shard_files(cache) -> dict:
    """shard name -> sha256 of its tensors and metadata (not of its bytes: safetensors may order the
    header's entries differently from one write to the next)."""
    found = {}
    for name in sorted(os.listdir(cache)):
        if name.endswith(".safetensors"):
            h = hashlib.sha256()
            with safe_open(str(cache / name), framework="pt") as f:
                h.update(json.dumps(f.metadata(), sort_keys=True).encode())
                for key in sorted(f.keys()):
                    h.update(key.encode() + f.get_tensor(key).numpy().tobytes())
            found[name] = h.hexdigest()
    return found


def stamps(cache) -> dict:
    """shard name -> (inode, mtime): unchanged when a shard was kept, not written again."""
    return {n: ((cache / n).stat().st_ino, (cache / n).stat().st_mtime_ns) for n in sorted(os.listdir(cache))
            if n.endswith(".safetensors")}


def no_run_outputs(out) -> bool:
    return not os.path.isdir(out) or not any(n.startswith(("checkpoint-", "fineface_")) for n in os.listdir(out))


# -- the same training ----------------------------------------------------------------------------------

def _prediction(tiny_sd, export=None):
    """The UNet's noise prediction on a fixed batch, with FineFace from ``export`` (None: the base UNet)."""
    from diffusers import UNet2DConditionModel

    from fineface_core.weightfiles.loading import load_weights
    from fineface_core.reference import attach_fineface

    g = torch.Generator().manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(tiny_sd, subfolder="unet")
    x, text = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 77, 1024, generator=g)
    aus, t = torch.rand(2, 12, generator=g) * 5, torch.tensor([300, 700])
    kwargs = {}
    if export:
        weights = load_weights(export)
        attach_fineface(unet, weights)
        kwargs = {"cross_attention_kwargs": {"au_embedding": weights.encode(aus), "au_scale": 1.0}}
    with torch.no_grad():
        return unet(x, t, text, **kwargs).sample


def test_a_run_from_the_cache_equals_the_run_without_it(tiny_sd, data, tmp_path, capsys):
    """Flips, caption dropout and offset noise on, two epochs: every random draw must line up."""
    extra = ("--max_train_steps", 6, "--checkpointing_steps", 6, "--random_flip", "--caption_dropout_prob", 0.5,
             "--noise_offset", 0.1)
    plain = trainer.main(train_args(tiny_sd, data, tmp_path / "plain", *extra))
    cache = tmp_path / "cache"
    cached = trainer.main(train_args(tiny_sd, data, tmp_path / "cached", *extra, "--latent_cache", cache, *SHARDS))
    assert "training from the latent cache" in capsys.readouterr().out
    assert len(cached["losses"]) == 6
    # The cache is built in other batches than training's (a CPU convolution rounds differently for one
    # image than for two), so the numbers agree to float rounding, not bit for bit.
    assert cached["losses"] == pytest.approx(plain["losses"], rel=1e-5)
    # Weights: AdamW moves a weight whose gradient is ~0 by up to lr whatever the sign of that ~0, so
    # they agree to lr (1e-3); what they do agrees to a small fraction of what training changed.
    a, b = load_file(plain["export"]), load_file(cached["export"])
    assert a.keys() == b.keys() and max((b[n] - a[n]).abs().max().item() for n in a) < 1e-3
    base, pa, pb = _prediction(tiny_sd), _prediction(tiny_sd, plain["export"]), _prediction(tiny_sd, cached["export"])
    assert (pb - pa).norm() < 0.01 * (pa - base).norm()
    # Both orientations were encoded: the flipped latent is not the mirrored one (a VAE is not mirror-exact).
    manifest = json.loads((cache / "manifest.json").read_text())
    assert len(manifest["images"]) == 8 and len(manifest["captions"]) == 9  # 8 captions and the empty one
    with safe_open(str(cache / "latents-00000.safetensors"), framework="pt") as f:
        mean, flipped = f.get_tensor("mean"), f.get_tensor("mean_flipped")
    assert not torch.allclose(flipped, mean.flip(-1), atol=1e-4)
    # Without the captions in the cache (the text encoder runs every step): the same run again.
    no_text = trainer.main(train_args(tiny_sd, data, tmp_path / "no_text", *extra, "--latent_cache",
                                      tmp_path / "latents_only", "--no-cache_text", *SHARDS))
    assert no_text["losses"] == pytest.approx(plain["losses"], rel=1e-5)
    assert not json.loads((tmp_path / "latents_only" / "manifest.json").read_text())["captions"]
    # A second run reads the cache as it is: nothing is computed again.
    before = stamps(cache)
    again = trainer.main(train_args(tiny_sd, data, tmp_path / "again", *extra, "--latent_cache", cache, *SHARDS))
    assert again["losses"] == cached["losses"] and stamps(cache) == before


def test_flips_drawn_in_data_loader_workers_line_up_too(tiny_sd, data, tmp_path):
    """Worker processes draw the flips from their own seeded generators; the cached dataset must draw
    them there alike (and open its shards in each worker)."""
    extra = ("--max_train_steps", 3, "--checkpointing_steps", 3, "--random_flip", "--dataloader_num_workers", 2)
    plain = trainer.main(train_args(tiny_sd, data, tmp_path / "plain", *extra))
    cached = trainer.main(train_args(tiny_sd, data, tmp_path / "cached", *extra, "--latent_cache", tmp_path / "c",
                                     *SHARDS))
    assert cached["losses"] == pytest.approx(plain["losses"], rel=1e-5)


# -- settings and models that do not match --------------------------------------------------------------

def test_another_resolution_crop_flip_or_vae_is_refused(tiny_sd, data, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert build(tiny_sd, data, cache) == 0
    before = shard_files(cache)

    def refused(*extra, base=tiny_sd):
        out = tmp_path / "out"
        with pytest.raises(TrainingError) as exc:
            trainer.main(train_args(base, data, out, "--max_train_steps", 1, "--latent_cache", cache, *extra))
        assert no_run_outputs(out) and shard_files(cache) == before
        return str(exc.value)

    assert "--resolution 40 (the cache: 32)" in refused("--resolution", 40)
    assert "--random_flip (the cache holds no flipped latents)" in refused("--random_flip")
    # Another precision: its own process (accelerate keeps one precision per process).
    done = subprocess.run([sys.executable, "-m", "training.train", *train_args(
        tiny_sd, data, tmp_path / "out", "--max_train_steps", 1, "--latent_cache", cache, "--mixed_precision", "bf16")],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "compute in bfloat16 (the cache was built in float32" in done.stderr
    assert "Traceback" not in done.stderr and no_run_outputs(tmp_path / "out")
    with pytest.raises(SystemExit):
        trainer.main(train_args(tiny_sd, data, tmp_path / "out", "--latent_cache", cache, "--no-center_crop"))
    assert "--latent_cache needs --center_crop" in capsys.readouterr().err

    # The same model folder with one VAE weight changed.
    other = tmp_path / "other_vae"
    shutil.copytree(tiny_sd, other)
    vae = AutoencoderKL.from_pretrained(tiny_sd, subfolder="vae")
    with torch.no_grad():
        vae.encoder.conv_in.weight[0, 0, 0, 0] += 1e-3
    vae.save_pretrained(other / "vae")
    message = refused(base=str(other))
    assert "the VAE's weights or config differ" in message and "text encoder" not in message
    assert "--rebuild_latent_cache" in message

    # Asked for, the cache is built anew for the new VAE, and the run trains.
    run = trainer.main(train_args(str(other), data, tmp_path / "rebuilt", "--max_train_steps", 1, "--latent_cache",
                                  cache, "--rebuild_latent_cache", *SHARDS))
    assert run["global_step"] == 1 and shard_files(cache) != before


def test_a_grown_dataset_only_adds_shards(tiny_sd, data, tmp_path):
    cache, grown = tmp_path / "cache", tmp_path / "grown"
    assert build(tiny_sd, data, cache, "--random_flip") == 0
    before = stamps(cache)
    write_dataset(str(grown), n=10, seed=0)  # the same 8 images (same bytes) and 2 more
    assert build(tiny_sd, str(grown), cache) == 0  # without --random_flip: a flipped cache serves it
    after = stamps(cache)
    assert {n: after[n] for n in before} == before
    assert sorted(set(after) - set(before)) == ["latents-00003.safetensors", "text-00003.safetensors"]
    assert len(json.loads((cache / "manifest.json").read_text())["images"]) == 10
    with safe_open(str(cache / "latents-00003.safetensors"), framework="pt") as f:  # still a flipped cache
        assert "mean_flipped" in f.keys()


# -- damaged shards ---------------------------------------------------------------------------------------

def _flip_a_byte(path):
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # in the tensor data, after the header: the file still parses
    path.write_bytes(bytes(raw))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _bad_header(path):
    raw = path.read_bytes()
    path.write_bytes(b"\xff" * 8 + raw[8:])


@pytest.mark.parametrize("damage", [_flip_a_byte, _truncate, _bad_header])
def test_a_damaged_shard_is_refused_and_never_trained_on(tiny_sd, data, tmp_path, damage):
    cache = tmp_path / "cache"
    assert build(tiny_sd, data, cache) == 0
    intact = shard_files(cache)
    damage(cache / "latents-00001.safetensors")
    out = tmp_path / "out"
    with pytest.raises(TrainingError) as exc:
        trainer.main(train_args(tiny_sd, data, out, "--max_train_steps", 1, "--latent_cache", cache))
    message = str(exc.value)
    assert "latents-00001.safetensors" in message and "not trained on" in message
    assert "--rebuild_latent_cache" in message and "latents-00000" not in message
    assert no_run_outputs(out)
    assert cache_main(["verify", str(cache)]) == 1
    # --rebuild_latent_cache computes that shard again (under a new name) and keeps the others.
    before = stamps(cache)
    run = trainer.main(train_args(tiny_sd, data, tmp_path / "out2", "--max_train_steps", 1, "--latent_cache", cache,
                                  "--rebuild_latent_cache", *SHARDS))
    assert run["global_step"] == 1
    now = shard_files(cache)
    assert "latents-00001.safetensors" not in now
    assert {n: h for n, h in now.items() if n in before} == {n: intact[n] for n in before if n in now}
    assert now["latents-00003.safetensors"] == intact["latents-00001.safetensors"]  # the same rows, recomputed
    assert cache_main(["verify", str(cache)]) == 0


# -- building -------------------------------------------------------------------------------------------------

def test_an_interrupted_build_resumes_where_it_stopped(tiny_sd, data, tmp_path):
    cache, reference = tmp_path / "cache", tmp_path / "reference"
    command = [sys.executable, "-m", "training.cache", "build",
               *train_args(tiny_sd, data, "unused", "--latent_cache", cache, *SHARDS)]
    proc = subprocess.run(command, cwd=ROOT, env=subprocess_env(**{KILL_ENV: "cache_shard:2"}), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (cache / "manifest.json").exists()  # unfinished: no run would take it
    kept = stamps(cache)
    assert sorted(kept) == ["latents-00000.safetensors", "latents-00001.safetensors", "latents-00002.safetensors"]
    assert cache_main(["verify", str(cache)]) == 1  # "holds no latent cache (no manifest.json ...)"
    assert build(tiny_sd, data, cache) == 0
    resumed = stamps(cache)
    assert {n: resumed[n] for n in kept} == kept  # the shards done before the kill were not computed again
    assert build(tiny_sd, data, reference) == 0
    assert shard_files(cache) == shard_files(reference)
    assert _entries(cache) == _entries(reference)


def _entries(cache) -> dict:
    """The manifest without the shards' checksums (which follow their header's byte order)."""
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["shards"] = {n: s["kind"] for n, s in manifest["shards"].items()}
    return manifest


@pytest.mark.slow
def test_two_processes_build_the_same_cache_as_one(tiny_sd, data, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert build(tiny_sd, data, one) == 0
    out = run_two_processes("training.cache", ["build", *train_args(tiny_sd, data, "unused", "--latent_cache", two,
                                                                 *SHARDS)], timeout=300, what="the two-process build")
    assert "8 images, 9 captions, 6 shards" in out
    assert shard_files(two) == shard_files(one)


# -- hostile folders, writers and images ----------------------------------------------------------------------

def test_a_damaged_or_newer_manifest_is_named_and_rebuild_replaces_it(tiny_sd, data, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert build(tiny_sd, data, cache) == 0
    intact = shard_files(cache)
    manifest = json.loads((cache / "manifest.json").read_text())
    # Written by a newer version of this code, whose settings this one does not know.
    (cache / "manifest.json").write_text(json.dumps({**manifest, "settings": {"format": "fineface-latent-cache/2",
                                                                              "pixels": 32}}))
    capsys.readouterr()
    assert build(tiny_sd, data, cache) == 1
    err = capsys.readouterr().err
    assert "the cache format 'fineface-latent-cache/2' (this code reads 'fineface-latent-cache/1')" in err
    assert "--rebuild_latent_cache" in err and shard_files(cache) == intact
    # Cut short: named, and --rebuild_latent_cache (which the message advises) does replace it.
    (cache / "manifest.json").write_text(json.dumps(manifest)[:40])
    assert build(tiny_sd, data, cache) == 1
    err = capsys.readouterr().err
    assert "manifest.json is unreadable" in err and "build it again with --rebuild_latent_cache" in err
    assert build(tiny_sd, data, cache, "--rebuild_latent_cache") == 0
    assert shard_files(cache) == intact and cache_main(["verify", str(cache)]) == 0


def test_a_second_builder_of_the_same_folder_is_refused(tiny_sd, data, tmp_path, capsys):
    """Two builders of one folder would write the same shards' .partial files into each other. Another
    process holds the folder's lock (as a build does, for the whole build): refused, nothing written."""
    cache = tmp_path / "cache"
    cache.mkdir()
    hold = (f"import sys\nfrom training.folder_lock import CACHE_LOCK, take\nlock = take({str(cache)!r}, CACHE_LOCK)\n"
            "print('held' if lock else 'busy', flush=True)\nsys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", hold], cwd=ROOT, env=subprocess_env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert build(tiny_sd, data, cache) == 1
        err = capsys.readouterr().err
        assert "is being built or checked by another process" in err and "another --latent_cache folder" in err
        with pytest.raises(TrainingError, match="being built or checked by another process"):
            trainer.main(train_args(tiny_sd, data, tmp_path / "out", "--max_train_steps", 1, "--latent_cache", cache))
        assert os.listdir(cache) == ["build.lock"] and no_run_outputs(tmp_path / "out")
    finally:
        holder.communicate("", timeout=30)
    assert build(tiny_sd, data, cache) == 0  # the other process is done: the lock is free


def test_a_ctrl_c_during_the_build_keeps_the_shards_and_says_so(tiny_sd, data, tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "training.cache", "build",
               *train_args(tiny_sd, data, "unused", "--latent_cache", cache, *SHARDS)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=subprocess_env(**{KILL_ENV: "cache_shard:1", KILL_SIGNAL_ENV: "SIGINT"}))
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert "interrupted: the shards finished so far are kept" in proc.stderr and "Traceback" not in proc.stderr
    kept = stamps(cache)
    assert sorted(kept) == ["latents-00000.safetensors", "latents-00001.safetensors"]
    assert build(tiny_sd, data, cache) == 0 and {n: stamps(cache)[n] for n in kept} == kept


def test_16_bit_grayscale_images_are_scaled_not_clipped_to_white(tiny_sd, tmp_path):
    """PIL's convert("RGB") clips a 16-bit image's values at 255: it would train as white. Its latent
    must be its 8-bit twin's."""
    import numpy as np
    from PIL import Image

    from fineface_core.aus import AU_ORDER
    from training.data.generic import write_metadata

    folder = tmp_path / "data"
    folder.mkdir()
    wide = (np.random.default_rng(0).integers(0, 256, (32, 32)) * 257).astype(np.uint16)
    Image.fromarray(wide).save(folder / "wide.png")  # mode I;16
    Image.fromarray((wide // 257).astype(np.uint8)).save(folder / "narrow.png")  # mode L
    assert Image.open(folder / "wide.png").mode.startswith("I")
    write_metadata(str(folder), [{"file": n, "caption": "a face", **{au: 1.0 for au in AU_ORDER}}
                                 for n in ("wide.png", "narrow.png")])
    cache = tmp_path / "cache"
    assert build(tiny_sd, str(folder), cache) == 0
    manifest = json.loads((cache / "manifest.json").read_text())
    assert len(manifest["images"]) == 2  # two files, two entries (keys are the files' contents)
    from training.cache import LatentCache

    cached = LatentCache(str(cache), manifest)
    (a, _), (b, _) = (cached.latent(key) for key in manifest["images"])
    assert torch.allclose(a, b, atol=1e-5)


def test_another_tools_manifest_json_is_never_written_over(tiny_sd, data, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"name": "my photos"}')
    assert build(tiny_sd, data, folder, "--rebuild_latent_cache") == 1
    assert "holds a manifest.json that is not a latent cache's" in capsys.readouterr().err
    assert (folder / "manifest.json").read_text() == '{"name": "my photos"}'


def _limit_file_size():
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_failed_shard_write_is_named_and_the_build_goes_on_later(tiny_sd, data, tmp_path):
    """A real write failure (RLIMIT_FSIZE: no file over 64 KiB, which binds root too, as a full disk would
    stop a text shard of ~300 KiB): a message instead of a traceback, no .partial file taking the space,
    the latent shards kept for the next build."""
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "training.cache", "build",
               *train_args(tiny_sd, data, "unused", "--latent_cache", cache, *SHARDS)]
    proc = subprocess.run(command, cwd=ROOT, env=subprocess_env(PYTHONDONTWRITEBYTECODE="1"), capture_output=True,
                          text=True, timeout=300, preexec_fn=_limit_file_size)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"error: could not write {cache / 'text-00000.safetensors'}" in proc.stderr
    assert "is the disk full?" in proc.stderr and "Traceback" not in proc.stderr
    assert not [n for n in os.listdir(cache) if n.endswith(".partial")]
    kept = stamps(cache)
    assert sorted(kept) == ["latents-00000.safetensors", "latents-00001.safetensors", "latents-00002.safetensors"]
    assert build(tiny_sd, data, cache) == 0 and {n: stamps(cache)[n] for n in kept} == kept
