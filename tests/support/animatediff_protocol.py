"""ComfyUI-AnimateDiff-Evolved's sliding-context protocol, reproduced from how the pack behaves (its
animatediff/sampling.py and context.py, read, not copied), so that per-frame conditioning is tested in CI,
where the real pack cannot run (it needs a 2025 ComfyUI); ``ANIMATEDIFF_EVOLVED_PATH`` runs the tests
against the real one as well.

What the real pack does and this module reproduces:
- every UNet call of a sampling run carries ``transformer_options["ad_params"] = {"full_length",
  "context_length", "sub_idxs"}``: frames in the animation, frames in this call, and which frames
  they are (``None`` when the animation fits one context and runs as one batch);
- with more frames than ``context_length`` it runs the UNet once per context window -- the latents,
  timesteps and conds of the window's frames, cond and uncond batched together as ComfyUI batches
  them -- and fuses the windows' outputs per frame with weights (``pyramid``: 1, 2, .., 2, 1 over a
  window) divided by each frame's total weight;
- windows overlap; the "standard static" schedule is ``[0, L)``, ``[L - o, 2L - o)``, ... with the
  last window moved back to end at the last frame; other schedules give strided or wrapped windows;
- its motion modules mix the frames of each chunk of a call (temporal attention over the frame
  axis, inserted after the UNet's blocks), so a frame's output depends on every frame in its window.

Here the windows run inside ComfyUI's ``model_function_wrapper`` (called once per cond/uncond batch,
in the 2024 and 2025 trees alike) instead of AnimateDiff-Evolved's ``calc_cond_batch`` wrapper (2025 only):
the UNet sees the same calls. The motion module is :class:`TemporalMixer`, a small temporal attention the
tests build, added after every input block through ComfyUI's ``input_block_patch``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def static_windows(num_frames: int, context_length: int, overlap: int) -> list[list[int]]:
    """AnimateDiff-Evolved's "standard static" schedule: windows of ``context_length`` frames, ``overlap`` shared."""
    if num_frames <= context_length:
        return [list(range(num_frames))]
    windows, step = [], context_length - overlap
    for start in range(0, num_frames, step):
        if start + context_length >= num_frames:
            windows.append(list(range(num_frames - context_length, num_frames)))
            break
        windows.append(list(range(start, start + context_length)))
    return windows


def pyramid_weights(length: int) -> list[float]:
    """1, 2, .., peak, .., 2, 1: a frame counts more the farther it is from its window's edges."""
    half = (length + 1) // 2
    rising = list(range(1, half + 1))
    return [float(w) for w in rising + rising[: length - half][::-1]]


class TemporalMixer:
    """A tiny motion module: self-attention over the frames of each chunk at every pixel, frame positions
    (within the call, as AnimateDiff's position encoding) added, the result added back to the features."""

    def __init__(self, seed: int = 0, strength: float = 0.5):
        self.seed, self.strength = seed, strength
        self._weights = {}

    def _projections(self, channels: int, like: torch.Tensor):
        if channels not in self._weights:
            g = torch.Generator().manual_seed(self.seed * 10007 + channels)
            self._weights[channels] = [torch.randn(channels, channels, generator=g) / channels ** 0.5 for _ in range(3)]
        return [w.to(like.device, like.dtype) for w in self._weights[channels]]

    def __call__(self, h: torch.Tensor, transformer_options: dict) -> torch.Tensor:
        chunks = len(transformer_options["cond_or_uncond"])
        b, c, height, width = h.shape
        frames = b // chunks
        # (chunk frame) c h w -> (chunk h w) frame c
        tokens = h.reshape(chunks, frames, c, height * width).permute(0, 3, 1, 2).reshape(-1, frames, c)
        position = torch.arange(frames, device=h.device, dtype=h.dtype)[:, None]
        freq = torch.exp(-math.log(100.0) * torch.arange(0, c, 2, device=h.device, dtype=h.dtype) / c)
        pe = torch.zeros(frames, c, device=h.device, dtype=h.dtype)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq[: c // 2])
        x = tokens + pe
        wq, wk, wv = self._projections(c, h)
        mixed = F.scaled_dot_product_attention((x @ wq)[None], (x @ wk)[None], (x @ wv)[None])[0]
        out = tokens + self.strength * mixed
        return out.reshape(chunks, height * width, frames, c).permute(0, 2, 3, 1).reshape(b, c, height, width)

    def __deepcopy__(self, memo):
        return self  # ComfyUI deep-copies model_options on every clone; the weights are fixed


class SlidingContext:
    """ComfyUI ``model_function_wrapper``: the UNet on context windows of the frames, fused per frame.

    ``windows(num_frames)`` gives the windows; ``expose`` puts AnimateDiff-Evolved's ``ad_params`` into every
    call. ``options_for_window(window)``, for the tests' oracle, returns entries that replace the call's
    transformer_options for that window (e.g. the attn2 patches of a model patched for those frames only).
    """

    def __init__(self, windows, context_length: int, expose: bool = True, options_for_window=None):
        self.windows, self.context_length = windows, context_length
        self.expose, self.options_for_window = expose, options_for_window
        self.calls = []  # (cond_or_uncond, sub_idxs) of every UNet call, for the tests

    def _options(self, c: dict, ad_params, window):
        options = dict(c["transformer_options"])
        if self.expose:
            options["ad_params"] = ad_params
        if self.options_for_window is not None:
            options.update(self.options_for_window(window))
        return options

    def __call__(self, apply_model, args: dict) -> torch.Tensor:
        x, t, c, chunks = args["input"], args["timestep"], args["c"], list(args["cond_or_uncond"])
        frames = x.shape[0] // len(chunks)
        if frames <= self.context_length:  # regular sampling: one call, no sub_idxs
            self.calls.append((chunks, None))
            ad_params = {"full_length": frames, "context_length": None, "sub_idxs": None}
            return apply_model(x, t, **dict(c, transformer_options=self._options(c, ad_params, list(range(frames)))))
        out = torch.zeros_like(x)
        total = torch.zeros(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)
        for window in self.windows(frames):
            rows = torch.tensor([k * frames + i for k in range(len(chunks)) for i in window], device=x.device)
            sub = {k: (v.index_select(0, rows) if torch.is_tensor(v) and v.shape[0] == x.shape[0] else v) for k, v in c.items()}
            ad_params = {"full_length": frames, "context_length": len(window), "sub_idxs": list(window)}
            sub["transformer_options"] = self._options(c, ad_params, window)
            self.calls.append((chunks, list(window)))
            y = apply_model(x.index_select(0, rows), t.index_select(0, rows), **sub)
            weights = torch.tensor(pyramid_weights(len(window)) * len(chunks), dtype=x.dtype, device=x.device)[:, None, None, None]
            out.index_add_(0, rows, y * weights)
            total.index_add_(0, rows, weights)
        return out / total

    def __deepcopy__(self, memo):
        return self


def apply_animatediff(model, windows, context_length: int, motion: TemporalMixer | None = None, **kwargs):
    """Like AnimateDiff-Evolved's loader node: a clone of ``model`` sampled on context windows (and a motion module)."""
    model = model.clone()
    context = SlidingContext(windows, context_length, **kwargs)
    model.set_model_unet_function_wrapper(context)
    if motion is not None:
        model.set_model_input_block_patch(motion)
    return model, context
