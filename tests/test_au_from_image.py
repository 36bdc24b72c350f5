"""AU From Image, as ComfyUI runs it (the pack loaded as a custom node, its estimator in models/libreface),
and AU Vector's base input that its AUs can be adjusted on."""
import os

import cv2
import numpy as np
import pytest
import torch

from fineface_core.faces.libreface import estimate, load_estimator
from fineface_core.aus import ACTION_UNITS, parse_aus
from fineface_core.conditioning import AUVectors
from fineface_core.errors import AUSpecError, FineFaceError, WeightFileError
from fineface_core.faces import detect as fd
from fineface_core.faces.photo_aus import as_training_labels
from tests.support import comfy_env
from tests.support.libreface_files import (ASTRONAUT_EYES, ASTRONAUT_MOUTH, as_image_batch, skimage_photo,
                                           write_libreface_checkpoint)
from workflows.api_format import widget_layout

SLIDERS = {au.code: 0.0 for au in ACTION_UNITS}


@pytest.fixture(scope="module")
def libreface_dir(registry, tmp_path_factory):
    """models/libreface with resnet.pt (random weights, LibreFace's layout) and a file in a subfolder."""
    import folder_paths

    folder = tmp_path_factory.mktemp("models") / "libreface"
    write_libreface_checkpoint(str(folder / "resnet.pt"), seed=7)
    write_libreface_checkpoint(str(folder / "mine" / "other.pt"), seed=8, detection_head=True)
    saved = folder_paths.folder_names_and_paths.get("libreface")
    folder_paths.folder_names_and_paths["libreface"] = ([str(folder)], {".pt", ".pth", ".safetensors"})
    getattr(folder_paths, "filename_list_cache", {}).pop("libreface", None)
    yield folder
    if saved is None:
        folder_paths.folder_names_and_paths.pop("libreface", None)
    else:
        folder_paths.folder_names_and_paths["libreface"] = saved
    getattr(folder_paths, "filename_list_cache", {}).pop("libreface", None)


@pytest.fixture(scope="module")
def node(registry, libreface_dir):
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceAUFromImage"]
    read = getattr(cls(), cls.FUNCTION)
    return cls, lambda **inputs: read(**inputs)["result"]  # the node's outputs (its "ui" part: tests/test_web_node_text.py)


@pytest.fixture(scope="module")
def astronaut():
    return skimage_photo("astronaut.png")


def test_menu_lists_libreface_s_files_first_and_what_the_folder_holds(node, libreface_dir):
    cls, _ = node
    menu = cls.INPUT_TYPES()["required"]["estimator"][0]
    assert menu[:2] == ["resnet.pt", "combined_resnet.pt"] and os.path.join("mine", "other.pt") in menu
    assert cls.VALIDATE_INPUTS(estimator="resnet.pt") is True
    message = cls.VALIDATE_INPUTS(estimator="combined_resnet.pt")  # listed, not downloaded yet
    assert "not found" in message and str(libreface_dir) in message and "docs/copy_expression.md" in message
    assert list(cls.INPUT_TYPES()["required"]) == ["images", "estimator", "which_face", "index", "no_face", "intensities"]


def test_reads_one_vector_per_photo_with_the_crop_and_mask_it_read(node, libreface_dir, astronaut):
    _, read = node
    flipped = astronaut[:, ::-1].copy()
    aus, label, face, mask, all_masks, found = read(images=as_image_batch(astronaut, flipped), estimator="resnet.pt",
                                                    which_face="largest", index=0, no_face="error",
                                                    intensities="LibreFace raw")
    assert isinstance(aus, AUVectors) and aus.values.shape == (2, 12)
    assert torch.isfinite(aus.values).all() and aus.values.min() >= 0 and aus.values.max() <= 5
    assert label.split("\n") == list(aus.labels) and all(lab.startswith("AU1@") for lab in aus.labels)
    # the face output is exactly what the estimator read: 224 x 224, 0..1
    assert face.shape == (2, 224, 224, 3) and 0 <= face.min() and face.max() <= 1
    est = load_estimator(str(libreface_dir / "resnet.pt"))
    assert torch.allclose(estimate(est, face), aus.values, atol=1e-5)
    (astro_face,) = fd.find_faces(astronaut)
    want = fd.centre_crop(fd.aligned_face(astronaut, astro_face.quad())).astype(np.float32) / 255
    assert np.abs(face[0].numpy() - want).max() < 1e-6
    # masks at the image's size, on the face (mirrored in the mirrored photo)
    assert mask.shape == (2, 512, 512) and all_masks.shape == (2, 512, 512)
    for x, y in (*ASTRONAUT_EYES, ASTRONAUT_MOUTH):
        assert mask[0, y, x] == 1 and mask[1, y, 511 - x] == 1
    assert mask[0, 500, 10] == 0 and 0.08 < mask[0].mean() < 0.2
    assert torch.equal(all_masks, mask)  # one face per photo
    assert found.split("\n")[0].startswith("image 1: one face, box x=") and "eyes found" in found
    # a mirrored face is not the same face to the estimator
    assert not torch.allclose(aus.values[0], aus.values[1])
    # by default the readings are put on the scale of FineFace's training labels
    labels_scale = read(images=as_image_batch(astronaut, flipped), estimator="resnet.pt", which_face="largest", index=0,
                        no_face="error")[0]
    assert torch.allclose(labels_scale.values, as_training_labels(aus.values))


