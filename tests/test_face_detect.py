"""Finding faces in real photographs (scikit-image's, offline) and cutting them out as LibreFace aligns them."""
import cv2
import numpy as np
import pytest

from fineface_core.faces import detect as fd
from fineface_core.errors import FineFaceError
from tests.support.libreface_files import ASTRONAUT_EYES, ASTRONAUT_MOUTH, skimage_photo


@pytest.fixture(scope="module")
def astronaut():
    return skimage_photo("astronaut.png")


def side(quad):
    return float(np.hypot(*(quad[3] - quad[0])))


def roll(quad):
    """The square's top edge against the horizontal, degrees (image y down)."""
    d = quad[3] - quad[0]
    return float(np.degrees(np.arctan2(d[1], d[0])))


def rotated(image, degrees, centre=(224, 110)):
    turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(image, turn, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT), turn


def test_finds_the_astronaut_s_face_where_it_is(astronaut):
    (face,) = fd.find_faces(astronaut)
    x, y, w, h = face.box
    for px, py in (*ASTRONAUT_EYES, ASTRONAUT_MOUTH):
        assert x < px < x + w and y < py < y + h, (face.box, (px, py))
    assert 60 < w < 160 and 60 < h < 160  # the face, not the head and shoulders
    assert face.eyes_found
    for found, true in zip(face.eyes, ASTRONAUT_EYES):
        assert np.linalg.norm(found - np.array(true)) < 6, (face.eyes, ASTRONAUT_EYES)


def test_the_crop_square_is_the_one_ffhq_alignment_makes_from_the_true_landmarks(astronaut):
    (face,) = fd.find_faces(astronaut)
    ours, truth = face.quad(), fd.ffhq_quad(*ASTRONAUT_EYES, ASTRONAUT_MOUTH)
    assert np.linalg.norm(ours.mean(0) - truth.mean(0)) < 0.05 * side(truth)
    assert 0.85 < side(ours) / side(truth) < 1.15
    assert abs(roll(ours) - roll(truth)) < 8


@pytest.mark.parametrize("degrees", [-10, 8, 12])
def test_a_tilted_head_comes_out_with_its_eyes_level(astronaut, degrees):
    (upright,) = fd.find_faces(astronaut)
    tilted, _ = rotated(astronaut, degrees)
    (face,) = fd.find_faces(tilted)
    assert face.eyes_found
    assert abs((roll(face.quad()) - roll(upright.quad())) + degrees) < 3  # cv2 turns counter-clockwise
    a = fd.aligned_face(astronaut, upright.quad()).astype(float)
    b = fd.aligned_face(tilted, face.quad()).astype(float)
    # an axis-aligned crop of the tilted face, for comparison: what the alignment removes
    x, y, w, h = face.box
    s = 1.8 * w
    square = np.array([[x + w / 2 - s / 2, y + h / 2 - s / 2], [x + w / 2 - s / 2, y + h / 2 + s / 2],
                       [x + w / 2 + s / 2, y + h / 2 + s / 2], [x + w / 2 + s / 2, y + h / 2 - s / 2]])
    c = fd.aligned_face(tilted, square).astype(float)
    d = fd.aligned_face(astronaut, square).astype(float)
    inner = np.s_[32:224, 32:224]
    assert np.abs(b - a)[inner].mean() < 0.5 * np.abs(c - d)[inner].mean()


def test_aligned_face_is_256_px_and_its_centre_224_is_what_the_model_reads(astronaut):
    (face,) = fd.find_faces(astronaut)
    aligned = fd.aligned_face(astronaut, face.quad())
    assert aligned.shape == (256, 256, 3) and aligned.dtype == np.uint8
    crop = fd.centre_crop(aligned)
    assert crop.shape == (224, 224, 3) and np.array_equal(crop, aligned[16:240, 16:240])
    region = fd.read_region(face.quad())
    assert np.allclose(region.mean(0), face.quad().mean(0)) and np.isclose(side(region), side(face.quad()) * 224 / 256)
    # the pupils land where FFHQ puts them: level, a quarter of the square apart, left and right of the middle
    turn = cv2.getAffineTransform(np.float32(face.quad()[[0, 1, 3]]), np.float32([[0, 0], [0, 256], [256, 0]]))
    eyes = np.hstack([np.array(ASTRONAUT_EYES, float), np.ones((2, 1))]) @ turn.T
    assert abs(eyes[0, 1] - eyes[1, 1]) < 8
    assert 0.2 * 256 < eyes[1, 0] - eyes[0, 0] < 0.3 * 256
    assert eyes[0, 0] < 128 < eyes[1, 0]


def test_a_face_at_the_border_is_filled_not_wrapped(astronaut):
    (face,) = fd.find_faces(astronaut)
    shifted = face.quad() - [300, 0]  # mostly left of the image
    aligned = fd.aligned_face(astronaut, shifted)
    left = aligned[:, :60].reshape(-1, 3)
    assert (left.std(0) < 1).all()  # one flat fill colour outside the image


