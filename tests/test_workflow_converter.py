"""workflows/api_format.py, the editor-graph-to-API-prompt converter, on small hand-written workflows (no ComfyUI
needed) and on ComfyUI_IPAdapter_plus' example workflows (where its source is on the machine)."""
import json
import os

import pytest

from workflows.api_format import (MODE_BYPASS, MODE_MUTED, WorkflowError, used_node_types, widget_layout, workflow_to_prompt)

from tests.support import ipadapter_nodes
from tests.support.editor_graphs import INFO, graph, inp, node, out, sampler_graph


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
    from workflows.api_format import NOTE_TYPES

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
        p = workflow_to_prompt(wf, info)
        faceid = next(v for v in p.values() if v["class_type"] == "IPAdapterFaceID")
        assert faceid["inputs"]["embeds_scaling"] == expect_scaling
        ks = next(v for v in p.values() if v["class_type"] == "KSampler")
        assert ks["inputs"]["steps"] == 30 and ks["inputs"]["cfg"] == 6.5 and ks["inputs"]["seed"] == 0
        assert len(p) == len([n for n in wf["nodes"] if n["type"] not in NOTE_TYPES])
