"""workflows/executor.py on the ComfyUI tree under test: ComfyUI's own executor, built as that
tree's main.py builds it, runs a prompt of core nodes; rejections and failures are reported by node."""
import inspect

import numpy as np
import pytest
from PIL import Image

from workflows import executor
from workflows import run as headless

from tests.support import comfy_env


@pytest.fixture
def comfy_out(tmp_path):
    comfy_env.import_comfy()
    import execution
    import folder_paths

    state = headless.snapshot_folders(folder_paths)
    for kind in ("output", "temp"):
        getattr(folder_paths, f"set_{kind}_directory")(str(tmp_path / kind))
    yield execution, tmp_path
    headless.restore_folders(folder_paths, state)


def image_prompt(width=24, prefix="exec_test", color=0x3366CC):
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": width, "height": 16, "batch_size": 2, "color": color},
              "_meta": {"title": "Blank"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix},
              "_meta": {"title": "Save"}},
    }


def test_executor_is_built_with_what_this_trees_prompt_executor_takes(comfy_out):
    execution, _ = comfy_out
    params = inspect.signature(execution.PromptExecutor.__init__).parameters
    options = executor.executor_options(execution)
    assert set(options) <= set(params)
    if "cache_args" in params:  # 0.8.0 on: it is read at every node, so None would fail
        assert {"lru", "ram"} <= set(options["cache_args"])
    required = [n for n, p in params.items() if n not in ("self", "server") and p.default is inspect.Parameter.empty]
    assert not required


def test_a_prompt_runs_through_comfyuis_executor(comfy_out):
    execution, tmp_path = comfy_out
    server = executor.ExecutorServer()
    prompt_id = executor.run_prompt(execution, server, image_prompt())
    events = [e for e, _ in server.messages]
    assert "executed" in events and "execution_error" not in events
    saved = sorted((tmp_path / "output").glob("exec_test_*.png"))
    assert len(saved) == 2
    pixels = np.asarray(Image.open(saved[0]).convert("RGB"))
    assert pixels.shape == (16, 24, 3) and tuple(pixels[0, 0]) == (0x33, 0x66, 0xCC)
    assert server.last_prompt_id == prompt_id


def test_a_rejected_prompt_names_the_node_and_the_reason(comfy_out):
    execution, tmp_path = comfy_out
    with pytest.raises(executor.ExecutionFailed, match=r"ComfyUI rejected the prompt[\s\S]*Blank \(#1\)[\s\S]*width"):
        executor.run_prompt(execution, executor.ExecutorServer(), image_prompt(width=-5))
    assert not (tmp_path / "output").exists() or not list((tmp_path / "output").iterdir())


def test_a_node_failing_while_it_runs_is_reported_by_name(comfy_out):
    execution, _ = comfy_out
    with pytest.raises(executor.ExecutionFailed, match=r"the workflow failed in Save \(#2\): .*outside the output folder"):
        executor.run_prompt(execution, executor.ExecutorServer(), image_prompt(prefix="../../escape"))
