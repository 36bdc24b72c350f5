# Fixtures shared by several test files; pytest hands them to any test under tests/ that names them.
# sys.path, offline hub and ComfyUI are set up by the plugin tests/support/pytest_comfy.py, which
# pyproject's addopts loads before collection. Helpers (plain functions) live in tests/support/.
import os
from types import SimpleNamespace

import pytest
import torch

from fineface_core.weightfiles.loading import load_weights
from fineface_core.weightfiles.single_file import save_fineface
from workflows import run as headless
from workflows.api_format import node_info_from_classes

from tests.support import comfy_env
from tests.support.official_files import write_official_release
from tests.support.shipped_runs import sd21_test_unet_config
from tests.support.shipped_workflows import other_packs_nodes
from tests.support.training_runs import one_thread, write_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_IPADAPTER = os.environ.get("IPADAPTER_PLUS_PATH")


# -- ComfyUI with this pack registered as a custom node ---------------------------------------------

@pytest.fixture(scope="module")
def registry():
    """ComfyUI's node registry with this pack loaded as a custom node (ComfyUI's ``nodes`` module)."""
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import nodes

    return nodes


@pytest.fixture(scope="module")
def comfy():
    """ComfyUI (the 2024 tree, or $COMFYUI_PATH) with this pack registered as a custom node."""
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import folder_paths
    import nodes

    return SimpleNamespace(nodes=nodes, folder_paths=folder_paths)


@pytest.fixture(scope="module")
def pack():
    """The pack's AU Vector, AU Encoder and Apply nodes as functions, its patch modules, and ComfyUI's
    model management and samplers (tests/support/patched_unet.py calls the patched UNets with them)."""
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import comfy.model_management
    import comfy.samplers
    import nodes

    n = nodes.NODE_CLASS_MAPPINGS
    return SimpleNamespace(
        vector=getattr(n["FineFaceAUVector"](), n["FineFaceAUVector"].FUNCTION),
        encode=getattr(n["FineFaceAUEncoder"](), n["FineFaceAUEncoder"].FUNCTION),
        apply=getattr(n["FineFaceApplyAdapter"](), n["FineFaceApplyAdapter"].FUNCTION),
        attn2_patch=comfy_env.pack_module("nodes.attn2_patch"),
        comfy_model=comfy_env.pack_module("nodes.comfy_model"),
        mm=comfy.model_management, samplers=comfy.samplers,
    )


@pytest.fixture(scope="module")
def real_ipadapter(pack):
    """The real ComfyUI_IPAdapter_plus' IPAdapterEmbeds, loaded from $IPADAPTER_PLUS_PATH (skips without it)."""
    if not REAL_IPADAPTER:
        pytest.skip("set IPADAPTER_PLUS_PATH to a ComfyUI_IPAdapter_plus checkout to run it against the real pack")
    import nodes

    try:
        comfy_env.load_custom_node_pack(REAL_IPADAPTER)
    except RuntimeError as exc:  # e.g. a ComfyUI tree older than the pack (no node_helpers)
        pytest.fail(f"ComfyUI_IPAdapter_plus did not load into this ComfyUI tree ({exc}); the pack needs a ComfyUI "
                    "as new as itself (it imports node_helpers): set COMFYUI_PATH to a 2025 ComfyUI checkout")
    return nodes.NODE_CLASS_MAPPINGS["IPAdapterEmbeds"]


# -- the shipped workflows: declarations, models and folders for runs through the executor -----------

@pytest.fixture(scope="module")
def node_info(comfy):
    """INPUT_TYPES of core ComfyUI + this pack, and of ComfyUI_IPAdapter_plus and ComfyUI-AnimateDiff-Evolved
    (parsed, not installed)."""
    info = node_info_from_classes(comfy.nodes.NODE_CLASS_MAPPINGS)
    for name, entry in other_packs_nodes().items():
        if entry["input"] is not None and name not in info:
            info[name] = entry["input"]
    return info


@pytest.fixture(scope="module")
def node_outputs(comfy):
    out = {name: list(cls.RETURN_TYPES) for name, cls in comfy.nodes.NODE_CLASS_MAPPINGS.items()}
    for name, entry in other_packs_nodes().items():
        out.setdefault(name, entry["output"])
    return out


@pytest.fixture(scope="module")
def models_dir(comfy, tmp_path_factory):
    """models/checkpoints/<the workflows' SD 2.1 name>, the SD 2.1 release's own files straight in models/fineface/
    (as the front end's missing-models dialog downloads them) and a converted fineface_sd21.safetensors, made here."""
    root = tmp_path_factory.mktemp("models")
    os.makedirs(root / "checkpoints")
    comfy_env.write_detectable_checkpoint(str(root / "checkpoints" / "v2-1_512-ema-pruned.safetensors"), "sd21", 0)
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):  # only the layer shapes are needed to write the weights
        unet = UNet2DConditionModel(**sd21_test_unet_config())
    release = root / "fineface"
    write_official_release(str(release), unet, "sd21", seed=1, rank=32)
    save_fineface(load_weights(str(release)), str(root / "fineface" / "fineface_sd21.safetensors"))
    return root


@pytest.fixture
def comfy_dirs(comfy, models_dir, tmp_path):
    """ComfyUI's model / input / output / temp folders pointed at this test's temp folders."""
    fp = comfy.folder_paths
    state = headless.snapshot_folders(fp)
    headless.use_models_dir(fp, str(models_dir))
    for kind in ("input", "output", "temp"):
        os.makedirs(tmp_path / kind)
        getattr(fp, f"set_{kind}_directory")(str(tmp_path / kind))
    yield tmp_path
    headless.restore_folders(fp, state)


# -- the trainer: a tiny SD 2.1 folder and a small captioned dataset, each built once per session ------

@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    from tests.support.tiny_sd import write_tiny_sd  # imports diffusers: only for the tests that need it

    return write_tiny_sd(str(tmp_path_factory.mktemp("tiny_sd") / "sd21"), "sd21")


@pytest.fixture(scope="session")
def sdxl_checkpoint(tmp_path_factory):
    """A checkpoint CheckpointLoaderSimple detects as SDXL (tests/support/sdxl_checkpoint.py), built once."""
    from tests.support.sdxl_checkpoint import build_sdxl_checkpoint

    comfy_env.import_comfy()
    return build_sdxl_checkpoint(str(tmp_path_factory.mktemp("sdxl_checkpoint") / "sdxl-tiny.safetensors"))


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (runs comparable and not fighting over the cores); a test file asks for it
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    with one_thread():
        yield
