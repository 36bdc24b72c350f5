"""The shipped workflows: conversion to API prompts, runs through ComfyUI's executor, the headless command.

Graph runs (marked slow) use a small SD 2.1-architecture checkpoint and FineFace weights made here,
and change only resolution and steps in the shipped files (SPEED_OVERRIDES).
"""
import datetime
import json
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from workflows import SHIPPED, workflow_path
from workflows import run as headless
from workflows.api_format import (MODE_BYPASS, MODE_MUTED, WorkflowError, get_widget, resolve_dynamic_prompt,
                                  set_widget, used_node_types, widget_layout, widget_values, workflow_to_prompt)

from tests.support import comfy_env, ipadapter_nodes
from tests.support.shipped_runs import SPEED_OVERRIDES, TEST_SIZE, TEST_STEPS, comfy_path, images_of, run_shipped
from tests.support.shipped_workflows import MODEL_WIDGETS, check_prompt_against_declarations, load_shipped

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ---------------------------------------------------------------------------------------
# workflow_to_prompt on small hand-written workflows (no ComfyUI needed)
# ---------------------------------------------------------------------------------------

SAMPLER_INFO = {"required": {
    "model": ("MODEL",),
    "seed": ("INT", {"default": 0, "min": 0}),
    "steps": ("INT", {"default": 20}),
    "cfg": ("FLOAT", {"default": 8.0}),
    "sampler_name": (["euler", "ddim"],),
    "latent": ("LATENT",),
}, "optional": {"denoise": ("FLOAT", {"default": 1.0}), "extra": ("MASK",)}}

INFO = {
    "Loader": {"required": {"name": (["a.safetensors", "b.safetensors"],)}},
    "Sampler": SAMPLER_INFO,
    "Latent": {"required": {"width": ("INT", {"default": 512}), "height": ("INT", {"default": 512})}},
    "Mask": {"required": {"samples": ("LATENT",), "mask": ("MASK",)}},
    "Text": {"required": {"text": ("STRING", {"multiline": True}), "label": ("STRING", {"default": "x"})}},
    "Save": {"required": {"images": ("LATENT",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}},
    "LoadImage": {"required": {"image": (["face.png", "other.png"], {"image_upload": True})}},
    "LoadImageMask": {"required": {"image": (["face.png"], {"image_upload": True}),
                                   "channel": (["alpha", "red"],)}, "optional": {"x": ("INT", {})}},
}


def node(id, type, inputs=(), outputs=(), values=None, mode=0, title=None, **extra):
    n = {"id": id, "type": type, "pos": [0, 0], "size": [100, 100], "flags": {}, "order": id, "mode": mode,
         "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs], "properties": {}}
    if values is not None:
        n["widgets_values"] = values
    if title:
        n["title"] = title
    n.update(extra)
    return n


def inp(name, type, link=None, widget=False):
    d = {"name": name, "type": type, "link": link}
    if widget:
        d["widget"] = {"name": name}
    return d


def out(name, type, links=()):
    return {"name": name, "type": type, "links": list(links)}


def graph(*nodes, links=()):
    return {"last_node_id": 99, "last_link_id": 99, "nodes": list(nodes), "links": [list(l) for l in links],
            "groups": [], "config": {}, "extra": {}, "version": 0.4}


def sampler_graph(sampler_values, sampler_inputs=None, extra_nodes=(), extra_links=()):
    links = [(1, 1, 0, 2, 0, "MODEL"), (2, 3, 0, 2, 1, "LATENT")] + list(extra_links)
    loader = node(1, "Loader", outputs=[out("MODEL", "MODEL", [1])], values=["b.safetensors"])
    latent = node(3, "Latent", outputs=[out("LATENT", "LATENT", [2])], values=[64, 48])
    sampler = node(2, "Sampler", inputs=sampler_inputs or [inp("model", "MODEL", 1), inp("latent", "LATENT", 2)],
                   outputs=[out("LATENT", "LATENT")], values=sampler_values)
    return graph(loader, sampler, latent, *extra_nodes, links=links)


def test_widget_values_follow_input_types_order_with_seed_control():
    wf = sampler_graph([7, "fixed", 12, 6.5, "ddim", 0.75])
    p = workflow_to_prompt(wf, INFO)
    assert p["2"]["class_type"] == "Sampler"
    # "fixed" is the control_after_generate value the editor stores after an INT named seed
    assert p["2"]["inputs"] == {"seed": 7, "steps": 12, "cfg": 6.5, "sampler_name": "ddim", "denoise": 0.75,
                                "model": ["1", 0], "latent": ["3", 0]}
    assert p["1"]["inputs"] == {"name": "b.safetensors"}
    assert p["3"]["inputs"] == {"width": 64, "height": 48}
    assert set(p) == {"1", "2", "3"}


def test_control_after_generate_exactly_where_the_editor_adds_it():
    info = {"required": {
        "seed": ("INT", {}), "noise_seed": ("INT", {}), "seed_x": ("INT", {}), "n": ("INT", {"control_after_generate": True}),
        "fseed": ("FLOAT", {}), "seedling": ("INT", {}), "choice": (["p", "q"], {"control_after_generate": True}),
        "last": ("STRING", {})}}
    names = [(w.name, w.serialize) for w in widget_layout(info)]
    assert names == [
        ("seed", True), ("control_after_generate", False), ("noise_seed", True), ("control_after_generate", False),
        ("seed_x", True), ("n", True), ("control_after_generate", False), ("fseed", True), ("seedling", True),
        ("choice", True), ("control_after_generate", False), ("control_filter_list", False), ("last", True)]
    # an INT "seed" in the optional inputs gets one too; a FLOAT named seed does not
    assert [w.name for w in widget_layout({"optional": {"seed": ("INT",)}, "required": {"a": ("FLOAT",)}})] == \
        ["a", "seed", "control_after_generate"]
    assert [w.name for w in widget_layout({"required": {"seed": ("FLOAT",)}})] == ["seed"]


def test_missing_widget_values_take_defaults_and_extra_ones_are_ignored():
    # An older saved workflow lacks the optional denoise: the editor leaves the widget at its default.
    p = workflow_to_prompt(sampler_graph([7, "randomize", 12, 6.5, "euler"]), INFO)
    assert p["2"]["inputs"]["denoise"] == 1.0
    p = workflow_to_prompt(sampler_graph([7, "fixed", 12, 6.5, "euler", 0.5, "stray", 3]), INFO)
    assert p["2"]["inputs"]["denoise"] == 0.5 and "stray" not in json.dumps(p)
    # The legacy boolean control value (the 2023 default graph stores `true`) is skipped the same way.
    p = workflow_to_prompt(sampler_graph([7, True, 12, 6.5, "euler", 1]), INFO)
    assert p["2"]["inputs"]["steps"] == 12


def test_converted_widget_with_a_link_takes_the_link():
    # steps converted to an input and fed by a real node's output: the link wins, the stale widget value goes.
    inputs = [inp("model", "MODEL", 1), inp("latent", "LATENT", 2), inp("steps", "INT", 3, widget=True)]
    counter = node(4, "Latent", outputs=[out("LATENT", "INT", [3])], values=[5, 5])
    wf = sampler_graph([7, "fixed", 12, 6.5, "euler", 1.0], inputs, [counter], [(3, 4, 0, 2, 2, "INT")])
    p = workflow_to_prompt(wf, INFO)
    assert p["2"]["inputs"]["steps"] == ["4", 0]
    assert p["2"]["inputs"]["seed"] == 7


def test_primitive_node_feeds_its_value_through_a_reroute():
    inputs = [inp("model", "MODEL", 1), inp("latent", "LATENT", 2), inp("seed", "INT", 5, widget=True)]
    prim = node(4, "PrimitiveNode", outputs=[out("INT", "INT", [4])], values=[1234, "fixed"], title="Seed")
    reroute = node(5, "Reroute", inputs=[inp("", "*", 4)], outputs=[out("", "INT", [5])])
    wf = sampler_graph([7, "fixed", 12, 6.5, "euler", 1.0], inputs, [prim, reroute],
                       [(4, 4, 0, 5, 0, "INT"), (5, 5, 0, 2, 2, "INT")])
    p = workflow_to_prompt(wf, INFO)
    assert p["2"]["inputs"]["seed"] == 1234
    assert "4" not in p and "5" not in p  # front-end-only nodes are not sent
    assert get_widget(wf, "Sampler", "seed", INFO) == 1234
    set_widget(wf, "Sampler", "seed", 99, INFO)  # sets the primitive, which is what feeds the widget
    assert prim["widgets_values"][0] == 99
    assert workflow_to_prompt(wf, INFO)["2"]["inputs"]["seed"] == 99


def test_reroute_passes_connections_and_notes_are_dropped():
    reroute = node(5, "Reroute", inputs=[inp("", "*", 1)], outputs=[out("", "MODEL", [6])])
    note = node(6, "Note", values=["read me"])
    md = node(7, "MarkdownNote", values=["# read me"])
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0],
                       [inp("model", "MODEL", 6), inp("latent", "LATENT", 2)], [reroute, note, md])
    wf["links"] = [[1, 1, 0, 5, 0, "MODEL"], [2, 3, 0, 2, 1, "LATENT"], [6, 5, 0, 2, 0, "MODEL"]]
    p = workflow_to_prompt(wf, INFO)
    assert p["2"]["inputs"]["model"] == ["1", 0]
    assert set(p) == {"1", "2", "3"}


