"""SDXL as a FineFace family: its text width and adapter layers (counted from the real SDXL UNet config), messages
that tell SDXL, SD 2.x, SD 1.x, the SDXL refiner and DiT models apart, the single file with family sdxl (write, read,
inspect, refusals) and the release table's SDXL row (no official release: messages say so, never a hub)."""
from __future__ import annotations

import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fineface_core.errors import ModelMismatchError, WeightFileError
from fineface_core.families import FAMILIES, SDXL, family_for_context_dim, not_a_unet_message
from fineface_core.reference import attn2_modules
from fineface_core.weightfiles import cli
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.official import load_official
from fineface_core.weightfiles.releases import RELEASES, download_source, weights_for
from fineface_core.weightfiles.single_file import load_fineface, save_fineface
from tests.support.official_files import random_official_tensors
from tests.support.tiny_sdxl import tiny_sdxl_unet
from tests.support.tiny_sdxl_weights import sdxl_weights
from training.sdxl_architecture import sdxl_unet


@pytest.fixture(scope="module")
def unet():
    return tiny_sdxl_unet(seed=3)


@pytest.fixture(scope="module")
def weights(unet):
    return sdxl_weights(unet, seed=4)


def test_the_real_sdxl_unet_has_70_cross_attention_layers_at_text_width_2048():
    real = sdxl_unet()  # the published config on the meta device: no download, no memory
    layers = attn2_modules(real)
    assert len(layers) == SDXL.adapter_layers == 70
    widths = sorted(m.to_v.out_features for m in layers.values())
    assert widths.count(640) == 10 and widths.count(1280) == 60
    assert {m.to_k.in_features for m in layers.values()} == {SDXL.context_dim} == {2048}
    assert family_for_context_dim(real.config.cross_attention_dim) is SDXL is FAMILIES["sdxl"]


def test_the_tiny_sdxl_has_the_real_layer_layout(unet):
    real = {p for p in attn2_modules(sdxl_unet())}
    assert set(attn2_modules(unet)) == real


@pytest.mark.parametrize("width, says", [
    (1280, r"the SDXL refiner \(text width 1280\).*SDXL \(text width 2048\).*apply FineFace to the SDXL base model"),
    (4096, r"a T5-conditioned model \(text width 4096\).*Stable Diffusion 2.x .*Stable Diffusion 1.x .*SDXL"),
    (512, r"text width 512.*SDXL checkpoint with FineFace weights trained for SDXL \(training/\)"),
])
def test_unsupported_widths_are_named_beside_every_family(width, says):
    with pytest.raises(ModelMismatchError, match=says):
        family_for_context_dim(width, "this MODEL")


def test_a_dit_model_is_told_apart_from_a_unet():
    message = not_a_unet_message("this MODEL", "Flux")
    assert "(Flux) is not a Stable Diffusion UNet" in message and "DiT" in message and "SDXL (text width 2048)" in message


def test_a_file_with_family_sdxl_round_trips_and_inspects(weights, tmp_path, capsys):
    path = str(tmp_path / "fineface_sdxl.safetensors")
    save_fineface(weights, path)
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    assert meta["fineface.family"] == "sdxl" and meta["fineface.context_dim"] == "2048"
    back = load_weights(path)
    assert back.family is SDXL and len(back.layers) == 70 and back.encoder.width == 2048
    assert all(torch.equal(back.au_to_v[p], weights.au_to_v[p]) for p in weights.layers)
    assert back.lora is not None and back.lora.same_as(weights.lora)
    e = torch.tensor([[0, 0, 0, 0, 3.0, 0, 4.0, 0, 0, 0, 1.0, 0]])
    assert torch.equal(back.encode(e), weights.encode(e)) and back.encode(e).shape == (1, 1, 2048)
    assert cli.main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "base model:    SDXL (text width 2048)" in out and "70 cross-attention layers" in out


def test_an_sdxl_file_claiming_another_width_is_refused_naming_sdxl(weights, tmp_path):
    path = str(tmp_path / "w.safetensors")
    save_fineface(weights, path)
    with safe_open(path, "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    bad = str(tmp_path / "bad.safetensors")
    save_file(tensors, bad, metadata={**meta, "fineface.context_dim": "1024"})
    with pytest.raises(WeightFileError, match=r"'fineface.context_dim' says text width '1024'; SDXL \(text width 2048\) needs 2048"):
        load_fineface(bad)
    # an SD 2.1 file relabelled as SDXL: the encoder's width gives it away
    save_file(tensors, bad, metadata={**meta, "fineface.encoder": meta["fineface.encoder"].replace("2048", "1024")})
    with pytest.raises(WeightFileError, match="a SDXL file needs 2048"):
        load_fineface(bad)


def test_the_release_table_says_no_official_sdxl_release_exists(unet, tmp_path):
    assert "sdxl" not in RELEASES  # no files, no hub: nothing for menus or downloads to offer
    said = weights_for("sdxl")
    assert "trained for SDXL with training/" in said and "no official SDXL release exists" in said
    assert "huggingface" not in said.lower()
    with pytest.raises(WeightFileError, match="no official FineFace release exists for SDXL: train FineFace for SDXL "
                                              r"with training/ .*python -m training.export"):
        load_official(str(tmp_path), "sdxl")
    # the official layout with an SDXL-wide adapter (someone's own files renamed as the release's) is refused, naming SDXL
    encoder_sd, processors_sd, _ = random_official_tensors(unet, "sd21", 0, 4)
    folder = tmp_path / "release"
    os.makedirs(folder)
    torch.save(encoder_sd, folder / RELEASES["sd15"].encoder_file)
    torch.save(processors_sd, folder / RELEASES["sd15"].processors_file)
    with pytest.raises(WeightFileError, match=r"built for SDXL \(text width 2048\)"):
        load_weights(str(folder))
    assert "huggingface" in download_source(RELEASES["sd21"].encoder_file)  # the real releases keep their hub
