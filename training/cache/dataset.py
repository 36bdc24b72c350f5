"""The trainer's dataset when it reads the cache: the same samples in the same order as
AUImageDataset, with the latent distribution and the text embedding in place of pixels and caption."""
from __future__ import annotations

import torch

from .store import LatentCache

# RandomHorizontalFlip applied to this tells whether it flipped: the flip is drawn from the global
# generator exactly as on an image, so cached and uncached runs flip the same samples.
_PROBE = torch.tensor([[0.0, 1.0]])


class CachedDataset(torch.utils.data.Dataset):
    """Items: ``latent_mean``, ``latent_std`` [4, R/8, R/8], ``aus`` [12], and ``text`` [77, width]
    (or, with ``text_keys`` None, the ``caption`` for the text encoder to encode every step)."""

    def __init__(self, records: list, image_keys: list[str], text_keys: list[str] | None, cache: LatentCache,
                 random_flip: bool = False, report=None):
        from torchvision import transforms

        self.records, self.image_keys, self.text_keys, self.cache = records, image_keys, text_keys, cache
        self.flip = transforms.RandomHorizontalFlip() if random_flip else None
        self.report = report

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        flipped = self.flip is not None and bool(self.flip(_PROBE)[0, 0] == 1.0)
        mean, std = self.cache.latent(self.image_keys[i], flipped)
        item = {"latent_mean": mean, "latent_std": std, "aus": torch.tensor(self.records[i].aus, dtype=torch.float32)}
        if self.cache.xl:
            item["time_ids"] = self.cache.time_ids(self.image_keys[i])
        if self.text_keys is None:
            item["caption"] = self.records[i].caption
        else:
            item["text"] = self.cache.text(self.text_keys[i])
            if self.cache.xl:
                item["pooled"] = self.cache.pooled(self.text_keys[i])
        return item


def make_collate_cached(tokenizer, tokenizer_2=None):
    def collate(examples: list[dict]) -> dict:
        batch = {k: torch.stack([e[k] for e in examples])
                 for k in ("latent_mean", "latent_std", "aus", "text", "pooled", "time_ids") if k in examples[0]}
        if "caption" in examples[0]:
            from .ensure import tokenize

            batch["input_ids"] = tokenize(tokenizer, [e["caption"] for e in examples])
            if tokenizer_2 is not None:  # SDXL with --no-cache_text: both encoders run every step
                batch["input_ids_2"] = tokenize(tokenizer_2, [e["caption"] for e in examples])
        return batch

    return collate