def test_muted_node_is_dropped_with_the_inputs_that_point_at_it():
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0])
    wf["nodes"][2]["mode"] = MODE_MUTED  # the Latent node
    p = workflow_to_prompt(wf, INFO)
    assert "3" not in p and "latent" not in p["2"]["inputs"]


def test_bypassed_node_passes_its_input_of_the_same_type():
    mask = node(4, "Mask", inputs=[inp("samples", "LATENT", 2), inp("mask", "MASK", None)],
                outputs=[out("LATENT", "LATENT", [3])], mode=MODE_BYPASS)
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0], [inp("model", "MODEL", 1), inp("latent", "LATENT", 3)],
                       [mask])
    wf["links"] = [[1, 1, 0, 2, 0, "MODEL"], [2, 3, 0, 4, 0, "LATENT"], [3, 4, 0, 2, 1, "LATENT"]]
    p = workflow_to_prompt(wf, INFO)
    assert "4" not in p and p["2"]["inputs"]["latent"] == ["3", 0]
    # two bypassed nodes in a row
    mask2 = node(5, "Mask", inputs=[inp("samples", "LATENT", 4), inp("mask", "MASK", None)],
                 outputs=[out("LATENT", "LATENT", [3])], mode=MODE_BYPASS)
    wf["nodes"].append(mask2)
    wf["links"] = [[1, 1, 0, 2, 0, "MODEL"], [2, 3, 0, 4, 0, "LATENT"], [4, 4, 0, 5, 0, "LATENT"], [3, 5, 0, 2, 1, "LATENT"]]
    wf["nodes"][1]["inputs"][1]["link"] = 3
    assert workflow_to_prompt(wf, INFO)["2"]["inputs"]["latent"] == ["3", 0]
    # un-bypassed, it is an ordinary node
    mask["mode"] = mask2["mode"] = 0
    assert workflow_to_prompt(wf, INFO)["2"]["inputs"]["latent"] == ["5", 0]


def test_bypassed_node_without_a_matching_input_leaves_the_input_unconnected():
    mask = node(4, "Mask", inputs=[inp("samples", "LATENT", None), inp("mask", "MASK", None)],
                outputs=[out("LATENT", "MODEL", [1])], mode=MODE_BYPASS)
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0], extra_nodes=[mask])
    wf["links"][0] = [1, 4, 0, 2, 0, "MODEL"]
    p = workflow_to_prompt(wf, INFO)
    assert "model" not in p["2"]["inputs"]


def test_load_image_upload_widget_and_its_position():
    w1 = graph(node(1, "LoadImage", outputs=[out("IMAGE", "IMAGE")], values=["other.png", "image"]))
    assert workflow_to_prompt(w1, INFO)["1"]["inputs"] == {"image": "other.png", "upload": "image"}
    # the upload button comes after every required input, before the optional ones
    assert [w.name for w in widget_layout(INFO["LoadImageMask"])] == ["image", "channel", "upload", "x"]
    w2 = graph(node(1, "LoadImageMask", outputs=[out("MASK", "MASK")], values=["face.png", "red", "image", 3]))
    assert workflow_to_prompt(w2, INFO)["1"]["inputs"] == {"image": "face.png", "channel": "red", "upload": "image", "x": 3}


