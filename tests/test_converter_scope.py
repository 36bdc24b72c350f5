"""What workflows.api_format converts and what it refuses: it is sized to the shipped graphs, and whatever else an
editor graph can hold is refused with a message that names it, never converted differently from the editor.
(That it converts every shipped graph as the front end does is tests/test_web_au_face.py's
test_every_shipped_workflow_loads_with_its_nodes_links_and_values.)"""
import pytest

from tests.support.editor_graphs import INFO, graph, inp, node, out, sampler_graph
from workflows.api_format import MODE_BYPASS, WorkflowError, check_prompt_text, with_prompt_values, workflow_to_prompt
from workflows.overrides import set_input


def test_notes_are_not_sent_and_object_info_entries_serve_as_node_definitions():
    wf = sampler_graph([7, "fixed", 12, 6.5, "ddim", 0.75],
                       extra_nodes=[node(6, "Note", values=["read me"]), node(7, "MarkdownNote", values=["# read me"])])
    object_info = {k: {"input": v, "output": [], "name": k} for k, v in INFO.items()}
    p = workflow_to_prompt(wf, object_info)
    assert set(p) == {"1", "2", "3"}
    assert p["2"]["inputs"] == {"seed": 7, "steps": 12, "cfg": 6.5, "sampler_name": "ddim", "denoise": 0.75,
                                "model": ["1", 0], "latent": ["3", 0]}
    assert p == workflow_to_prompt(wf, INFO)


def test_primitive_nodes_and_reroutes_are_refused_naming_the_node_and_the_way_out():
    inputs = [inp("model", "MODEL", 1), inp("latent", "LATENT", 2), inp("seed", "INT", 4, widget=True)]
    prim = node(4, "PrimitiveNode", outputs=[out("INT", "INT", [4])], values=[1234, "fixed"], title="Seed")
    wf = sampler_graph([7, "fixed", 12, 6.5, "euler", 1.0], inputs, [prim], [(4, 4, 0, 2, 2, "INT")])
    with pytest.raises(WorkflowError, match=r"node 4 \(Seed\) is a PrimitiveNode.*Convert input to widget"):
        workflow_to_prompt(wf, INFO)
    reroute = node(5, "Reroute", inputs=[inp("", "*", 1)], outputs=[out("", "MODEL", [6])])
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0], [inp("model", "MODEL", 6), inp("latent", "LATENT", 2)], [reroute])
    with pytest.raises(WorkflowError, match=r"node 5 \(Reroute\) is a Reroute.*connect the two nodes directly"):
        workflow_to_prompt(wf, INFO)


@pytest.mark.parametrize("text", ["a {red|blue} car", "a car // a comment", "a car /* block */", "open } brace"])
def test_text_the_editor_would_rewrite_when_queued_is_refused(text):
    """dynamicPrompts.js resolves {a|b} and strips comments in multiline prompts; the converter does neither."""
    wf = graph(node(1, "Text", outputs=[out("LATENT", "LATENT")], values=[text, "{single line is sent as is}"]))
    with pytest.raises(WorkflowError, match=r"node 1 \(Text\) widget 'text'.*write the text out"):
        workflow_to_prompt(wf, INFO)
    wf["nodes"][0]["widgets_values"][0] = "a red car, http: fine"
    assert workflow_to_prompt(wf, INFO)["1"]["inputs"] == {"text": "a red car, http: fine",
                                                           "label": "{single line is sent as is}"}


def test_filename_prefix_replacements_are_refused():
    text = node(1, "Text", outputs=[out("LATENT", "LATENT", [1])], values=["a car", "x"])
    save = node(2, "Save", inputs=[inp("images", "LATENT", 1)], values=["FineFace/%date:yyyy-MM-dd%"])
    wf = graph(text, save, links=[(1, 1, 0, 2, 0, "LATENT")])
    with pytest.raises(WorkflowError, match=r"widget 'filename_prefix'.*%date:...%"):
        workflow_to_prompt(wf, INFO)
    save["widgets_values"] = ["FineFace/%Text.label%"]
    with pytest.raises(WorkflowError, match="%Node.widget%"):
        workflow_to_prompt(wf, INFO)
    save["widgets_values"] = ["FineFace/100%"]  # no pattern the editor fills in
    assert workflow_to_prompt(wf, INFO)["2"]["inputs"]["filename_prefix"] == "FineFace/100%"


def test_other_editor_formats_are_refused():
    info = {"Node": {"required": {"a": ("INT", {"forceInput": True}), "b": ("FLOAT", {"default": 2.0})}}}
    with pytest.raises(WorkflowError, match=r"node 1 \(Node\): input 'a' .*forceInput"):
        workflow_to_prompt(graph(node(1, "Node", inputs=[inp("a", "INT", None, widget=True)], values=[5, 0.5])), info)
    wf = sampler_graph({"seed": 3, "steps": 4, "cfg": 5.0, "sampler_name": "ddim", "denoise": 0.2})
    with pytest.raises(WorkflowError, match=r"node 2 \(Sampler\): widgets_values is not a list"):
        workflow_to_prompt(wf, INFO)
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0])
    wf["links"] = [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), link))
                   for link in wf["links"]]
    with pytest.raises(WorkflowError, match="links are objects"):
        workflow_to_prompt(wf, INFO)
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", [1.0]])
    with pytest.raises(WorkflowError, match=r"widget 'denoise': a list or dict value"):
        workflow_to_prompt(wf, INFO)


def test_a_loop_of_bypassed_nodes_is_refused_not_followed_forever():
    a = node(4, "Mask", inputs=[inp("samples", "LATENT", 4), inp("mask", "MASK")], outputs=[out("LATENT", "LATENT", [3, 4])],
             mode=MODE_BYPASS)
    wf = sampler_graph([1, "fixed", 2, 3.0, "euler", 1.0], [inp("model", "MODEL", 1), inp("latent", "LATENT", 3)], [a])
    wf["links"] = [[1, 1, 0, 2, 0, "MODEL"], [3, 4, 0, 2, 1, "LATENT"], [4, 4, 0, 4, 0, "LATENT"]]
    with pytest.raises(WorkflowError, match="loop of bypassed nodes"):
        workflow_to_prompt(wf, INFO)


def test_values_set_on_the_prompt_meet_the_same_rules_and_go_back_into_the_graph():
    wf = graph(node(1, "Text", outputs=[out("LATENT", "LATENT")], values=["a car", "x"], title="Caption"),
               node(2, "Loader", outputs=[out("MODEL", "MODEL")], values=["b.safetensors"]))
    prompt = workflow_to_prompt(wf, INFO)
    set_input(prompt, "Caption", "text", "a {red|blue} car")
    with pytest.raises(WorkflowError, match=r"node 1 \(Caption\) widget 'text'"):
        check_prompt_text(prompt, INFO)
    set_input(prompt, "Caption", "text", "a red car")
    set_input(prompt, "Loader", "name", "a.safetensors")
    check_prompt_text(prompt, INFO)
    saved = with_prompt_values(wf, prompt, INFO)
    assert [n["widgets_values"] for n in saved["nodes"]] == [["a red car", "x"], ["a.safetensors"]]
    assert [n["widgets_values"] for n in wf["nodes"]] == [["a car", "x"], ["b.safetensors"]]  # a copy: the file's graph kept
    assert workflow_to_prompt(saved, INFO) == prompt
