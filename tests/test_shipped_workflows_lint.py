"""The shipped workflows as files: each converts to a prompt that ComfyUI, this pack, ComfyUI_IPAdapter_plus and
ComfyUI-AnimateDiff-Evolved declare (their real INPUT_TYPES), is a tidy editor file whose model files are in
workflows/README.md and in its notes, names its downloads for the front end, and keeps the official pipeline's
sampler settings. Nothing runs a graph here."""
import os

import pytest

from workflows import SHIPPED, workflow_path
from workflows.api_format import widget_layout, widget_values, workflow_to_prompt
from workflows.overrides import input_value

from tests.support.shipped_workflows import MODEL_WIDGETS, check_prompt_against_declarations, load_shipped


README = os.path.join(os.path.dirname(workflow_path("basic")), "README.md")


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_workflow_converts_to_a_valid_prompt(name, node_info, node_outputs):
    wf = load_shipped(name)
    prompt = workflow_to_prompt(wf, node_info)
    check_prompt_against_declarations(prompt, node_info, node_outputs)
    # every node except the notes is sent, except one deliberately bypassed node in the redraw workflow
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
    if SHIPPED[name].family == "sdxl":  # no official SDXL weights: nothing to download for FineFace Model Loader
        assert not release and [n["type"] for n in loaders] == ["CheckpointLoaderSimple"]
        return
    sd15 = release[0]["widgets_values"][0].startswith("sd15_") if release else None
    assert len(release) == 1 and len(release[0]["properties"]["models"]) == (2 if sd15 else 3)
    assert sd15 == (name.endswith("faceid") or name == "animatediff")  # SD 1.5: FaceID graphs and AnimateDiff


def test_sampler_settings_follow_the_official_pipeline(node_info):
    for name in ("basic", "sweep", "redraw", "grid", "faceid"):
        wf = workflow_to_prompt(load_shipped(name), node_info)
        assert input_value(wf, "KSampler", "cfg") == 7.5
        assert input_value(wf, "Negative prompt", "text") == ""
        steps = input_value(wf, "KSampler", "steps")
        assert 25 <= steps <= 50
        sampler = input_value(wf, "KSampler", "sampler_name")
        assert "ancestral" not in sampler and "sde" not in sampler  # the sweep's cells must share their noise
        if name != "redraw":
            assert input_value(wf, "EmptyLatentImage", "width") == 512
            assert input_value(wf, "EmptyLatentImage", "height") == 512
    assert input_value(workflow_to_prompt(load_shipped("basic"), node_info), "KSampler", "sampler_name") == "ddim"
    assert input_value(workflow_to_prompt(load_shipped("redraw"), node_info), "KSampler", "denoise") == 0.6
    sweep = workflow_to_prompt(load_shipped("sweep"), node_info)
    assert [input_value(sweep, "FineFaceAUSweep", k) for k in ("au", "start", "end", "cells")] == \
        ["AU12 Lip Corner Puller", 0.0, 5.0, 6]


def test_faceid_workflow_uses_ipadapter_plus_as_declared(node_info, node_outputs):
    """Checked against ComfyUI_IPAdapter_plus' own INPUT_TYPES (its source, or the snapshot made from it)."""
    wf = load_shipped("faceid")
    prompt = workflow_to_prompt(wf, node_info)
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
