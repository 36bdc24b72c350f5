"""models/fineface and models/libreface in ComfyUI's real folder_paths: registered once when the pack is imported
(nodes/model_folders.py), and by the same file in the headless runner, which loads it from its path."""
import os

import pytest

from tests.support import comfy_env
from workflows import aus_from_photo

NAMES = ("fineface", "libreface")


@pytest.fixture
def folder_paths(registry, monkeypatch):
    """ComfyUI's folder_paths, its two entries for the pack's folders put back after the test."""
    import folder_paths

    for name in NAMES:
        if name in folder_paths.folder_names_and_paths:
            monkeypatch.setitem(folder_paths.folder_names_and_paths, name, folder_paths.folder_names_and_paths[name])
    yield folder_paths
    for name in NAMES:
        getattr(folder_paths, "filename_list_cache", {}).pop(name, None)


def test_importing_the_pack_registers_both_folders_with_their_file_kinds(folder_paths):
    module = comfy_env.pack_module("nodes.model_folders")
    for name in NAMES:
        paths, kinds = folder_paths.folder_names_and_paths[name]
        assert os.path.join(folder_paths.models_dir, name) in paths
        assert module.FOLDERS[name] <= kinds
    assert ".ckpt" in module.FOLDERS["fineface"] and ".pt" in module.FOLDERS["libreface"]


def test_a_folder_from_extra_model_paths_keeps_its_path_and_gets_the_file_kinds(folder_paths, monkeypatch, tmp_path):
    module = comfy_env.pack_module("nodes.model_folders")
    monkeypatch.delitem(folder_paths.folder_names_and_paths, "libreface", raising=False)
    folder_paths.add_model_folder_path("libreface", str(tmp_path))  # as ComfyUI reads extra_model_paths.yaml
    (tmp_path / "resnet.pt").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    module.register()
    paths, kinds = folder_paths.folder_names_and_paths["libreface"]
    assert paths == [str(tmp_path)] and module.FOLDERS["libreface"] <= kinds
    assert folder_paths.get_filename_list("libreface") == ["resnet.pt"]


def test_a_folder_gone_from_folder_paths_is_registered_again_where_it_is_used(folder_paths, monkeypatch):
    """The headless runner puts folder_paths back as it found it after a render; the pack stays imported."""
    module = comfy_env.pack_module("nodes.model_folders")
    for name in NAMES:
        monkeypatch.delitem(folder_paths.folder_names_and_paths, name, raising=False)
        assert module.folders(name) == [os.path.join(folder_paths.models_dir, name)]
        assert folder_paths.folder_names_and_paths[name][1] == set(module.FOLDERS[name])


def test_the_headless_runner_uses_the_pack_s_own_file(folder_paths, monkeypatch):
    runner = aus_from_photo.model_folders()
    pack = comfy_env.pack_module("nodes.model_folders")
    assert os.path.samefile(runner.__file__, pack.__file__) and runner.FOLDERS == pack.FOLDERS
    monkeypatch.delitem(folder_paths.folder_names_and_paths, "libreface", raising=False)
    assert runner.folders("libreface") == pack.folders("libreface") == [os.path.join(folder_paths.models_dir, "libreface")]
