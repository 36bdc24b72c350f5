"""Damaged, malformed and wrong files: every load path (load_weights, inspect, convert) refuses them
with a message that names the file and what is wrong. The bad files are written with the real
safetensors / torch.save writers and read by the real loading code."""
import os
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fineface_core.weightfiles.cli import main
from fineface_core.encoders import load_encoder
from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1277952\n")
ADAPTER_KEY = "down_blocks.0.attentions.0.transformer_blocks.0.attn2"
LORA_KEY = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_official_release(str(tmp_path_factory.mktemp("release") / "sd21"), tiny_unet("sd21"), "sd21", seed=7)


@pytest.fixture(scope="module")
def single(release, tmp_path_factory):
    """(tensors, metadata) of a good FineFace file made from the release."""
    path = str(tmp_path_factory.mktemp("single") / "good.safetensors")
    save_fineface(load_weights(release), path)
    with safe_open(path, "pt") as f:
        return load_file(path), dict(f.metadata())


def refused_everywhere(path, capsys, *fragments):
    """load_weights, inspect and convert all refuse ``path`` with a message holding every fragment."""
    with pytest.raises(WeightFileError) as err:
        load_weights(str(path))
    for fragment in fragments:
        assert fragment in str(err.value)
    out = os.path.join(os.path.dirname(str(path)), "converted.safetensors")
    for argv in (["inspect", str(path)], ["convert", str(path), out]):
        capsys.readouterr()
        assert main(argv) == 2
        stderr = capsys.readouterr().err
        assert stderr.startswith("error: ") and all(f in stderr for f in fragments), stderr
    assert not os.path.exists(out)
    return str(err.value)


def spoil(t: torch.Tensor, value: float, n: int = 3) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[:n] = value
    return t


# -- NaN and infinity -------------------------------------------------------------------

@pytest.mark.parametrize("key", [
    "encoder.au_encoder.weight",
    f"adapter.{ADAPTER_KEY}.au_to_v.weight",
    f"adapter.{ADAPTER_KEY}.au_to_k.weight",
    f"lora.{LORA_KEY}.lora_A.weight",
    f"lora.{LORA_KEY}.lora_B.weight",
])
@pytest.mark.parametrize("value,what", [(float("nan"), "3 NaN"), (float("inf"), "3 infinite"), (-float("inf"), "3 infinite")])
def test_non_finite_tensors_in_a_single_file_are_refused(single, tmp_path, capsys, key, value, what):
    tensors, meta = single
    path = tmp_path / "bad.safetensors"
    save_file({**tensors, key: spoil(tensors[key], value)}, str(path), metadata=meta)
    message = refused_everywhere(path, capsys, repr(key), what, "NaN or infinite")
    assert "black images" in message


@pytest.mark.parametrize("file,key", [
    ("au_encoder.ckpt", "au_encoder.bias"),
    ("attn_processors.ckpt", f"{ADAPTER_KEY}.processor.au_to_v.weight"),
    ("attn_processors.ckpt", f"{ADAPTER_KEY}.processor.au_to_k.weight"),
    ("pytorch_lora_weights.safetensors", f"unet.{LORA_KEY}.lora_A.weight"),
    ("pytorch_lora_weights.safetensors", f"unet.{LORA_KEY}.lora_B.weight"),
    ("pytorch_lora_weights.safetensors", f"unet.{LORA_KEY}.alpha"),  # a peft alpha tensor
])
def test_non_finite_tensors_in_a_release_folder_are_refused(release, tmp_path, capsys, file, key):
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    if file.endswith(".ckpt"):
        sd = torch.load(folder / file, weights_only=True)
        sd[key] = spoil(sd[key], float("nan"), n=2)
        torch.save(sd, folder / file)
    else:
        sd = load_file(str(folder / file))
        sd[key] = torch.tensor(float("nan")) if key.endswith(".alpha") else spoil(sd[key], float("nan"), n=2)
        save_file(sd, str(folder / file))
    n = "1 NaN" if key.endswith(".alpha") else "2 NaN"
    refused_everywhere(folder, capsys, os.path.join(str(folder), file), repr(key), n)


@pytest.mark.parametrize("field,value", [
    ("lora_alpha", "nan"), ("lora_alpha", "inf"), ("lora_alpha", "1e999"), ("lambda_au", "nan"), ("lambda_au", "-inf"),
])
def test_non_finite_numbers_in_the_metadata_are_refused(single, tmp_path, capsys, field, value):
    tensors, meta = single
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={**meta, f"fineface.{field}": value})
    refused_everywhere(path, capsys, str(path), f"'fineface.{field}'", "finite")


# -- malformed metadata -----------------------------------------------------------------

ENC = "fineface.encoder"


