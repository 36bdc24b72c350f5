"""The cross-attention patch: FineFace's AU branch as a broadcast add, chained with other packs.

ComfyUI calls ``patches_replace["attn2"][key](q, k, v, extra_options)`` with q, k, v already
projected and feeds the result to ``to_out``. With one AU token the AU attention equals
``au_to_v(e)`` for every query, so the branch is a per-layer row of ``lambda * au_to_v(e)``
per image, computed once when the node runs and added at every step.

Chaining follows ComfyUI_IPAdapter_plus' protocol: an object at a key computes the attention
once and adds ``callback(out, q, k, v, extra_options, **kwargs)`` for every callback whose
``sigma_end <= sigma <= sigma_start``; a pack that finds an object there calls its
``.add(callback, **kwargs)`` instead of replacing it. FineFace is such a callback, and its own
object (``Attn2Chain``) accepts ``.add`` too, so IP-Adapter and FineFace chain in either order.

Animations: AnimateDiff-Evolved runs the UNet on sliding context windows of the frames and says
which frames a call holds in ``transformer_options["ad_params"]`` (``sub_idxs``, ``full_length``);
ComfyUI's own context windows put an ``IndexListContextWindow`` (``index_list``, ``total_frames``)
at ``transformer_options["context_window"]``. Per-frame AU rows follow those frames, not the
position in the call, as IPAdapter_plus does with its per-frame embeds.
"""
from __future__ import annotations

import comfy.ldm.modules.attention as comfy_attention
import torch

from fineface_core.conditioning import rows_for_chunks

NO_SIGMA = 999999999.9  # IPAdapter_plus' value when a caller passes no sigmas


def current_sigma(extra_options) -> float:
    sigmas = extra_options.get("sigmas")
    return float(sigmas.detach().flatten()[0].item()) if sigmas is not None else NO_SIGMA


def animation_frames(extra_options):
    """(frame indices, frames in the animation) when this call holds a context window of an animation, else None."""
    ad_params = extra_options.get("ad_params")
    if ad_params is not None and ad_params.get("sub_idxs") is not None:
        return tuple(int(i) for i in ad_params["sub_idxs"]), int(ad_params["full_length"])
    window = extra_options.get("context_window")
    if window is not None and getattr(window, "dim", None) == 0 and getattr(window, "index_list", None) is not None:
        return tuple(int(i) for i in window.index_list), int(window.total_frames)
    return None


class Attn2Chain:
    """Replacement for one attn2 layer: attention (or a foreign patch that was there) + callbacks."""

    def __init__(self, inner=None):
        self.inner = inner  # another pack's replacement without .add(): it computes the attention
        self.callback = []
        self.kwargs = []

    def add(self, callback, **kwargs):
        """IPAdapter_plus' protocol: kwargs carry ``sigma_start`` / ``sigma_end`` and the callback's own."""
        self.callback.append(callback)
        self.kwargs.append(kwargs)

    def attention(self, q, k, v, extra_options):
        if self.inner is not None:
            return self.inner(q, k, v, extra_options)
        extra = {"attn_precision": extra_options["attn_precision"]} if "attn_precision" in extra_options else {}
        if "optimized_attention_override" in extra_options:
            # ComfyUI 0.3.6x+ lets a pack swap the attention kernel (SageAttention and the like) through the
            # transformer_options its wrapper receives; trees without the override take no such argument.
            extra["transformer_options"] = extra_options
        return comfy_attention.optimized_attention(q, k, v, extra_options["n_heads"], **extra)

    def __call__(self, q, k, v, extra_options):
        out = self.attention(q, k, v, extra_options)
        sigma = None
        for callback, kwargs in zip(self.callback, self.kwargs):
            low, high = kwargs.get("sigma_end", 0.0), kwargs.get("sigma_start", NO_SIGMA)
            if low > 0.0 or high < NO_SIGMA:
                # Only a window needs the current sigma: reading it waits for the GPU (a sync per layer).
                sigma = current_sigma(extra_options) if sigma is None else sigma
                if not low <= sigma <= high:
                    continue
            out = out + callback(out, q, k, v, extra_options, **kwargs)
        return out

    def to(self, *args, **kwargs):
        return self  # callbacks move their own tensors to the attention's device and dtype


class AUBranch:
    """FineFace's contribution to one layer: rows of lambda * au_to_v(e) for cond and uncond."""

    def __init__(self, cond: torch.Tensor, uncond: torch.Tensor):
        self.cond, self.uncond = cond, uncond  # [N, C] float32 on the CPU
        self._rows = {}  # batch layout (and context window) -> [B, 1, C] on the attention's device and dtype

    def __call__(self, out, q, k, v, extra_options, **kwargs):
        frames = animation_frames(extra_options)
        layout = (tuple(extra_options["cond_or_uncond"]), out.shape[0], out.device, out.dtype, frames)
        rows = self._rows.get(layout)
        if rows is None:
            rows = rows_for_chunks(self.cond, self.uncond, layout[0], layout[1], frames)[:, None, :].to(out.device, out.dtype)
            if len(self._rows) > 64:  # windows that shift every step (AnimateDiff's uniform schedules) come and go
                self._rows.clear()
            self._rows[layout] = rows
        return rows

    def __deepcopy__(self, memo):
        # ComfyUI deep-copies model_options on every clone; the rows never change, so share them.
        return self


def install(model, key: tuple, callback, sigma_start: float, sigma_end: float, shared_block: bool = False):
    """Put ``callback`` into effect at one attn2 layer of a cloned ModelPatcher.

    The three-element key (block, id, transformer index) shadows the two-element one, so
    FineFace joins whatever ComfyUI will actually call: an object with ``.add`` (IP-Adapter's
    or ours) is joined, a foreign replacement is wrapped, an empty place gets an Attn2Chain
    at the two-element key, where IPAdapter_plus looks for it on SD 1.x / 2.x. Where the block
    holds several transformers (``shared_block``: SDXL's depths 2 and 10) the two-element key
    would be every one of them, so the layer's own three-element key is used, as IPAdapter_plus
    does for SDXL; whatever sat at the block's two-element key is wrapped and stays in force.
    A new chain is set through ComfyUI's ``set_model_attn2_replace``, which newer trees make
    copy the options it changes, so the lookup reads the model's options afresh for every layer.
    """
    attn2 = model.model_options["transformer_options"].get("patches_replace", {}).get("attn2", {})
    target = key if key in attn2 or shared_block else key[:2]
    existing = attn2.get(target)
    if existing is not None and callable(getattr(existing, "add", None)):
        existing.add(callback, sigma_start=sigma_start, sigma_end=sigma_end)
        return
    if existing is None and target != key[:2]:
        existing = attn2.get(key[:2])  # a block-wide patch: called for this layer as before, inside the chain
    chain = Attn2Chain(inner=existing)
    chain.add(callback, sigma_start=sigma_start, sigma_end=sigma_end)
    model.set_model_attn2_replace(chain, *target)
