"""Exactness through ComfyUI's executor on SD 1.5, and on SD 2.1 sampled as v-prediction (as the 768-v model is):
a checkpoint CheckpointLoaderSimple detects (tests/support/comfy_env.py), FineFace weights made for its UNet, and one
prompt that inverts scikit-image's astronaut (64 px) at every setting and regenerates it with the photo's own AUs.

At cfg 1 and 7.5, 20 and 50 steps, the normal and karras schedulers: Regenerate Exact Edit's LATENT (saved by Save
Latent) is the photo's latent bit for bit, Exact Edit Sampler in SamplerCustom gives it to a relative max error
<= 1e-5, and both decode to the photo's VAE round trip. Other AUs change it. The suite builds no 768-v checkpoint:
core ModelSamplingDiscrete (v_prediction) makes the SD 2.1 test checkpoint sample as one, in the graph.
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from tests.support import comfy_env
from tests.support.exact_edit import SOURCE, TARGET
from tests.support.official_files import write_official_release
from tests.support.shipped_runs import sd21_test_unet_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = [(cfg, steps, scheduler) for cfg in (1.0, 7.5) for steps in (20, 50) for scheduler in ("normal", "karras")]
FAMILIES = {  # id -> (checkpoint family, ModelSamplingDiscrete sampling or None, the settings it runs)
    "sd15": ("sd15", None, SETTINGS),
    "sd21_v": ("sd21", "v_prediction", [(7.5, 20, "karras"), (1.0, 50, "normal")]),
}


def unet_config(family):
    """diffusers config of the detectable checkpoint's UNet (only its layer shapes are used)."""
    config = sd21_test_unet_config()
    if family == "sd15":
        config.update(cross_attention_dim=768, attention_head_dim=8, use_linear_projection=False)
    return config


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    from diffusers import UNet2DConditionModel

    root = tmp_path_factory.mktemp("models")
    for family in ("sd15", "sd21"):
        comfy_env.write_detectable_checkpoint(str(root / "checkpoints" / f"{family}.safetensors"), family, 0)
        with torch.device("meta"):
            unet = UNet2DConditionModel(**unet_config(family))
        release = root / f"release_{family}"
        write_official_release(str(release), unet, family, seed=1, rank=32)
        os.makedirs(root / "fineface", exist_ok=True)
        save_fineface(load_weights(str(release)), str(root / "fineface" / f"fineface_{family}.safetensors"))
    return root


def patched(id, spec, model):
    sliders = {f"AU{n}": 0.0 for n in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)}
    return {
        f"{id}a": {"class_type": "FineFaceAUVector", "inputs": dict(sliders, spec=spec)},
        f"{id}e": {"class_type": "FineFaceAUEncoder", "inputs": {"fineface": ["ff", 0], "aus": [f"{id}a", 0]}},
        id: {"class_type": "FineFaceApplyAdapter", "inputs": {"model": model, "fineface": ["ff", 0], "au_embedding": [f"{id}e", 0],
                                                             "weight": 1.0, "lora_strength": 1.0, "start_at": 0.0, "end_at": 1.0}},
    }


def saved(id, samples):
    """The LATENT saved (Save Latent) and decoded (VAE Decode -> Save Image)."""
    return {f"{id}_latent": {"class_type": "SaveLatent", "inputs": {"samples": samples, "filename_prefix": f"latents/{id}"}},
            f"{id}_decoded": {"class_type": "VAEDecode", "inputs": {"samples": samples, "vae": ["ckpt", 2]}},
            f"{id}_image": {"class_type": "SaveImage", "inputs": {"images": [f"{id}_decoded", 0], "filename_prefix": id}}}