def test_dynamic_prompts_comments_and_filename_replacements():
    text = node(1, "Text", outputs=[out("LATENT", "LATENT", [1])],
                values=["a {red|green|blue} car // a comment\n/* block */in the {rain|sun}", "{not|touched}"])
    save = node(2, "Save", inputs=[inp("images", "LATENT", 1)], values=["FineFace/%date:yyyy-MM-dd%/%Text.label%"])
    wf = graph(text, save, links=[(1, 1, 0, 2, 0, "LATENT")])
    now = datetime.datetime(2024, 3, 5, 7, 8, 9)
    p = workflow_to_prompt(wf, INFO, rng=random.Random(0), now=now)
    resolved = p["1"]["inputs"]["text"]
    assert re.fullmatch(r"a (red|green|blue) car \nin the (rain|sun)", resolved), resolved
    assert p["1"]["inputs"]["label"] == "{not|touched}"  # single-line STRING: no dynamic prompts
    assert p["2"]["inputs"]["filename_prefix"] == "FineFace/%date:yyyy-MM-dd%/%Text.label%"  # only SaveImage does it
    save["type"] = "SaveImage"
    info = dict(INFO, SaveImage=INFO["Save"])
    text["properties"]["Node name for S&R"] = "Text"
    p = workflow_to_prompt(wf, info, rng=random.Random(0), now=now)
    assert p["2"]["inputs"]["filename_prefix"] == "FineFace/2024-03-05/{not|touched}"
    assert resolve_dynamic_prompt("} odd {", random.Random(0)) == "} odd {"  # the editor would loop forever here


def test_force_input_in_both_editor_generations():
    info = {"Node": {"required": {"a": ("INT", {"forceInput": True}), "b": ("FLOAT", {"default": 2.0})}}}
    base = node(1, "Node", inputs=[inp("a", "INT", None, widget=True)], outputs=[out("X", "X")])
    old = dict(base, widgets_values=[5, 0.5])  # 2024 editor: a hidden widget holds a's value
    new = dict(base, widgets_values=[0.5])  # 2025 front end: a is a plain socket
    assert workflow_to_prompt(graph(old), info)["1"]["inputs"]["b"] == 0.5
    assert workflow_to_prompt(graph(new), info)["1"]["inputs"]["b"] == 0.5


def test_object_info_format_and_dict_widget_values_and_link_objects():
    info = {k: {"input": v, "output": [], "name": k} for k, v in INFO.items()}
    wf = sampler_graph({"seed": 3, "steps": 4, "cfg": 5.0, "sampler_name": "ddim", "denoise": 0.2})
    wf["links"] = [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), l)) for l in wf["links"]]
    p = workflow_to_prompt(wf, info)
    assert p["2"]["inputs"] == {"seed": 3, "steps": 4, "cfg": 5.0, "sampler_name": "ddim", "denoise": 0.2,
                                "model": ["1", 0], "latent": ["3", 0]}


def test_set_widget_by_title_or_type():
    wf = sampler_graph([7, "fixed", 12, 6.5, "ddim", 0.75])
    wf["nodes"][0]["title"] = "Checkpoint"
    set_widget(wf, "Checkpoint", "name", "a.safetensors", INFO)
    set_widget(wf, "Sampler", "steps", 3, INFO)
    set_widget(wf, "Sampler", "denoise", 0.3, INFO)
    p = workflow_to_prompt(wf, INFO)
    assert p["1"]["inputs"]["name"] == "a.safetensors"
    assert p["2"]["inputs"]["steps"] == 3 and p["2"]["inputs"]["denoise"] == 0.3 and p["2"]["inputs"]["seed"] == 7
    assert get_widget(wf, "Sampler", "steps", INFO) == 3
    # values missing from an older file are filled with defaults up to the one set
    wf2 = sampler_graph([7, "fixed", 12])
    set_widget(wf2, "Sampler", "denoise", 0.4, INFO)
    assert wf2["nodes"][1]["widgets_values"] == [7, "fixed", 12, 8.0, "euler", 0.4]
    with pytest.raises(WorkflowError, match="no widget 'control_after_generate'|no widget 'nope'"):
        set_widget(wf, "Sampler", "nope", 1, INFO)
    with pytest.raises(WorkflowError, match="no node titled"):
        set_widget(wf, "Nothing", "steps", 1, INFO)
    wf["nodes"].append(node(9, "Latent", outputs=[out("LATENT", "LATENT")], values=[8, 8]))
    with pytest.raises(WorkflowError, match="2 nodes match"):
        set_widget(wf, "Latent", "width", 1, INFO)
    with pytest.raises(WorkflowError, match="connected"):
        inputs = [inp("model", "MODEL", 1), inp("latent", "LATENT", 2), inp("steps", "INT", 3, widget=True)]
        wf3 = sampler_graph([7, "fixed", 12, 6.5, "euler", 1.0], inputs,
                            [node(4, "Latent", outputs=[out("LATENT", "INT", [3])], values=[5, 5])],
                            [(3, 4, 0, 2, 2, "INT")])
        set_widget(wf3, "Sampler", "steps", 1, INFO)


def test_unsupported_workflows_are_refused_clearly():
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0])
    wf["nodes"].append(node(8, "SomethingElse", values=[]))
    with pytest.raises(WorkflowError, match="not installed.*SomethingElse"):
        workflow_to_prompt(wf, INFO)
    wf["nodes"][-1]["mode"] = MODE_MUTED  # a muted unknown node is no obstacle, as in the editor
    workflow_to_prompt(wf, INFO)
    with pytest.raises(WorkflowError, match="subgraphs"):
        workflow_to_prompt(dict(wf, definitions={"subgraphs": [{"id": "x"}]}), INFO)
    with pytest.raises(WorkflowError, match="group nodes"):
        workflow_to_prompt(dict(wf, extra={"groupNodes": {"g": {}}}), INFO)
    with pytest.raises(WorkflowError, match="API prompt"):
        workflow_to_prompt({"1": {"class_type": "Loader", "inputs": {}}}, INFO)


