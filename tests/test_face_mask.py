"""Face Mask: one detected face's mask per image, for Apply FineFace Adapter's mask, on real photographs
(scikit-image's astronaut, twice side by side: two people)."""
import numpy as np
import pytest
import torch

from fineface_core.errors import FineFaceError
from fineface_core.faces.detect import NoFaceError, find_faces
from fineface_core.faces.masks import face_masks
from tests.support.libreface_files import skimage_photo


@pytest.fixture(scope="module")
def two_people():
    """A 512 x 256 photo of two people: the astronaut's head and shoulders, and its mirror image."""
    head = skimage_photo("astronaut.png")[:256, 96:352]
    return np.concatenate([head, head[:, ::-1]], axis=1)


def as_batch(*rgbs):
    return np.stack(rgbs).astype(np.float32) / 255.0


def bbox(mask):
    ys, xs = np.nonzero(mask > 0.5)
    return xs.min(), xs.max(), ys.min(), ys.max()


def test_index_counts_faces_from_the_left_and_each_mask_covers_its_face(two_people):
    faces = find_faces(two_people)
    assert len(faces) == 2
    (left,), _ = face_masks(as_batch(two_people), "by index", 0, grow=0.3)
    (right,), report = face_masks(as_batch(two_people), "by index", 1, grow=0.3)
    assert left.shape == right.shape == two_people.shape[:2] and left.dtype == np.float32
    assert set(np.unique(left)) == {0.0, 1.0}
    assert not (left * right).any()  # the two faces' masks do not touch
    for mask, face in zip((left, right), faces):
        x, y, w, h = face.box
        cx, cy = int(x + w / 2), int(y + h / 2)
        assert mask[cy, cx] == 1 and mask[int(y + 0.2 * h), cx] == 1 and mask[int(y + 0.9 * h), cx] == 1
    assert bbox(left)[1] < 256 <= bbox(right)[0]  # one in each half
    assert "2 faces, masked face 1 (0 = leftmost)" in report[0]


