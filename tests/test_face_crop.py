"""Face Crop / Face Paste (fineface_core.faces.crop) on a real photo: scikit-image's astronaut in a larger picture."""
import numpy as np
import pytest

from fineface_core.errors import FineFaceError
from fineface_core.faces.crop import EVERY_FACE, FaceSquare, edge_weights, face_crops, face_square, paste_faces
from fineface_core.faces.detect import NoFaceError, find_faces, to_rgb_uint8
from tests.support.libreface_files import skimage_photo


def photo(height=600, width=900, top=120, left=500):
    """The astronaut's head (256 px) in a larger striped picture, as float 0..1 [H, W, 3]."""
    canvas = np.full((height, width, 3), 80, np.uint8)
    canvas[::5] = 180
    head = skimage_photo("astronaut.png")[:256, 96:352]
    canvas[top:top + 256, left:left + 256] = head[: height - top, : width - left]
    return canvas.astype(np.float32) / 255.0


def test_the_crop_is_the_face_square_resized_and_its_mask_covers_the_face():
    image = photo()
    (face,) = find_faces(to_rgb_uint8(image))
    crops, squares, masks, report = face_crops(image[None], "largest", 0, 1.0, 512)
    (square,) = squares
    assert crops.shape == (1, 512, 512, 3) and masks.shape == (1, 512, 512) and crops.dtype == np.float32
    x, y, w, h = face.box
    assert square.side == round(max(w, h) * 2.0)
    assert square.x <= x and square.y <= y and x + w <= square.x + square.side and y + h <= square.y + square.side
    assert abs(square.x + square.side / 2 - (x + w / 2)) <= 1 and abs(square.y + square.side / 2 - (y + h / 2)) <= 1
    # the crop shows the photo's square: shrunk back, it matches the region it was cut from
    region = image[square.y:square.y + square.side, square.x:square.x + square.side]
    import cv2
    back = cv2.resize(crops[0], (square.side, square.side), interpolation=cv2.INTER_AREA)
    assert np.abs(back - region).mean() < 0.02
    # the mask: the face box grown by 0.3 in the crop's pixels, about the crop's centre (the face's)
    assert masks[0, 256, 256] == 1 and masks[0, 5, 5] == 0
    assert abs(masks[0].mean() - (1.3 / 2.0) ** 2) < 0.03
    assert "1 face, cropped face 0" in report[0] and f"side={square.side}" in report[0]


def test_a_square_at_the_edge_moves_inside_and_is_never_larger_than_the_image():
    assert face_square((0, 10, 100, 120), 1.0, 400, 600) == FaceSquare(0, 0, 240, 400, 600)
    assert face_square((550, 300, 40, 40), 1.0, 400, 600) == FaceSquare(520, 280, 80, 400, 600)
    assert face_square((100, 100, 200, 200), 3.0, 300, 500) == FaceSquare(50, 0, 300, 300, 500)
    image = photo(height=420, width=800, top=160, left=544)  # the head cut off at the bottom right
    _, (square,), _, _ = face_crops(image[None], "largest", 0, 2.0, 256)
    assert square.x + square.side <= 800 and square.y + square.side <= 420