@pytest.mark.skipif(ipadapter_nodes.source_path() is None, reason="ComfyUI_IPAdapter_plus source not on this machine")
def test_ipadapter_snapshot_matches_the_source():
    """tests/data/ipadapter_plus_nodes.json (used where the source is absent) is what the source declares."""
    with open(ipadapter_nodes.SNAPSHOT, encoding="utf-8") as f:
        saved = json.load(f)
    fresh = ipadapter_nodes.snapshot(ipadapter_nodes.source_path())
    assert saved["nodes"] == json.loads(json.dumps(fresh["nodes"])), \
        "regenerate: python -m tests.support.ipadapter_nodes > tests/data/ipadapter_plus_nodes.json"


@pytest.mark.skipif(ipadapter_nodes.source_path() is None, reason="ComfyUI_IPAdapter_plus source not on this machine")
def test_ipadapter_plus_example_workflows_convert():
    """Workflows saved by other people's editors (ComfyUI_IPAdapter_plus/examples), incl. a FaceID node
    saved before its embeds_scaling input existed (6 values): it takes the widget's default."""
    from workflows.api_format import VIRTUAL_TYPES

    ipa, _ = ipadapter_nodes.load_ipadapter_nodes()
    core = {  # the core nodes these examples use, with the inputs the 2024 tree declares
        "CheckpointLoaderSimple": {"required": {"ckpt_name": (["x"],)}},
        "CLIPTextEncode": {"required": {"text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)}},
        "EmptyLatentImage": {"required": {"width": ("INT", {}), "height": ("INT", {}), "batch_size": ("INT", {})}},
        "KSampler": {"required": {"model": ("MODEL",), "seed": ("INT", {}), "steps": ("INT", {}), "cfg": ("FLOAT", {}),
                                  "sampler_name": (["ddpm"],), "scheduler": (["karras"],), "positive": ("CONDITIONING",),
                                  "negative": ("CONDITIONING",), "latent_image": ("LATENT",), "denoise": ("FLOAT", {})}},
        "VAEDecode": {"required": {"samples": ("LATENT",), "vae": ("VAE",)}},
        "SaveImage": {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}},
        "LoadImage": {"required": {"image": (["x"], {"image_upload": True})}},
    }
    info = dict(core, **{k: v["input"] for k, v in ipa.items() if v["input"]})
    folder = os.path.join(os.path.dirname(ipadapter_nodes.source_path()), "examples")
    for name, expect_scaling in (("ipadapter_faceid.json", "V only"), ("ipadapter_portrait.json", "V only")):
        with open(os.path.join(folder, name)) as f:
            wf = json.load(f)
        if not used_node_types(wf) <= set(info):
            continue
        p = workflow_to_prompt(wf, info, rng=random.Random(0))
        faceid = next(v for v in p.values() if v["class_type"] == "IPAdapterFaceID")
        assert faceid["inputs"]["embeds_scaling"] == expect_scaling
        ks = next(v for v in p.values() if v["class_type"] == "KSampler")
        assert ks["inputs"]["steps"] == 30 and ks["inputs"]["cfg"] == 6.5 and ks["inputs"]["seed"] == 0
        assert len(p) == len([n for n in wf["nodes"] if n["type"] not in VIRTUAL_TYPES])


# ---------------------------------------------------------------------------------------
# The shipped workflows, converted with the real INPUT_TYPES of ComfyUI and this pack
# ---------------------------------------------------------------------------------------

README = os.path.join(os.path.dirname(workflow_path("basic")), "README.md")


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_workflow_converts_to_a_valid_prompt(name, node_info, node_outputs):
    wf = load_shipped(name)
    prompt = workflow_to_prompt(wf, node_info, rng=random.Random(0))
    check_prompt_against_declarations(prompt, node_info, node_outputs)
    # every node except the notes is sent, except one deliberately bypassed node in the edit workflow
    sent = {int(k) for k in prompt}
    for n in wf["nodes"]:
        expected = n["type"] not in ("Note", "MarkdownNote") and n["mode"] == 0
        assert (n["id"] in sent) == expected, (n["id"], n["type"], n["mode"])


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_workflow_is_an_editor_file_and_tidy(name, node_info):
    wf = load_shipped(name)
    assert wf["version"] == 0.4 and isinstance(wf["links"], list)
    nodes_by_id = {n["id"]: n for n in wf["nodes"]}
    assert len(nodes_by_id) == len(wf["nodes"]) and max(nodes_by_id) <= wf["last_node_id"]
    assert max(l[0] for l in wf["links"]) <= wf["last_link_id"]
    # links agree with the nodes' own slots, as the editor writes them
    for lid, src, sslot, dst, dslot, ltype in wf["links"]:
        assert lid in (nodes_by_id[src]["outputs"][sslot]["links"] or [])
        assert nodes_by_id[dst]["inputs"][dslot]["link"] == lid
        assert nodes_by_id[src]["outputs"][sslot]["type"] == ltype == nodes_by_id[dst]["inputs"][dslot]["type"]
        # readable left to right: every link goes right, or down within a column
        (sx, sy), (dx, dy) = nodes_by_id[src]["pos"], nodes_by_id[dst]["pos"]
        assert sx < dx or (sx == dx and sy < dy), (src, dst)
    # no two nodes overlap (the title bar sits 30 px above pos)
    boxes = [(n["id"], n["pos"][0], n["pos"][1] - 30, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
             for n in wf["nodes"]]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]), f"nodes {a[0]} and {b[0]} overlap"
    # widgets_values has exactly one value per widget the editor creates
    for n in wf["nodes"]:
        if n["type"] in node_info:
            assert len(n.get("widgets_values", [])) == len(widget_layout(node_info[n["type"]])), n["type"]
    # a note that says what to set, and every model file it names is in the README with its source
    notes = [n["widgets_values"][0] for n in wf["nodes"] if n["type"] == "Note"]
    assert notes and any("What to set" in t for t in notes)
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    for n in wf["nodes"]:
        for ctype, field in MODEL_WIDGETS:
            if n["type"] == ctype:
                value = widget_values(n, node_info)[field]
                if value == "none":  # the SD 1.5 release's LoRA
                    continue
                assert value in readme, f"{value} is not in workflows/README.md"
                assert any(value in t for t in notes), f"{value} is not in the workflow's notes"


