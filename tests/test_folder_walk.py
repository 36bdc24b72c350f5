"""find_weights (behind the loader's list, ComfyUI's /object_info and the headless runner) on model
folders full of symlinks: loops end, linked folders are listed, unreadable folders are skipped."""
import logging
import os
import time

import pytest

from fineface_core.files.folder_walk import MAX_DEPTH
from fineface_core.weightfiles.loading import find_weights


def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").close()


def test_symlink_loops_end_and_linked_folders_are_listed_once(tmp_path):
    root = tmp_path / "models" / "fineface"
    touch(root / "model.safetensors")
    touch(root / "sub" / "other.safetensors")
    for name in ("au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors"):
        touch(root / "release" / name)
    touch(tmp_path / "models" / "checkpoints" / "sd21.safetensors")  # beside the root: not FineFace's folder
    touch(tmp_path / "drive" / "ext.safetensors")
    os.symlink(".", root / "loop1")
    os.symlink(".", root / "loop2")
    os.symlink("..", root / "sub" / "up")  # back to the root
    os.symlink("..", root / "parent")  # above the root
    os.symlink(tmp_path / "drive", root / "linked")  # a model folder on another drive
    os.symlink(tmp_path / "drive", root / "sub" / "linked_again")

    start = time.perf_counter()
    entries = find_weights([str(root)])
    took = time.perf_counter() - start
    print(f"find_weights over two loops and two parent links: {took * 1000:.1f} ms")
    assert took < 5
    assert set(entries) == {"model.safetensors", "sub/other.safetensors", "linked/ext.safetensors",
                            "release/[official SD 2.1]"}
    real = [os.path.realpath(path) for path, _ in entries.values()]
    assert len(real) == len(set(real))
    assert entries["linked/ext.safetensors"][0] == str(root / "linked" / "ext.safetensors")
    assert entries["release/[official SD 2.1]"] == (str(root / "release"), "sd21")


def test_a_symlinked_root_is_listed(tmp_path):
    touch(tmp_path / "real" / "a" / "m.safetensors")
    os.symlink(tmp_path / "real", tmp_path / "fineface")
    os.symlink("../..", tmp_path / "real" / "a" / "loop")
    assert set(find_weights([str(tmp_path / "fineface")])) == {"a/m.safetensors"}


def test_an_unreadable_folder_is_skipped_with_a_warning(tmp_path, caplog):
    # A real failure that holds for root too: a folder whose full path is longer than the OS accepts
    # (PATH_MAX, 4096 bytes), inside a root whose own path still fits.
    root = str(tmp_path)
    while len(root) < 3900:
        root = os.path.join(root, "d" * min(250, 3900 - len(root)))
    os.makedirs(root)
    touch(os.path.join(root, "kept.safetensors"))
    fd = os.open(root, os.O_RDONLY)
    try:
        os.mkdir("s" * 250, dir_fd=fd)
    finally:
        os.close(fd)
    with caplog.at_level(logging.WARNING, logger="fineface_core.files.folder_walk"):
        entries = find_weights([root])
    assert list(entries) == ["kept.safetensors"]
    assert any("cannot be read" in r.getMessage() and r.getMessage().count("s" * 250) == 1 for r in caplog.records)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway (the test above covers root)")
def test_a_folder_without_permissions_is_skipped_with_a_warning(tmp_path, caplog):
    touch(tmp_path / "kept.safetensors")
    touch(tmp_path / "locked" / "hidden.safetensors")
    os.chmod(tmp_path / "locked", 0)
    try:
        with caplog.at_level(logging.WARNING, logger="fineface_core.files.folder_walk"):
            entries = find_weights([str(tmp_path)])
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert list(entries) == ["kept.safetensors"]
    assert any("locked" in r.getMessage() and "cannot be read" in r.getMessage() for r in caplog.records)


def test_dangling_links_and_deep_folders_are_reported(tmp_path, caplog):
    touch(tmp_path / "m.safetensors")
    os.symlink(tmp_path / "unmounted_drive", tmp_path / "models_on_drive")
    os.symlink(tmp_path / "gone.safetensors", tmp_path / "x.safetensors")
    deep = tmp_path.joinpath(*[f"l{i}" for i in range(1, MAX_DEPTH + 2)])
    touch(deep.parent / "deepest_listed.safetensors")  # MAX_DEPTH levels down
    touch(deep / "too_deep.safetensors")
    with caplog.at_level(logging.WARNING, logger="fineface_core.files.folder_walk"):
        entries = find_weights([str(tmp_path)])
    assert set(entries) == {"m.safetensors", "/".join(f"l{i}" for i in range(1, MAX_DEPTH + 1)) + "/deepest_listed.safetensors"}
    messages = [r.getMessage() for r in caplog.records]
    assert any("models_on_drive" in m and "does not exist" in m for m in messages)
    assert any("x.safetensors" in m and "does not exist" in m for m in messages)
    assert any(f"more than {MAX_DEPTH} levels deep" in m for m in messages)