@pytest.mark.parametrize("field,value,says", [
    (ENC, "null", "must be a JSON object"),
    (ENC, "[]", "must be a JSON object"),
    (ENC, '"res_mlp"', "must be a JSON object"),
    (ENC, "{}", "has no 'kind'"),
    (ENC, '{"width": 1024, "hidden_dim": 64}', "has no 'kind'"),
    (ENC, "{not json", "not valid JSON"),
    (ENC, '{"kind": "transformer", "width": 1024}', "unknown AU encoder kind 'transformer'"),
    (ENC, '{"kind": ["res_mlp"], "width": 1024}', "unknown AU encoder kind"),
    (ENC, '{"kind": "res_mlp", "width": "abc", "hidden_dim": 64}', "'width' must be a whole number, got 'abc'"),
    (ENC, '{"kind": "res_mlp", "width": true, "hidden_dim": 64}', "'width' must be a whole number"),
    (ENC, '{"kind": "res_mlp", "width": 1024.0, "hidden_dim": 64}', "'width' must be a whole number"),
    (ENC, '{"kind": "res_mlp", "width": 1024, "hidden_dim": -5}', "'hidden_dim' is -5, outside"),
    (ENC, '{"kind": "res_mlp", "width": 1024, "hidden_dim": 1000000000000}', "'hidden_dim' is 1000000000000, outside"),
    (ENC, '{"kind": "res_mlp", "width": 1024, "hidden_dim": 64, "depth": 3}', "unknown setting(s) ['depth']"),
    (ENC, '{"kind": "res_mlp", "width": 1024}', "does not fit the stored AU encoder weights"),
    (ENC, '{"kind": "res_mlp", "width": 1024, "hidden_dim": 1000}', "does not fit the stored AU encoder weights"),
    (ENC, '{"kind": "res_mlp", "width": 768, "hidden_dim": 64}', "gives 'width' 768; a Stable Diffusion 2.x file needs 1024"),
    (ENC, '{"kind": "res_3mlp", "width": 1024, "negative_slope": NaN}', "'negative_slope' must be a number in 0..1"),
    # Allocation requests: refused before any module is built.
    (ENC, '{"kind": "mlp", "width": 1000000000}', "'width' is 1000000000, outside"),
    (ENC, '{"kind": "individual_mlp", "width": 100000000}', "'width' is 100000000, outside"),
    (ENC, '{"kind": "res_3mlp", "width": 1024, "hidden_dim": 16384}', "does not fit the stored AU encoder weights"),
    ("fineface.lora_rank", "abc", "expected a whole number"),
    ("fineface.lora_rank", "-1", "expected a whole number"),
    ("fineface.lora_rank", "99999999", "expected a whole number"),
    ("fineface.lora_rank", "4", "says 4, but"),
    ("fineface.lora_rank", "0", "is 0 (no LoRA)"),
    ("fineface.lora_alpha", "abc", "expected a number"),
    ("fineface.lora_alpha", "", "expected a number"),
    ("fineface.lora_alpha", "-8", "must be positive"),
    ("fineface.lambda_au", "one", "expected a number"),
    ("fineface.au_to_k", "maybe", "expected one of"),
    ("fineface.au_to_k", "omitted", "holds au_to_k tensors"),
    ("fineface.family", "sd3", "unknown base model family"),
    ("fineface.context_dim", "abc", "needs 1024"),
])
def test_malformed_metadata_is_refused_naming_file_and_field(single, tmp_path, capsys, field, value, says):
    tensors, meta = single
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={**meta, field: value})
    message = refused_everywhere(path, capsys, str(path), f"'{field}'", says)
    assert message.endswith("The file's metadata is damaged: convert or export the weights again.")


def test_encoder_sizes_come_from_the_stored_tensors():
    # In range, but far larger than the stored tensors: the layout is compared on the meta device first.
    small = {"per_au_weight": torch.zeros(12, 1024), "per_au_bias": torch.zeros(12, 1024),
             "interaction.weight": torch.zeros(1024, 1024), "interaction.bias": torch.zeros(1024)}
    with pytest.raises(WeightFileError, match=r"'per_au_weight' has shape \(12, 1024\), the config implies \(12, 8192\)"):
        load_encoder({"kind": "individual_mlp", "width": 8192}, small)
    enc = load_encoder({"kind": "individual_mlp", "width": 1024}, small)
    assert enc.interaction.weight.shape == (1024, 1024)


# -- precisions -------------------------------------------------------------------------