FOLDER_OF = {"CheckpointLoaderSimple": "checkpoints", "VAELoader": "vae", "IPAdapterModelLoader": "ipadapter",
             "CLIPVisionLoader": "clip_vision", "FineFaceReleaseLoader": "fineface",
             "ADE_AnimateDiffLoaderGen1": "animatediff_models"}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_every_loader_names_its_downloads_for_the_front_end(name, node_info):
    """properties.models (name, url, directory) on every node with a model file: what the front end's missing-models
    dialog offers. Front ends 1.27 and 1.58 read an entry only when its name is one of the node's widget values."""
    wf = load_shipped(name)
    loaders = [n for n in wf["nodes"] if n["type"] in FOLDER_OF]
    assert loaders
    for n in loaders:
        files = [v for v in n["widgets_values"] if isinstance(v, str) and v.endswith((".safetensors", ".ckpt", ".bin"))]
        models = n["properties"].get("models")
        assert models and sorted(m["name"] for m in models) == sorted(files), (n["type"], files)
        for m in models:
            assert m["directory"] == FOLDER_OF[n["type"]]
            assert m["url"].startswith("https://huggingface.co/") and "/resolve/main/" in m["url"]
            if n["type"] == "FineFaceReleaseLoader":
                assert m["url"] == f"https://huggingface.co/Tvaranka/fineface/resolve/main/{m['name']}"
            elif m["name"] != "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors":  # saved under the name IPAdapter_plus expects
                assert m["url"].endswith("/" + m["name"])
    release = [n for n in loaders if n["type"] == "FineFaceReleaseLoader"]
    sd15 = release[0]["widgets_values"][0].startswith("sd15_") if release else None
    assert len(release) == 1 and len(release[0]["properties"]["models"]) == (2 if sd15 else 3)
    assert sd15 == (name.endswith("faceid") or name == "animatediff")  # SD 1.5: FaceID graphs and AnimateDiff


def test_sampler_settings_follow_the_official_pipeline(node_info):
    for name in ("basic", "sweep", "edit", "grid", "faceid"):
        wf = load_shipped(name)
        assert get_widget(wf, "KSampler", "cfg", node_info) == 7.5
        assert get_widget(wf, "Negative prompt", "text", node_info) == ""
        steps = get_widget(wf, "KSampler", "steps", node_info)
        assert 25 <= steps <= 50
        sampler = get_widget(wf, "KSampler", "sampler_name", node_info)
        assert "ancestral" not in sampler and "sde" not in sampler  # the sweep's cells must share their noise
        if name != "edit":
            assert get_widget(wf, "EmptyLatentImage", "width", node_info) == 512
            assert get_widget(wf, "EmptyLatentImage", "height", node_info) == 512
    assert get_widget(load_shipped("basic"), "KSampler", "sampler_name", node_info) == "ddim"
    assert get_widget(load_shipped("edit"), "KSampler", "denoise", node_info) == 0.6
    sweep = load_shipped("sweep")
    assert [get_widget(sweep, "FineFaceAUSweep", k, node_info) for k in ("au", "start", "end", "cells")] == \
        ["AU12 Lip Corner Puller", 0.0, 5.0, 6]


def test_faceid_workflow_uses_ipadapter_plus_as_declared(node_info, node_outputs):
    """Checked against ComfyUI_IPAdapter_plus' own INPUT_TYPES (its source, or the snapshot made from it)."""
    wf = load_shipped("faceid")
    prompt = workflow_to_prompt(wf, node_info, rng=random.Random(0))
    by_type = {v["class_type"]: v["inputs"] for v in prompt.values()}
    assert by_type["IPAdapterModelLoader"]["ipadapter_file"] == "ip-adapter-faceid-portrait-v11_sd15.bin"
    assert by_type["IPAdapterInsightFaceLoader"] == {"provider": "CPU", "model_name": "buffalo_l"}
    faceid = by_type["IPAdapterFaceID"]
    assert {"model", "ipadapter", "image", "clip_vision", "insightface"} <= set(faceid)
    assert faceid["weight"] == 0.9  # the official demo's ip_scale
    assert by_type["CheckpointLoaderSimple"]["ckpt_name"] == "Realistic_Vision_V4.0_noVAE.safetensors"
    assert by_type["VAELoader"]["vae_name"] == "vae-ft-mse-840000-ema-pruned.safetensors"
    assert by_type["FineFaceReleaseLoader"] == {"au_encoder": "sd15_au_encoder.ckpt", "attn_processors": "sd15_attn_processors.ckpt",
                                                "lora": "none"}
    # FineFace patches the model IP-Adapter patched: KSampler <- FineFace <- IPAdapterFaceID <- checkpoint
    ids = {v["class_type"]: k for k, v in prompt.items()}
    assert prompt[ids["KSampler"]]["inputs"]["model"][0] == ids["FineFaceApplyAdapter"]
    assert prompt[ids["FineFaceApplyAdapter"]]["inputs"]["model"][0] == ids["IPAdapterFaceID"]
    assert faceid["model"][0] == ids["CheckpointLoaderSimple"]
    # the unified FaceID loader would find the same file by pattern: its portrait preset exists
    presets = node_info["IPAdapterUnifiedLoaderFaceID"]["required"]["preset"][0]
    assert "FACEID PORTRAIT (style transfer)" in presets
    check_prompt_against_declarations(prompt, node_info, node_outputs)


# ---------------------------------------------------------------------------------------
# Running the shipped workflows through ComfyUI's executor on small generated models
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_basic_workflow_renders(comfy_dirs, node_info):
    wf, prompt, outputs = run_shipped("basic", node_info)
    images = images_of(outputs, prompt, "SaveImage")
    assert len(images) == 1 and images[0].shape == (TEST_SIZE, TEST_SIZE, 3)
    assert images[0].std() > 1  # not a blank image


