"""The shipped workflows' input photos: every photo a Load Image node names ships in input/, holds the faces its
workflow needs, and is in ComfyUI's input folder once the server has started, never over a file already there."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from fineface_core.faces.detect import find_faces
from workflows import SHIPPED

from tests.support import comfy_env
from tests.support.comfy_env import comfy_path
from tests.support.comfy_server import ComfyServer
from tests.support.shipped_workflows import load_shipped

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACES = {"fineface_portrait.png": 1, "fineface_two_people.png": 2}  # the two-expressions photo: face 0 and face 1


@pytest.fixture(scope="module")
def samples(registry):
    return comfy_env.pack_module("nodes.sample_photos")


def named_photos() -> set[str]:
    return {n["widgets_values"][0] for name in SHIPPED for n in load_shipped(name)["nodes"] if n["type"] == "LoadImage"}


def test_every_photo_a_workflow_names_ships(samples):
    assert named_photos() and named_photos() <= set(samples.sample_names())
    assert set(samples.sample_names()) == set(FACES)


@pytest.mark.parametrize("name", sorted(FACES))
def test_each_photo_holds_the_faces_its_workflow_needs(name):
    with Image.open(os.path.join(ROOT, "input", name)) as image:
        assert max(image.size) <= 512  # small: the pack ships them
        faces = find_faces(np.asarray(image.convert("RGB")))
    assert len(faces) == FACES[name]


def test_install_copies_what_is_missing_and_never_replaces_a_file(samples, tmp_path):
    mine = tmp_path / "fineface_two_people.png"
    mine.write_bytes(b"the user's own file")
    assert samples.install(str(tmp_path)) == ["fineface_portrait.png"]
    assert mine.read_bytes() == b"the user's own file"
    with open(os.path.join(ROOT, "input", "fineface_portrait.png"), "rb") as f:
        assert (tmp_path / "fineface_portrait.png").read_bytes() == f.read()
    assert samples.install(str(tmp_path)) == []
    assert sorted(os.listdir(tmp_path)) == sorted(FACES)  # no temporary file left


def test_loading_the_pack_outside_a_server_copies_nothing(registry):
    import folder_paths

    assert not set(FACES) & set(os.listdir(folder_paths.get_input_directory()))


@pytest.mark.slow
def test_the_server_puts_them_in_its_input_folder():
    server = ComfyServer(comfy_path()).start()
    try:
        assert set(FACES) <= set(os.listdir(os.path.join(server.folder, "input")))
        assert "FineFace: copied the shipped workflows' sample photos" in server.log_text()
    finally:
        server.stop()
