"""ComfyUI editor workflows ("UI format") -> API prompts, as the editor's ``graphToPrompt`` does.

The editor saves a graph as ``{"nodes": [...], "links": [...], "version": 0.4, ...}``: every
node keeps its widget values as a bare list, ``widgets_values``, in the order the editor
created the widgets from the node's ``INPUT_TYPES``. ComfyUI's executor takes an API prompt,
``{node_id: {"class_type": ..., "inputs": {name: value or [origin_id, slot]}}}``. Turning
one into the other needs the node definitions, so :func:`workflow_to_prompt` takes
``node_info``: class name -> ``INPUT_TYPES()`` (or the server's ``/object_info`` entry).
ComfyUI has no converter on the server side, so the headless runner owns this one.

It is sized to the graphs this pack ships: nodes with widget values, notes, links, a bypassed
node, LoadImage's upload button, a seed's control widget. What else an editor graph can hold
is refused with a :class:`WorkflowError` that names it (subgraphs, group nodes, PrimitiveNodes,
Reroutes, widgets turned into inputs that take no link (forceInput), ``{a|b}`` choices and
comments in prompts, ``%date%`` / ``%Node.widget%`` in file name prefixes, the version-1
link objects, widget values saved as a dict). tests/test_web_au_face.py checks the result for
every shipped graph against the front end's own ``app.graphToPrompt()``.

Imports nothing from ComfyUI. The rules follow the 2024 editor (``web/scripts/app.js``,
``widgets.js``, ``extensions/core/uploadImage.js``); each names its source.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

# LiteGraph node modes (LGraphEventMode): 0 always, 2 never ("muted"), 4 bypass.
MODE_MUTED = 2
MODE_BYPASS = 4

# Front-end-only nodes the shipped graphs hold (``isVirtualNode``): never sent to the server.
NOTE_TYPES = {"Note", "MarkdownNote"}
# Front-end-only nodes that change what is sent; no shipped graph has one.
REFUSED_TYPES = {
    "PrimitiveNode": "connect the value's widget back (right-click > Convert input to widget) and delete the primitive",
    "Reroute": "connect the two nodes directly and delete the Reroute",
}

# Input types the editor draws as widgets (ComfyWidgets in widgets.js); every other type
# is a connection. A list (or "COMBO" with options, 2025) is a drop-down.
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
# widgets.js: `"INT:seed": seedWidget, "INT:noise_seed": seedWidget` -- an INT named seed or
# noise_seed, or any INT whose options carry control_after_generate, gets a second widget
# ("control_after_generate": fixed / increment / decrement / randomize) right after it.
SEED_NAMES = {"seed", "noise_seed"}
# dynamicPrompts.js resolves {a|b|c} and strips // and /* */ comments when a prompt is queued.
DYNAMIC_SYNTAX = re.compile(r"[{}]|//|/\*")
# utils.js applyTextReplacements (SaveImage's filename_prefix): %date:...% and %Node.widget%.
TEXT_REPLACEMENT = re.compile(r"%[^%]*(date:|\.)[^%]*%")


class WorkflowError(ValueError):
    """The workflow cannot be converted (unknown node types, broken links, subgraphs...)."""


@dataclass(frozen=True)
class Widget:
    """One entry of a node's ``widgets_values``."""

    name: str  # the input name; for the seed's control widget the editor's widget name
    kind: str  # INT, FLOAT, STRING, BOOLEAN, COMBO, IMAGEUPLOAD, or CONTROL / FILTER (not sent)
    options: Mapping[str, Any]
    values: tuple = ()  # combo options

    @property
    def serialize(self) -> bool:
        # widgets.js addValueControlWidgets: the control and filter widgets have `serialize: false`
        return self.kind not in ("CONTROL", "FILTER")

    def default(self):
        """The value a freshly created widget holds (widgets.js getNumberDefaults / STRING / COMBO / BOOLEAN)."""
        if self.kind in ("INT", "FLOAT"):
            return self.options.get("default", 0)
        if self.kind == "STRING":
            return self.options.get("default") or ""
        if self.kind == "BOOLEAN":
            return bool(self.options.get("default", False))
        if self.kind == "COMBO":
            return self.options.get("default") or (self.values[0] if self.values else None)
        if self.kind == "IMAGEUPLOAD":
            return "image"  # the upload button's value
        if self.kind == "CONTROL":
            return "randomize"  # addValueControlWidget(s)' default
        return ""

    @property
    def dynamic_prompts(self) -> bool:
        # dynamicPrompts.js: multiline STRING widgets ("customtext") unless dynamicPrompts is
        # false, and any widget with dynamicPrompts true.
        if self.kind != "STRING":
            return False
        if self.options.get("multiline"):
            return self.options.get("dynamicPrompts") is not False
        return bool(self.options.get("dynamicPrompts"))


