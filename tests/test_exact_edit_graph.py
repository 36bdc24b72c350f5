"""The exact edit as a graph through ComfyUI's own executor, on a checkpoint CheckpointLoaderSimple detects as
SD 2.1 (tests/support/comfy_env.py) and FineFace weights made for it: photo -> VAE Encode -> Invert Photo under
the photo's AUs -> Regenerate Exact Edit (and Exact Edit Sampler in SamplerCustom) -> VAE Decode.

With the photo's own AUs the decoded edit is the VAE round trip of the photo, pixel for pixel.
"""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from tests.support import comfy_env
from tests.support.official_files import write_official_release
from tests.support.exact_edit import SOURCE, TARGET
from tests.support.shipped_runs import sd21_test_unet_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT = "exact_edit_sd21.safetensors"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    root = tmp_path_factory.mktemp("models")
    comfy_env.write_detectable_checkpoint(str(root / "checkpoints" / CKPT), "sd21", 0)
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):  # only the layer shapes are needed to write the weights
        unet = UNet2DConditionModel(**sd21_test_unet_config())
    release = root / "release"
    write_official_release(str(release), unet, "sd21", seed=1, rank=32)
    os.makedirs(root / "fineface")
    save_fineface(load_weights(str(release)), str(root / "fineface" / "fineface_sd21.safetensors"))
    return root


def photo_file(folder):
    """scikit-image's astronaut, 64 px (an 8x8 latent): a real photo of a face."""
    from skimage import data

    Image.fromarray(data.astronaut()).resize((64, 64), Image.LANCZOS).save(os.path.join(folder, "photo.png"))
    return "photo.png"


def prompt(image, cfg=7.5, steps=20, scheduler="karras", start_step=4):
    sliders = {f"AU{n}": 0.0 for n in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)}

    def patched(id, spec):
        return {
            f"{id}a": {"class_type": "FineFaceAUVector", "inputs": dict(sliders, spec=spec)},
            f"{id}e": {"class_type": "FineFaceAUEncoder", "inputs": {"fineface": ["ff", 0], "aus": [f"{id}a", 0]}},
            id: {"class_type": "FineFaceApplyAdapter", "inputs": {"model": ["ckpt", 0], "fineface": ["ff", 0], "au_embedding": [f"{id}e", 0],
                                                                 "weight": 1.0, "lora_strength": 1.0, "start_at": 0.0, "end_at": 1.0}},
        }

    def decoded(id, samples):
        return {f"{id}d": {"class_type": "VAEDecode", "inputs": {"samples": samples, "vae": ["ckpt", 2]}},
                id: {"class_type": "SaveImage", "inputs": {"images": [f"{id}d", 0], "filename_prefix": id}}}

    text = {"pos": "a closeup photo of an astronaut", "neg": "blurry"}
    p = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "ff": {"class_type": "FineFaceModelLoader", "inputs": {"weights": "fineface_sd21.safetensors"}},
        **{k: {"class_type": "CLIPTextEncode", "inputs": {"text": v, "clip": ["ckpt", 1]}} for k, v in text.items()},
        "img": {"class_type": "LoadImage", "inputs": {"image": image}},
        "enc": {"class_type": "VAEEncode", "inputs": {"pixels": ["img", 0], "vae": ["ckpt", 2]}},
        **patched("src", SOURCE), **patched("tgt", TARGET),
        "inv": {"class_type": "FineFaceInvertPhoto", "inputs": {
            "model": ["src", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["enc", 0], "cfg": cfg,
            "steps": steps, "scheduler": scheduler, "start_step": start_step, "seed": 3}},
        "same": {"class_type": "FineFaceRegenerateEdit", "inputs": {
            "model": ["src", 0], "positive": ["pos", 0], "negative": ["neg", 0], "inversion": ["inv", 0], "cfg": cfg, "latent_image": ["enc", 0]}},
        "edit": {"class_type": "FineFaceRegenerateEdit", "inputs": {
            "model": ["tgt", 0], "positive": ["pos", 0], "negative": ["neg", 0], "inversion": ["inv", 0], "cfg": cfg, "latent_image": ["enc", 0]}},
        "smp": {"class_type": "FineFaceExactEditSampler", "inputs": {"inversion": ["inv", 0]}},
        "custom": {"class_type": "SamplerCustom", "inputs": {
            "model": ["src", 0], "add_noise": False, "noise_seed": 0, "cfg": cfg, "positive": ["pos", 0], "negative": ["neg", 0],
            "sampler": ["smp", 0], "sigmas": ["smp", 1], "latent_image": ["enc", 0]}},
        **decoded("round_trip", ["enc", 0]), **decoded("same_aus", ["same", 0]), **decoded("target_aus", ["edit", 0]),
        **decoded("sampler_custom", ["custom", 0]),
    }
    return p


def pixels(files, id):
    assert len(files[id]) == 1
    return np.asarray(Image.open(files[id][0]).convert("RGB")).astype(np.int16)


@pytest.mark.slow
def test_the_photos_own_aus_decode_to_its_vae_round_trip_and_other_aus_edit_it(comfy_dirs):
    files = comfy_env.run_prompt(prompt(photo_file(comfy_dirs / "input")))
    round_trip = pixels(files, "round_trip")
    assert round_trip.shape == (64, 64, 3) and round_trip.std() > 1
    assert np.array_equal(pixels(files, "same_aus"), round_trip)
    # SamplerCustom adds ComfyUI's latent scaling round trip (1e-7): at most one level in an 8-bit pixel
    assert np.abs(pixels(files, "sampler_custom") - round_trip).max() <= 1
    assert np.abs(pixels(files, "target_aus") - round_trip).mean() > 1