def setting_nodes(k, cfg, steps, scheduler):
    """Invert at one setting; regenerate with the photo's AUs (plain node and SamplerCustom)."""
    shared = {"positive": ["pos", 0], "negative": ["neg", 0]}
    return {
        f"inv{k}": {"class_type": "FineFaceInvertPhoto", "inputs": dict(shared, model=["src", 0], latent_image=["enc", 0], cfg=cfg,
                                                                        steps=steps, scheduler=scheduler, start_step=0, seed=3)},
        f"same{k}": {"class_type": "FineFaceRegenerateEdit", "inputs": dict(shared, model=["src", 0], inversion=[f"inv{k}", 0],
                                                                           cfg=cfg, latent_image=["enc", 0])},
        f"smp{k}": {"class_type": "FineFaceExactEditSampler", "inputs": {"inversion": [f"inv{k}", 0]}},
        f"custom{k}": {"class_type": "SamplerCustom", "inputs": dict(shared, model=["src", 0], add_noise=False, noise_seed=0, cfg=cfg,
                                                                    sampler=[f"smp{k}", 0], sigmas=[f"smp{k}", 1], latent_image=["enc", 0])},
        **saved(f"same{k}", [f"same{k}", 0]), **saved(f"custom{k}", [f"custom{k}", 0]),
    }


def prompt(family, sampling, settings, image):
    model = ["ckpt", 0]
    p = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": f"{family}.safetensors"}},
        "ff": {"class_type": "FineFaceModelLoader", "inputs": {"weights": f"fineface_{family}.safetensors"}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a closeup photo of an astronaut", "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["ckpt", 1]}},
        "img": {"class_type": "LoadImage", "inputs": {"image": image}},
        "enc": {"class_type": "VAEEncode", "inputs": {"pixels": ["img", 0], "vae": ["ckpt", 2]}},
        **saved("photo", ["enc", 0]),
    }
    if sampling:
        p["msd"] = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": model, "sampling": sampling, "zsnr": False}}
        model = ["msd", 0]
    p.update(patched("src", SOURCE, model))
    p.update(patched("tgt", TARGET, model))
    for k, setting in enumerate(settings):
        p.update(setting_nodes(k, *setting))
    p["edit"] = {"class_type": "FineFaceRegenerateEdit", "inputs": {"model": ["tgt", 0], "positive": ["pos", 0], "negative": ["neg", 0],
                                                                    "inversion": ["inv0", 0], "cfg": settings[0][0], "latent_image": ["enc", 0]}}
    p.update(saved("edit", ["edit", 0]))
    return p


def outputs(files, id):
    """(the saved latent, the saved image as int pixels) of ``saved(id, ...)``."""
    (latent,) = files[f"{id}_latent"]
    (image,) = files[f"{id}_image"]
    return load_file(latent)["latent_tensor"], np.asarray(Image.open(image).convert("RGB")).astype(np.int16)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_photos_own_aus_give_its_latent_and_round_trip_back_through_the_executor(name, comfy_dirs):
    from skimage import data

    family, sampling, settings = FAMILIES[name]
    Image.fromarray(data.astronaut()).resize((64, 64), Image.LANCZOS).save(comfy_dirs / "input" / "photo.png")
    files = comfy_env.run_prompt(prompt(family, sampling, settings, "photo.png"))
    latent, round_trip = outputs(files, "photo")
    assert latent.shape == (1, 4, 8, 8) and round_trip.std() > 1
    errors = {}
    for k, setting in enumerate(settings):
        same, same_pixels = outputs(files, f"same{k}")
        custom, custom_pixels = outputs(files, f"custom{k}")
        errors[setting] = (rel(same, latent), rel(custom, latent))
        assert torch.equal(same, latent), setting
        assert rel(custom, latent) <= 1e-5, setting
        assert np.array_equal(same_pixels, round_trip), setting
        assert np.abs(custom_pixels - round_trip).max() <= 1, setting  # a latent 1e-7 away: one 8-bit level at most
    edit, edit_pixels = outputs(files, "edit")
    assert rel(edit, latent) > 1e-2 and np.abs(edit_pixels - round_trip).mean() > 1
    print(name, {f"cfg {c:g} {n} {s}": f"{a:.1e} / {b:.1e}" for (c, n, s), (a, b) in errors.items()})
