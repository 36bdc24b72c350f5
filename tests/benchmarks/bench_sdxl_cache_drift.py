"""How far apart the losses of training runs on the tiny SDXL drift when their inputs differ by float rounding: the
figures behind tests/test_sdxl_training.py's cached-vs-uncached test (why it trains at lr 1e-5).

    python -m tests.benchmarks.bench_sdxl_cache_drift                    # lr 1e-3 and 1e-5, about 4 minutes on CPU
    python -m tests.benchmarks.bench_sdxl_cache_drift --lr 1e-3 --adam_epsilon 1e-4

For each learning rate, 4 steps (the test's settings, one thread) of: the plain run; the run from the latent cache
(built in batches of 2); and the plain run again with its latent means multiplied by (1 + ``--perturb`` noise), no
cache at all. Printed: each run's losses and its largest relative difference from the plain run, per step. If the
cache's run and the perturbed run part from the plain one alike, the cache's inputs differ by rounding only and the
drift is the optimizer's (AdamW moves every weight by about the lr whatever its gradient's size).
"""
from __future__ import annotations

import argparse
import os
import tempfile

import torch

from tests.support.tiny_sdxl import write_tiny_sdxl
from tests.support.training_runs import one_thread, train_args, write_dataset

EXTRA = ("--max_train_steps", 4, "--checkpointing_steps", 2, "--caption_dropout_prob", 0.5, "--gradient_checkpointing",
         "--lora_rank", 4, "--lora_alpha", 2)


def perturbed_latents(trainer, scale: float):
    """Wrap the trainer's latent draw so each mean is multiplied by (1 + scale * noise) from its own generator (the
    training generator's draws stay the same); returns the original to put back."""
    original = trainer.sample_latents
    g = torch.Generator().manual_seed(123)

    def sample(mean, std, generator):
        return original(mean * (1 + scale * torch.randn(mean.shape, generator=g)), std, generator)

    trainer.sample_latents = sample
    return original


def runs(base, data, root, lr: str, adam_epsilon: str | None, perturb: float) -> dict[str, list[float]]:
    from training import train as trainer

    extra = (*EXTRA, "--learning_rate", lr, *(("--adam_epsilon", adam_epsilon) if adam_epsilon else ()))
    out = {"plain": trainer.main(train_args(base, data, os.path.join(root, "plain"), *extra))["losses"]}
    cache = ("--latent_cache", os.path.join(root, "cache"), "--cache_shard_size", 3, "--cache_batch_size", 2)
    out["cached"] = trainer.main(train_args(base, data, os.path.join(root, "cached"), *extra, *cache))["losses"]
    original = perturbed_latents(trainer, perturb)
    try:
        out[f"perturbed {perturb:g}"] = trainer.main(train_args(base, data, os.path.join(root, "perturbed"), *extra))["losses"]
    finally:
        trainer.sample_latents = original
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lr", nargs="+", default=["1e-3", "1e-5"])
    parser.add_argument("--adam_epsilon", default=None, help="the trainer's default (1e-8) unless given")
    parser.add_argument("--perturb", type=float, default=1e-7, help="relative noise on the perturbed run's latent means")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, one_thread():
        base = write_tiny_sdxl(os.path.join(tmp, "sdxl"), seed=1)
        data = write_dataset(os.path.join(tmp, "data"))
        for lr in args.lr:
            losses = runs(base, data, os.path.join(tmp, f"lr{lr}"), lr, args.adam_epsilon, args.perturb)
            print(f"lr {lr}, adam_epsilon {args.adam_epsilon or '1e-8'}:")
            plain = losses["plain"]
            for name, values in losses.items():
                drift = [abs(a - b) / abs(b) for a, b in zip(values, plain)]
                print(f"  {name:16s} losses {' '.join(f'{v:.7f}' for v in values)}   "
                      f"vs plain {' '.join(f'{d:.1e}' for d in drift)}")


if __name__ == "__main__":
    main()
