"""fineface_core.encoders: every AU encoder gives one token of the text width, the residual ones carry the raw AUs,
res_mlp64 is the paper's definition bit for bit and SD 1.5's has no padding, bad settings or weights are refused,
and the fingerprint follows settings and values."""
import pytest
import torch
import torch.nn.functional as F

from fineface_core.encoders import ENCODER_CHOICES, ResMLPEncoder, build_encoder, load_encoder
from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.official import encoder_from_official


@pytest.mark.parametrize("kind", ENCODER_CHOICES)
@pytest.mark.parametrize("width", [1024, 768])
def test_every_encoder_emits_one_token_of_the_text_width(kind, width):
    enc = build_encoder(kind, width=width)
    y = torch.rand(3, 12) * 5
    e = enc(y)
    assert e.shape == (3, 1, width)
    assert torch.isfinite(e).all()
    # Distinct AU vectors give distinct embeddings (the encoder carries the AUs).
    assert not torch.allclose(e[0], e[1])
    # The config round-trips into the same architecture.
    again = load_encoder(enc.config(), enc.state_dict())
    assert torch.equal(again(y), e.detach())


@pytest.mark.parametrize("kind", ["none", "res_mlp64", "res_mlp", "res_3mlp"])
def test_residual_encoders_carry_the_raw_aus_first(kind):
    y = torch.rand(2, 12) * 5
    assert torch.equal(build_encoder(kind, width=1024)(y)[:, 0, :12], y)


def test_res_mlp64_is_the_paper_definition_bit_for_bit():
    # e = concat(y, W y + b, zeros) -> one token of 1024
    g = torch.Generator().manual_seed(0)
    sd = {"au_encoder.weight": torch.randn(64, 12, generator=g), "au_encoder.bias": torch.randn(64, generator=g)}
    enc = encoder_from_official(sd, 1024)
    y = torch.tensor([[2.0, 0, 0, 0, 2.5, 0, 5, 0, 0, 0, 0, 0], [0] * 12, [-3.0] + [1.0] * 11])
    paper = torch.cat([y, F.linear(y, sd["au_encoder.weight"], sd["au_encoder.bias"]), torch.zeros(3, 1024 - 76)], 1)
    assert torch.equal(enc(y), paper.reshape(3, 1, 1024))
    # Uncond = encoder(zeros) is not a zero embedding: the bias survives.
    assert torch.equal(enc(torch.zeros(1, 12))[0, 0, 12:76], sd["au_encoder.bias"])


def test_sd15_encoder_has_no_padding():
    g = torch.Generator().manual_seed(1)
    sd = {"au_encoder.weight": torch.randn(756, 12, generator=g), "au_encoder.bias": torch.randn(756, generator=g)}
    enc = encoder_from_official(sd, 768)
    assert isinstance(enc, ResMLPEncoder) and enc.display_name == "Res + MLP"
    y = torch.rand(2, 12)
    assert torch.equal(enc(y), torch.cat([y, F.linear(y, sd["au_encoder.weight"], sd["au_encoder.bias"])], 1)[:, None])


def test_encoder_refusals():
    with pytest.raises(WeightFileError, match="unknown AU encoder kind 'transformer'"):
        build_encoder("transformer", width=1024)
    with pytest.raises(WeightFileError, match="missing"):
        load_encoder({"kind": "res_mlp", "width": 1024, "hidden_dim": 64}, {"au_encoder.weight": torch.zeros(64, 12)})
    with pytest.raises(WeightFileError, match="shape"):
        load_encoder({"kind": "res_mlp", "width": 1024, "hidden_dim": 64},
                     {"au_encoder.weight": torch.zeros(32, 12), "au_encoder.bias": torch.zeros(64)})
    with pytest.raises(ValueError, match=r"\[batch, 12\]"):
        build_encoder("none", width=1024)(torch.zeros(2, 11))


def test_fingerprint_follows_settings_and_values():
    enc = build_encoder("res_mlp64", width=1024)
    same = load_encoder(enc.config(), {k: v.clone() for k, v in enc.state_dict().items()})
    assert same.fingerprint() == enc.fingerprint()
    nudged = {k: v.clone() for k, v in enc.state_dict().items()}
    nudged["au_encoder.bias"][0] += 1e-6
    assert load_encoder(enc.config(), nudged).fingerprint() != enc.fingerprint()
    assert build_encoder("none", width=1024).fingerprint() != build_encoder("none", width=768).fingerprint()
