"""The official releases (SD 2.1, SD 1.5, a folder holding both) and the single fineface_*.safetensors file: loading
without renaming, the exact convert round trip (also fp16 and without au_to_k), and refusing pickles that would run
code, truncated, foreign, mismatched and inconsistent files; the CLI reports errors without a traceback."""
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.official import load_official, official_variants_in
from fineface_core.weightfiles.single_file import load_fineface, save_fineface
from tests.support.official_files import random_official_tensors, write_official_release
from tests.support.tiny_unets import tiny_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def unets():
    return {"sd21": tiny_unet("sd21"), "sd15": tiny_unet("sd15")}


@pytest.fixture(scope="module")
def releases(unets, tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    return {
        "sd21": write_official_release(str(root / "sd21"), unets["sd21"], "sd21", seed=3),
        "sd15": write_official_release(str(root / "sd15"), unets["sd15"], "sd15", seed=4),
        "sd15_ip": write_official_release(str(root / "sd15_ip"), unets["sd15"], "sd15", seed=5, ip_keys=True),
    }


def test_sd21_release_loads_without_renaming(releases, unets):
    w = load_weights(releases["sd21"])
    enc_sd, proc_sd, lora_sd = random_official_tensors(unets["sd21"], "sd21", seed=3)
    assert w.family.key == "sd21" and w.family.context_dim == 1024
    assert len(w.au_to_v) == 16 and w.width_summary() == "32 x5, 64 x5, 128 x6"
    for key, t in proc_sd.items():
        path, name = key.split(".processor.")
        assert torch.equal((w.au_to_v if name.startswith("au_to_v") else w.au_to_k)[path], t)
    assert torch.equal(w.encoder.state_dict()["au_encoder.weight"], enc_sd["au_encoder.weight"])
    # 16 attn1 + 16 attn2, four projections each; no alpha stored -> alpha = rank (official scale 1.0).
    assert len(w.lora.down) == 128 and w.lora.rank == 8 and w.lora.scale == 1.0
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"
    assert torch.equal(w.lora.down[key], lora_sd[f"unet.{key}.lora_A.weight"])
    assert torch.equal(w.lora.up[key], lora_sd[f"unet.{key}.lora_B.weight"])


def test_sd15_release_loads_and_reports_ip_keys(releases):
    w = load_weights(releases["sd15"])
    assert w.family.key == "sd15" and w.lora is None and not w.ignored
    assert w.encoder.config() == {"kind": "res_mlp", "width": 768, "hidden_dim": 756}
    w_ip = load_weights(releases["sd15_ip"])
    assert len(w_ip.ignored) == 32 and all("IP-Adapter" in why for why in w_ip.ignored.values())
    assert not any("_ip" in p for p in w_ip.au_to_v)


def test_folder_with_both_variants_needs_a_choice(releases, tmp_path):
    both = tmp_path / "both"
    shutil.copytree(releases["sd21"], both)
    for f in os.listdir(releases["sd15"]):
        shutil.copy(os.path.join(releases["sd15"], f), both)
    assert official_variants_in(str(both)) == ["sd21", "sd15"]
    with pytest.raises(WeightFileError, match="holds both"):
        load_official(str(both))
    assert load_official(str(both), "sd15").family.key == "sd15"
    assert load_official(str(both), "sd21").family.key == "sd21"


@pytest.mark.parametrize("variant", ["sd21", "sd15_ip"])
def test_convert_round_trip_is_exact(releases, tmp_path, variant):
    out = tmp_path / "model.safetensors"
    r = subprocess.run([sys.executable, "-m", "fineface_core", "convert", releases[variant], str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = load_weights(releases[variant]), load_fineface(str(out))
    assert a.family == b.family and a.encoder.config() == b.encoder.config()
    assert all(torch.equal(a.encoder.state_dict()[k], v) for k, v in b.encoder.state_dict().items())
    for name in ("au_to_v", "au_to_k"):
        da, db = getattr(a, name), getattr(b, name)
        assert set(da) == set(db) and all(torch.equal(da[k], db[k]) and da[k].dtype == db[k].dtype for k in da)
    if a.lora:
        assert b.lora.alpha == a.lora.alpha and b.lora.rank == a.lora.rank
        assert all(torch.equal(a.lora.down[k], b.lora.down[k]) and torch.equal(a.lora.up[k], b.lora.up[k]) for k in a.lora.down)
    else:
        assert b.lora is None
    # Writing the read-back file again gives byte-identical tensors.
    again = tmp_path / "again.safetensors"
    save_fineface(b, str(again))
    ta, tb = load_file(str(out)), load_file(str(again))
    assert set(ta) == set(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)

    r = subprocess.run([sys.executable, "-m", "fineface_core", "inspect", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "16 cross-attention layers, widths 32 x5, 64 x5, 128 x6" in r.stdout
    assert "parameters:" in r.stdout and "au_to_v 1,277,952" in r.stdout or "au_to_v 958,464" in r.stdout


def test_drop_au_to_k_and_fp16(releases, tmp_path):
    out = tmp_path / "small.safetensors"
    r = subprocess.run([sys.executable, "-m", "fineface_core", "convert", releases["sd21"], str(out), "--drop-au-to-k", "--dtype", "fp16"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    w = load_fineface(str(out))
    assert not w.au_to_k and next(iter(w.au_to_v.values())).dtype == torch.float16
    assert "omitted" in r.stdout


# -- refusals -------------------------------------------------------------------------

class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling this would create the marker file


def test_pickle_that_would_run_code_is_refused_and_never_runs(releases, tmp_path):
    folder = tmp_path / "evil"
    shutil.copytree(releases["sd21"], folder)
    marker = tmp_path / "code-ran"
    sd = torch.load(folder / "attn_processors.ckpt", weights_only=True)
    sd["payload"] = _RunsCode(str(marker))
    torch.save(sd, folder / "attn_processors.ckpt")
    with pytest.raises(WeightFileError, match="could run code. Nothing from it was executed") as err:
        load_weights(str(folder))
    assert "asks for io.open" in str(err.value)
    assert not marker.exists()


def test_pickle_of_non_tensors_is_refused(releases, tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(releases["sd21"], folder)
    torch.save({"au_encoder.weight": [1, 2, 3]}, folder / "au_encoder.ckpt")
    with pytest.raises(WeightFileError, match="does not hold a state dict"):
        load_weights(str(folder))


@pytest.mark.parametrize("victim", ["attn_processors.ckpt", "au_encoder.ckpt", "pytorch_lora_weights.safetensors"])
def test_truncated_release_files_are_refused(releases, tmp_path, victim):
    folder = tmp_path / "trunc"
    shutil.copytree(releases["sd21"], folder)
    data = (folder / victim).read_bytes()
    (folder / victim).write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="truncated|Download it again"):
        load_weights(str(folder))


def test_truncated_single_file_is_refused(releases, tmp_path):
    out = tmp_path / "m.safetensors"
    save_fineface(load_weights(releases["sd21"]), str(out))
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 1000])
    with pytest.raises(WeightFileError, match="truncated"):
        load_weights(str(out))
    out.write_bytes(b"")
    with pytest.raises(WeightFileError, match="empty"):
        load_weights(str(out))


def test_foreign_files_are_refused_with_what_they_are(releases, tmp_path):
    kohya = tmp_path / "style_lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(4, 2),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 4)}, str(kohya))
    with pytest.raises(WeightFileError, match="Stable Diffusion LoRA"):
        load_weights(str(kohya))
    ckpt = tmp_path / "v2-1_512.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2)}, str(ckpt))
    with pytest.raises(WeightFileError, match="Stable Diffusion checkpoint"):
        load_weights(str(ckpt))
    with pytest.raises(WeightFileError, match="LoRA part of the official FineFace release"):
        load_weights(os.path.join(releases["sd21"], "pytorch_lora_weights.safetensors"))
    with pytest.raises(WeightFileError, match="one file of the official release"):
        load_weights(os.path.join(releases["sd21"], "au_encoder.ckpt"))
    # A kohya LoRA dropped into a release folder in place of the FineFace LoRA.
    folder = tmp_path / "swapped"
    shutil.copytree(releases["sd21"], folder)
    shutil.copy(kohya, folder / "pytorch_lora_weights.safetensors")
    with pytest.raises(WeightFileError, match="kohya-style"):
        load_weights(str(folder))


def test_mismatched_and_incomplete_folders(releases, tmp_path, unets):
    with pytest.raises(WeightFileError, match="not a FineFace release folder"):
        load_weights(str(tmp_path))
    missing_lora = tmp_path / "nolora"
    shutil.copytree(releases["sd21"], missing_lora)
    os.remove(missing_lora / "pytorch_lora_weights.safetensors")
    with pytest.raises(WeightFileError, match="needs all\\s+three files"):
        load_weights(str(missing_lora))
    # SD 2.1 adapter renamed as the SD 1.5 one.
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(os.path.join(releases["sd21"], "attn_processors.ckpt"), renamed / "sd15_attn_processors.ckpt")
    shutil.copy(os.path.join(releases["sd15"], "sd15_au_encoder.ckpt"), renamed / "sd15_au_encoder.ckpt")
    with pytest.raises(WeightFileError, match="mixed up or renamed"):
        load_weights(str(renamed))
    # Encoder of the other family.
    cross = tmp_path / "cross"
    shutil.copytree(releases["sd21"], cross)
    shutil.copy(os.path.join(releases["sd15"], "sd15_au_encoder.ckpt"), cross / "au_encoder.ckpt")
    with pytest.raises(WeightFileError, match="756-wide MLP; the official SD 2.1 encoder has 64"):
        load_weights(str(cross))
    # Keys that are not FineFace's.
    foreign = tmp_path / "foreign"
    shutil.copytree(releases["sd21"], foreign)
    torch.save({"conv_in.weight": torch.zeros(3)}, foreign / "attn_processors.ckpt")
    with pytest.raises(WeightFileError, match="not a FineFace adapter file"):
        load_weights(str(foreign))


def test_inconsistent_single_files_are_refused(releases, tmp_path):
    good = tmp_path / "good.safetensors"
    save_fineface(load_weights(releases["sd21"]), str(good))
    tensors = load_file(str(good))
    from safetensors import safe_open
    with safe_open(str(good), "pt") as f:
        meta = f.metadata()

    def write(t, m, name):
        p = tmp_path / name
        save_file(t, str(p), metadata=m)
        return str(p)

    with pytest.raises(WeightFileError, match="format version '9'"):
        load_weights(write(tensors, {**meta, "fineface.format_version": "9"}, "v9.safetensors"))
    with pytest.raises(WeightFileError, match="orders its AUs"):
        load_weights(write(tensors, {**meta, "fineface.au_order": "AU2,AU1"}, "order.safetensors"))
    no_lora = {k: v for k, v in tensors.items() if not k.startswith("lora.")}
    with pytest.raises(WeightFileError, match="holds no LoRA tensors"):
        load_weights(write(no_lora, meta, "nolora.safetensors"))
    bad_width = dict(tensors)
    key = next(k for k in tensors if k.endswith("au_to_v.weight"))
    bad_width[key] = torch.zeros(bad_width[key].shape[0], 768)
    with pytest.raises(WeightFileError, match="expected \\[channels, 1024\\]"):
        load_weights(write(bad_width, meta, "width.safetensors"))
    half_lora = {k: v for k, v in tensors.items() if not k.endswith("attn1.to_q.lora_B.weight")}
    with pytest.raises(WeightFileError, match="only one of lora_A / lora_B"):
        load_weights(write(half_lora, meta, "half.safetensors"))
    with pytest.raises(WeightFileError, match="unexpected tensor"):
        load_weights(write({**tensors, "ip_adapter.1.to_k_ip.weight": torch.zeros(2)}, meta, "extra.safetensors"))


def test_cli_reports_errors_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fineface_core", "inspect", str(tmp_path / "nope.safetensors")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: FineFace weights not found") and "Traceback" not in r.stderr