def test_a_batch_with_an_image_without_a_face_names_it_or_reads_it_whole(node, astronaut):
    _, read = node
    brick = skimage_photo("brick.png")
    batch = as_image_batch(astronaut, np.repeat(brick[..., None], 3, axis=2), astronaut)
    with pytest.raises(fd.NoFaceError) as err:
        read(images=batch, estimator="resnet.pt", which_face="largest", index=0, no_face="error")
    message = str(err.value)
    assert "image 2 of 3 (batch index 1)" in message and "whole image" in message
    aus, _, face, mask, all_masks, found = read(images=batch, estimator="resnet.pt", which_face="largest", index=0,
                                                no_face="whole image")
    assert len(aus) == 3 and face.shape[0] == 3 and all_masks.shape[0] == 3
    assert found.split("\n")[1] == "image 2: no face found, read the whole image"
    assert mask[1].sum() == pytest.approx(448 * 448, rel=0.01)  # the centre 224/256 of the whole square
    assert torch.allclose(aus.values[0], aus.values[2])


def test_rgba_and_gray_images(node, astronaut):
    _, read = node
    rgb = as_image_batch(astronaut)
    rgba = torch.cat([rgb, torch.rand(1, 512, 512, 1)], dim=-1)
    a = read(images=rgb, estimator="resnet.pt", which_face="largest", index=0, no_face="error")[0]
    b = read(images=rgba, estimator="resnet.pt", which_face="largest", index=0, no_face="error")[0]
    assert torch.equal(a.values, b.values)  # alpha is not part of the face
    gray = torch.from_numpy(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)[None, ..., None].astype(np.float32) / 255)
    aus, _, face, _, _, found = read(images=gray, estimator="resnet.pt", which_face="largest", index=0, no_face="error")
    assert face.shape == (1, 224, 224, 3) and torch.equal(face[..., 0], face[..., 1]) and "eyes found" in found


@pytest.mark.parametrize("shape, message", [((1, 1, 1, 3), "1x1 pixels"), ((1, 0, 0, 3), "0x0 pixels"),
                                            ((0, 64, 64, 3), "batch of images"), ((2, 40, 16, 3), "image 1 of 2")])
def test_images_too_small_or_empty_are_refused(node, shape, message):
    _, read = node
    with pytest.raises(FineFaceError, match=message):
        read(images=torch.rand(shape), estimator="resnet.pt", which_face="largest", index=0, no_face="whole image")


def test_several_faces_choice_and_all_masks_left_to_right(node, astronaut):
    _, read = node
    canvas = np.full((400, 900, 3), 128, np.uint8)
    canvas[50:306, 20:276] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    canvas[:, 400:800] = cv2.resize(astronaut, (400, 400), interpolation=cv2.INTER_AREA)
    batch = as_image_batch(canvas)
    run = lambda how, index=0: read(images=batch, estimator="resnet.pt", which_face=how, index=index, no_face="error")  # noqa: E731
    largest, leftmost, second = run("largest"), run("leftmost"), run("by index", 1)
    assert torch.equal(largest[0].values, second[0].values) and not torch.equal(largest[0].values, leftmost[0].values)
    assert "2 faces, read face 1 (largest; 0 = leftmost)" in largest[5]
    all_masks = largest[4]
    assert all_masks.shape == (2, 400, 900)
    cols = [torch.nonzero(m.sum(0)).float().mean().item() for m in all_masks]
    assert cols[0] < 276 < 400 < cols[1]  # left to right
    assert torch.equal(largest[3][0], all_masks[1]) and torch.equal(leftmost[3][0], all_masks[0])
    with pytest.raises(FineFaceError, match="face index 2 asked for, but the image has 2 faces"):
        run("by index", 2)


def test_bad_estimator_files_are_reported_by_the_node(node, libreface_dir, astronaut):
    _, read = node
    bad = libreface_dir / "broken.pt"
    data = (libreface_dir / "resnet.pt").read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    import folder_paths

    getattr(folder_paths, "filename_list_cache", {}).pop("libreface", None)
    with pytest.raises(WeightFileError, match="truncated"):
        read(images=as_image_batch(astronaut), estimator="broken.pt", which_face="largest", index=0, no_face="error")
    with pytest.raises(WeightFileError, match="combined_resnet.pt' not found"):
        read(images=as_image_batch(astronaut), estimator="combined_resnet.pt", which_face="largest", index=0,
             no_face="error")
    bad.unlink()


