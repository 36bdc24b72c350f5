"""``python -m workflows.run --aus-from PHOTO``: the photo's AUs printed and turned into the spec to render
(workflows/aus_from_photo.py), with ComfyUI's real folder_paths pointed at a models folder made here."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from fineface_core.faces.libreface import estimate, load_estimator
from fineface_core.aus import ACTION_UNITS, parse_aus
from fineface_core.errors import FineFaceError, WeightFileError
from fineface_core.faces import detect as fd
from fineface_core.faces.photo_aus import as_training_labels
from tests.support import comfy_env
from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint
from workflows import aus_from_photo
from workflows import run as headless


@pytest.fixture
def fp(tmp_path):
    """ComfyUI's folder_paths with its models folder at tmp_path/models (models/libreface/resnet.pt in it)."""
    comfy_env.import_comfy()
    import folder_paths

    write_libreface_checkpoint(str(tmp_path / "models" / "libreface" / "resnet.pt"), seed=4)
    state = headless.snapshot_folders(folder_paths)
    headless.use_models_dir(folder_paths, str(tmp_path / "models"))
    yield folder_paths
    headless.restore_folders(folder_paths, state)


def parse(*argv):
    parser = headless.build_parser()
    return parser.parse_args(list(argv))


def test_prints_the_aus_and_returns_them_as_the_spec(fp, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(skimage_photo("astronaut.png")).save(photo, quality=95)
    args = parse("--aus-from", str(photo), "--prompt", "a portrait")
    aus_from_photo.check(args, headless.choose_workflow(args))
    out = io.StringIO()
    spec = aus_from_photo.spec_from_photo(args, fp, stream=out)
    printed = out.getvalue()
    assert headless.choose_workflow(args) == "basic"
    # the values the estimator gives on the face crop, to the spec's two decimals
    est = load_estimator(str(tmp_path / "models" / "libreface" / "resnet.pt"))
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    (face,) = fd.find_faces(rgb)
    crop = fd.centre_crop(fd.aligned_face(rgb, face.quad())).astype(np.float32) / 255
    want = as_training_labels(estimate(est, torch.from_numpy(crop)[None]))[0]  # the default scale
    assert torch.allclose(parse_aus(spec), want, atol=0.0051)
    for au, value in zip(ACTION_UNITS, want):
        assert f"{au.code:<5} {au.name:<22} {float(value):4.2f}" in printed
    assert f'as --aus "{spec}"' in printed and "one face, box x=" in printed and "resnet.pt" in printed


def test_the_photo_s_exif_orientation_is_applied(fp, tmp_path):
    """A phone photo stored sideways with an EXIF orientation: read upright, as ComfyUI's Load Image does."""
    upright = skimage_photo("astronaut.png")
    sideways = Image.fromarray(np.rot90(upright).copy())  # stored turned a quarter counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    sideways.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    pixels = aus_from_photo.read_photo(str(tmp_path / "phone.jpg"))
    assert pixels.shape == (1, 512, 512, 3) and np.abs(pixels[0] * 255 - upright).mean() < 4  # upright again
    out = io.StringIO()
    aus_from_photo.spec_from_photo(parse("--aus-from", str(tmp_path / "phone.jpg")), fp, stream=out)
    (face,) = fd.find_faces(upright)
    x, y = (round(v) for v in face.box[:2])
    assert f"box x={x} " in out.getvalue() or f"box x={x - 1} " in out.getvalue() or f"box x={x + 1} " in out.getvalue()


def test_usage_errors_before_comfyui_starts(tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(skimage_photo("astronaut.png")).save(photo)
    with pytest.raises(aus_from_photo.PhotoUsageError, match="either as --aus or as --aus-from"):
        aus_from_photo.check(parse("--aus-from", str(photo), "--aus", "happiness"), "basic")
    with pytest.raises(aus_from_photo.PhotoUsageError, match="the sweep workflow"):
        aus_from_photo.check(parse("--aus-from", str(photo), "--sweep", "AU12"), "sweep")
    with pytest.raises(aus_from_photo.PhotoUsageError, match=r"the animation workflow .*\(use basic, edit, redraw, face_crop\)"):
        aus_from_photo.check(parse("--aus-from", str(photo)), "animation")  # which ones take it: SHIPPED's rows
    with pytest.raises(aus_from_photo.PhotoUsageError, match="no such file"):
        aus_from_photo.check(parse("--aus-from", str(tmp_path / "absent.jpg")), "basic")
    with pytest.raises(aus_from_photo.PhotoUsageError, match="goes with --aus-from"):
        aus_from_photo.check(parse("--au-estimator", "resnet.pt"), "basic")
    aus_from_photo.check(parse("--aus-from", str(photo), "--image", str(photo)), "edit")  # a new expression on an image
    aus_from_photo.check(parse("--prompt", "x"), "basic")  # without --aus-from: nothing to check


def test_missing_estimator_no_face_and_unreadable_photos_are_reported(fp, tmp_path):
    photo = tmp_path / "p.png"
    Image.fromarray(skimage_photo("astronaut.png")).save(photo)
    with pytest.raises(WeightFileError) as err:
        aus_from_photo.spec_from_photo(parse("--aus-from", str(photo), "--au-estimator", "combined_resnet.pt"), fp)
    message = str(err.value)
    assert "'combined_resnet.pt' not found" in message and str(tmp_path / "models" / "libreface") in message
    assert "AU_Recognition/resnet_disfa_all/DISFA/all/resnet.pt" in message and "non-commercial" in message
    Image.fromarray(skimage_photo("brick.png")).save(tmp_path / "brick.png")
    with pytest.raises(FineFaceError, match=r"brick.png: no face found in the image.*--no-face 'whole image'"):
        aus_from_photo.spec_from_photo(parse("--aus-from", str(tmp_path / "brick.png")), fp)
    spec = aus_from_photo.spec_from_photo(parse("--aus-from", str(tmp_path / "brick.png"), "--no-face", "whole image"),
                                          fp, stream=io.StringIO())
    assert parse_aus(spec).shape == (12,)
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(FineFaceError, match="notes.jpg: not an image"):
        aus_from_photo.spec_from_photo(parse("--aus-from", str(tmp_path / "notes.jpg")), fp)
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    with pytest.raises(FineFaceError, match="tiny.png: the image is 8x8 pixels: too small"):
        aus_from_photo.spec_from_photo(parse("--aus-from", str(tmp_path / "tiny.png")), fp)
