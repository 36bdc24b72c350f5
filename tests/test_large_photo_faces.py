"""Faces in large photos (issue 22 item 9): a face of 100 px in the photo's own pixels is found at any photo size
by Face Crop, Face Mask and AU From Image's detector, and the message of a photo without one states the real
limit in that photo's pixels. scikit-image's astronaut, scaled, in a large canvas."""
import cv2
import numpy as np
import pytest

from fineface_core.faces.crop import face_crops
from fineface_core.faces.detect import NoFaceError, find_faces, smallest_face, to_rgb_uint8
from fineface_core.faces.masks import face_masks
from tests.support.libreface_files import skimage_photo

HEAD_BOX = 96  # the face box found in the astronaut's 256 px head crop at its own size


def photo(width: int, height: int, face: int, where=(0.3, 0.6)):
    """[1, H, W, 3] float: a textured photo (scikit-image's camera, tiled) with the astronaut's head scaled so that
    its face box is about ``face`` px, its top-left at ``where`` (fractions of the photo); and the head's box."""
    cam = skimage_photo("camera.png")
    canvas = np.tile(cam, (height // cam.shape[0] + 1, width // cam.shape[1] + 1))[:height, :width]
    canvas = np.repeat(canvas[..., None], 3, axis=2)
    head = skimage_photo("astronaut.png")[:256, 96:352]
    head = cv2.resize(head, None, fx=face / HEAD_BOX, fy=face / HEAD_BOX, interpolation=cv2.INTER_AREA)
    top, left = int(where[0] * height), int(where[1] * width)
    canvas[top:top + head.shape[0], left:left + head.shape[1]] = head
    return canvas[None].astype(np.float32) / 255.0, (left, top, head.shape[1], head.shape[0])


def inside(box, region) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return region[0] <= cx <= region[0] + region[2] and region[1] <= cy <= region[1] + region[3]


@pytest.mark.parametrize("width,height,where", [
    (4096, 3072, (0.1, 0.1)), (6000, 4000, (0.7, 0.45)), (8192, 4608, (0.5, 0.8)),
])
def test_a_face_of_100_px_is_found_in_a_large_photo(width, height, where):
    image, head = photo(width, height, 104, where)
    crops, squares, masks, report = face_crops(image, "largest", 0, 1.0, 512)
    assert len(squares) == 1 and crops.shape == (1, 512, 512, 3)
    x, y, side = squares[0].x, squares[0].y, squares[0].side
    assert inside((x, y, side, side), head) and 150 < side < 300, report  # grown 2x around a ~100 px box
    (mask,), _ = face_masks(image, "by index", 0)
    ys, xs = np.nonzero(mask)
    assert inside((xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()), head)
    (face,) = find_faces(to_rgb_uint8(image[0]))  # AU From Image's path (uint8 RGB), the same search
    assert inside(face.box, head) and 80 < face.box[2] < 130
    assert smallest_face(height, width) == 100


@pytest.mark.parametrize("width,height,limit", [(1024, 768, 25), (2048, 1536, 50), (4096, 3072, 100),
                                                (8192, 4608, 100)])
def test_no_face_message_states_the_limit_in_the_photos_pixels(width, height, limit):
    cam = skimage_photo("camera.png")
    # the camera man's face is about 60 px: found at full size, not once the photo is searched shrunk
    image = np.zeros((1, height, width, 3), np.float32) + 0.5
    image[0, :512, :512] = cam[..., None] / 255.0
    image[0, :512, :512] = cv2.GaussianBlur(image[0, :512, :512], (0, 0), 8)  # no face left in it
    with pytest.raises(NoFaceError) as err:
        face_crops(image)
    message = str(err.value)
    assert f"faces of about {limit} px or more across in a {width}x{height} image" in message, message
    with pytest.raises(NoFaceError) as err:
        face_masks(image)
    assert f"about {limit} px or more across in a {width}x{height} image" in str(err.value)