def test_the_estimator_is_loaded_once_until_its_file_changes(registry, libreface_dir):
    module = comfy_env.pack_module("nodes.au_from_image")
    path = str(libreface_dir / "mine" / "other.pt")
    first = module.cached_estimator(path)
    assert module.cached_estimator(path) is first and first.has_detection_head
    write_libreface_checkpoint(path, seed=9)
    os.utime(path, ns=(1, 1))  # a new file, whatever the clock's resolution
    second = module.cached_estimator(path)
    assert second is not first and not second.has_detection_head


# ---------------------------------------------------------------------------------------
# AU Vector's base: adjusting the AUs read off a photo
# ---------------------------------------------------------------------------------------

def test_au_vector_keeps_its_widgets_with_the_base_input(registry):
    spec = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"].INPUT_TYPES()
    assert list(spec["optional"]) == ["preset", "spec", "append_to", "base"]
    names = [w.name for w in widget_layout(spec)]
    assert names == [au.code for au in ACTION_UNITS] + ["preset", "spec"]  # saved workflows keep their values


def test_au_vector_adds_sliders_and_spec_to_the_base(registry):
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"]
    build = getattr(cls(), cls.FUNCTION)
    read = AUVectors(torch.tensor([[0.5] * 12, [1.0] * 12]))
    one = AUVectors(read.values[:1])
    aus, label = build(base=one, spec="AU12@1", **dict(SLIDERS, AU6=2.0))
    assert torch.allclose(aus.values[0], one.values[0] + parse_aus("AU12@1 + AU6@2"))
    assert aus.titles == ("",) and label == aus.labels[0]  # AU terms only: the label says it all
    aus, _ = build(base=read, **SLIDERS)  # every base vector, unchanged
    assert torch.equal(aus.values, read.values)
    aus, _ = build(base=read, spec="happiness", **SLIDERS)  # one line for every base vector
    assert torch.allclose(aus.values, read.values + parse_aus("happiness"))
    aus, _ = build(base=one, spec="AU4@1\nAU15@2", **SLIDERS)  # one base for every line
    assert torch.allclose(aus.values, one.values + torch.stack([parse_aus("AU4@1"), parse_aus("AU15@2")]))
    aus, _ = build(base=read, spec="AU4@1\nAU15@2", **SLIDERS)  # pairs
    assert torch.allclose(aus.values[1], read.values[1] + parse_aus("AU15@2"))
    with pytest.raises(AUSpecError, match="2 base AU vectors and 3 spec lines"):
        build(base=read, spec="AU4\nAU6\nAU9", **SLIDERS)
    with pytest.raises(AUSpecError, match="vector 2 \\(base \\+ spec\\) with the sliders"):
        build(base=AUVectors(torch.tensor([[0.0] * 12, [9.5] * 12])), **dict(SLIDERS, AU1=1.0))
    titled = AUVectors(parse_aus("happiness"), titles=("happiness",))
    aus, _ = build(base=titled, spec="AU25@2", **SLIDERS)
    assert aus.titles == ("happiness + AU25@2",)
    aus, _ = build(base=titled, preset="surprise", **SLIDERS)
    assert aus.titles == ("happiness + surprise",)
    assert torch.allclose(aus.values[0], parse_aus("happiness") + parse_aus("surprise"))


def test_training_label_scale_is_the_paper_s_correction_of_libreface_s_readings():
    """AU1, AU4 x**1.8 and AU15, AU17, AU20 x**0.8 on the 0..1 scale, x 5, under 1 set to 0 (paper, supplementary)."""
    raw = torch.zeros(2, 12)
    order = [au.code for au in ACTION_UNITS]
    for code, value in (("AU1", 2.5), ("AU4", 5.0), ("AU15", 2.5), ("AU17", 0.8), ("AU20", 0.5), ("AU6", 0.9),
                        ("AU12", 3.0), ("AU2", 1.2)):
        raw[0, order.index(code)] = value
    out = as_training_labels(raw)
    want = {"AU1": 5 * 0.5 ** 1.8, "AU4": 5.0, "AU15": 5 * 0.5 ** 0.8, "AU17": 5 * 0.16 ** 0.8, "AU20": 0.0,
            "AU6": 0.0, "AU12": 3.0, "AU2": 1.2}
    for code, value in want.items():
        assert out[0, order.index(code)].item() == pytest.approx(value, abs=1e-5), code
    assert out[0, order.index("AU17")] > 1  # 0.8 raised past the cut at 1: kept (AU20's 0.5 stays under it)
    assert (out[1] == 0).all() and out.max() <= 5
