"""A LoRA file is called FineFace's only when its layout is the official one; any other diffusers /
peft LoRA for Stable Diffusion is named as such, alone or dropped into a release folder."""
import shutil

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

from fineface_core.weightfiles.cli import main
from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.loading import load_weights
from fineface_core.reference import lora_paths
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

# The real SD 2.1 UNet (stabilityai/stable-diffusion-2-1 unet/config.json), built on the meta device.
SD21_CONFIG = dict(
    sample_size=96, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
)


@pytest.fixture(scope="module")
def sd21_layers():
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD21_CONFIG)
    return {path: (lin.in_features, lin.out_features) for path, lin in lora_paths(unet).items()}


def peft_lora(layers, rank, prefix="unet."):
    """peft-named LoRA tensors (zeros: only names and shapes matter here) in half precision."""
    out = {}
    for path, (n_in, n_out) in layers.items():
        out[f"{prefix}{path}.lora_A.weight"] = torch.zeros(rank, n_in, dtype=torch.float16)
        out[f"{prefix}{path}.lora_B.weight"] = torch.zeros(n_out, rank, dtype=torch.float16)
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_official_release(str(tmp_path_factory.mktemp("release") / "sd21"), tiny_unet("sd21"), "sd21", seed=2)


def test_the_sd21_layout_has_128_layers(sd21_layers):
    assert len(sd21_layers) == 16 * 2 * 4
    assert sd21_layers["up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k"] == (1024, 320)


def test_the_official_layout_is_called_the_release_lora(sd21_layers, tmp_path):
    path = tmp_path / "fineface_lora.safetensors"
    save_file(peft_lora(sd21_layers, 32), str(path))
    with pytest.raises(WeightFileError, match="is the LoRA part of the official FineFace release"):
        load_weights(str(path))


@pytest.mark.parametrize("case,says", [
    ("rank 16", "a diffusers/peft LoRA for Stable Diffusion 2.x (128 layers, rank 16), not FineFace's"),
    ("attn2 only", "a diffusers/peft LoRA for Stable Diffusion 2.x (64 layers, rank 32), not FineFace's"),
    ("no unet. prefix", "a diffusers/peft LoRA for Stable Diffusion 2.x (128 layers, rank 4), not FineFace's"),
    ("sd15", "a diffusers/peft LoRA for Stable Diffusion 1.x (128 layers, rank 32), not FineFace's"),
    ("sdxl", "a diffusers/peft LoRA for SDXL (2 layers, rank 8), not FineFace's"),
    ("text encoder", "a diffusers/peft LoRA for a Stable Diffusion text encoder (1 layer), not FineFace's"),
    ("unet + text encoder", "(128 layers and 1 text-encoder layer, rank 32), not FineFace's"),
    ("old diffusers names", "a diffusers/peft LoRA for Stable Diffusion 2.x (2 layers, rank 4), not FineFace's"),
])
def test_other_sd_loras_are_named_as_such(sd21_layers, tmp_path, case, says):
    text = {"text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(8, 1024),
            "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(1024, 8)}
    attn = "down_blocks.0.attentions.0.transformer_blocks.0.attn2"
    tensors = {
        "rank 16": lambda: peft_lora(sd21_layers, 16),
        "attn2 only": lambda: peft_lora({p: s for p, s in sd21_layers.items() if ".attn2." in p}, 32),
        "no unet. prefix": lambda: peft_lora(sd21_layers, 4, prefix=""),
        "sd15": lambda: peft_lora({p: (768 if p.endswith(("attn2.to_k", "attn2.to_v")) else i, o)
                                   for p, (i, o) in sd21_layers.items()}, 32),
        "sdxl": lambda: peft_lora({f"down_blocks.1.attentions.0.transformer_blocks.{b}.attn2.to_k": (2048, 640)
                                   for b in range(2)}, 8),
        "text encoder": lambda: text,
        "unet + text encoder": lambda: {**peft_lora(sd21_layers, 32), **text},
        "old diffusers names": lambda: {f"{attn}.processor.to_{t}_lora.{d}.weight": torch.zeros(*s)
                                        for t in ("k", "v") for d, s in (("down", (4, 1024)), ("up", (320, 4)))},
    }[case]()
    path = tmp_path / "some_lora.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(WeightFileError) as err:
        load_weights(str(path))
    assert says in str(err.value) and "part of the official" not in str(err.value)


@pytest.mark.parametrize("case,says", [
    ("real SD 2.1 widths", "(the widths of another UNet)"),
    ("some layers", "64 of FineFace's 128 LoRA layers are missing"),
    ("extra layer", "it has 1 layer FineFace's LoRA does not have"),
    ("text encoder", "it changes the text encoder too"),
    ("mixed ranks", "its layers use different ranks [4, 8]"),
])
def test_a_release_folder_with_another_lora_is_refused(release, sd21_layers, tmp_path, capsys, case, says):
    tiny = {p: (lin.in_features, lin.out_features) for p, lin in lora_paths(tiny_unet("sd21")).items()}
    tensors = {
        "real SD 2.1 widths": lambda: peft_lora(sd21_layers, 8),
        "some layers": lambda: peft_lora({p: s for p, s in tiny.items() if ".attn1." in p}, 8),
        "extra layer": lambda: {**peft_lora(tiny, 8), **peft_lora({"down_blocks.0.resnets.0.conv1": (32, 32)}, 8)},
        "text encoder": lambda: {**peft_lora(tiny, 8), "text_encoder.layers.0.q_proj.lora_A.weight": torch.zeros(8, 1024)},
        "mixed ranks": lambda: {**peft_lora(tiny, 8), **peft_lora(dict(list(tiny.items())[:1]), 4)},
    }[case]()
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    save_file(tensors, str(folder / "pytorch_lora_weights.safetensors"))
    with pytest.raises(WeightFileError) as err:
        load_weights(str(folder))
    message = str(err.value)
    assert "pytorch_lora_weights.safetensors is a diffusers/peft LoRA for Stable Diffusion" in message
    assert says in message and "not FineFace's" in message, message
    assert main(["convert", str(folder), str(tmp_path / "out.safetensors")]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "out.safetensors").exists()


def test_the_release_lora_still_loads_beside_its_adapter(release):
    w = load_weights(release)
    assert len(w.lora.down) == 128 and w.lora.rank == 8
