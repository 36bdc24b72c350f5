"""FineFace's AU branch limited to a region: the branch's rows times a mask on the layer's token grid.

A callback of the attn2 chain like ``AUBranch`` (see attn2_patch.py), wrapping one: the rows come from it,
so whatever picks them (cond/uncond chunks, images of the batch) picks them here too. The mask is
resized once per layer shape and batch layout and kept; a call adds one multiply to the branch's add.
"""
from __future__ import annotations

import torch

from fineface_core.conditioning import rows_for_chunks
from fineface_core.errors import FineFaceError
from fineface_core.regional import mask_tokens

from .attn2_patch import animation_frames
from .node_errors import prefixed


def latent_hw(extra_options) -> tuple[int, int]:
    shape = extra_options.get("original_shape")
    if shape is None or len(shape) != 4:
        raise FineFaceError("this ComfyUI passes no latent shape to attention patches (original_shape); a FineFace "
                            "mask needs it: update ComfyUI")
    return int(shape[2]), int(shape[3])


class MaskedAUBranch:
    """``branch``'s rows [B, 1, C] times the mask's weights [B, T, 1] at this layer."""

    def __init__(self, branch, mask: torch.Tensor, source: str = "Apply FineFace Adapter"):
        self.branch, self.mask = branch, mask  # mask: [M, H, W] float32 on the CPU, M = 1 or one per image
        self.source = source  # the node that gave the mask: the error surfaces in the sampler, which did not
        self._weights = {}

    def weights(self, extra_options, tokens: int, out: torch.Tensor) -> torch.Tensor:
        try:
            return self._weights_for(extra_options, tokens, out)
        except FineFaceError as e:
            prefixed(e, f"the mask given to {self.source}: ")
            raise

    def _weights_for(self, extra_options, tokens: int, out: torch.Tensor) -> torch.Tensor:
        hw = latent_hw(extra_options)
        chunks = tuple(extra_options["cond_or_uncond"])
        # A context window of an animation holds some of its frames: per-frame masks follow those frames, as the
        # AU rows do (by position every window would take the first frames' masks).
        frames = animation_frames(extra_options)
        key = (tokens, hw, chunks, out.shape[0], out.device, out.dtype, frames)
        found = self._weights.get(key)
        if found is None:
            per_chunk = out.shape[0] // max(len(chunks), 1)
            if frames:
                count, unit, whole = frames[1], "frame", f"an animation of {frames[1]} frames"
            else:
                count, unit, whole = per_chunk, "image", f"a latent batch of {per_chunk} images"
            if self.mask.shape[0] not in (1, count):
                raise FineFaceError(f"{self.mask.shape[0]} masks were given for {whole}: give one mask (used for "
                                    f"every {unit}) or exactly {count} (one per {unit})")
            on_grid = mask_tokens(self.mask, hw, tokens)
            found = rows_for_chunks(on_grid, on_grid, chunks, out.shape[0], frames)[:, :, None]
            found = found.to(out.device, out.dtype)
            if len(self._weights) > 64:
                self._weights.clear()
            self._weights[key] = found
        return found

    def __call__(self, out, q, k, v, extra_options, **kwargs):
        return self.branch(out, q, k, v, extra_options, **kwargs) * self.weights(extra_options, q.shape[1], out)

    def __deepcopy__(self, memo):
        return self  # shared between clones, like AUBranch: nothing in it changes
