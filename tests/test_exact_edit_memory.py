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


# -- more targets than memory allows ------------------------------------------------------------------

def small_record(batch=1, steps=3):
    sigmas = torch.linspace(10.0, 1.0, steps).tolist() + [0.0]
    x0 = torch.randn(batch, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    return invert(lambda x, sigma: x / (1 + sigma), torch.tensor(sigmas), x0, seed=1)


def test_how_many_targets_fit_follows_from_the_record_and_the_free_memory():
    from fineface_core.editing.memory import WORKING_LATENTS, bytes_per_target, targets_that_fit

    record = small_record()
    one = 4 * 8 * 8 * 4
    assert record.nbytes == (3 + 4) * one
    assert bytes_per_target(record) == WORKING_LATENTS * one
    assert targets_that_fit(record, 10 * WORKING_LATENTS * one) == 10
    assert targets_that_fit(record, 10 * WORKING_LATENTS * one, fixed_bytes=WORKING_LATENTS * one) == 9
    # the record copied to another device counts once, not per target
    assert targets_that_fit(record, 10 * WORKING_LATENTS * one + record.nbytes, record_moves=True) == 10
    assert targets_that_fit(record, 100) == 0


def test_more_targets_than_memory_allows_names_the_node_and_how_many_fit():
    import pytest

    from fineface_core.editing.memory import bytes_per_target, check_targets_fit
    from fineface_core.errors import FineFaceError

    record = small_record()
    free = 5 * bytes_per_target(record) + 100
    check_targets_fit(record, 5, free, "cuda:0", "Regenerate Exact Edit")  # fits: no error
    with pytest.raises(FineFaceError, match=r"Regenerate Exact Edit: 6 targets need about .* on cuda:0 .* "
                                            r"5 target\(s\) fit\. Regenerate the targets in batches of at most 5"):
        check_targets_fit(record, 6, free, "cuda:0", "Regenerate Exact Edit")


def test_the_nodes_check_the_samplers_device_free_memory(tmp_path):
    """The glue measures ComfyUI's free memory of the device and one model call; a batch one larger than what
    fits is refused (the latents themselves are not made: the number alone is checked)."""
    import pytest

    import comfy.model_management

    from fineface_core.editing.memory import targets_that_fit
    from fineface_core.errors import FineFaceError
    from tests.support.comfy_env import pack_module
    from tests.support.exact_edit import Fam, exact_edit_nodes

    fam = Fam(exact_edit_nodes(), "sd21", tmp_path)
    record = fam.invert(1.0, 3)
    glue = pack_module("nodes.exact_edit_sampling")
    glue.check_memory(fam.model.model, record, 3, "cpu", "Regenerate Exact Edit")
    free = comfy.model_management.get_free_memory(torch.device("cpu"))
    fit = targets_that_fit(record, free, fam.model.model.memory_required([2, 4, 8, 8]))
    assert fit > 1000  # a 4x8x8 latent: millions fit in this machine's memory
    with pytest.raises(FineFaceError, match=r"^Regenerate Exact Edit: \d+ targets need .* target\(s\) fit"):
        glue.check_memory(fam.model.model, record, fit * 2 + 10, "cpu", "Regenerate Exact Edit")
