"""FineFace with ControlNet (pose, depth, edges): the shipped basic graph with ComfyUI's own ControlNet nodes added.

ControlNet runs a copy of the UNet's encoder beside the UNet and adds its residuals; FineFace patches the UNet's
cross-attention through ``transformer_options``, which ComfyUI does not hand to the control model. So the two
compose: the control residuals do not depend on the AUs, and the AUs still change the image under a ControlNet.
"""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from workflows.api_format import workflow_to_prompt

from tests.support import comfy_env
from tests.support.shipped_runs import SPEED_OVERRIDES
from tests.support.shipped_workflows import load_shipped
from workflows.overrides import set_input

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def controlnet(models_dir):
    return comfy_env.write_detectable_controlnet(str(models_dir / "controlnet" / "control_sd21_test.safetensors"), "sd21", 3)


def prompt_with(node_info, spec, *, control: bool, fineface: bool = True):
    """The basic graph (AUs = ``spec``), optionally with the control image through ControlNetApplyAdvanced and
    optionally without FineFace (the KSampler takes the checkpoint's MODEL); its sampled latent is saved."""
    prompt = workflow_to_prompt(load_shipped("basic"), node_info)
    for node_name, field, value in list(SPEED_OVERRIDES["basic"]) + [("FineFaceAUVector", "spec", spec)]:
        set_input(prompt, node_name, field, value)
    sampler = next(v for v in prompt.values() if v["class_type"] == "KSampler")["inputs"]
    ksampler = next(k for k, v in prompt.items() if v["class_type"] == "KSampler")
    if not fineface:
        checkpoint = next(k for k, v in prompt.items() if v["class_type"] == "CheckpointLoaderSimple")
        sampler["model"] = [checkpoint, 0]
    if control:
        prompt["cn_loader"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "control_sd21_test.safetensors"}}
        prompt["cn_image"] = {"class_type": "LoadImage", "inputs": {"image": "pose.png"}}
        prompt["cn_apply"] = {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": sampler["positive"], "negative": sampler["negative"], "control_net": ["cn_loader", 0],
            "image": ["cn_image", 0], "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0}}
        sampler["positive"], sampler["negative"] = ["cn_apply", 0], ["cn_apply", 1]
    prompt["save_latent"] = {"class_type": "SaveLatent", "inputs": {"samples": [ksampler, 0], "filename_prefix": "cn"}}
    return {k: dict(v, _meta={"title": v["class_type"]}) if "_meta" not in v else v for k, v in prompt.items()}


def sampled(prompt, control_outputs=None):
    """The saved latent; with ``control_outputs`` (a list), every control model call's residuals are appended."""
    import comfy.cldm.cldm

    def record(module, args, output):
        if isinstance(module, comfy.cldm.cldm.ControlNet):
            residuals = output["output"] + output["middle"] if isinstance(output, dict) else output  # 2025+ / 2024
            control_outputs.append([t.detach().clone() for t in residuals])

    hook = torch.nn.modules.module.register_module_forward_hook(record) if control_outputs is not None else None
    try:
        outputs = comfy_env.run_prompt(prompt)
    finally:
        if hook is not None:
            hook.remove()
    return load_file(outputs["save_latent"][0])["latent_tensor"]


def test_fineface_and_controlnet_compose(comfy_dirs, node_info, controlnet):
    edges = np.zeros((64, 64, 3), np.uint8)
    edges[16:48, 30:34] = 255  # a stick figure's body and arms: something for the control model to see
    edges[24:28, 12:52] = 255
    Image.fromarray(edges).resize((256, 256), Image.NEAREST).save(comfy_dirs / "input" / "pose.png")

    smile_residuals, frown_residuals = [], []
    smile = sampled(prompt_with(node_info, "AU6@4 + AU12@5", control=True), smile_residuals)
    frown = sampled(prompt_with(node_info, "AU4@5 + AU15@4", control=True), frown_residuals)
    assert smile_residuals and frown_residuals, "the ControlNet never ran"
    # The first call sees the same noise in both runs: its residuals are the control model's alone, whatever the AUs.
    first_smile, first_frown = smile_residuals[0], frown_residuals[0]
    assert len(first_smile) == len(first_frown) > 0
    for a, b in zip(first_smile, first_frown):
        assert torch.equal(a, b)
    # ... while a later call sees latents the AUs changed, and the recorded residuals follow them.
    assert len(smile_residuals) > 1 and not all(torch.equal(a, b) for a, b in zip(smile_residuals[-1], frown_residuals[-1]))
    # Under the ControlNet the AUs still act, and the ControlNet acts on the FineFace model.
    assert not torch.equal(smile, frown)
    uncontrolled = sampled(prompt_with(node_info, "AU6@4 + AU12@5", control=False))
    control_only = sampled(prompt_with(node_info, "AU6@4 + AU12@5", control=True, fineface=False))
    for other in (uncontrolled, control_only):
        assert (smile - other).abs().mean() > 1e-3 * other.abs().mean()
    assert torch.isfinite(smile).all() and torch.isfinite(frown).all()