def test_fp8_loads_as_float32_and_fp16_bf16_keep_their_precision(single, tmp_path):
    tensors, meta = single
    v_key = f"adapter.{ADAPTER_KEY}.au_to_v.weight"
    fp8 = {**tensors, "encoder.au_encoder.weight": tensors["encoder.au_encoder.weight"].to(torch.float8_e4m3fn),
           v_key: tensors[v_key].to(torch.float8_e5m2)}
    save_file(fp8, str(tmp_path / "fp8.safetensors"), metadata=meta)
    w = load_weights(str(tmp_path / "fp8.safetensors"))
    assert w.au_to_v[ADAPTER_KEY].dtype == torch.float32 and w.encoder.au_encoder.weight.dtype == torch.float32
    assert torch.equal(w.au_to_v[ADAPTER_KEY], tensors[v_key].to(torch.float8_e5m2).float())
    assert torch.equal(w.encoder.au_encoder.weight, tensors["encoder.au_encoder.weight"].to(torch.float8_e4m3fn).float())
    for dtype in (torch.float16, torch.bfloat16):
        save_file({k: t.to(dtype) for k, t in tensors.items()}, str(tmp_path / "half.safetensors"), metadata=meta)
        w = load_weights(str(tmp_path / "half.safetensors"))
        assert w.au_to_v[ADAPTER_KEY].dtype == dtype and w.encoder.au_encoder.weight.dtype == dtype
        assert w.lora.down[LORA_KEY].dtype == dtype


def test_fp8_nan_is_refused(single, tmp_path, capsys):
    tensors, meta = single
    key = "encoder.au_encoder.bias"
    save_file({**tensors, key: spoil(tensors[key], float("nan"), n=1).to(torch.float8_e4m3fn)},
              str(tmp_path / "fp8nan.safetensors"), metadata=meta)
    refused_everywhere(tmp_path / "fp8nan.safetensors", capsys, repr(key), "1 NaN")


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int64, torch.bool])
def test_integer_and_bool_tensors_are_refused(single, tmp_path, capsys, dtype):
    tensors, meta = single
    key = f"adapter.{ADAPTER_KEY}.au_to_v.weight"
    save_file({**tensors, key: tensors[key].to(dtype)}, str(tmp_path / "q.safetensors"), metadata=meta)
    refused_everywhere(tmp_path / "q.safetensors", capsys, repr(key), f"stored as {str(dtype)[6:]}", "quantized")


def test_int8_tensor_in_a_release_pickle_is_refused(release, tmp_path, capsys):
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    torch.save({"au_encoder.weight": torch.zeros(64, 12, dtype=torch.int8), "au_encoder.bias": torch.zeros(64)},
               folder / "au_encoder.ckpt")
    refused_everywhere(folder, capsys, "'au_encoder.weight' is stored as int8")


# -- files that are not weights at all ----------------------------------------------------------

@pytest.mark.parametrize("name", ["au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors"])
def test_git_lfs_pointer_in_a_release_folder_is_named(release, tmp_path, capsys, name):
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    (folder / name).write_text(LFS_POINTER)
    message = refused_everywhere(folder, capsys, str(folder / name), "is a Git LFS pointer", "git lfs pull")
    assert "pickle" not in message and "run code" not in message


@pytest.mark.parametrize("name", ["x.safetensors", "au_encoder.ckpt"])
def test_git_lfs_pointer_given_as_a_file_is_named(tmp_path, capsys, name):
    (tmp_path / name).write_text(LFS_POINTER)
    refused_everywhere(tmp_path / name, capsys, "is a Git LFS pointer", "download the real file")


@pytest.mark.parametrize("text,says", [
    ("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>", "is a web page (HTML)"),
    ("\n  <html lang=en><body>502 Bad Gateway</body></html>", "is a web page (HTML)"),
    ('{"error":"Entry not found"}', "is a text file ('{\"error\":\"Entry not found\"}')"),
])
def test_a_saved_web_page_or_error_text_is_named(release, tmp_path, capsys, text, says):
    (tmp_path / "model.safetensors").write_text(text)
    refused_everywhere(tmp_path / "model.safetensors", capsys, says, "Download")
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    (folder / "attn_processors.ckpt").write_text(text)
    refused_everywhere(folder, capsys, says)


def test_lora_tensors_in_a_file_that_announces_no_lora_are_refused(single, tmp_path):
    tensors, meta = single
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={**meta, "fineface.lora_rank": "0", "fineface.lora_alpha": ""})
    with pytest.raises(WeightFileError, match="holds LoRA tensors but metadata field 'fineface.lora_rank' announces none"):
        load_weights(str(path))


def test_huge_but_finite_values_are_not_mistaken_for_infinite():
    from fineface_core.files.tensor_checks import check_tensors  # the check every reader runs

    # Their sums overflow; the values themselves are finite.
    tensors = {"a": torch.full((8,), 3e38), "b": torch.full((4,), 6e4, dtype=torch.float16),
               "c": torch.full((4,), 3e38, dtype=torch.bfloat16)}
    assert check_tensors(tensors, "x") == tensors
    with pytest.raises(WeightFileError, match=r"'a' \(0 NaN, 1 infinite of 8\)"):
        check_tensors({**tensors, "a": spoil(tensors["a"], float("inf"), n=1)}, "x")