# --------------------------------------------------------------------------------------
# Node definitions -> widget layout
# --------------------------------------------------------------------------------------

def _input_types(node_info: Mapping, class_type: str) -> dict:
    """The INPUT_TYPES dict of a class; accepts ``/object_info`` entries (with "input") too."""
    info = node_info[class_type]
    if isinstance(info, Mapping) and "input" in info and "required" not in info:
        return info["input"]
    return info


def _spec(entry) -> tuple[Any, Mapping]:
    if isinstance(entry, (list, tuple)):
        kind = entry[0] if entry else None
        opts = entry[1] if len(entry) > 1 and isinstance(entry[1], Mapping) else {}
        return kind, opts
    return entry, {}


def _ordered_inputs(input_types: Mapping) -> list[tuple[str, Any, Mapping]]:
    """(name, type, options) in the editor's order.

    app.js registerNodeDef: ``inputs = Object.assign({}, required, optional)`` -- required
    first, then optional. uploadImage.js (beforeRegisterNodeDef) appends ``upload:
    ["IMAGEUPLOAD"]`` to ``required`` when ``required.image`` has ``image_upload: true``,
    so the upload button comes after every required input and before the optional ones.
    """
    required = dict(input_types.get("required") or {})
    optional = dict(input_types.get("optional") or {})
    image = required.get("image")
    if image is not None and _spec(image)[1].get("image_upload") is True:
        required["upload"] = ("IMAGEUPLOAD",)
    merged = dict(required)
    merged.update(optional)  # as Object.assign: a repeated key keeps its first position
    return [(name, *_spec(entry)) for name, entry in merged.items()]


def _widget_kind(kind, opts: Mapping) -> str | None:
    """app.js getWidgetType: a list is a COMBO; then the type."""
    if isinstance(kind, (list, tuple)):
        return "COMBO"
    if kind == "COMBO" and "options" in opts:  # 2025 node schema: ("COMBO", {"options": [...]})
        return "COMBO"
    if kind in WIDGET_TYPES or kind == "IMAGEUPLOAD":
        return kind
    return None


def widget_layout(input_types: Mapping) -> list[Widget]:
    """The widgets the editor creates for a node, i.e. the meaning of each ``widgets_values`` slot."""
    widgets: list[Widget] = []
    for name, kind, opts in _ordered_inputs(input_types):
        wkind = _widget_kind(kind, opts)
        if wkind is None:
            continue
        if opts.get("forceInput") or opts.get("defaultInput"):
            # the 2024 editor keeps a hidden widget (and a value) for it, the 2025 front end none
            raise WorkflowError(f"input {name!r} is a widget shown as an input (forceInput), which the editors "
                                "save differently; workflows.api_format does not convert such nodes")
        values = tuple(kind) if isinstance(kind, (list, tuple)) else tuple(opts.get("options", ()))
        widgets.append(Widget(name, wkind, opts, values))
        control = opts.get("control_after_generate")
        if wkind == "INT" and (name in SEED_NAMES or control):
            # widgets.js seedWidget -> addValueControlWidget(..., "randomize", ...): one combo,
            # named control_after_generate (or the option's string), not serialized.
            cname = control if isinstance(control, str) else "control_after_generate"
            widgets.append(Widget(cname, "CONTROL", {}))
        elif wkind == "COMBO" and control:
            # widgets.js COMBO -> addValueControlWidgets(node, widget, undefined, undefined, inputData):
            # a control combo plus a filter-list text widget, neither serialized.
            widgets.append(Widget("control_after_generate", "CONTROL", {}))
            widgets.append(Widget("control_filter_list", "FILTER", {}))
    return widgets


