"""The base model both protocols run the weights on: its family (SD 2.x, SD 1.x or SDXL, from the weights), the
family's default hub id and resolution, and the diffusers pipeline of that family, checked against every weights
file before any work."""
from __future__ import annotations

import copy
import inspect
import json
import os

import torch

from ..errors import FineFaceError, ModelMismatchError
from ..families import Family
from ..pipeline import FineFacePipeline, pipeline_class
from ..reference import check_fits
from .options import BASE_MODELS

# An SDXL diffusers folder's model_index.json names a StableDiffusionXL... class (_class_name): a mismatch is refused
# before loading (the refiner's is one too; check_fits tells it apart by its text width).
XL_CLASSES = "StableDiffusionXL"


def family_of(loaded: dict) -> Family:
    """The one family of the weights compared in a run (one base model serves them all)."""
    families = {label: w.family for label, w in loaded.items()}
    if len({f.key for f in families.values()}) > 1:
        which = ", ".join(f"{label!r} for {f}" for label, f in families.items())
        raise FineFaceError(f"the weights are for different base models ({which}); one run compares weights of one "
                            "family on one base model: evaluate them in separate runs (another --out each)")
    return next(iter(families.values()))


def default_base(family: Family) -> str:
    return BASE_MODELS[family.key]


def looks_local(name: str) -> bool:
    """A path (which must then exist) rather than a hub id such as owner/name."""
    return os.path.exists(name) or os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 \
        or os.sep != "/" and os.sep in name


def _check_folder(base_model: str, family: Family):
    index = os.path.join(base_model, "model_index.json")
    if not os.path.isfile(index):
        raise FineFaceError(f"the base model {base_model} is not a diffusers folder (no model_index.json there); "
                            f"give a diffusers folder or a hub id such as {default_base(family)}")
    try:
        with open(index, encoding="utf-8") as f:
            class_name = json.load(f).get("_class_name", "")
    except (OSError, ValueError, AttributeError) as e:
        raise FineFaceError(f"cannot read {index} ({e}); give a diffusers folder of {family}") from None
    is_xl = class_name.startswith(XL_CLASSES)
    if is_xl != (family.key == "sdxl"):
        what = "an SDXL pipeline" if is_xl else f"a {class_name or 'pipeline'} (not SDXL)"
        raise ModelMismatchError(f"the base model {base_model} is {what} but the FineFace weights are for {family}; "
                                 f"give a base model of {family} with --base-model (such as {default_base(family)})")


def load_base(base_model: str, family: Family, device: str, dtype: torch.dtype):
    """The family's diffusers pipeline (StableDiffusionXLPipeline for SDXL) from a folder or hub id, once for every
    weights file."""
    if looks_local(base_model):
        _check_folder(base_model, family)
    cls = pipeline_class(family.key)
    extra = {} if family.key == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    try:
        pipe = cls.from_pretrained(base_model, torch_dtype=dtype, **extra)
    except (OSError, ValueError, TypeError, EnvironmentError) as e:
        raise FineFaceError(f"cannot load the base model {base_model!r} as {family} ({str(e).splitlines()[0][:200]}); "
                            f"give a diffusers folder (model_index.json, unet/, vae/, ...) or a hub id of {family} "
                            f"such as {default_base(family)}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_checked(base_model: str, family: Family, device: str, dtype: torch.dtype, loaded: dict):
    """The base pipeline, every weights file checked to fit its UNet (layers, widths, LoRA targets)."""
    base = load_base(base_model, family, device, dtype)
    for weights in loaded.values():
        check_fits(base.unet, weights)
    return base


def with_weights(base, weights, lora_strength: float) -> FineFacePipeline:
    """A FineFacePipeline on a copy of the base UNet: the base stays clean for the next weights file."""
    components = dict(base.components, unet=copy.deepcopy(base.unet))
    # the pipeline's settings that are not components (SDXL: force_zeros_for_empty_prompt) come along
    own = inspect.signature(type(base).__init__).parameters
    settings = {k: v for k, v in base.config.items() if k in own and k not in components}
    pipe = type(base)(**components, **settings)
    if hasattr(base, "watermark"):  # SDXL: the base's watermarker (or none) as loaded, not a new default
        pipe.watermark = base.watermark
    pipe.set_progress_bar_config(disable=True)
    return FineFacePipeline(pipe, weights, lora_strength=lora_strength)

