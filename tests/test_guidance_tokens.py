"""The paper's guidance rule written once (fineface_core.conditioning): uncond = encoder(zeros), and the
[uncond, cond] batch that diffusers' guided UNet calls take -- used by the AU Encoder node, the reference's
au_kwargs, the diffusers pipeline and the trainer's validation grid."""
import torch

from fineface_core.conditioning import cond_and_uncond, guided_batch
from fineface_core.encoders import build_encoder

AUS = torch.tensor([[0.0, 0, 0, 0, 3, 0, 4.5, 0, 0, 0, 0, 0], [2.0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]])


def encoder():
    torch.manual_seed(3)
    return build_encoder("res_mlp64", 1024).eval().requires_grad_(False)


def test_uncond_is_the_encoder_of_the_zero_vector_not_a_zero_token():
    enc = encoder()
    cond, uncond = cond_and_uncond(enc, AUS)
    assert torch.equal(cond, enc(AUS)) and torch.equal(uncond, enc(torch.zeros(2, 12)))
    assert cond.shape == uncond.shape == (2, 1, 1024)
    assert uncond.abs().sum() > 0  # the MLP's bias survives the zero vector


def test_a_guided_batch_is_uncond_then_cond_and_cond_alone_without_guidance():
    enc = encoder()
    batch = guided_batch(enc, AUS)
    assert torch.equal(batch, torch.cat([enc(torch.zeros(2, 12)), enc(AUS)]))
    assert torch.equal(guided_batch(enc, AUS, cfg=False), enc(AUS))