def _layout(node: Mapping, node_info: Mapping) -> list[Widget]:
    try:
        return widget_layout(_input_types(node_info, node["type"]))
    except WorkflowError as e:
        raise WorkflowError(f"node {node['id']} ({_title(node)}): {e}") from None


def widget_values(node: Mapping, node_info: Mapping) -> dict[str, Any]:
    """A node's widget values by name, as LGraphNode.configure assigns them: by index; missing
    ones keep their defaults, extra ones are dropped (the control widgets' values included)."""
    saved = node.get("widgets_values")
    if saved is None:
        saved = []
    if not isinstance(saved, list):
        raise WorkflowError(f"node {node['id']} ({_title(node)}): widgets_values is not a list (a custom "
                            "front-end widget's format); workflows.api_format reads lists only")
    layout = _layout(node, node_info)
    return {w.name: saved[i] if i < len(saved) else w.default() for i, w in enumerate(layout)}


# --------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------

def _title(node: Mapping) -> str:
    return node.get("title") or node.get("type", "")


def _check_supported(workflow: Mapping):
    if not isinstance(workflow, Mapping) or not isinstance(workflow.get("nodes"), list):
        raise WorkflowError("not an editor workflow: no 'nodes' list (an API prompt needs no conversion)")
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise WorkflowError("this workflow contains subgraphs; convert them back to nodes (Unpack Subgraph) first")
    groups = (workflow.get("extra") or {}).get("groupNodes")
    if groups:
        raise WorkflowError(f"this workflow contains group nodes ({', '.join(groups)}); convert them to nodes first")
    for node in workflow["nodes"]:
        if node.get("type") in REFUSED_TYPES:
            raise WorkflowError(f"node {node.get('id')} ({_title(node)}) is a {node['type']}, which no shipped workflow "
                                f"uses and workflows.api_format does not convert: {REFUSED_TYPES[node['type']]}")
    if any(isinstance(link, Mapping) for link in workflow.get("links") or []):
        raise WorkflowError("this workflow's links are objects (the editor's version-1 schema); workflows.api_format "
                            "reads the version-0.4 lists the editor saves for graphs without subgraphs")


def _links(workflow: Mapping) -> dict[int, tuple]:
    """``links``: ``[id, origin_id, origin_slot, target_id, target_slot, type]``, by id."""
    return {link[0]: tuple(link[:6]) for link in workflow.get("links") or [] if link is not None}


def _input_link(nodes: Mapping, links: Mapping, node: Mapping, slot) -> tuple | None:
    inputs = node.get("inputs") or []
    if not isinstance(slot, int) or not 0 <= slot < len(inputs) or inputs[slot].get("link") is None:
        return None
    link = links.get(inputs[slot]["link"])
    if link is None:
        raise WorkflowError(f"node {node['id']} ({_title(node)}) input {inputs[slot].get('name')!r}: "
                            f"link {inputs[slot]['link']} is missing")
    return link


def _source(nodes: Mapping, links: Mapping, node: Mapping, slot: int) -> tuple[int, int] | None:
    """Where input ``slot`` of ``node`` comes from, through bypassed nodes; None if nothing is sent.

    app.js graphToPrompt ("Store all node links"): through a bypassed parent (mode 4) follow
    its input at the link's origin slot if that input's type is the target input's, else its
    first input of that type; none: the input stays unconnected. A link to a muted node is
    dropped at the end, as the editor does.
    """
    want = (node.get("inputs") or [])[slot].get("type")
    link = _input_link(nodes, links, node, slot)
    for _ in range(len(nodes) + 1):
        if link is None:
            return None
        parent = nodes.get(link[1])
        if parent is None or parent.get("type") in NOTE_TYPES:
            return None
        if parent.get("mode") != MODE_BYPASS:
            return link[1], link[2]
        inputs = parent.get("inputs") or []
        order = [link[2]] + list(range(len(inputs)))
        slot_in = next((i for i in order if 0 <= i < len(inputs) and inputs[i].get("type") == want), None)
        link = _input_link(nodes, links, parent, slot_in)
    raise WorkflowError(f"node {node['id']} ({_title(node)}): its input {slot} goes round a loop of bypassed nodes")


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------

