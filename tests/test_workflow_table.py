"""The one table of shipped workflows (workflows.SHIPPED) and the runner's options set on converted prompts
(workflows.overrides): every row names nodes and inputs its graph has, and each option lands where it says."""
import json

import pytest

from fineface_core.aus import AU_ORDER
from tests.support.editor_graphs import INFO, sampler_graph
from workflows import SHIPPED, Shipped, workflow_path
from workflows import run as headless
from workflows.api_format import MODE_BYPASS, WorkflowError, node_info_from_classes, workflow_to_prompt
from workflows.overrides import FINEFACE_LOADER, VALUES, edit_graph, find_entry, input_value, set_input
from workflows.run_checks import UsageError, check_workflow_options

HEADLESS = [name for name, row in SHIPPED.items() if row.headless]


def load(name):
    with open(workflow_path(name), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def node_info(registry):
    return node_info_from_classes(registry.NODE_CLASS_MAPPINGS)


def test_every_row_is_a_shipped_file_of_its_family():
    """The family is the release the graph's loader names (SD 1.5's files start sd15_); SDXL has no release: its
    graphs load a trained file with FineFace Model Loader, on the SDXL base checkpoint, and are not headless."""
    for name, row in SHIPPED.items():
        wf = load(name)
        if row.family == "sdxl":
            (loader,) = [n for n in wf["nodes"] if n["type"].startswith("FineFace") and n["type"].endswith("Loader")]
            (ckpt,) = [n for n in wf["nodes"] if n["type"] == "CheckpointLoaderSimple"]
            assert loader["type"] == "FineFaceModelLoader" and loader["widgets_values"] == ["fineface_sdxl.safetensors"]
            assert ckpt["widgets_values"] == ["sd_xl_base_1.0.safetensors"] and not row.headless, name
            continue
        (loader,) = [n for n in wf["nodes"] if n["type"] == "FineFaceReleaseLoader"]
        assert row.family == ("sd15" if loader["widgets_values"][0].startswith("sd15_") else "sd21"), name
    assert headless.HEADLESS == tuple(HEADLESS)
    parser_choices = next(a.choices for a in headless.build_parser()._actions if a.dest == "workflow")
    assert list(parser_choices) == HEADLESS


@pytest.mark.parametrize("name", HEADLESS)
def test_every_option_of_a_row_sets_an_input_its_converted_graph_has(name, node_info):
    row = SHIPPED[name]
    wf = load(name)
    for title in row.enables.values():
        assert sum(n.get("title", n["type"]) == title or n["type"] == title for n in wf["nodes"]) == 1, title
    prompt = workflow_to_prompt(wf, node_info)
    for option, (title, inp) in row.sets.items():
        _, entry = find_entry(prompt, title)
        assert inp in entry["inputs"] and not isinstance(entry["inputs"][inp], list), (option, title, inp)
        if option in VALUES:  # the inputs an option sets besides its own
            sample = {"aus": "happiness", "sweep": "AU12", "face": 1, "keyframes": "0: neutral"}[option]
            assert set(VALUES[option](inp, sample)) <= set(entry["inputs"]), option


def test_options_land_on_the_nodes_the_row_names(node_info):
    args = headless.build_parser().parse_args(
        ["--prompt", "a man", "--negative", "blurry", "--aus", "AU6@3 + AU12@4", "--seed", "7", "--steps", "3",
         "--cfg", "5.5", "--sampler", "euler", "--scheduler", "karras", "--width", "64", "--height", "48",
         "--checkpoint", "other.safetensors"])
    prompt, wf = headless.apply_overrides(load("basic"), "basic", args, node_info, None)
    assert input_value(prompt, "Positive prompt", "text") == "a man"
    assert input_value(prompt, "Negative prompt", "text") == "blurry"
    vector = find_entry(prompt, "FineFaceAUVector")[1]["inputs"]
    assert vector["spec"] == "AU6@3 + AU12@4" and vector["preset"] == "none" and all(vector[au] == 0.0 for au in AU_ORDER)
    sampler = find_entry(prompt, "KSampler")[1]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["cfg"], sampler["sampler_name"], sampler["scheduler"]) == \
        (7, 3, 5.5, "euler", "karras")
    assert [input_value(prompt, "EmptyLatentImage", k) for k in ("width", "height")] == [64, 48]
    assert input_value(prompt, "CheckpointLoaderSimple", "ckpt_name") == "other.safetensors"
    # the graph saved with the image holds the same values (it opens in the editor as rendered)
    assert workflow_to_prompt(wf, node_info) == prompt
    assert workflow_to_prompt(load("basic"), node_info) != prompt  # the shipped file is untouched


def test_workflow_specific_options(node_info):
    parse = headless.build_parser().parse_args
    prompt, _ = headless.apply_overrides(load("sweep"), "sweep", parse(["--sweep", "4", "--from", "1", "--to", "3",
                                                                        "--cells", "3"]), node_info, None)
    assert [input_value(prompt, "FineFaceAUSweep", k) for k in ("au", "start", "end", "cells")] == \
        ["AU4 Brow Lowerer", 1.0, 3.0, 3]
    prompt, _ = headless.apply_overrides(load("grid"), "grid", parse(["--aus", "neutral; happiness ;AU4@4"]), node_info, None)
    assert input_value(prompt, "Expressions", "spec") == "neutral\nhappiness\nAU4@4"
    prompt, _ = headless.apply_overrides(load("face_crop"), "face_crop", parse(["--image", "x.png", "--face", "2",
                                                                                "--crop-size", "256", "--denoise", "0.4"]),
                                         node_info, "x.png")
    crop = find_entry(prompt, "FineFaceFaceCrop")[1]["inputs"]
    assert (crop["which_face"], crop["index"], crop["size"]) == ("by index", 2, 256)
    assert input_value(prompt, "LoadImage", "image") == "x.png" and input_value(prompt, "KSampler", "denoise") == 0.4
    prompt, _ = headless.apply_overrides(load("animation"), "animation",
                                         parse(["--keyframes", "0: neutral; 8: happiness@4", "--frames", "8", "--easing",
                                                "hold", "--fps", "4"]), node_info, None)
    keys = find_entry(prompt, "Keyframes")[1]["inputs"]
    assert (keys["keyframes"], keys["frames"], keys["easing"]) == ("0: neutral\n8: happiness@4", 8, "hold")
    assert input_value(prompt, "Animation", "fps") == 4


