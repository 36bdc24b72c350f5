"""Speed of Face Crop and Face Paste on photos of growing size, a face of 300 px (its detected box) in each
(CPU; no model involved).

    python -m tests.benchmarks.bench_face_crop [--repeats 5]

The photo: scikit-image's astronaut, its head enlarged until the face's box is 300 px, in a striped picture of
1024, 2048, 4096 and 8192 px. Face Crop = detection (OpenCV's cascades, searched at a scale where any face of
100 px or more is found: 1024 px up to a 4096 px photo, 2048 px for 8192) + cutting and resizing the square to
512 px; Face Paste = resizing the crop back and blending it in. Each figure is the median of ``--repeats`` timed
runs after a warm-up run, wall and process CPU time.

Measured before the search scale changed (commit 7a53220, faces found only down to ~2 % of the photo): 4096 px,
323 ms wall / 323 ms CPU (1024: 361 / 244, 2048: 382 / 235), face grown with the photo, on the shared machine.
"""
from __future__ import annotations

import argparse

import numpy as np

from fineface_core.faces.crop import face_crops, paste_faces
from fineface_core.faces.detect import smallest_face
from tests.benchmarks.timing import timed
from tests.support.libreface_files import skimage_photo

HEAD_BOX = 96  # the face box OpenCV finds in the astronaut's 256 px head crop


def picture(side: int, face: int = 300) -> np.ndarray:
    """[1, H, W, 3] float, side x 3/4 side, the astronaut's head scaled so that its face box is ``face`` px."""
    import cv2

    canvas = np.full((side * 3 // 4, side, 3), 80, np.uint8)
    canvas[::5] = 180
    head = skimage_photo("astronaut.png")[:256, 96:352]
    head = cv2.resize(head, None, fx=face / HEAD_BOX, fy=face / HEAD_BOX, interpolation=cv2.INTER_CUBIC)
    top, left = side // 8, side // 2 - head.shape[1] // 2
    head = head[:canvas.shape[0] - top]  # at 1024 px the neck is cut off; the face is whole
    canvas[top:top + head.shape[0], left:left + head.shape[1]] = head
    return canvas[None].astype(np.float32) / 255.0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    print(f"{'photo':>12} {'face crop (ms)':>22} {'face paste (ms)':>22}")
    for side in (1024, 2048, 4096, 8192):
        image = picture(side)
        crops, squares, _, _ = face_crops(image, "largest", 0, 1.0, 512)
        crop_wall, crop_cpu = timed(lambda: face_crops(image, "largest", 0, 1.0, 512), args.repeats)
        paste_wall, paste_cpu = timed(lambda: paste_faces(image, crops, squares, 0.1), args.repeats)
        h, w = image.shape[1:3]
        print(f"{w:>5}x{h:<6} {1000 * crop_wall:8.1f} wall {1000 * crop_cpu:7.1f} CPU "
              f"{1000 * paste_wall:8.1f} wall {1000 * paste_cpu:7.1f} CPU   (square {squares[0].side} px, faces "
              f"from {smallest_face(h, w)} px found)")


if __name__ == "__main__":
    main()
