"""The shipped exact-edit and neutralize workflows on more real faces than the astronaut (tests/test_exact_edit_workflows.py):
matplotlib's Grace Hopper (a colour portrait) and two faces of scikit-image's LFW subset (Labeled Faces in the Wild,
25x25 grayscale: a low-resolution real face, upscaled), each found by the detector, set in the same striped frame.

For each: Face Crop finds the face, AU From Image reads it (a random LibreFace model: some AUs, not zeros), the edit
with the reading as its target is the photo's VAE round trip pixel for pixel, and neutralize renders the target of
zeros (another image than the round trip) with every pixel away from the face the photo's own.
"""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from fineface_core.faces.detect import find_faces
from workflows.exact_edit_cli import evaluate
from workflows.overrides import find_entry

from tests.support.exact_edit_runs import HEAD, away_from_the_face as outside
from tests.support.exact_edit_runs import prompt_with_round_trip as prompt_of, run_with_round_trip as run
from tests.support.face_photos import grace_hopper
from tests.support.libreface_files import write_libreface_checkpoint
from tests.support.shipped_workflows import photo_name

FACE_IN_HEAD = 96 / 256  # the astronaut's face box over its head square (tests/test_large_photo_faces.py)


def lfw_face(index: int) -> np.ndarray:
    """Face ``index`` (0..99 are faces) of scikit-image's LFW subset, 25x25 gray, at 200 px in a 400 px gray RGB
    picture (the crop fills its 25 px: the detector wants some of the picture around the face)."""
    import skimage.data

    faces = np.load(os.path.join(os.path.dirname(skimage.data.__file__), "lfw_subset.npy"))
    face = cv2.resize((faces[index] * 255).round().astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
    picture = np.full((400, 400, 3), 128, np.uint8)
    picture[100:300, 100:300] = face[..., None]
    return picture


PHOTOS = {"grace_hopper": grace_hopper, "lfw_0": lambda: lfw_face(0), "lfw_1": lambda: lfw_face(1)}


def head_square(photo: np.ndarray) -> np.ndarray:
    """The 256 px square around the one face the detector finds, the face at the astronaut's scale in its square
    (edges repeated where the square passes the photo's)."""
    faces = find_faces(photo)
    assert len(faces) == 1, f"the detector found {len(faces)} faces"
    x, y, w, h = faces[0].box
    side = int(round(w / FACE_IN_HEAD))
    cx, cy = int(x + w / 2), int(y + h / 2)
    padded = cv2.copyMakeBorder(photo, side, side, side, side, cv2.BORDER_REPLICATE)
    square = padded[cy + side - side // 2:cy + side - side // 2 + side, cx + side - side // 2:cx + side - side // 2 + side]
    return cv2.resize(square, (256, 256), interpolation=cv2.INTER_AREA)


def framed(face: np.ndarray) -> np.ndarray:
    """The face's square where the astronaut's head sits in tests/support/exact_edit_runs.framed_photo's striped frame."""
    photo = np.full((480, 720, 3), 90, np.uint8)
    photo[::7] = 200
    photo[HEAD] = head_square(face)
    return photo


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PHOTOS))
def test_a_real_face_is_found_read_given_back_and_neutralized(name, comfy_dirs, models_dir, node_info, comfy):
    write_libreface_checkpoint(str(models_dir / "libreface" / "resnet.pt"), seed=4)
    photo = framed(PHOTOS[name]())
    (face,) = find_faces(photo)  # found where it was put, in the whole photo
    x, y, w, h = face.box
    assert HEAD[1].start < x + w / 2 < HEAD[1].stop and HEAD[0].start < y + h / 2 < HEAD[0].stop
    for workflow in ("edit", "neutralize"):
        Image.fromarray(photo).save(comfy_dirs / "input" / photo_name(workflow))

    same_prompt = prompt_of("edit", node_info, [("Target AUs", "spec", "")])
    read_id, _ = find_entry(same_prompt, "FineFaceAUFromImage")
    read = evaluate(same_prompt, read_id, comfy.nodes.NODE_CLASS_MAPPINGS, {})[0].values[0]
    assert read.abs().sum() > 1  # AU From Image read this face: neutral is a change
    same, round_trip, _ = run(same_prompt)
    assert np.array_equal(same, round_trip)  # the reading as the target: the VAE round trip, bit for bit
    assert np.abs(round_trip - photo).max(axis=2).astype(bool).any()  # and that is not the photo itself

    prompt = prompt_of("neutralize", node_info)
    target_id, _ = find_entry(prompt, "Neutral target")
    target = evaluate(prompt, target_id, comfy.nodes.NODE_CLASS_MAPPINGS, {})[0].values
    assert target.shape == (1, 12) and not target.any()  # every AU at 0, whatever the photo shows
    neutral, neutral_round_trip, _ = run(prompt)
    assert np.array_equal(neutral_round_trip, round_trip)
    assert neutral.shape == photo.shape and np.abs(neutral - round_trip).mean() > 0.05
    a, b = outside(neutral, photo)
    assert np.array_equal(a, b)
