"""FineFace Release Loader: the official files by name, laid out as the front end's missing-models dialog
downloads them (each file straight into models/fineface/), through ComfyUI's registry and its folder_paths."""
import os
import shutil

import pytest
import torch

from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.loading import load_weights
from tests.support import comfy_env
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SD21 = ["au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors"]
SD15 = ["sd15_au_encoder.ckpt", "sd15_attn_processors.ckpt", "none"]


@pytest.fixture(scope="module")
def registry():
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import folder_paths
    import nodes

    return nodes, folder_paths


@pytest.fixture
def models(registry, tmp_path, monkeypatch):
    """models/fineface/ holding both releases' files side by side, as the dialog saves them."""
    _, folder_paths = registry
    fineface = tmp_path / "fineface"
    write_official_release(str(tmp_path / "r21"), tiny_unet("sd21"), "sd21", seed=1, rank=32)
    write_official_release(str(tmp_path / "r15"), tiny_unet("sd15"), "sd15", seed=2)
    fineface.mkdir()
    for release in ("r21", "r15"):
        for name in os.listdir(tmp_path / release):
            shutil.copy(tmp_path / release / name, fineface / name)
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "fineface",
                        ([str(fineface)], {".safetensors", ".ckpt", ".pt", ".pth", ".bin"}))
    if isinstance(getattr(folder_paths, "filename_list_cache", None), dict):
        folder_paths.filename_list_cache.clear()
    return tmp_path


def loader(registry):
    cls = registry[0].NODE_CLASS_MAPPINGS["FineFaceReleaseLoader"]
    return cls, getattr(cls(), cls.FUNCTION)


def test_the_downloaded_files_are_offered_first_and_load_as_the_release(registry, models):
    cls, load = loader(registry)
    spec = cls.INPUT_TYPES()["required"]
    assert [spec[k][0][0] for k in ("au_encoder", "attn_processors", "lora")] == SD21
    assert "none" in spec["lora"][0] and "sd15_au_encoder.ckpt" in spec["au_encoder"][0]
    # the front end's own model list of the folder (its missing-models check) sees the pickles too
    assert set(SD21[:2]) <= set(registry[1].get_filename_list("fineface"))
    assert cls.VALIDATE_INPUTS(*SD21) is True and cls.VALIDATE_INPUTS(*SD15) is True
    weights, info = load(*SD21)
    folder = load_weights(str(models / "r21"))
    assert weights.lora.scale == 0.25 and "rank 32" in info
    assert all(torch.equal(weights.au_to_v[p], folder.au_to_v[p]) for p in folder.au_to_v)
    assert weights.encoder.fingerprint() == folder.encoder.fingerprint()
    sd15, _ = load(*SD15)
    assert sd15.family.key == "sd15" and sd15.lora is None


def test_missing_files_say_where_they_come_from(registry, models):
    cls, load = loader(registry)
    os.remove(models / "fineface" / "attn_processors.ckpt")
    message = cls.VALIDATE_INPUTS(*SD21)
    assert "'attn_processors.ckpt' is not in" in message and "https://huggingface.co/Tvaranka/fineface" in message
    with pytest.raises(WeightFileError, match="attn_processors.ckpt"):
        load(*SD21)


def test_files_of_two_releases_are_not_mixed(registry, models):
    _, load = loader(registry)
    with pytest.raises(WeightFileError, match="756-wide MLP; the official SD 2.1 encoder has 64"):
        load("sd15_au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors")
    with pytest.raises(WeightFileError, match="the SD 2.1 release needs its LoRA"):
        load("au_encoder.ckpt", "attn_processors.ckpt", "none")
    with pytest.raises(WeightFileError, match="the SD 1.5 release has no LoRA; choose 'none'"):
        load("sd15_au_encoder.ckpt", "sd15_attn_processors.ckpt", "pytorch_lora_weights.safetensors")
