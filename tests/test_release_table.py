"""The official releases are one table (fineface_core/weightfiles/releases.py): every other module formats
its file names, labels and addresses from it, and a release without a hub download is one row too."""
from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from fineface_core.errors import WeightFileError
from fineface_core.weightfiles import releases
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.official import load_official
from fineface_core.weightfiles.releases import RELEASES, Release

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_release_file_names_are_written_in_one_module():
    names = sorted(releases.release_file_names()) + [releases.HUB_REPO]
    assert "au_encoder.ckpt" in names and "sd15_attn_processors.ckpt" in names
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=REPO, capture_output=True, text=True, check=True)
    holders = {}
    for path in tracked.stdout.split():
        if path.startswith("tests/") or not os.path.isfile(os.path.join(REPO, path)):
            continue
        with open(os.path.join(REPO, path), encoding="utf-8") as f:
            text = f.read()
        for name in names:
            if name in text:
                holders.setdefault(path, []).append(name)
    assert set(holders) == {"fineface_core/weightfiles/releases.py"}, holders


def test_every_message_lists_every_release(tmp_path):
    (tmp_path / "one.ckpt").write_bytes(b"")
    with pytest.raises(WeightFileError) as err:
        load_weights(str(tmp_path / "one.ckpt"))
    with pytest.raises(WeightFileError) as missing:
        load_official(str(tmp_path))
    for release in RELEASES.values():
        for name in release.files:
            assert name in str(err.value) and name in str(missing.value)
        assert release.label in str(err.value)


def test_a_release_without_a_hub_download_is_one_row(monkeypatch):
    """A planned release with no hub repo: its messages say so instead of naming an address it does not have."""
    sdxl = Release("sd21", "SDXL (test row)", "sdxl_au_encoder.ckpt", "sdxl_attn_processors.ckpt", None, 64, hub_repo=None)
    assert sdxl.page is None and sdxl.download_url(sdxl.encoder_file) is None
    assert releases.download_source("sdxl_au_encoder.ckpt") != sdxl.where  # not a row yet
    monkeypatch.setitem(RELEASES, "sdxl", sdxl)
    assert releases.download_source("sdxl_au_encoder.ckpt") == sdxl.where == "the SDXL (test row) release's publisher"
    assert "sdxl_attn_processors.ckpt for SDXL (test row)" in releases.all_releases_text()
    assert ("sdxl_au_encoder.ckpt", sdxl) in releases.part_files("au_encoder")
    assert all(r is not sdxl for _, r in releases.part_files("lora"))  # it has no LoRA
    with pytest.raises(dataclasses.FrozenInstanceError):
        sdxl.label = "changed"  # rows are facts, not settings