def test_graph_edits_switch_on_the_noise_mask_and_swap_the_loader(node_info):
    parse = headless.build_parser().parse_args
    plain, _ = headless.apply_overrides(load("redraw"), "redraw", parse(["--image", "x.png"]), node_info, "x.png")
    assert not any(v["class_type"] == "SetLatentNoiseMask" for v in plain.values())
    masked, wf = headless.apply_overrides(load("redraw"), "redraw", parse(["--image", "x.png", "--mask-from-alpha",
                                                                       "--fineface", "fineface_sd21.safetensors"]),
                                          node_info, "x.png")
    mask_id, _ = find_entry(masked, "SetLatentNoiseMask")
    assert input_value(masked, "KSampler", "latent_image") == [mask_id, 0]
    assert next(n for n in wf["nodes"] if n["type"] == "SetLatentNoiseMask")["mode"] == 0
    loader_id, loader = find_entry(masked, FINEFACE_LOADER)
    assert loader["inputs"] == {"weights": "fineface_sd21.safetensors"}
    assert input_value(masked, "FineFaceApplyAdapter", "fineface") == [loader_id, 0]
    assert not any(v["class_type"] == "FineFaceReleaseLoader" for v in masked.values())


def test_set_input_finds_one_node_by_title_else_type_and_refuses_what_it_cannot_set():
    wf = sampler_graph([7, "fixed", 12, 6.5, "ddim", 0.75])
    wf["nodes"][0]["title"] = "Checkpoint"
    prompt = workflow_to_prompt(wf, INFO)
    set_input(prompt, "Checkpoint", "name", "a.safetensors")
    set_input(prompt, "Sampler", "denoise", 0.3)
    assert input_value(prompt, "Loader", "name") == "a.safetensors"  # by type too
    assert prompt["2"]["inputs"]["denoise"] == 0.3 and prompt["2"]["inputs"]["seed"] == 7
    with pytest.raises(WorkflowError, match="has no widget 'control_after_generate'; widgets: seed, steps"):
        set_input(prompt, "Sampler", "control_after_generate", "fixed")  # the editor's own widget is not sent
    with pytest.raises(WorkflowError, match="is connected to another node"):
        set_input(prompt, "Sampler", "latent", 1)
    with pytest.raises(WorkflowError, match="no node titled or of type 'Nothing'; nodes: Checkpoint, Latent, Sampler"):
        set_input(prompt, "Nothing", "steps", 1)
    prompt["9"] = dict(prompt["3"], _meta={"title": "Latent"})
    with pytest.raises(WorkflowError, match="2 nodes match 'Latent'"):
        set_input(prompt, "Latent", "width", 1)


def test_edit_graph_leaves_a_graph_alone_without_those_options():
    wf = load("redraw")
    before = json.dumps(wf)
    edit_graph(wf, SHIPPED["redraw"], {"mask_from_alpha": False, "fineface": None})
    assert json.dumps(wf) == before
    assert next(n for n in wf["nodes"] if n["type"] == "SetLatentNoiseMask")["mode"] == MODE_BYPASS


def test_a_new_headless_workflow_is_one_row(node_info, monkeypatch):
    """A row that takes --image (as the exact-edit workflow will): the option checks and the overrides follow it."""
    parse = headless.build_parser().parse_args
    monkeypatch.setitem(SHIPPED, "exact_edit", Shipped("fineface_expression_edit.json", "sd21", True,
                                                       {**SHIPPED["redraw"].sets, "seed": ("KSampler", "seed")}))
    args = parse(["--image", "x.png", "--seed", "3", "--aus", "happiness"])
    check_workflow_options(args, "exact_edit")  # --image belongs to it: no error
    prompt, _ = headless.apply_overrides(load("redraw"), "exact_edit", args, node_info, "x.png")
    assert input_value(prompt, "LoadImage", "image") == "x.png" and input_value(prompt, "KSampler", "seed") == 3
    with pytest.raises(UsageError, match="--image belongs to the edit, neutralize, edit_sweep, redraw, face_crop and exact_edit workflows"):
        check_workflow_options(parse(["--image", "x.png"]), "basic")
    with pytest.raises(UsageError, match="the exact_edit workflow needs --image"):
        check_workflow_options(parse([]), "exact_edit")


def test_a_prompt_the_editor_would_rewrite_is_refused_not_sent_as_it_is(node_info):
    """{a|b} in --prompt: the editor would pick one choice when queueing; the runner refuses it (exit status 2)."""
    args = headless.build_parser().parse_args(["--prompt", "a {red|blue} car"])
    with pytest.raises(WorkflowError, match=r"Positive prompt\) widget 'text'.*\{a\|b\} choices"):
        headless.apply_overrides(load("basic"), "basic", args, node_info, None)
