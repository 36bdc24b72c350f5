"""Time per 100 images of ``python -m fineface_core.evaluate``: generation and measurement separately.

    python -m tests.benchmarks.bench_evaluation                      # tiny random models, CPU (what CI can run)
    python -m tests.benchmarks.bench_evaluation --images 100 --real \\
        --base-model stabilityai/stable-diffusion-2-1-base --weights models/fineface/fineface_sd21.safetensors \\
        --estimator models/libreface/resnet.pt --clip openai/clip-vit-large-patch14   # the real thing, on a GPU

With the tiny models (the test suite's: a random SD-2.1-layout UNet, a 16-channel VAE, a random LibreFace
ResNet-18, a tiny CLIP) the figure says how much the tool itself costs around the models (detection,
estimation, CLIP, file writes), not how long SD 2.1 takes. Images without a face are read whole, so the
estimator runs on every image. Each run starts in a fresh folder; model loading is counted in.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def tiny_models(root: str) -> dict:
    from tests.support.libreface_files import write_libreface_checkpoint
    from tests.support.official_files import write_official_release
    from tests.support.tiny_clip import write_tiny_clip
    from tests.support.tiny_sd import write_tiny_sd
    from tests.support.tiny_unets import tiny_unet

    return {"base_model": write_tiny_sd(os.path.join(root, "sd")),
            "weights": write_official_release(os.path.join(root, "release"), tiny_unet("sd21", 0), "sd21", seed=3),
            "estimator": write_libreface_checkpoint(os.path.join(root, "resnet.pt")),
            "clip": write_tiny_clip(os.path.join(root, "clip"))}


def main():
    from fineface_core.evaluation.generate import Generation
    from fineface_core.evaluation.protocol import PROMPTS_FILE, Protocol, read_prompts
    from fineface_core.evaluation.run import Config, evaluate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=100, help="AU images (the prompts' no-AU images come on top)")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.add_argument("--real", action="store_true", help="use the models named below instead of the tiny ones")
    p.add_argument("--base-model")
    p.add_argument("--weights")
    p.add_argument("--estimator")
    p.add_argument("--clip")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as root:
        models = {k: getattr(args, k) for k in ("base_model", "weights", "estimator", "clip")} if args.real \
            else tiny_models(root)
        config = Config(weights=[("bench", models["weights"])], estimator=models["estimator"],
                        out=os.path.join(root, "out"), protocol=Protocol(read_prompts(PROMPTS_FILE)),
                        clip=models["clip"], base_model=models["base_model"],
                        generation=Generation(steps=args.steps, size=args.size), no_face="whole image",
                        batch_size=args.batch_size, limit=args.images, device=args.device)
        cpu = time.process_time()
        outcome = evaluate(config, progress=False)
        cpu = time.process_time() - cpu
    device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"{'given' if args.real else 'tiny'} models, {device}, {args.size} px, {args.steps} steps, batch "
          f"{args.batch_size}, {torch.get_num_threads()} torch threads: {outcome.generated} images")
    for what, n, seconds in (("generating", outcome.generated, outcome.generate_seconds),
                             ("measuring", outcome.measured, outcome.measure_seconds)):
        print(f"  {what:<11} {seconds:7.1f} s wall   {100 * seconds / n:7.1f} s per 100 images")
    print(f"  process CPU time, all of it: {cpu:.1f} s")


if __name__ == "__main__":
    main()