def test_pasting_leaves_every_pixel_outside_the_squares_and_puts_the_edit_inside():
    images = np.stack([photo(), photo(left=100)])
    crops, squares, _, _ = face_crops(images, "largest", 0, 1.0, 256)
    edited = crops.copy()
    edited[0] = [1.0, 0.0, 0.0]  # a red square in the first image, the second's crop unchanged
    pasted = paste_faces(images, edited, squares, feather=0.1)
    assert pasted.shape == images.shape and pasted.dtype == np.float32
    for i, s in enumerate(squares):
        outside = np.ones(images.shape[1:3], bool)
        outside[s.y:s.y + s.side, s.x:s.x + s.side] = False
        assert np.array_equal(pasted[i][outside], images[i][outside])
    s = squares[0]
    centre = pasted[0, s.y + s.side // 2, s.x + s.side // 2]
    assert np.allclose(centre, [1.0, 0.0, 0.0])
    edge = pasted[0, s.y + s.side // 2, s.x]  # at the square's edge the photo shows through the feather
    assert np.abs(edge - images[0, s.y + s.side // 2, s.x]).max() < 0.05
    # an unedited crop goes back close to the photo (only resampling differs)
    s = squares[1]
    inside = (slice(s.y, s.y + s.side), slice(s.x, s.x + s.side))
    assert np.abs(pasted[1][inside] - images[1][inside]).mean() < 0.02
    # a hard edge: the red fills the square exactly
    hard = paste_faces(images, edited, squares, feather=0.0)
    s = squares[0]
    assert np.allclose(hard[0, s.y:s.y + s.side, s.x:s.x + s.side], [1.0, 0.0, 0.0])


def test_the_edge_weights_rise_from_the_edge_to_one_inside():
    w = edge_weights(100, 0.1)
    assert w.shape == (100, 100) and w[50, 50] == 1.0 and w[0, 50] < 0.05 and w[50, 0] < 0.05
    assert np.all(np.diff(w[50, :50]) >= 0) and np.array_equal(w, w.T) and np.array_equal(w, w[::-1, ::-1])
    assert np.array_equal(edge_weights(10, 0.0), np.ones((10, 10), np.float32))


def test_an_rgba_photo_keeps_its_alpha():
    rgb = photo()
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 0.5, np.float32)], axis=2)
    crops, squares, _, _ = face_crops(rgba[None], "largest", 0, 1.0, 256)
    assert crops.shape[-1] == 4
    pasted = paste_faces(rgba[None], np.zeros_like(crops[..., :3]), squares, 0.1)  # VAE Decode gives RGB
    assert np.array_equal(pasted[..., 3], rgba[None][..., 3])
    s = squares[0]
    assert np.allclose(pasted[0, s.y + s.side // 2, s.x + s.side // 2, :3], 0.0)


def test_bad_input_is_refused_with_what_to_do_and_nothing_is_pasted():
    images = photo()[None]
    crops, squares, _, _ = face_crops(images, "largest", 0, 1.0, 256)
    before = images.copy()
    cases = [
        (lambda: paste_faces(images, np.full_like(crops, np.nan), squares), "NaN or infinite"),
        (lambda: paste_faces(images, np.concatenate([crops, crops]), squares), "paste the crops of the same batch"),
        (lambda: paste_faces(images, crops, [FaceSquare(0, 0, 10, 600, 900, image=1)]), "to paste into 1 image"),
        (lambda: paste_faces(images[:, :500], crops, squares), "paste into the image Face Crop was given"),
        (lambda: paste_faces(images, crops[:, :, :200], squares), "not square"),
        (lambda: paste_faces(images, crops, squares, feather=0.7), "from 0 to 0.5"),
        (lambda: paste_faces(images, crops, squares, feather=float("nan")), "from 0 to 0.5"),
        (lambda: face_crops(images, "largest", 0, 1.0, 500), "multiple of 64"),
        (lambda: face_crops(images, "largest", 0, 1.0, 4096), "multiple of 64"),
        (lambda: face_crops(images, "largest", 0, -0.5, 512), "grow -0.5"),
        (lambda: face_crops(images, "biggest", 0, 1.0, 512), "unknown face choice"),
        (lambda: face_crops(images, "by index", 3, 1.0, 512), "face index 3 asked for, but the image has 1 face"),
        (lambda: face_crops(images[0], "largest", 0, 1.0, 512), "expected a batch"),
    ]
    for call, message in cases:
        with pytest.raises(FineFaceError, match=message.replace("(", r"\(")):
            call()
    assert np.array_equal(images, before)
    faceless = np.full((1, 300, 300, 3), 0.5, np.float32)
    with pytest.raises(NoFaceError, match=r"no face found in image 2 of 2 \(batch index 1\)"):
        face_crops(np.concatenate([photo(300, 300, 20, 20)[None], faceless]), "largest", 0, 1.0, 256)


def test_every_face_gives_one_crop_per_face_left_to_right_and_each_goes_back_to_its_place():
    two = photo(600, 1100, 150, 80)
    two[150:406, 700:956] = two[150:406, 80:336][:, ::-1]  # the same head mirrored, on the right
    crops, squares, masks, report = face_crops(two[None], EVERY_FACE, 0, 0.8, 128)
    assert crops.shape == (2, 128, 128, 3) and masks.shape == (2, 128, 128) and len(report) == 2
    assert [q.image for q in squares] == [0, 0] and squares[0].x < 336 < 700 <= squares[1].x
    edited = crops.copy()
    edited[0], edited[1] = [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]
    pasted = paste_faces(two[None], edited, squares, feather=0.0)[0]
    for square, colour in zip(squares, ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])):
        assert np.allclose(pasted[square.y:square.y + square.side, square.x:square.x + square.side], colour)
    outside = np.ones(two.shape[:2], bool)
    for q in squares:
        outside[q.y:q.y + q.side, q.x:q.x + q.side] = False
    assert np.array_equal(pasted[outside], two[outside])
