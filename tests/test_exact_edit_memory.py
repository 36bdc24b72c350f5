"""An inversion record holds tensors only: never the autograd graph of the model calls behind them.

Called outside ComfyUI's executor (which samples under inference mode) with a model whose weights require
grad, the record kept every step's activations alive: ~10 MB per UNet call of the suite's tiny UNet, and the
exact-edit tests' process grew from 1 GB to 17 GB. Here a denoiser with a trainable weight stands for the UNet.
"""
import torch

from fineface_core.editing.ddpm_inversion import invert, replay


def test_the_record_and_the_replay_carry_no_autograd_graph():
    weight = torch.nn.Parameter(torch.full((1,), 0.5))

    def denoise(x, sigma):
        return x * weight / (1 + sigma)

    sigmas = torch.tensor([10.0, 4.0, 1.0, 0.0])
    x0 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    record = invert(denoise, sigmas, x0, seed=3)
    assert not record.means.requires_grad and record.means.grad_fn is None
    assert not record.drawn.requires_grad
    out = replay(denoise, record)
    assert not out.requires_grad
    assert torch.equal(out, x0)  # and it is still the exact replay