@pytest.mark.slow
def test_sweep_workflow_renders_a_labelled_grid_of_distinct_cells(comfy_dirs, node_info):
    wf, prompt, outputs = run_shipped("sweep", node_info)
    (grid,) = images_of(outputs, prompt, "SaveImage")
    cells = images_of(outputs, prompt, "PreviewImage", "Cells")
    assert len(cells) == 6 and all(c.shape == (TEST_SIZE, TEST_SIZE, 3) for c in cells)
    pad = 4  # fineface_core.grid.labelled_grid's default padding
    assert grid.shape[1] == 6 * TEST_SIZE + 7 * pad
    band = grid.shape[0] - TEST_SIZE - 2 * pad
    assert band >= 10, "no label band under the cells"
    for i, cell in enumerate(cells):
        x = pad + i * (TEST_SIZE + pad)
        crop = grid[pad:pad + TEST_SIZE, x:x + TEST_SIZE].astype(int)
        assert np.abs(crop - cell.astype(int)).max() <= 1  # the grid holds the cells, in order
        label = grid[pad + TEST_SIZE:, x:x + TEST_SIZE]
        assert (label.max(axis=2) < 100).sum() > 10, f"no dark label text under cell {i}"
    # only the AU changes between cells, and it changes each of them
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.abs(cells[i].astype(int) - cells[j].astype(int)).mean() > 0.5, (i, j)
    # the sweep node's labels output, from the same inputs
    sweep_inputs = next(v["inputs"] for v in prompt.values() if v["class_type"] == "FineFaceAUSweep")
    labels = sweep_labels(comfy_dirs, sweep_inputs)
    assert labels == ["AU12@0", "AU12@1", "AU12@2", "AU12@3", "AU12@4", "AU12@5"]


def sweep_labels(_, inputs):
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS["FineFaceAUSweep"]
    args = {k: v for k, v in inputs.items() if not isinstance(v, list)}
    _, latent, labels = getattr(cls(), cls.FUNCTION)(latent={"samples": torch.zeros(1, 4, 8, 8)}, **args)
    assert latent["batch_index"] == [0] * 6  # one noise for every cell
    return labels.split("\n")


def test_sweep_labels_name_the_au_in_every_cell(comfy, node_info):
    inputs = workflow_to_prompt(load_shipped("sweep"), node_info)
    sweep_inputs = next(v["inputs"] for v in inputs.values() if v["class_type"] == "FineFaceAUSweep")
    assert sweep_labels(None, sweep_inputs) == ["AU12@0", "AU12@1", "AU12@2", "AU12@3", "AU12@4", "AU12@5"]


@pytest.mark.slow
def test_expression_grid_workflow_renders_every_expression_from_one_noise(comfy_dirs, node_info):
    wf, prompt, outputs = run_shipped("grid", node_info)
    (grid,) = images_of(outputs, prompt, "SaveImage")
    cells = images_of(outputs, prompt, "PreviewImage", "Cells")
    lines = get_widget(wf, "Expressions", "spec", node_info).split("\n")
    assert lines[:3] == ["neutral", "happiness", "sadness"] and len(cells) == len(lines) == 8
    pad, columns = 4, get_widget(wf, "FineFaceAUGrid", "columns", node_info)
    assert columns == 4 and grid.shape[1] == columns * TEST_SIZE + (columns + 1) * pad
    assert grid.shape[0] > 2 * (TEST_SIZE + pad) + 10  # two rows, each with a label band
    for i in range(8):
        for j in range(i + 1, 8):
            assert np.abs(cells[i].astype(int) - cells[j].astype(int)).mean() > 0.5, (i, j)
    # the same expression twice on the shared noise gives the same image: only the AUs differ between cells
    twice = [("Expressions", "spec", "happiness\nhappiness")]
    _, prompt, outputs = run_shipped("grid", node_info, twice)
    a, b = images_of(outputs, prompt, "PreviewImage", "Cells")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.slow
def test_expression_edit_workflow_rerenders_the_input_image(comfy_dirs, node_info):
    portrait = np.zeros((80, 64, 3), np.uint8)  # taller than wide: the scale keeps the aspect ratio
    portrait[..., 0] = np.linspace(0, 255, 64)[None, :]
    portrait[..., 1] = np.linspace(0, 255, 80)[:, None]
    Image.fromarray(portrait).save(comfy_dirs / "input" / "portrait.png")
    wf, prompt, outputs = run_shipped("edit", node_info)
    (image,) = images_of(outputs, prompt, "SaveImage")
    assert image.shape == (80, 64, 3)  # width 64, height 64 * 80 / 64, both multiples of 8
    # denoise 0.6 on a random model: not the input any more, but not unrelated either
    diff = np.abs(image.astype(int) - portrait.astype(int)).mean()
    assert diff > 1


# ---------------------------------------------------------------------------------------
# The headless command
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_face_crop_workflow_gives_every_face_its_own_line_of_aus(comfy_dirs, node_info):
    """which_face = every face: the two faces of a photo are cropped as a batch of two, the AU Vector's two lines
    go one to each (one AU vector per latent image), and both are pasted back in their places."""
    from fineface_core.faces.crop import EVERY_FACE
    from tests.support.libreface_files import skimage_photo

    head = skimage_photo("astronaut.png")[:256, 96:352]
    photo = np.concatenate([head, head[:, ::-1]], axis=1)  # faces at x 78-176 and 335-432 (256 x 512)
    Image.fromarray(photo).save(comfy_dirs / "input" / "photo.png")

    def rendered(spec):
        torch.manual_seed(0)  # ComfyUI's VAE Encode samples the latent distribution (the test VAE's is wide)
        _, prompt, outputs = run_shipped("face_crop", node_info, [("FineFaceFaceCrop", "which_face", EVERY_FACE),
                                                                  ("FineFaceAUVector", "spec", spec)])
        (image,) = images_of(outputs, prompt, "SaveImage")
        return image.astype(int)

    both = rendered("happiness@4\nsurprise@4")
    left_changed = rendered("happiness@4\nsadness@4")  # only the second (right) face's line differs
    assert both.shape == photo.shape
    changed = np.abs(both - photo).max(axis=2) > 0
    assert changed[:, :256].any() and changed[:, 256:].any() and not changed[:, 235:275].any()  # two squares
    differs = np.abs(left_changed - both).max(axis=2) > 0
    assert differs[:, 256:].any() and not differs[:, :256].any()  # the first face kept its line's expression


@pytest.mark.slow
def test_headless_command_renders_with_the_shipped_workflow(comfy, models_dir, tmp_path, capsys):
    out = tmp_path / "out.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a woman in a park", "--aus", "AU6@3 + AU12@4",
                        "--seed", "42", "--steps", str(TEST_STEPS), "--width", "64", "--height", "48", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert np.asarray(Image.open(out)).shape[:2] == (48, 64)
    assert "step 3/3" in printed.out  # the executor's progress, printed
    saved = list((tmp_path / "output").rglob("*.png"))
    assert len(saved) == 1
    meta = Image.open(saved[0]).info
    assert "workflow" in meta and "AU6@3 + AU12@4" in meta["workflow"]  # the PNG carries the graph that made it


