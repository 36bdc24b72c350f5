"""Two packs' patches on one model in either order (the IP-Adapter chaining tests of tests/test_patch_equals_reference.py
and tests/test_sdxl_patch.py)."""
from __future__ import annotations

import torch

ORDERS = ("ip_first", "fineface_first")


def chained(order: str, model, with_ip, with_fineface):
    """``with_ip`` then ``with_fineface`` ("ip_first"), or the other way round; each takes a MODEL and returns one."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    return with_fineface(with_ip(model)) if order == "ip_first" else with_ip(with_fineface(model))


def ip_image_tokens(width: int, seed: int = 9, tokens: int = 4):
    """Random IP-Adapter image tokens (cond, uncond), ``tokens`` of the model's text width each."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, tokens, width, generator=g), torch.randn(1, tokens, width, generator=g)
