"""A checkpoint file ComfyUI detects as SDXL (tests/support/sdxl_checkpoint.py: SDXL's layout at width 320, float16,
a TAESD, no text encoders), through ComfyUI's own nodes: CheckpointLoaderSimple loads it as SDXL, FineFace Model
Loader reads a family-sdxl file from models/fineface, Apply FineFace Adapter patches its 70 layers and equals the
diffusers reference (the same file's UNet, read back) within 1e-4 in both cond/uncond orders with per-image AUs; the
AUs change the output, KSampler + VAE Decode run on it, and an SD 2.1 file is refused naming SDXL.

The file carries no CLIP (ComfyUI's SDXL text encoders are full-size, see the support module), so the text states
and pooled embedding are given as tensors: the CONDITIONING CLIPTextEncodeSDXL would make."""
import os
from types import SimpleNamespace

import pytest
import torch
from safetensors import safe_open

from fineface_core.errors import ModelMismatchError
from fineface_core.families import SDXL
from fineface_core.reference import attach_fineface
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from tests.support.official_files import write_official_release
from tests.support.patched_sdxl import au_tokens, inputs, run_comfy_xl, run_reference_xl
from tests.support.patched_unet import aus, rel
from tests.support.sdxl_checkpoint import POOLED, UNET_PREFIX, reference_unet_from_checkpoint
from tests.support.shipped_runs import sd21_test_unet_config
from tests.support.tiny_sdxl_weights import write_sdxl_file
from workflows import run as headless

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # 30-85 s on one thread, 4.7 GB
TOL = 1e-4
CKPT = "sdxl-tiny.safetensors"


@pytest.fixture(scope="module")
def xl_dirs(comfy, sdxl_checkpoint, tmp_path_factory):
    """models/checkpoints/<the checkpoint>, models/fineface/ with a family-sdxl file for its UNet and an SD 2.1 file;
    ComfyUI's model folders pointed there for this module."""
    from diffusers import UNet2DConditionModel

    from tests.support.sdxl_checkpoint import detectable_unet_config

    root = tmp_path_factory.mktemp("xl_models")
    for folder in ("checkpoints", "fineface"):
        os.makedirs(root / folder)
    os.symlink(sdxl_checkpoint, root / "checkpoints" / CKPT)
    with torch.device("meta"):  # the FineFace files only need the layer shapes
        xl_shapes = UNet2DConditionModel(**detectable_unet_config())
        sd21_shapes = UNet2DConditionModel(**sd21_test_unet_config())
    write_sdxl_file(str(root / "fineface" / "fineface_sdxl.safetensors"), xl_shapes, seed=3)
    write_official_release(str(root / "sd21_release"), sd21_shapes, "sd21", seed=1, rank=4)
    save_fineface(load_weights(str(root / "sd21_release")), str(root / "fineface" / "fineface_sd21.safetensors"))
    fp = comfy.folder_paths
    state = headless.snapshot_folders(fp)
    headless.use_models_dir(fp, str(root))
    yield root
    headless.restore_folders(fp, state)


@pytest.fixture(scope="module")
def loaded(comfy, xl_dirs):
    model, clip, vae = comfy.nodes.CheckpointLoaderSimple().load_checkpoint(CKPT)[:3]
    return SimpleNamespace(model=model, clip=clip, vae=vae)


@pytest.fixture(scope="module")
def fineface(comfy, xl_dirs):
    loader = comfy.nodes.NODE_CLASS_MAPPINGS["FineFaceModelLoader"]()
    return {name: loader.load(f"fineface_{name}.safetensors")[0] for name in ("sdxl", "sd21")}


@pytest.fixture(scope="module")
def reference(sdxl_checkpoint, fineface):
    """The checkpoint's UNet on diffusers with the same FineFace weights attached (LoRA strength 1)."""
    unet = reference_unet_from_checkpoint(sdxl_checkpoint)
    attach_fineface(unet, fineface["sdxl"], lora_strength=1.0)
    return unet


def patch(pack, loaded, weights, specs):
    emb, = pack.encode(weights, aus(pack, *specs))
    return pack.apply(loaded.model, weights, emb, 1.0, 1.0, 0.0, 1.0)[0]


