"""Errors that name the node and input at fault, by the names the user sees, as ComfyUI reports them.

- A FineFace error raised while a node runs starts with the node's display name (ComfyUI's dialog is titled by
  the class id, "FineFaceFaceCrop", which the canvas never shows).
- A mask of the wrong aspect ratio is found while KSampler samples (only then is the image's size known): the
  message names the Apply FineFace Adapter node that was given it, with its node id, and its input 'mask'.
- FineFace Release Loader names every missing file in one message (the AU encoder and the AU adapter), through
  ComfyUI's own validation.
"""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from fineface_core.errors import FineFaceError
from workflows import executor
from workflows.api_format import workflow_to_prompt
from workflows.executor import ExecutionFailed

from tests.support.queue_validation import validate_node
from tests.support.official_files import write_official_release
from tests.support.shipped_runs import run_shipped
from tests.support.shipped_workflows import load_shipped
from tests.support.tiny_unets import tiny_unet

SD21 = {"au_encoder": "au_encoder.ckpt", "attn_processors": "attn_processors.ckpt",
        "lora": "pytorch_lora_weights.safetensors"}


def failure(prompt: dict) -> dict:
    """The execution_error ComfyUI's executor reports for ``prompt`` (which must fail while it runs)."""
    import execution

    server = executor.ExecutorServer()
    with pytest.raises(ExecutionFailed):
        executor.run_prompt(execution, server, prompt)
    (error,) = [d for e, d in server.messages if e == "execution_error"]
    return error


@pytest.fixture
def temp_out(comfy, tmp_path):
    """ComfyUI's output and temp folders in this test's folder (Preview Image writes there)."""
    from workflows import run as headless

    state = headless.snapshot_folders(comfy.folder_paths)
    for kind in ("output", "temp"):
        getattr(comfy.folder_paths, f"set_{kind}_directory")(str(tmp_path / kind))
    yield tmp_path
    headless.restore_folders(comfy.folder_paths, state)


def test_a_node_s_error_starts_with_its_display_name(comfy, temp_out):
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 128, "height": 128, "batch_size": 1, "color": 0}},
        "2": {"class_type": "FineFaceFaceCrop", "inputs": {"images": ["1", 0], "which_face": "largest", "index": 0,
                                                           "grow": 1.0, "size": 64}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    error = failure(prompt)
    assert error["node_type"] == "FineFaceFaceCrop"  # ComfyUI's dialog title: the class id
    assert error["exception_message"].startswith("Face Crop (FineFace): no face found in ")


def test_the_name_is_given_once_and_the_error_keeps_its_type(comfy):
    cls = comfy.nodes.NODE_CLASS_MAPPINGS["FineFaceAUGrid"]
    run = getattr(cls(), cls.FUNCTION)
    aus = torch.zeros(1, 12)
    with pytest.raises(FineFaceError) as err:
        run(torch.zeros(2, 8, 8, 3), aus, 2)
    assert str(err.value).startswith("AU Label Grid (FineFace): 2 images but 1 AU vectors")
    with pytest.raises(FineFaceError) as again:
        run(torch.zeros(2, 8, 8, 3), aus, 2)
    assert str(again.value).count("AU Label Grid") == 1
    assert type(err.value).__module__.startswith("fineface_core")


@pytest.mark.slow
def test_a_wrong_aspect_mask_names_the_apply_node_that_was_given_it(node_info, comfy_dirs):
    # the two-expressions workflow with its masks at 96x64 but the image at 64x64
    with pytest.raises(ExecutionFailed) as err:
        run_shipped("regions", node_info, extra=[("EmptyLatentImage", "width", 64)])
    message = str(err.value)
    assert "the workflow failed in KSampler" in message  # where ComfyUI saw it: the sampler
    prompt = workflow_to_prompt(load_shipped("regions"), node_info)
    applies = [k for k, v in prompt.items() if v["class_type"] == "FineFaceApplyAdapter"]
    named = [k for k in applies if f"the mask given to Apply FineFace Adapter (node #{k}): the mask is 96x64 but "
             "the image is 64x64 px" in message]
    assert len(named) == 1, message


@pytest.fixture
def lora_only(comfy, tmp_path, monkeypatch):
    """models/fineface/ holding the SD 2.1 release's LoRA only: its AU encoder and AU adapter are missing."""
    write_official_release(str(tmp_path / "r21"), tiny_unet("sd21"), "sd21", seed=1, rank=32)
    folder = tmp_path / "fineface"
    folder.mkdir()
    shutil.copy(tmp_path / "r21" / SD21["lora"], folder / SD21["lora"])
    monkeypatch.setitem(comfy.folder_paths.folder_names_and_paths, "fineface", ([str(folder)], {".safetensors", ".ckpt"}))
    forget_listings(comfy.folder_paths)
    return folder


def forget_listings(folder_paths):
    if isinstance(getattr(folder_paths, "filename_list_cache", None), dict):
        folder_paths.filename_list_cache.clear()


def comfy_validation(node_id: str, prompt: dict) -> list[dict]:
    """ComfyUI's own check of one node of ``prompt`` (execution.validate_inputs): its errors."""
    return validate_node(prompt, node_id)[1]


def test_the_release_loader_names_every_missing_file_in_one_message(comfy, lora_only):
    cls = comfy.nodes.NODE_CLASS_MAPPINGS["FineFaceReleaseLoader"]
    message = cls.VALIDATE_INPUTS(**SD21)
    assert isinstance(message, str)
    assert message.startswith("the AU encoder 'au_encoder.ckpt' and the AU adapter 'attn_processors.ckpt' are not in ")
    for name in ("au_encoder.ckpt", "attn_processors.ckpt", "Download weights", "huggingface.co/Tvaranka/fineface"):
        assert message.count(name) == 1, name
    assert SD21["lora"] not in message  # the file that is there is not named
    with pytest.raises(FineFaceError) as err:
        getattr(cls(), cls.FUNCTION)(**SD21)
    assert str(err.value) == "FineFace Release Loader: " + message

    errors = comfy_validation("1", {"1": {"class_type": "FineFaceReleaseLoader", "inputs": dict(SD21)}})
    # ComfyUI lists a VALIDATE_INPUTS answer under each input the method takes; each is the whole message
    assert errors and all(e["type"] == "custom_validation_failed" and message in e["details"] for e in errors)


def test_one_missing_file_is_named_alone(comfy, lora_only):
    write_official_release(str(lora_only.parent / "again"), tiny_unet("sd21"), "sd21", seed=1, rank=32)
    shutil.copy(lora_only.parent / "again" / SD21["au_encoder"], lora_only / SD21["au_encoder"])
    forget_listings(comfy.folder_paths)
    message = comfy.nodes.NODE_CLASS_MAPPINGS["FineFaceReleaseLoader"].VALIDATE_INPUTS(**SD21)
    assert message.startswith("the AU adapter 'attn_processors.ckpt' is not in ") and "au_encoder.ckpt" not in message
    assert "download it from" in message
    assert os.path.isfile(lora_only / SD21["au_encoder"])
