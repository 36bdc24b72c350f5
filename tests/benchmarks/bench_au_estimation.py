"""Speed of AU From Image's two stages, separately: face detection (+ alignment) and AU estimation.

    python -m tests.benchmarks.bench_au_estimation                  # CPU
    python -m tests.benchmarks.bench_au_estimation --device cuda    # estimation on a GPU

Detection: OpenCV's Haar cascades on scikit-image's astronaut.png (512 x 512, one face) and the same
photo enlarged to 2048 x 2048 (searched at 1024 px), then the aligned 256 px crop of each face.
Estimation: LibreFace's ResNet-18 AU model (random weights, its exact architecture) on 224 px
face crops, at batch 1, 8 and 32 (``--threads 1,2`` also with other torch thread counts). Each figure is the median of ``--repeats`` timed runs after a
warm-up run, as faces per second, with the CPU time per face beside it (on a shared machine the
wall time grows with the load, the CPU time much less).
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch

from tests.benchmarks.timing import timed


def line(name: str, faces: int, wall: float, cpu: float) -> str:
    return f"  {name:<34} {faces / wall:8.1f} faces/s   {1000 * wall / faces:7.1f} ms/face wall   " \
           f"{1000 * cpu / faces:7.1f} ms/face CPU"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--threads", default="", help="torch threads to try, e.g. 1,2 (default: torch's own)")
    args = parser.parse_args(argv)

    import cv2

    from fineface_core.faces import detect as fd
    from fineface_core.faces.libreface import estimate, load_estimator
    from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; OpenCV {cv2.__version__}, "
          f"{cv2.getNumThreads()} threads; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    astronaut = skimage_photo("astronaut.png")
    large = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)

    print("detection (Haar face + eye cascades) and alignment, one face per photo:")
    for name, photo in (("astronaut 512 x 512", astronaut), ("astronaut 2048 x 2048", large)):
        assert len(fd.find_faces(photo)) == 1
        print(line(f"detect, {name}", 1, *timed(lambda: fd.find_faces(photo), args.repeats)))
    (face,) = fd.find_faces(astronaut)
    print(line("align (256 px crop), 512 px photo", 1, *timed(lambda: fd.aligned_face(astronaut, face.quad()),
                                                              args.repeats)))

    with tempfile.TemporaryDirectory() as tmp:
        estimator = load_estimator(write_libreface_checkpoint(os.path.join(tmp, "resnet.pt")), args.device)
    crop = fd.centre_crop(fd.aligned_face(astronaut, face.quad())).astype(np.float32) / 255
    for threads in [int(t) for t in args.threads.split(",") if t] or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        print(f"estimation (LibreFace ResNet-18, 224 px crops, {args.device}, float32, {threads} torch threads):")
        for batch in (int(b) for b in args.batches.split(",")):
            crops = torch.from_numpy(crop)[None].repeat(batch, 1, 1, 1)

            def run():
                estimate(estimator, crops, batch_size=batch)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()

            print(line(f"estimate, batch {batch}", batch, *timed(run, args.repeats)))


if __name__ == "__main__":
    main()
