"""The shipped workflows as the tests read them: load one, and check a converted prompt against what ComfyUI, this
pack, ComfyUI_IPAdapter_plus and ComfyUI-AnimateDiff-Evolved declare (the other two packs parsed, not installed)."""
import json
import math

from workflows import SHIPPED, workflow_path

from tests.support import animatediff_nodes, ipadapter_nodes

SHIPPED_FILES = {name: workflow_path(name) for name in SHIPPED}
# Model widgets and the file each shipped workflow names (workflows/README.md tells where they come from).
MODEL_WIDGETS = {
    ("CheckpointLoaderSimple", "ckpt_name"), ("FineFaceModelLoader", "weights"), ("VAELoader", "vae_name"),
    ("FineFaceReleaseLoader", "au_encoder"), ("FineFaceReleaseLoader", "attn_processors"), ("FineFaceReleaseLoader", "lora"),
    ("IPAdapterModelLoader", "ipadapter_file"), ("CLIPVisionLoader", "clip_name"), ("ADE_AnimateDiffLoaderGen1", "model_name"),
}


def load_shipped(name):
    with open(SHIPPED_FILES[name], encoding="utf-8") as f:
        return json.load(f)


def photo_name(name) -> str:
    """The one input photo a shipped workflow's Load Image nodes name (a sample the pack ships in input/)."""
    names = {n["widgets_values"][0] for n in load_shipped(name)["nodes"] if n["type"] == "LoadImage"}
    assert len(names) == 1, (name, names)
    return names.pop()


def other_packs_nodes() -> dict:
    ipa, _ = ipadapter_nodes.load_ipadapter_nodes()
    ade, _ = animatediff_nodes.load_animatediff_nodes()
    return {**ade, **ipa}


def _declared(info, class_type):
    spec = info[class_type]
    return {**(spec.get("required") or {}), **(spec.get("optional") or {})}, set(spec.get("required") or {})


def check_prompt_against_declarations(prompt, info, outputs):
    """Every node type, input name, required input, fixed combo value and link type is one its node declares."""
    for node_id, entry in prompt.items():
        ctype = entry["class_type"]
        assert ctype in info, f"node {node_id}: {ctype} is not declared by ComfyUI, this pack or IPAdapter_plus"
        declared, required = _declared(info, ctype)
        given = set(entry["inputs"]) - {"upload"}  # the editor's upload button value, ignored by the server
        assert given <= set(declared), f"{ctype}: undeclared inputs {given - set(declared)}"
        assert required <= given, f"{ctype}: required inputs missing {required - given}"
        for name, value in entry["inputs"].items():
            if name == "upload":
                continue
            kind = declared[name][0]
            if isinstance(value, list):  # a link
                origin = prompt[value[0]]
                out_type = outputs[origin["class_type"]][value[1]]
                assert kind == out_type, f"{ctype}.{name} ({kind}) fed by {origin['class_type']} output {out_type}"
            elif isinstance(kind, ipadapter_nodes.FileList) or (isinstance(kind, list) and (ctype, name) in MODEL_WIDGETS):
                assert isinstance(value, str) and value, f"{ctype}.{name}: no file name"
            elif isinstance(kind, (list, tuple)) and ctype != "LoadImage":
                assert value in kind, f"{ctype}.{name} = {value!r} is not one of {kind}"
            elif kind in ("INT", "FLOAT"):
                opts = declared[name][1] if len(declared[name]) > 1 else {}
                assert isinstance(value, (int, float)) and not isinstance(value, bool)
                assert opts.get("min", -math.inf) <= value <= opts.get("max", math.inf), f"{ctype}.{name} = {value}"
            elif kind == "STRING":
                assert isinstance(value, str)
