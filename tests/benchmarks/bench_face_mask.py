"""Speed of Face Mask's feather (the Gaussian soft edge) by width and image size.

    python -m tests.benchmarks.bench_face_mask

A face box of a third of the image, grown by 0.3, feathered by 8 to 256 px on a 1024 and a 4096 px square
image; the median of ``--repeats`` runs after a warm-up, as wall and process CPU seconds. The full-size
OpenCV blur is timed beside it (``--full`` widths only: it takes about a minute at 200 px on 4096 px).
"""
from __future__ import annotations

import argparse
import os

from tests.benchmarks.timing import timed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", default="8,64", help="feathers also timed as one full-size blur")
    args = parser.parse_args(argv)

    import cv2

    from fineface_core.faces.detect import quad_mask
    from fineface_core.faces.masks import box_quad, feathered

    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    full_widths = {float(f) for f in args.full.split(",") if f}
    for side in (1024, 4096):
        hard = quad_mask(side, side, box_quad((side / 3, side / 3, side / 3, side / 3), 0.3))
        for feather in (8.0, 32.0, 64.0, 256.0):
            wall, cpu = timed(lambda: feathered(hard, feather), args.repeats)
            line = f"  {side:>5} px, feather {feather:5.0f} px: {wall:7.3f} s wall {cpu:7.3f} s CPU"
            if feather in full_widths:
                wall, cpu = timed(lambda: cv2.GaussianBlur(hard, (0, 0), sigmaX=feather, sigmaY=feather), args.repeats)
                line += f"   (full-size blur {wall:7.3f} s wall {cpu:7.3f} s CPU)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
