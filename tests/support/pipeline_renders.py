"""What a FineFacePipeline's renders must show, on any base (tests/test_reference.py, tests/test_sdxl_reference.py)."""
from __future__ import annotations

import torch


def assert_renders_follow_the_aus(ff, prompt: str = "a girl in a park"):
    """Two AU specs from the same noise give two images, the same call gives the same images again, and
    lambda 0 (``au_scale``) removes the AU effect entirely."""

    def render(aus, **kw):
        # One generator per image with the same seed: both images start from the same noise.
        return ff(prompt, aus, num_inference_steps=3, height=64, width=64, output_type="np",
                  generator=[torch.Generator().manual_seed(0) for _ in aus], **kw).images

    imgs = render(["AU12@4", "neutral"])
    assert imgs.shape == (2, 64, 64, 3)
    assert abs(imgs[0] - imgs[1]).max() > 1e-3
    assert (render(["AU12@4", "neutral"]) == imgs).all()
    off = render(["AU12@4", "neutral"], au_scale=0.0)
    assert abs(off[0] - off[1]).max() < 1e-6
