"""What flows between the nodes: AU vectors with labels, and their embeddings for cond / uncond."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .aus import N_AUS, format_aus, validate_intensities
from .errors import AUSpecError, ModelMismatchError
from .weights import FineFaceWeights


@dataclass(frozen=True)
class AUVectors:
    """A batch of AU intensity vectors [N, 12] (one per image) with a label for each."""

    values: torch.Tensor
    labels: tuple[str, ...] = ()
    # What the user wrote where it names a preset ("happiness"), shown above the label; "" elsewhere.
    titles: tuple[str, ...] = ()

    def __post_init__(self):
        values = torch.as_tensor(self.values, dtype=torch.float32)
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2 or values.shape[1] != N_AUS or values.shape[0] == 0:
            raise AUSpecError(f"AU vectors must have shape [N >= 1, 12], got {list(values.shape)}")
        validate_intensities(values)
        object.__setattr__(self, "values", values)
        labels = tuple(self.labels) or tuple(format_aus(v) for v in values)
        if len(labels) != len(values):
            raise AUSpecError(f"{len(values)} AU vectors but {len(labels)} labels")
        object.__setattr__(self, "labels", labels)
        titles = tuple(self.titles) or ("",) * len(values)
        if len(titles) != len(values):
            raise AUSpecError(f"{len(values)} AU vectors but {len(titles)} titles")
        object.__setattr__(self, "titles", titles)

    def __len__(self):
        return self.values.shape[0]

    def concat(self, other: "AUVectors") -> "AUVectors":
        return AUVectors(torch.cat([self.values, other.values]), self.labels + other.labels, self.titles + other.titles)

    @property
    def captions(self) -> tuple[str, ...]:
        """A grid cell's text: the title (the preset as written) with the AUs under it, or the AUs alone."""
        return tuple(f"{t}\n{label}" if t else label for t, label in zip(self.titles, self.labels))

    @property
    def text(self) -> str:
        """One line per vector, for a STRING output: ``happiness: AU6@3 + AU12@3``."""
        return "\n".join(f"{t}: {label}" if t else label for t, label in zip(self.titles, self.labels))


@dataclass(frozen=True)
class AUEmbedding:
    """AU tokens for cond (one per image) and uncond (``encoder(zeros)``, as the paper guides)."""

    cond: torch.Tensor  # [N, 1, width]
    uncond: torch.Tensor  # [N, 1, width]
    labels: tuple[str, ...]
    encoder: str = field(repr=False)  # AUEncoder.fingerprint() of the encoder that made it

    def __len__(self):
        return self.cond.shape[0]


def cond_and_uncond(encode: Callable[[torch.Tensor], torch.Tensor], aus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The AU tokens for classifier-free guidance, by the paper's rule: cond = encoder(aus), uncond =
    encoder(zeros) -- the all-zero AU vector through the encoder, not a zero token (the MLP's bias survives).

    ``encode``: [N, 12] intensities -> [N, 1, width] (``FineFaceWeights.encode``, or a training encoder)."""
    return encode(aus), encode(torch.zeros_like(aus))


def guided_batch(encode: Callable[[torch.Tensor], torch.Tensor], aus: torch.Tensor, cfg: bool = True) -> torch.Tensor:
    """The AU tokens for one diffusers UNet call: [uncond, cond] under CFG (the order in which diffusers'
    pipelines batch a guided call), cond alone without."""
    if not cfg:
        return encode(aus)
    cond, uncond = cond_and_uncond(encode, aus)
    return torch.cat([uncond, cond])


def encode_aus(weights: FineFaceWeights, aus: AUVectors) -> AUEmbedding:
    cond, uncond = cond_and_uncond(weights.encode, aus.values)
    return AUEmbedding(cond=cond, uncond=uncond, labels=aus.labels, encoder=weights.encoder.fingerprint())


def check_embedding_matches(weights: FineFaceWeights, embedding: AUEmbedding):
    if embedding.encoder != weights.encoder.fingerprint():
        raise ModelMismatchError(
            "this AU embedding was made by the AU encoder of a different FineFace model than the one being applied; "
            "connect the same FineFace Model Loader output to both the AU Encoder and Apply FineFace Adapter."
        )


def rows_for_chunks(cond: torch.Tensor, uncond: torch.Tensor, cond_or_uncond, batch: int, frames=None) -> torch.Tensor:
    """Rows for a UNet batch made of chunks (ComfyUI's ``cond_or_uncond``: 0 = cond, 1 = uncond).

    Each chunk holds the latent batch; ``cond`` / ``uncond`` have one row per image, or one
    row for all images. ``frames`` = (indices, full_length) when each chunk holds only some frames
    of an animation (AnimateDiff's sliding context windows): the rows are those frames' rows, so
    frame i gets AU vector i wherever it sits in the call.
    """
    chunks = list(cond_or_uncond)
    if not chunks or batch % len(chunks):
        raise ValueError(f"a UNet batch of {batch} cannot be split into the chunks {chunks}")
    per_chunk = batch // len(chunks)
    n = cond.shape[0]
    if frames is not None:
        indices, full_length = frames
        if len(indices) != per_chunk:
            raise ValueError(f"a context window of {len(indices)} frames in a UNet chunk of {per_chunk} images")
        if n not in (1, full_length):
            raise AUSpecError(
                f"{n} AU vectors were given for an animation of {full_length} frames: give one AU vector "
                f"(used for every frame) or exactly {full_length} (one per frame, e.g. AU Keyframes with "
                f"frames = {full_length})."
            )
        if n > 1:
            index = torch.as_tensor(indices, dtype=torch.long, device=cond.device)
            cond, uncond = cond.index_select(0, index), uncond.index_select(0, index)
            n = per_chunk
    elif n not in (1, per_chunk):
        raise AUSpecError(
            f"{n} AU vectors were given for a latent batch of {per_chunk} images: give one AU vector "
            f"(used for every image) or exactly {per_chunk} (one per image)."
        )
    parts = []
    for c in chunks:
        src = cond if c == 0 else uncond
        parts.append(src.expand(per_chunk, *src.shape[1:]) if n == 1 else src)
    return torch.cat(parts)
