"""Shipped ComfyUI workflows, their conversion to API prompts, and a headless runner.

``python -m workflows.run --help`` renders a shipped workflow without the editor.

:data:`SHIPPED` is the one table of the shipped workflows: one row each, with its file, its model family,
whether the headless runner renders it, and which of the runner's options sets which node's input (the
node by its title, else its type; the input by name, on the converted API prompt). Adding a workflow to
the headless runner is one row here (and its name among ``--workflow``'s help); how an option's value
becomes input values, where that is more than the value itself, is in :mod:`workflows.overrides`.

Modules: ``api_format`` (editor graph -> API prompt), ``overrides`` (the options set on a prompt), ``run``
(the command), ``run_checks`` (its options, checked before ComfyUI starts), ``executor`` (ComfyUI's
own prompt executor), ``keyframes_cli`` (the animation's options), ``aus_from_photo`` (--aus-from).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

WORKFLOWS_DIR = os.path.dirname(os.path.abspath(__file__))

# Node titles (else types) the options name.
POSITIVE, NEGATIVE, SAMPLER, CHECKPOINT = "Positive prompt", "Negative prompt", "KSampler", "CheckpointLoaderSimple"
AU_VECTOR, LATENT, SCALE, LOAD_IMAGE = "FineFaceAUVector", "EmptyLatentImage", "ImageScale", "LoadImage"


@dataclass(frozen=True)
class Shipped:
    file: str
    family: str  # "sd21" / "sd15": the FineFace release and checkpoint the graph loads; "sdxl": no release, a trained file
    headless: bool = False  # rendered by `python -m workflows.run --workflow <name>`
    # option (its argparse dest) -> (node title or type, input name) on the converted prompt
    sets: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # option -> node title or type: a bypassed node the option switches on (before conversion)
    enables: Mapping[str, str] = field(default_factory=dict)
    # option -> (node title or type, input name): another input that takes the option's value too
    also_sets: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    out: str = ".png"  # the file --out names
    several_aus: bool = False  # --aus takes several expressions, one per cell, separated by ';'


# Every headless workflow: the prompts, the sampler and the checkpoint.
COMMON = {"prompt": (POSITIVE, "text"), "negative": (NEGATIVE, "text"), "seed": (SAMPLER, "seed"),
          "steps": (SAMPLER, "steps"), "cfg": (SAMPLER, "cfg"), "sampler": (SAMPLER, "sampler_name"),
          "scheduler": (SAMPLER, "scheduler"), "checkpoint": (CHECKPOINT, "ckpt_name")}
SIZE = {"width": (LATENT, "width"), "height": (LATENT, "height")}
# The exact edits (fineface_core.editing): the inversion takes the sampling options, the regeneration replays them
# (and takes the same cfg); Face Crop cuts the face of a photo of any size.
INVERT, REGENERATE, FACE_CROP = "FineFaceInvertPhoto", "FineFaceRegenerateEdit", "FineFaceFaceCrop"
EXACT = {"prompt": (POSITIVE, "text"), "negative": (NEGATIVE, "text"), "seed": (INVERT, "seed"), "steps": (INVERT, "steps"),
         "cfg": (INVERT, "cfg"), "scheduler": (INVERT, "scheduler"), "start_step": (INVERT, "start_step"),
         "checkpoint": (CHECKPOINT, "ckpt_name"), "image": (LOAD_IMAGE, "image"), "face": (FACE_CROP, "index"),
         "crop_size": (FACE_CROP, "size")}
SAME_CFG = {"cfg": (REGENERATE, "cfg")}

SHIPPED: dict[str, Shipped] = {
    "basic": Shipped("fineface_basic.json", "sd21", True, {**COMMON, **SIZE, "aus": (AU_VECTOR, "spec")}),
    "sweep": Shipped("fineface_intensity_sweep.json", "sd21", True, {
        **COMMON, **SIZE, "sweep": ("FineFaceAUSweep", "au"), "sweep_from": ("FineFaceAUSweep", "start"),
        "sweep_to": ("FineFaceAUSweep", "end"), "cells": ("FineFaceAUSweep", "cells")}),
    # a face you already have: exact inversion, then the target AUs (issue 25); --neutral picks "neutralize"
    "edit": Shipped("fineface_exact_edit.json", "sd21", True, {**EXACT, "aus": ("Target AUs", "spec")}, also_sets=SAME_CFG),
    "neutralize": Shipped("fineface_neutralize.json", "sd21", True, EXACT, also_sets=SAME_CFG),
    "edit_sweep": Shipped("fineface_edit_sweep.json", "sd21", True, {
        **EXACT, "sweep": ("FineFaceAUSweep", "au"), "sweep_from": ("FineFaceAUSweep", "start"),
        "sweep_to": ("FineFaceAUSweep", "end"), "cells": ("FineFaceAUSweep", "cells")}, also_sets=SAME_CFG),
    # img2img: the image (or a face's square) redrawn at a denoise, for a new face rather than the same one
    "redraw": Shipped("fineface_expression_edit.json", "sd21", True, {
        **COMMON, "aus": (AU_VECTOR, "spec"), "width": (SCALE, "width"), "height": (SCALE, "height"),
        "denoise": (SAMPLER, "denoise"), "image": (LOAD_IMAGE, "image")},
        enables={"mask_from_alpha": "SetLatentNoiseMask"}),
    "face_crop": Shipped("fineface_face_crop_edit.json", "sd21", True, {
        **COMMON, "aus": (AU_VECTOR, "spec"), "denoise": (SAMPLER, "denoise"), "image": (LOAD_IMAGE, "image"),
        "face": ("FineFaceFaceCrop", "index"), "crop_size": ("FineFaceFaceCrop", "size")}),
    "grid": Shipped("fineface_expression_grid.json", "sd21", True, {**COMMON, **SIZE, "aus": ("Expressions", "spec")},
                    several_aus=True),
    "animation": Shipped("fineface_au_animation.json", "sd21", True, {
        **COMMON, **SIZE, "keyframes": ("Keyframes", "keyframes"), "frames": ("Keyframes", "frames"),
        "easing": ("Keyframes", "easing"), "fps": ("Animation", "fps")}, out=".webp"),
    # needs ComfyUI_IPAdapter_plus and a face detector, or AnimateDiff-Evolved: the editor's
    "faceid": Shipped("fineface_ipadapter_faceid.json", "sd15"),
    "copy": Shipped("fineface_copy_expression.json", "sd21"),
    "copy_faceid": Shipped("fineface_copy_expression_faceid.json", "sd15"),
    "regions": Shipped("fineface_two_expressions.json", "sd21"),
    "regions_photo": Shipped("fineface_two_expressions_photo.json", "sd21"),
    "animatediff": Shipped("fineface_animatediff.json", "sd15"),
    # SDXL: no official weights (FineFace Model Loader, a file trained with training/), so no headless run
    "sdxl_basic": Shipped("fineface_sdxl_basic.json", "sdxl"),
    "sdxl_edit": Shipped("fineface_sdxl_exact_edit.json", "sdxl"),
}


def taking(option: str) -> list[str]:
    """The headless workflows whose row sets or switches on with ``option`` (an argparse dest), in table order."""
    return [name for name, row in SHIPPED.items() if row.headless and (option in row.sets or option in row.enables)]


def workflow_path(name: str) -> str:
    """The file of a shipped workflow (by its name in :data:`SHIPPED`), or ``name`` under this folder."""
    return os.path.join(WORKFLOWS_DIR, SHIPPED[name].file if name in SHIPPED else name)
