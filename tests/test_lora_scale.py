"""``lora_strength`` 1.0 is the LoRA as trained; 0 and 4.0 reproduce the official code under its pins and
under current diffusers. Each is compared with diffusers itself on a tiny SD 2.1-layout UNet.

- As trained: peft's default ``LoraConfig`` (alpha 8, never set by the official training) at rank 32,
  with the release file's tensors, i.e. scale 8/32.
- Current diffusers (0.29+): ``UNet2DConditionModel.load_lora_adapter`` of the release file, which takes
  alpha = rank (scale 1.0) since the file stores no alpha.
- The official pins (diffusers 0.27.2 + peft 0.7.0) load no LoRA at all: the AU adapter alone.
"""
import copy
import dataclasses
import os

import pytest
import torch
from peft import LoraConfig, set_peft_model_state_dict
from safetensors.torch import load_file

from fineface_core.aus import ACTION_UNITS, parse_aus
from fineface_core.weightfiles.loading import load_weights
from fineface_core.reference import attach_fineface
from fineface_core.weightfiles.single_file import load_fineface, save_fineface
from fineface_core.weights import LORA_TARGETS
from tests.support import comfy_env
from tests.support.comfy_models import comfy_model
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RANK = 32  # the official release's rank
SPEC = "AU6@3 + AU12@4"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import comfy.model_management
    import nodes

    unet = tiny_unet("sd21", seed=3)
    folder = write_official_release(str(tmp_path_factory.mktemp("release") / "sd21"), unet, "sd21", seed=7, rank=RANK)
    n = nodes.NODE_CLASS_MAPPINGS
    call = lambda name: getattr(n[name](), n[name].FUNCTION)  # noqa: E731
    return dict(unet=unet, folder=folder, weights=load_weights(folder), model=comfy_model(unet, "sd21"),
                vector=call("FineFaceAUVector"), encode=call("FineFaceAUEncoder"), apply=call("FineFaceApplyAdapter"),
                mm=comfy.model_management)


def comfy_output(s, lora_strength, x, sigma, ctx):
    sliders = {au.code: 0.0 for au in ACTION_UNITS}
    aus, _ = s["vector"](spec=SPEC, **sliders)
    (emb,) = s["encode"](s["weights"], aus)
    (patched,) = s["apply"](s["model"], s["weights"], emb, 1.0, lora_strength, 0.0, 1.0)
    s["mm"].load_model_gpu(patched)
    to = copy.copy(patched.model_options["transformer_options"])
    to.update(cond_or_uncond=[0], sigmas=sigma)
    with torch.no_grad():
        return patched.model.apply_model(x, sigma, c_crossattn=ctx, transformer_options=to)


def diffusers_output(s, unet, x, sigma, ctx):
    tokens = s["weights"].encode(parse_aus(SPEC)[None])
    ms = s["model"].model.model_sampling
    with torch.no_grad():
        eps = unet(x / (sigma[:, None, None, None] ** 2 + 1).sqrt(), ms.timestep(sigma), ctx,
                   cross_attention_kwargs={"au_embedding": tokens, "au_scale": 1.0}).sample
    return x - sigma[:, None, None, None] * eps


def adapter_only(s):
    """The diffusers UNet with FineFace's AU adapter and no LoRA (LoRAs are added by each test)."""
    unet = copy.deepcopy(s["unet"])
    attach_fineface(unet, dataclasses.replace(s["weights"], lora=None))
    return unet


def release_lora_state(s):
    return {k[len("unet."):]: v for k, v in load_file(os.path.join(s["folder"], "pytorch_lora_weights.safetensors")).items()}


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, 8, 8, generator=g), torch.tensor([2.0]), torch.randn(1, 77, 1024, generator=g)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_the_release_loads_at_the_trained_scale_and_converted_files_keep_it(setup, tmp_path):
    lora = setup["weights"].lora
    assert (lora.alpha, lora.rank, lora.scale) == (8.0, 32, 0.25)
    out = save_fineface(setup["weights"], str(tmp_path / "converted.safetensors"))
    assert load_fineface(out).lora.scale == 0.25


def test_strength_1_is_the_lora_as_peft_trained_it(setup):
    unet = adapter_only(setup)
    config = LoraConfig(r=RANK, target_modules=list(LORA_TARGETS))  # lora_alpha left at peft's default
    unet.add_adapter(config, adapter_name="trained")
    result = set_peft_model_state_dict(unet, release_lora_state(setup), adapter_name="trained")
    assert not getattr(result, "unexpected_keys", None)
    x, sigma, ctx = inputs(1)
    want = diffusers_output(setup, unet, x, sigma, ctx)
    assert rel(comfy_output(setup, 1.0, x, sigma, ctx), want) < 1e-4
    # and it is not the scale-1.0 LoRA: the strengths are told apart by far more than the tolerance
    assert rel(comfy_output(setup, 4.0, x, sigma, ctx), want) > 1e-2


def test_strength_4_is_current_diffusers_loading_the_release_file(setup):
    unet = adapter_only(setup)
    unet.load_lora_adapter(load_file(os.path.join(setup["folder"], "pytorch_lora_weights.safetensors")),
                           prefix="unet", adapter_name="diffusers")
    x, sigma, ctx = inputs(2)
    want = diffusers_output(setup, unet, x, sigma, ctx)
    assert rel(comfy_output(setup, 4.0, x, sigma, ctx), want) < 1e-4
    assert rel(comfy_output(setup, 1.0, x, sigma, ctx), want) > 1e-2


def test_strength_0_is_the_official_code_under_its_pins(setup):
    x, sigma, ctx = inputs(3)
    want = diffusers_output(setup, adapter_only(setup), x, sigma, ctx)
    assert rel(comfy_output(setup, 0.0, x, sigma, ctx), want) < 1e-4
    assert rel(comfy_output(setup, 1.0, x, sigma, ctx), want) > 1e-3