@pytest.mark.slow
def test_headless_face_crop_redraws_one_face_of_a_photo(comfy, models_dir, tmp_path, capsys):
    from tests.support.libreface_files import skimage_photo

    photo = np.full((300, 420, 3), 120, np.uint8)
    photo[20:276, 150:406] = skimage_photo("astronaut.png")[:256, 96:352]
    Image.fromarray(photo).save(tmp_path / "photo.png")
    out = tmp_path / "face.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--workflow", "face_crop", "--image", str(tmp_path / "photo.png"), "--face", "0",
                        "--aus", "happiness", "--denoise", "0.5", "--steps", "2", "--crop-size", "64", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == photo.shape  # the photo keeps its size
    changed = np.abs(image.astype(int) - photo.astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.any() and xs.min() >= 150 and ys.max() < 276  # only the face's square changed
    assert "Face Crop" in printed.out or "FineFaceFaceCrop" in printed.out


@pytest.mark.slow
def test_headless_sweep(comfy, models_dir, tmp_path, capsys):
    out = tmp_path / "sweep.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a man", "--sweep", "AU4", "--from", "0", "--to", "4",
                        "--cells", "3", "--steps", "2", "--width", "64", "--height", "64",
                        "--fineface", "[official SD 2.1]", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    grid = np.asarray(Image.open(out))
    assert grid.shape[1] == 3 * 64 + 4 * 4 and grid.shape[0] > 64 + 8


@pytest.mark.slow
def test_headless_expression_grid(comfy, models_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a woman", "--aus", "neutral; happiness; AU4@4 + AU15@3",
                        "--steps", "2", "--width", "64", "--height", "64", "--fineface", "fineface_sd21.safetensors",
                        "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "fineface_expression_grid.json" in printed.out  # several expressions choose the grid
    grid = np.asarray(Image.open(out))
    assert grid.shape[1] == 3 * 64 + 4 * 4 and grid.shape[0] > 64 + 8


def test_headless_command_reports_missing_weights_and_renders_nothing(comfy, tmp_path, capsys):
    empty = tmp_path / "models"
    os.makedirs(empty)
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(empty), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a face", "--aus", "happiness", "--out", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "v2-1_512-ema-pruned.safetensors" in err and "stabilityai/stable-diffusion-2-1-base" in err
    assert os.path.join(str(empty), "checkpoints") in err
    for f in ("au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors"):
        assert f"https://huggingface.co/Tvaranka/fineface/resolve/main/{f}" in err
    assert os.path.join(str(empty), "fineface") in err and "--fineface fineface_sd21.safetensors" in err
    assert not (tmp_path / "out.png").exists()
    assert not (tmp_path / "output").exists() or not list((tmp_path / "output").rglob("*.png"))


def test_headless_command_reports_only_what_is_missing(comfy, models_dir, tmp_path, capsys):
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "o"),
                        "--prompt", "a face", "--fineface", "fineface_sd15.safetensors"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "v2-1_512" not in err  # the checkpoint is there
    assert "sd15_au_encoder.ckpt" in err and "sd15_attn_processors.ckpt" in err
    assert "fineface_sd21.safetensors" in err  # what the loader does list


def test_headless_command_usage_errors(comfy, tmp_path, capsys, monkeypatch):
    assert headless.main(["--comfyui", str(tmp_path), "--prompt", "x"]) == 2
    assert "not a ComfyUI folder" in capsys.readouterr().err
    if os.path.basename(os.path.dirname(ROOT)) != "custom_nodes":  # else ../.. is the ComfyUI to use
        monkeypatch.delenv("COMFYUI_PATH", raising=False)
        assert headless.main(["--prompt", "x"]) == 2
        assert "no ComfyUI found" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--aus", "AU7@3"]) == 2
    assert "AU7" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--workflow", "edit"]) == 2
    assert "--image" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--sweep", "AU12", "--aus", "happiness"]) == 2
    assert "sweep" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--workflow", "basic", "--aus", "happiness; sadness"]) == 2
    assert "grid workflow" in capsys.readouterr().err
    assert headless.main(["--comfyui", comfy_path(), "--aus", "happiness; AU7@2"]) == 2
    assert "AU7" in capsys.readouterr().err
    opaque = tmp_path / "opaque.png"
    Image.new("RGB", (16, 16)).save(opaque)
    assert headless.main(["--comfyui", comfy_path(), "--image", str(opaque), "--mask-from-alpha"]) == 2
    assert "transparent" in capsys.readouterr().err


@pytest.mark.slow
def test_headless_command_as_a_process(comfy, tmp_path):
    """`python -m workflows.run` itself: ComfyUI from $COMFYUI_PATH, exit status 2 and nothing written."""
    env = dict(os.environ, COMFYUI_PATH=comfy_path())
    os.makedirs(tmp_path / "m")  # an empty models folder
    proc = subprocess.run([sys.executable, "-m", "workflows.run", "--cpu", "--models-dir", str(tmp_path / "m"),
                           "--output-dir", str(tmp_path / "o"), "--prompt", "a face", "--out", str(tmp_path / "x.png")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Missing model files" in proc.stderr and "v2-1_512-ema-pruned.safetensors" in proc.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_headless_copies_the_expression_of_a_photo(comfy, models_dir, tmp_path, capsys):
    from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint

    write_libreface_checkpoint(str(models_dir / "libreface" / "resnet.pt"), seed=4)
    photo = tmp_path / "photo.png"
    Image.fromarray(skimage_photo("astronaut.png")).save(photo)
    out = tmp_path / "copied.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir", str(tmp_path / "output"),
                        "--prompt", "a close-up photo of a man", "--aus-from", str(photo), "--steps", "2",
                        "--width", "64", "--height", "64", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "AU12  Lip Corner Puller" in printed.out and 'as --aus "' in printed.out
    assert np.asarray(Image.open(out)).shape[:2] == (64, 64)


@pytest.mark.slow
def test_two_expressions_workflow_gives_each_half_its_own_aus(comfy_dirs, node_info):
    """Two chained Apply nodes, masks made with core mask nodes (left half, its inverse), one image."""
    wf, prompt, outputs = run_shipped("regions", node_info)
    (image,) = images_of(outputs, prompt, "SaveImage")
    assert image.shape == (TEST_SIZE, 96, 3) and image.std() > 1
    applies = {v["_meta"]["title"]: v["inputs"] for v in prompt.values() if v["class_type"] == "FineFaceApplyAdapter"}
    left, right = applies["Apply FineFace Adapter (left)"], applies["Apply FineFace Adapter (right)"]
    assert right["model"][0] == next(k for k, v in prompt.items() if v["_meta"]["title"] == "Apply FineFace Adapter (left)")
    assert prompt[left["mask"][0]]["class_type"] == "MaskComposite" and prompt[right["mask"][0]]["class_type"] == "InvertMask"
    # the same graph with the right face's AUs changed: the image changes, most on the right
    _, _, other = run_shipped("regions", node_info, extra=[("Right face", "spec", "AU1@5 + AU2@5 + AU26@5")])
    (changed,) = images_of(other, prompt, "SaveImage")
    diff = np.abs(changed.astype(float) - image.astype(float)).mean(axis=(0, 2))
    assert diff.sum() > 0


@pytest.mark.slow
def test_two_expressions_photo_workflow_masks_the_faces_it_finds_left_to_right(comfy_dirs, node_info):
    """A real photo of two people (the astronaut and its mirror image): Face Mask 0 and 1 drive the two Apply nodes
    and the noise mask. Changing the right face's AUs changes the sampled latent on the right face more than on the
    left one, and not at all away from the faces (the VAE decoder's attention spreads any change over the pixels,
    so the latent is compared)."""
    from safetensors.torch import load_file

    from fineface_core.faces.masks import face_masks
    from tests.support.libreface_files import skimage_photo

    head = skimage_photo("astronaut.png")[:256, 96:352]
    photo = np.concatenate([head, head[:, ::-1]], axis=1)
    Image.fromarray(photo).save(comfy_dirs / "input" / "two_people.png")

    def sampled(extra=()):
        wf = load_shipped("regions_photo")
        for node_name, field, value in list(SPEED_OVERRIDES["regions_photo"]) + list(extra):
            set_widget(wf, node_name, field, value, node_info)
        prompt = workflow_to_prompt(wf, node_info, rng=random.Random(0))
        ksampler = next(k for k, v in prompt.items() if v["class_type"] == "KSampler")
        prompt["save_latent"] = {"class_type": "SaveLatent", "inputs": {"samples": [ksampler, 0], "filename_prefix": "t"},
                                  "_meta": {"title": "Save Latent"}}
        torch.manual_seed(0)  # ComfyUI's VAE Encode samples the latent distribution (the test VAE's is wide)
        outputs = comfy_env.run_prompt(prompt)
        (image,) = images_of(outputs, prompt, "SaveImage")
        return prompt, image, load_file(outputs["save_latent"][0])["latent_tensor"][0].numpy()

    prompt, image, latent = sampled()
    assert image.shape == (128, 256, 3) and image.std() > 1
    by_title = {v["_meta"]["title"]: v for v in prompt.values()}
    left, right = by_title["Apply FineFace Adapter (left)"]["inputs"], by_title["Apply FineFace Adapter (right)"]["inputs"]
    assert prompt[left["mask"][0]]["_meta"]["title"] == "Face Mask (left)" and prompt[left["mask"][0]]["inputs"]["index"] == 0
    assert prompt[right["mask"][0]]["_meta"]["title"] == "Face Mask (right)" and prompt[right["mask"][0]]["inputs"]["index"] == 1
    _, _, other = sampled([("Right face", "spec", "AU1@5 + AU2@5 + AU26@5")])
    diff = np.abs(other - latent).sum(0)  # [16, 32]: latent cells of the 128 x 256 image
    masks, _ = face_masks(photo[None].astype(np.float32) / 255.0, "by index", 0, grow=0.3)
    masks = np.concatenate([masks, face_masks(photo[None].astype(np.float32) / 255.0, "by index", 1, grow=0.3)[0]])
    cells = masks.reshape(2, 16, 16, 32, 16).max(axis=(2, 4))  # the photo is 2x the image, a latent cell 8 px
    near = np.zeros_like(cells[0], bool)  # a cell next to a face (the resized noise mask's edge) may change too
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(cells.max(0) > 0, dy, 0), dx, 1)
    assert (~near).sum() > 100 and diff[~near].max() == 0  # away from the faces: untouched
    assert diff[cells[1] > 0].mean() > 2 * diff[cells[0] > 0].mean() > 0  # the right face changed most


@pytest.mark.slow
def test_face_crop_workflow_redraws_the_face_square_and_leaves_the_rest_of_the_photo(comfy_dirs, node_info):
    """A face small in a large photo: Face Crop cuts its square, the graph redraws it at the crop's size with the
    AUs, Face Paste puts it back. Every pixel outside the square is the photo's; the AUs change the square."""
    from tests.support.libreface_files import skimage_photo

    photo = np.full((480, 720, 3), 90, np.uint8)
    photo[::7] = 200  # stripes: something outside the face that a whole-image re-render would change
    photo[100:356, 380:636] = skimage_photo("astronaut.png")[:256, 96:352]
    Image.fromarray(photo).save(comfy_dirs / "input" / "photo.png")

    def rendered(spec):
        torch.manual_seed(0)  # ComfyUI's VAE Encode samples the latent distribution (the test VAE's is wide)
        _, prompt, outputs = run_shipped("face_crop", node_info, [("FineFaceAUVector", "spec", spec)])
        (image,) = images_of(outputs, prompt, "SaveImage")
        return image

    smile, frown = rendered("AU6@4 + AU12@5"), rendered("AU4@5 + AU15@4")
    assert smile.shape == photo.shape
    changed = np.abs(smile.astype(int) - photo.astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 1000
    top, left, side = ys.min(), xs.min(), max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    assert 380 <= left and xs.max() < 636 and 100 <= top and ys.max() < 356  # only inside the face's square
    assert side < 256 and bool((np.abs(frown.astype(int) - smile.astype(int)) > 0).any())  # the AUs act there