def _check_value(node: Mapping, widget: Widget, value):
    """Values the editor would change when it queues the prompt, refused rather than sent as saved."""
    where = f"node {node['id']} ({_title(node)}) widget {widget.name!r}"
    if widget.dynamic_prompts and isinstance(value, str) and DYNAMIC_SYNTAX.search(value):
        raise WorkflowError(f"{where}: the editor resolves {{a|b}} choices and strips // and /* */ comments in this "
                            "text when it queues the prompt; workflows.api_format does not: write the text out")
    if widget.name == "filename_prefix" and isinstance(value, str) and TEXT_REPLACEMENT.search(value):
        raise WorkflowError(f"{where}: the editor fills in %date:...% and %Node.widget% in file name prefixes; "
                            "workflows.api_format does not: write the prefix out")
    if isinstance(value, (list, dict)):
        raise WorkflowError(f"{where}: a list or dict value, which no shipped workflow has; workflows.api_format "
                            "does not convert it")


def workflow_to_prompt(workflow: Mapping, node_info: Mapping) -> dict:
    """Convert an editor workflow into an API prompt, as the editor does when you press Queue.

    ``node_info``: class name -> ``INPUT_TYPES()`` dict (``{"required": ..., "optional": ...}``)
    or the server's ``/object_info`` entries. ``_meta.title`` is the node's title, else its type.
    """
    _check_supported(workflow)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = _links(workflow)
    live = [n for n in nodes.values() if n.get("type") not in NOTE_TYPES and n.get("mode") not in (MODE_MUTED, MODE_BYPASS)]
    missing = sorted({n.get("type") for n in live if n.get("type") not in node_info})
    if missing:
        raise WorkflowError(
            "these node types are not installed (the editor would list them as missing): " + ", ".join(missing)
        )

    prompt: dict[str, dict] = {}
    for node in live:
        values = widget_values(node, node_info)
        inputs: dict[str, Any] = {}
        for w in _layout(node, node_info):
            if w.serialize:
                _check_value(node, w, values[w.name])
                inputs[w.name] = values[w.name]
        for slot, inp in enumerate(node.get("inputs") or []):
            source = _source(nodes, links, node, slot)
            if source is not None:  # a link wins over a widget of the same name (a widget turned into an input)
                inputs[inp["name"]] = [str(source[0]), int(source[1])]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"], "_meta": {"title": _title(node)}}

    # "Remove inputs connected to removed nodes" (muted ones).
    for entry in prompt.values():
        for name, v in list(entry["inputs"].items()):
            if isinstance(v, list) and v[0] not in prompt:
                del entry["inputs"][name]
    return prompt


def check_prompt_text(prompt: Mapping, node_info: Mapping):
    """The rules :func:`workflow_to_prompt` applies to saved values, for values set on a prompt afterwards
    (the headless runner's --prompt): raises WorkflowError naming the node and input."""
    for nid, entry in prompt.items():
        node = {"id": nid, "type": entry["class_type"], "title": entry.get("_meta", {}).get("title")}
        for w in _layout(node, node_info):
            if w.serialize and w.name in entry["inputs"]:
                _check_value(node, w, entry["inputs"][w.name])


def with_prompt_values(workflow: Mapping, prompt: Mapping, node_info: Mapping) -> dict:
    """A copy of the editor workflow whose widgets hold the prompt's values (the values set on the prompt
    after conversion), so that an image saved with it opens in the editor as it was rendered."""
    out = dict(workflow, nodes=[dict(n) for n in workflow["nodes"]])
    for node in out["nodes"]:
        entry = prompt.get(str(node["id"]))
        if entry is None or entry["class_type"] != node.get("type"):
            continue
        values = widget_values(node, node_info)
        for name, value in entry["inputs"].items():
            if name in values and not isinstance(value, list):
                values[name] = value
        node["widgets_values"] = list(values.values())
    return out


def node_info_from_classes(mappings: Mapping[str, Any], class_types: Iterable[str] | None = None) -> dict:
    """node_info from ComfyUI's ``nodes.NODE_CLASS_MAPPINGS`` (``{name: cls.INPUT_TYPES()}``)."""
    names = list(class_types) if class_types is not None else list(mappings)
    return {name: mappings[name].INPUT_TYPES() for name in names if name in mappings}


def used_node_types(workflow: Mapping) -> set[str]:
    """Node types a workflow needs from the server (notes left out)."""
    return {n["type"] for n in workflow["nodes"] if n.get("type") not in NOTE_TYPES}