def test_checkpoint_loader_simple_detects_the_file_as_sdxl(loaded, sdxl_checkpoint):
    import comfy.model_base
    import comfy.supported_models

    assert type(loaded.model.model) is comfy.model_base.SDXL
    assert type(loaded.model.model.model_config) is comfy.supported_models.SDXL
    assert loaded.model.model.model_type == comfy.model_base.ModelType.EPS
    assert loaded.clip is None  # no text encoders in the file (ComfyUI warns and returns none)
    assert type(loaded.vae.first_stage_model).__name__ == "TAESD"
    params = sum(p.numel() for p in loaded.model.model.diffusion_model.parameters())
    assert 2e8 < params < 3e8  # the smallest SDXL layout ComfyUI detects: 283M
    with safe_open(sdxl_checkpoint, framework="pt") as f:
        unet_keys = [k for k in f.keys() if k.startswith(UNET_PREFIX)]
        assert {f.get_slice(k).get_dtype() for k in unet_keys} == {"F16"}
    assert os.path.getsize(sdxl_checkpoint) < 2.2 * params  # 2 bytes a weight, and a small TAESD


@pytest.mark.parametrize("layout", [(0, 1), (1, 0)])
def test_apply_patches_70_layers_and_equals_the_reference(pack, loaded, fineface, reference, layout):
    weights = fineface["sdxl"]
    assert weights.family is SDXL and len(weights.layers) == 70
    specs = ["AU6@3 + AU12@4", "AU4@3 + AU15@2"]
    patched = patch(pack, loaded, weights, specs)
    attn2 = patched.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert len(attn2) == 70 and all(len(key) == 3 for key in attn2)
    x, sigma, ctx, pooled = inputs(batch=2, seed=5, pooled_dim=POOLED)
    got = run_comfy_xl(pack, patched, x, sigma, ctx, pooled, layout)
    want = run_reference_xl(SimpleNamespace(model=loaded.model), reference, x, sigma, ctx, pooled, layout,
                            au_tokens(weights, specs, 2))
    assert rel(got, want) < TOL
    assert rel(run_comfy_xl(pack, loaded.model, x, sigma, ctx, pooled, layout), want) > 100 * TOL


def test_the_aus_change_the_output(pack, loaded, fineface):
    x, sigma, ctx, pooled = inputs(seed=6, pooled_dim=POOLED)
    smile, frown = (run_comfy_xl(pack, patch(pack, loaded, fineface["sdxl"], [spec]), x, sigma, ctx, pooled, (1, 0))
                    for spec in ("AU6@3 + AU12@5", "AU4@4 + AU15@4"))
    assert rel(smile[1:], frown[1:]) > 1e-3  # the cond half follows the AUs
    assert rel(smile[:1], frown[:1]) < 1e-6  # the uncond half is encoder(zeros) in both


def test_ksampler_and_vae_decode_run_the_patched_sdxl(comfy, pack, loaded, fineface):
    """Two KSampler steps (CONDITIONING with its pooled output, as CLIPTextEncodeSDXL makes it) and VAE Decode."""
    g = torch.Generator().manual_seed(7)

    def conditioning():
        return [[torch.randn(1, 77, 2048, generator=g), {"pooled_output": torch.randn(1, POOLED, generator=g),
                                                         "width": 64, "height": 64}]]

    positive, negative = conditioning(), conditioning()
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    images = []
    for spec in ("AU6@3 + AU12@5", "AU4@4 + AU15@4"):
        model = patch(pack, loaded, fineface["sdxl"], [spec])
        samples, = comfy.nodes.KSampler().sample(model, 1, 2, 5.0, "euler", "normal", positive, negative, latent)
        image, = comfy.nodes.VAEDecode().decode(loaded.vae, samples)
        assert image.shape == (1, 64, 64, 3) and torch.isfinite(image).all()
        images.append(image)
    assert (images[0] - images[1]).abs().max() > 1e-3


def test_an_sd21_file_is_refused_naming_sdxl(pack, loaded, fineface):
    weights = fineface["sd21"]
    emb, = pack.encode(weights, aus(pack, "AU12@3"))
    with pytest.raises(ModelMismatchError, match=r"this MODEL is SDXL \(text width 2048\), but the FineFace weights "
                                                 r"are for Stable Diffusion 2.x"):
        pack.apply(loaded.model, weights, emb, 1.0, 1.0, 0.0, 1.0)
