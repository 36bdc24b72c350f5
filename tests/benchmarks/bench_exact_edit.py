"""Cost and exactness of the exact edit beside core ComfyUI's deterministic inversion.

    python -m tests.benchmarks.bench_exact_edit [--targets 4] [--size 64] [--steps 20,50] [--unit-scale 0.1]

On the tests' tiny SD 2.1 UNet (random weights; ``--unit-scale`` makes its predictions unit-scale, see
tests/test_exact_edit.py) patched with FineFace by the pack's nodes, for cfg 1 and 7.5, each step count and
the normal and karras schedulers, it prints:
- the exact edit: UNet calls of Invert Photo and of one batched Regenerate Exact Edit of ``--targets`` targets,
  the recorded inversion's bytes, CPU seconds of each, and the replay error with the photo's own AUs (relative
  max difference to the photo's latent: Regenerate Exact Edit, and Exact Edit Sampler in SamplerCustom);
- core ComfyUI's deterministic inversion at the same settings: BasicScheduler -> FlipSigmas -> SamplerCustom
  (add_noise off, euler, cfg 1) to the noisy latent, then SamplerCustom (add_noise off, euler, the cfg) back; its
  UNet calls, CPU seconds and replay error.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=4, help="targets regenerated in one batch from one inversion")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (latent = size / 8)")
    parser.add_argument("--steps", default="20,50")
    parser.add_argument("--unit-scale", type=float, default=0.0, help="0 = the random tiny UNet as it is")
    parser.add_argument("--gpu", action="store_true", help="let ComfyUI use a GPU if there is one")
    args = parser.parse_args(argv)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)

    import tempfile

    import torch

    from tests.support import comfy_env

    comfy_env.import_comfy(cpu=not args.gpu)
    comfy_env.load_custom_node_pack(ROOT)
    from tests.support.exact_edit import SOURCE, Fam, exact_edit_nodes

    p = exact_edit_nodes()
    with tempfile.TemporaryDirectory() as tmp:
        fam = Fam(p, "sd21", pathlib.Path(tmp), unit_scale=args.unit_scale)
    g = torch.Generator().manual_seed(0)
    fam.photo = {"samples": torch.randn(1, 4, args.size // 8, args.size // 8, generator=g)}
    targets = fam.aus("\n".join(f"AU12@{5 * i / max(args.targets - 1, 1):g}" for i in range(args.targets)))
    batch_latent, = p.batch_latent(fam.photo, targets)
    photo = fam.photo["samples"]
    n = p.registry
    flip = getattr(n["FlipSigmas"](), n["FlipSigmas"].FUNCTION)
    select = getattr(n["KSamplerSelect"](), n["KSamplerSelect"].FUNCTION)
    euler, = select("euler")

    def rel(a):
        return float((a - photo).abs().max() / photo.abs().max())

    def run(fn):
        fam.calls[0] = 0
        c = time.process_time()
        out = fn()
        return out, fam.calls[0], time.process_time() - c

    kind = f" (unit-scale {args.unit_scale:g})" if args.unit_scale else " (random weights)"
    print(f"tiny SD 2.1 UNet{kind}, "
          f"{args.size} px, {args.targets} targets; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'cfg':>4} {'steps':>5} {'sched':>7} | {'inv calls':>9} {'regen calls':>11} {'record':>9} {'inv s':>6} "
          f"{'regen s':>7} {'err plain':>9} {'err custom':>10} | {'ddim calls':>10} {'ddim s':>6} {'ddim err':>9}")
    source = fam.patched(SOURCE)
    batch_model = fam.patched(targets)
    for cfg in (1.0, 7.5):
        for steps in (int(s) for s in args.steps.split(",")):
            for scheduler in ("normal", "karras"):
                record, inv_calls, inv_s = run(lambda c=cfg, n=steps, s=scheduler: fam.invert(c, n, s))
                _, regen_calls, regen_s = run(lambda c=cfg, r=record: p.regenerate(batch_model, fam.pos, fam.neg, r, c, batch_latent))
                plain = rel(fam.regenerate(record, cfg=cfg))
                custom = rel(fam.custom(record, cfg=cfg))
                sigmas, = p.scheduler(source, scheduler, steps, 1.0)

                def ddim(c=cfg, sigmas=sigmas):
                    noisy, _ = p.custom(source, False, 0, 1.0, fam.pos, fam.neg, euler, flip(sigmas)[0], fam.photo)
                    back, _ = p.custom(source, False, 0, c, fam.pos, fam.neg, euler, sigmas, noisy)
                    return back["samples"]

                back, ddim_calls, ddim_s = run(ddim)
                print(f"{cfg:>4g} {steps:>5} {scheduler:>7} | {inv_calls:>9} {regen_calls:>11} {record.nbytes / 1024:>7.1f}Ki "
                      f"{inv_s:>6.2f} {regen_s:>7.2f} {plain:>9.1e} {custom:>10.1e} | {ddim_calls:>10} {ddim_s:>6.2f} {rel(back):>9.1e}",
                      flush=True)


if __name__ == "__main__":
    main()