def test_large_photos_and_gray_ones_find_the_same_face(astronaut):
    (face,) = fd.find_faces(astronaut)
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    (big_face,) = fd.find_faces(big)  # searched at 1024 px, reported in the photo's pixels
    assert np.allclose(np.array(big_face.box) / 4, face.box, atol=6)
    aligned_small, aligned_big = fd.aligned_face(astronaut, face.quad()), fd.aligned_face(big, big_face.quad())
    assert np.abs(aligned_small.astype(float) - aligned_big).mean() < 12
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rgb = fd.to_rgb_uint8(gray[..., None].astype(np.float32) / 255)
    (gray_face,) = fd.find_faces(rgb)
    assert np.allclose(gray_face.box, face.box, atol=6)


@pytest.mark.parametrize("name", ["brick.png", "camera.png", "coins.png", "chelsea.png", "coffee.png"])
def test_no_face_in_photos_without_one(name):
    photo = skimage_photo(name)
    rgb = fd.to_rgb_uint8(photo.astype(np.float32) / 255)
    assert fd.find_faces(rgb) == []


def two_faces(astronaut):
    """A small astronaut on the left, a large one on the right (an uncommon but real layout)."""
    canvas = np.full((400, 900, 3), 128, np.uint8)
    canvas[50:306, 20:276] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    canvas[:, 400:800] = cv2.resize(astronaut, (400, 400), interpolation=cv2.INTER_AREA)
    return canvas


def test_several_faces_are_chosen_by_size_position_or_index(astronaut):
    canvas = two_faces(astronaut)
    faces = fd.find_faces(canvas)
    assert len(faces) == 2 and faces[0].box[0] < 276 < 400 < faces[1].box[0]  # left to right
    assert all(f.eyes_found for f in faces)  # the small face's eyes too
    pick = lambda how, index=0: fd.choose_face(faces, how, index, canvas.shape[:2])  # noqa: E731
    assert pick("largest") is faces[1] and pick("leftmost") is faces[0] and pick("rightmost") is faces[1]
    assert pick("by index", 0) is faces[0] and pick("by index", 1) is faces[1]
    assert pick("closest to centre") is faces[1]  # the canvas centre (450, 200) is nearer the right face
    assert pick("topmost") is faces[1]  # the large face starts higher up
    with pytest.raises(FineFaceError, match=r"face index 2 asked for, but image 3 has 2 faces \(0 = leftmost, up to 1\)"):
        fd.choose_face(faces, "by index", 2, canvas.shape[:2], "image 3")
    with pytest.raises(fd.NoFaceError, match="no face found in image 1"):
        fd.choose_face([], "largest", 0, canvas.shape[:2], "image 1")


def test_masks_are_the_read_squares_at_image_size(astronaut):
    (face,) = fd.find_faces(astronaut)
    region = fd.read_region(face.quad())
    mask = fd.quad_mask(512, 512, region)
    assert mask.shape == (512, 512) and mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    assert abs(mask.sum() - side(region) ** 2) < 0.02 * side(region) ** 2
    for px, py in (*ASTRONAUT_EYES, ASTRONAUT_MOUTH):
        assert mask[py, px] == 1
    assert mask[5, 5] == 0 and mask[500, 500] == 0
    whole = fd.whole_image_quad(300, 500)  # the centred square, as Resize + CenterCrop read an unaligned image
    assert np.allclose(whole, [[100, 0], [100, 300], [400, 300], [400, 0]])


def test_image_conversion_and_bad_images():
    rgba = np.random.default_rng(0).random((40, 50, 4)).astype(np.float32)
    assert np.array_equal(fd.to_rgb_uint8(rgba), fd.to_rgb_uint8(rgba[..., :3]))  # alpha dropped, as PIL's convert
    gray = rgba[..., :1]
    assert np.array_equal(fd.to_rgb_uint8(gray), np.repeat(fd.to_rgb_uint8(gray)[..., :1], 3, axis=2))
    assert fd.to_rgb_uint8(gray).shape == (40, 50, 3)
    assert fd.to_rgb_uint8(np.full((30, 30, 3), 2.0, np.float32)).max() == 255  # out of range is clipped
    with pytest.raises(FineFaceError, match=r"image 2 of 3 \(batch index 1\) is 1x1 pixels: too small"):
        fd.to_rgb_uint8(np.zeros((1, 1, 3), np.float32), "image 2 of 3 (batch index 1)")
    with pytest.raises(FineFaceError, match="is 0x0 pixels"):
        fd.to_rgb_uint8(np.zeros((0, 0, 3), np.float32))
    with pytest.raises(FineFaceError, match="NaN"):
        fd.to_rgb_uint8(np.full((30, 30, 3), np.nan, np.float32))
    with pytest.raises(FineFaceError, match="shape"):
        fd.to_rgb_uint8(np.zeros((30, 30, 5), np.float32))
