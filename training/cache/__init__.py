"""A cache of what the frozen models compute, so that training runs only the UNet.

Per image the VAE's latent distribution (mean and std: a latent is still sampled every step, as
without the cache), per caption its text embedding, and the empty caption's for caption dropout,
in safetensors shards read memory-mapped. Built by ``python -m training.cache build`` (the trainer's
options) or by the trainer itself with ``--latent_cache DIR``; see training/README.md.
"""
from .dataset import CachedDataset, make_collate_cached
from .ensure import Frozen, ensure_cache
from .store import LatentCache

__all__ = ["CachedDataset", "make_collate_cached", "Frozen", "ensure_cache", "LatentCache"]