def test_grow_scales_the_square_about_its_centre_and_feather_softens_only_the_edge(two_people):
    batch = as_batch(two_people)
    (small,), _ = face_masks(batch, "by index", 0, grow=0.0)
    (big,), _ = face_masks(batch, "by index", 0, grow=0.5)
    assert (big >= small).all()
    assert big.sum() / small.sum() == pytest.approx(1.5 ** 2, rel=0.05)
    sx, bx = np.mean(bbox(small)[:2]), np.mean(bbox(big)[:2])
    assert abs(sx - bx) <= 1
    (soft,), _ = face_masks(batch, "by index", 0, grow=0.3, feather=6.0)
    (hard,), _ = face_masks(batch, "by index", 0, grow=0.3)
    middle = ((soft > 0) & (soft < 1)).sum()
    assert middle > 100  # a soft edge exists ...
    x0, x1, y0, y1 = bbox(hard)
    assert soft[(y0 + y1) // 2, (x0 + x1) // 2] == pytest.approx(1.0)  # ... and the face's middle stays 1
    assert soft[hard == 0].max() < 1 and soft.max() <= 1 and soft.min() >= 0


@pytest.mark.parametrize("feather", [32.0, 64.0])
def test_a_feather_wider_than_the_face_still_gives_the_face_s_centre_the_whole_expression(two_people, feather):
    """A Gaussian blur wider than about a sixth of the face (here 127 px across) lowers its centre too."""
    (hard,), _ = face_masks(as_batch(two_people), "by index", 0, grow=0.3)
    (soft,), _ = face_masks(as_batch(two_people), "by index", 0, grow=0.3, feather=feather)
    x0, x1, y0, y1 = bbox(hard)
    assert soft[(y0 + y1) // 2, (x0 + x1) // 2] == pytest.approx(1.0, abs=0.01)
    assert soft.max() <= 1 and soft.min() >= 0 and soft[hard == 0].max() < 1
    # still soft: the edge is in between, and it widens with the feather
    assert 0.2 < soft[(y0 + y1) // 2, x1 + 1] < 0.9


@pytest.mark.parametrize("shape, box, feather", [((512, 512), (180, 70, 90, 90), 32.0),
                                                 ((768, 1024), (100, 300, 300, 300), 64.0),
                                                 ((1024, 1024), (0, 0, 200, 500), 150.0)])
def test_a_wide_feather_blurred_at_a_smaller_scale_is_the_full_size_blur(shape, box, feather):
    """Wide feathers are blurred on a shrunk mask (a full-size one takes a minute at 200 px on 4096 px: see
    tests/benchmarks/bench_face_mask.py): the same soft edge as OpenCV's blur at full size, faces at the border too."""
    import cv2

    from fineface_core.faces.detect import quad_mask
    from fineface_core.faces.masks import box_quad, feathered

    hard = quad_mask(*shape, box_quad(box, 0.3))
    full = cv2.GaussianBlur(hard, (0, 0), sigmaX=feather, sigmaY=feather, borderType=cv2.BORDER_REFLECT)
    ys, xs = np.nonzero(hard)
    full = np.clip(full / full[int(round(ys.mean())), int(round(xs.mean()))], 0, 1)
    soft = feathered(hard, feather)
    assert soft.shape == hard.shape and soft.dtype == np.float32
    assert np.abs(soft - full).max() < 0.005


def test_the_other_choices_pick_as_in_au_from_image(two_people):
    batch = as_batch(two_people)
    (leftmost,), _ = face_masks(batch, "leftmost")
    (rightmost,), _ = face_masks(batch, "rightmost")
    (by0,), _ = face_masks(batch, "by index", 0)
    (by1,), _ = face_masks(batch, "by index", 1)
    assert np.array_equal(leftmost, by0) and np.array_equal(rightmost, by1)


def test_a_batch_gives_one_mask_per_image_and_no_face_is_an_error_naming_the_image_or_an_empty_mask(two_people):
    blank = np.full_like(two_people, 128)
    batch = as_batch(two_people, blank)
    with pytest.raises(NoFaceError, match=r"no face found in image 2 of 2 \(batch index 1\).*'empty mask'"):
        face_masks(batch, "by index", 0)
    masks, report = face_masks(batch, "by index", 0, no_face="empty mask")
    assert masks.shape == (2, 256, 512) and masks[0].sum() > 0 and not masks[1].any()
    assert "no face found, empty mask" in report[1]
    with pytest.raises(FineFaceError, match=r"face index 2 asked for, but the image has 2 faces \(0 = leftmost, up to "
                                            r"1\); choose another index, or set no_face to 'empty mask'"):
        face_masks(as_batch(two_people), "by index", 2)
    masks, report = face_masks(as_batch(two_people), "by index", 2, no_face="empty mask")
    assert not masks.any() and "2 faces found, no face 2" in report[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"grow": float("nan")}, "grow nan"), ({"grow": 5.0}, "grow 5.0: give a number from -0.5 to 3"),
    ({"feather": -1.0}, "feather -1.0"), ({"choose": "biggest"}, "unknown face choice 'biggest'"),
    ({"no_face": "skip"}, "no_face must be one of error, empty mask"),
])
def test_bad_settings_are_refused_naming_them(two_people, kwargs, message):
    with pytest.raises(FineFaceError, match=message):
        face_masks(as_batch(two_people), **kwargs)


def test_nan_pixels_are_refused(two_people):
    batch = as_batch(two_people)
    batch[0, 5, 5, 0] = np.nan
    with pytest.raises(FineFaceError, match="NaN or infinite"):
        face_masks(batch)


def test_pixel_values_far_outside_0_1_are_refused_naming_them_not_reported_as_no_face(two_people):
    """An IMAGE scaled 0..255 by a faulty node clips to white: 'no face found' would send the user to the photo."""
    with pytest.raises(FineFaceError, match=r"the image has pixel values from 0 to 255; an IMAGE holds 0..1 \(it "
                                            r"looks scaled 0..255: divide it by 255\)"):
        face_masks(as_batch(two_people) * 255, "by index", 0, no_face="empty mask")
    with pytest.raises(FineFaceError, match=r"image 2 of 2 \(batch index 1\) has pixel values from -3 to 1"):
        face_masks(np.stack([as_batch(two_people)[0], as_batch(two_people)[0] * 4 - 3]), no_face="empty mask")
    # an overshoot (sharpening, upscalers) is clipped as before and the faces are still found
    masks, _ = face_masks(as_batch(two_people) * 1.2 - 0.1, "by index", 1)
    assert masks[0, :, 256:].sum() > 0


def test_the_node_gives_comfyui_masks(registry, two_people):
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceFaceMask"]
    mask, report = getattr(cls(), cls.FUNCTION)(torch.from_numpy(as_batch(two_people)), "by index", 1)
    assert isinstance(mask, torch.Tensor) and mask.shape == (1, 256, 512) and mask.dtype == torch.float32
    assert mask[:, :, :256].sum() == 0 and mask[:, :, 256:].sum() > 0
    assert "masked face 1" in report
