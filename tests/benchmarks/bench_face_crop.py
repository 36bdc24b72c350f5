"""Speed of Face Crop and Face Paste on photos of growing size (CPU; no model involved).

    python -m tests.benchmarks.bench_face_crop [--repeats 5]

The photo: scikit-image's astronaut (its head, 256 px) in a striped picture of 1024, 2048 and 4096 px.
Face Crop = detection (OpenCV's cascades, searched at most at 1024 px) + cutting and resizing the square to
512 px; Face Paste = resizing the crop back and blending it in. Each figure is the median of ``--repeats`` timed
runs after a warm-up run, wall and process CPU time.
"""
from __future__ import annotations

import argparse

import numpy as np

from fineface_core.faces.crop import face_crops, paste_faces
from tests.benchmarks.timing import timed
from tests.support.libreface_files import skimage_photo


def picture(side: int) -> np.ndarray:
    canvas = np.full((side * 3 // 4, side, 3), 80, np.uint8)
    canvas[::5] = 180
    head = skimage_photo("astronaut.png")[:256, 96:352]
    scale = max(1, side // 1024)  # the face grows with the photo, as in a real one
    head = np.kron(head, np.ones((scale, scale, 1), np.uint8))
    top, left = side // 8, side // 2
    canvas[top:top + head.shape[0], left:left + head.shape[1]] = head
    return canvas[None].astype(np.float32) / 255.0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    print(f"{'photo':>12} {'face crop (ms)':>22} {'face paste (ms)':>22}")
    for side in (1024, 2048, 4096):
        image = picture(side)
        crops, squares, _, _ = face_crops(image, "largest", 0, 1.0, 512)
        crop_wall, crop_cpu = timed(lambda: face_crops(image, "largest", 0, 1.0, 512), args.repeats)
        paste_wall, paste_cpu = timed(lambda: paste_faces(image, crops, squares, 0.1), args.repeats)
        h, w = image.shape[1:3]
        print(f"{w:>5}x{h:<6} {1000 * crop_wall:8.1f} wall {1000 * crop_cpu:7.1f} CPU "
              f"{1000 * paste_wall:8.1f} wall {1000 * paste_cpu:7.1f} CPU   (square {squares[0].side} px)")


if __name__ == "__main__":
    main()
