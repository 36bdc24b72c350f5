"""ComfyUI editor workflows ("UI format") -> API prompts, as the editor's ``graphToPrompt`` does.

The editor saves a graph as ``{"nodes": [...], "links": [...], "version": 0.4, ...}``: every
node keeps its widget values as a bare list, ``widgets_values``, in the order the editor
created the widgets from the node's ``INPUT_TYPES``. ComfyUI's executor takes an API prompt,
``{node_id: {"class_type": ..., "inputs": {name: value or [origin_id, slot]}}}``. Turning
one into the other needs the node definitions, so :func:`workflow_to_prompt` takes
``node_info``: class name -> ``INPUT_TYPES()`` (or the server's ``/object_info`` entry).

This module imports nothing from ComfyUI; it runs anywhere. The rules follow the editor
shipped with ComfyUI in March 2024 (``web/scripts/app.js``, ``web/scripts/widgets.js``,
``web/extensions/core/*.js``) and, where the two differ, the 2025 front end
(``ComfyUI_frontend``: ``src/utils/executionUtil.ts``, ``ExecutableNodeDTO.resolveOutput``).
Each rule names its source below.
"""
from __future__ import annotations

import datetime as _dt
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

# LiteGraph node modes (LGraphEventMode): 0 always, 2 never ("muted"), 4 bypass.
MODE_MUTED = 2
MODE_BYPASS = 4

# Front-end-only nodes (``isVirtualNode`` in the editor): never sent to the server.
NOTE_TYPES = {"Note", "MarkdownNote"}
REROUTE = "Reroute"
PRIMITIVE = "PrimitiveNode"
VIRTUAL_TYPES = NOTE_TYPES | {REROUTE, PRIMITIVE}

# Input types the editor draws as widgets (ComfyWidgets in widgets.js); every other type
# is a connection. A list (or "COMBO" with options, 2025) is a drop-down.
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
# widgets.js: `"INT:seed": seedWidget, "INT:noise_seed": seedWidget` -- an INT named seed or
# noise_seed, or any INT whose options carry control_after_generate, gets a second widget
# ("control_after_generate": fixed / increment / decrement / randomize) right after it.
SEED_NAMES = {"seed", "noise_seed"}


class WorkflowError(ValueError):
    """The workflow cannot be converted (unknown node types, broken links, subgraphs...)."""


@dataclass(frozen=True)
class Widget:
    """One entry of a node's ``widgets_values``."""

    name: str  # the input name; for front-end-only widgets the editor's widget name
    kind: str  # INT, FLOAT, STRING, BOOLEAN, COMBO, IMAGEUPLOAD, or CONTROL / FILTER (not sent)
    options: Mapping[str, Any]
    values: tuple = ()  # combo options
    force_input: bool = False  # forceInput / defaultInput: a widget the editor shows as an input socket

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
        # false, and any widget with dynamicPrompts true, resolve {a|b} when queued.
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


def _widget_kind(name: str, kind, opts: Mapping) -> str | None:
    """app.js getWidgetType: a list is a COMBO; then `${type}:${name}`; then the type."""
    if isinstance(kind, (list, tuple)):
        return "COMBO"
    if kind == "COMBO" and "options" in opts:  # 2025 node schema: ("COMBO", {"options": [...]})
        return "COMBO"
    if kind in WIDGET_TYPES or kind == "IMAGEUPLOAD":
        return kind
    return None


def widget_layout(input_types: Mapping, include_force_input: bool = True) -> list[Widget]:
    """The widgets the editor creates for a node, i.e. the meaning of each ``widgets_values`` slot.

    ``include_force_input``: the 2024 editor creates a (hidden) widget for inputs with
    ``forceInput`` and turns it into a socket (widgetInputs.js onNodeCreated), so their
    values sit in ``widgets_values``; the 2025 front end makes them plain sockets.
    """
    widgets: list[Widget] = []
    for name, kind, opts in _ordered_inputs(input_types):
        wkind = _widget_kind(name, kind, opts)
        if wkind is None:
            continue
        force = bool(opts.get("forceInput") or opts.get("defaultInput"))
        if force and not include_force_input and opts.get("forceInput"):
            continue
        values = tuple(kind) if isinstance(kind, (list, tuple)) else tuple(opts.get("options", ()))
        widgets.append(Widget(name, wkind, opts, values, force))
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


def _layout_for(input_types: Mapping, values) -> list[Widget]:
    """Pick the layout matching the saved values (2024 vs 2025 handling of forceInput)."""
    with_force = widget_layout(input_types, include_force_input=True)
    if isinstance(values, Mapping):
        return with_force
    without = widget_layout(input_types, include_force_input=False)
    if len(without) != len(with_force) and len(values) == len(without):
        return without
    return with_force


def _widget_values(node: Mapping, layout: list[Widget]) -> dict[str, Any]:
    """Widget name -> value, as LGraphNode.configure assigns them (by index; missing ones keep
    their defaults, extra ones are dropped). A dict ``widgets_values`` is read by name."""
    saved = node.get("widgets_values")
    out = {}
    for i, w in enumerate(layout):
        if isinstance(saved, Mapping):
            out[w.name] = saved.get(w.name, w.default())
        elif isinstance(saved, list) and i < len(saved):
            out[w.name] = saved[i]
        else:
            out[w.name] = w.default()
    return out


# --------------------------------------------------------------------------------------
# Value serialization (widget.serializeValue)
# --------------------------------------------------------------------------------------

def strip_comments(text: str) -> str:
    """dynamicPrompts.js stripComments: removes /* block */ and // line comments."""
    return re.sub(r"/\*[\s\S]*?\*/|//.*", "", text)


def resolve_dynamic_prompt(text: str, rng: random.Random | None = None) -> str:
    """dynamicPrompts.js: strip comments, then replace each ``{a|b|c}`` with one random option
    (first ``{`` and first ``}`` each round; ``\\{`` / ``\\}`` escape one brace)."""
    rng = rng or random.Random()
    prompt = strip_comments(text)
    while "{" in prompt.replace("\\{", "", 1) and "}" in prompt.replace("\\}", "", 1):
        start = prompt.replace("\\{", "00", 1).index("{")
        end = prompt.replace("\\}", "00", 1).index("}")
        if end < start:
            break  # "} ... {": the editor's loop never ends here; leave the text as it is
        options = prompt[start + 1:end].split("|")
        prompt = prompt[:start] + options[rng.randrange(len(options))] + prompt[end + 1:]
    return prompt


_DATE_TOKEN = re.compile(r"d{1,2}|M{1,2}|h{1,2}|m{1,2}|s{1,2}|yyy?y?")


def _format_date(fmt: str, now: _dt.datetime) -> str:
    """utils.js formatDate: d, M, h, m, s (doubled = zero-padded), yy / yyyy."""
    parts = {"d": now.day, "M": now.month, "h": now.hour, "m": now.minute, "s": now.second}

    def sub(m):
        tok = m.group(0)
        if tok == "yy":
            return str(now.year)[2:]
        if tok == "yyyy":
            return str(now.year)
        if tok[0] in parts:
            return str(parts[tok[0]]).rjust(len(tok), "0")
        return tok

    return _DATE_TOKEN.sub(sub, fmt)


def apply_text_replacements(value: str, lookup: Callable[[str, str], Any], now: _dt.datetime | None = None) -> str:
    """utils.js applyTextReplacements: ``%date:yyyy-MM-dd%`` and ``%Node.widget%`` (the node
    found by its "Node name for S&R" property, else by title); unknown patterns stay."""

    def sub(m):
        text = m.group(1)
        split = text.split(".")
        if len(split) != 2:
            if split[0].startswith("date:"):
                return _format_date(split[0][5:], now or _dt.datetime.now())
            return m.group(0)
        found = lookup(split[0], split[1])
        if found is None:
            return m.group(0)
        return re.sub(r"[/\\]", "_", str(found))

    return re.sub(r"%([^%]+)%", sub, value)


# --------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    id: int
    origin_id: int
    origin_slot: int
    target_id: int
    target_slot: int
    type: Any


def _links(workflow: Mapping) -> dict[int, Link]:
    """``links``: ``[id, origin_id, origin_slot, target_id, target_slot, type]`` (version 0.4)
    or objects with those keys (the 2025 schema, version 1)."""
    out = {}
    for entry in workflow.get("links") or []:
        if entry is None:
            continue
        if isinstance(entry, Mapping):
            link = Link(entry["id"], entry["origin_id"], entry["origin_slot"], entry["target_id"],
                        entry["target_slot"], entry.get("type"))
        else:
            link = Link(*entry[:6])
        out[link.id] = link
    return out


def _check_supported(workflow: Mapping):
    if not isinstance(workflow, Mapping) or not isinstance(workflow.get("nodes"), list):
        raise WorkflowError("not an editor workflow: no 'nodes' list (an API prompt needs no conversion)")
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise WorkflowError("this workflow contains subgraphs; convert them back to nodes (Unpack Subgraph) first")
    groups = (workflow.get("extra") or {}).get("groupNodes")
    if groups:
        raise WorkflowError(f"this workflow contains group nodes ({', '.join(groups)}); convert them to nodes first")


def _input_type(node: Mapping, slot: int):
    inputs = node.get("inputs") or []
    return inputs[slot].get("type") if 0 <= slot < len(inputs) else None


def _compatible(a, b) -> bool:
    """LiteGraph.isValidConnection, simplified: equal, a wildcard, or comma-separated alternatives."""
    if a in ("*", "", None, 0) or b in ("*", "", None, 0):
        return True
    if a == b:
        return True
    sa, sb = {str(t).upper() for t in str(a).split(",")}, {str(t).upper() for t in str(b).split(",")}
    return bool(sa & sb)


class _Graph:
    def __init__(self, workflow: Mapping):
        _check_supported(workflow)
        self.nodes = {n["id"]: n for n in workflow["nodes"]}
        self.links = _links(workflow)

    def input_link(self, node: Mapping, slot: int) -> Link | None:
        inputs = node.get("inputs") or []
        if not 0 <= slot < len(inputs):
            return None
        link_id = inputs[slot].get("link")
        if link_id is None:
            return None
        link = self.links.get(link_id)
        if link is None:
            raise WorkflowError(f"node {node['id']} ({node.get('type')}) input {inputs[slot].get('name')!r}: link {link_id} is missing")
        return link

    def resolve(self, node: Mapping, slot: int) -> tuple[int, int] | None:
        """Where input ``slot`` of ``node`` really comes from, through Reroutes and bypassed nodes.

        app.js graphToPrompt ("Store all node links"): follow a virtual parent through its
        input (Reroute); through a bypassed parent (mode 4) follow the first of its inputs
        whose type matches the target input -- the same slot index first (2025:
        ExecutableNodeDTO #getBypassSlotIndex), then the first exact match. None: nothing to
        send (a PrimitiveNode, whose value went into the widget; an unconnected input).
        A link to a muted node is returned as is and dropped at the end, as the editor does.
        """
        want = _input_type(node, slot)
        link = self.input_link(node, slot)
        seen = set()
        while link is not None:
            if link.id in seen:
                raise WorkflowError(f"link cycle through link {link.id}")
            seen.add(link.id)
            parent = self.nodes.get(link.origin_id)
            if parent is None:
                return None
            ptype = parent.get("type")
            if ptype in VIRTUAL_TYPES:
                if ptype == PRIMITIVE or not parent.get("inputs"):
                    return None
                link = self.input_link(parent, link.origin_slot if link.origin_slot < len(parent["inputs"]) else 0)
                continue
            if parent.get("mode") == MODE_BYPASS:
                idx = self._bypass_slot(parent, link.origin_slot, want)
                if idx is None:
                    return None
                link = self.input_link(parent, idx)
                continue
            return (link.origin_id, link.origin_slot)
        return None

    @staticmethod
    def _bypass_slot(parent: Mapping, out_slot: int, want) -> int | None:
        inputs = parent.get("inputs") or []
        outputs = parent.get("outputs") or []
        out_type = outputs[out_slot].get("type") if 0 <= out_slot < len(outputs) else None
        if want in ("*", "", None):
            return out_slot if out_slot < len(inputs) else (0 if inputs else None)
        if out_slot < len(inputs) and _compatible(inputs[out_slot].get("type"), out_type) \
                and _compatible(inputs[out_slot].get("type"), want):
            return out_slot
        for i, inp in enumerate(inputs):
            if inp.get("type") == want:
                return i
        for i, inp in enumerate(inputs):
            if _compatible(inp.get("type"), out_type) and _compatible(inp.get("type"), want):
                return i
        return None

    def primitive_targets(self, primitive: Mapping) -> list[Link]:
        """widgetInputs.js PrimitiveNode.applyToGraph get_links: its output links, through Reroutes."""
        out, stack = [], []
        for output in primitive.get("outputs") or []:
            stack.extend(output.get("links") or [])
        while stack:
            link = self.links.get(stack.pop(0))
            if link is None:
                continue
            target = self.nodes.get(link.target_id)
            if target is not None and target.get("type") == REROUTE:
                for output in target.get("outputs") or []:
                    stack.extend(output.get("links") or [])
            elif target is not None:
                out.append(link)
        return out


def _title(node: Mapping) -> str:
    return node.get("title") or node.get("type", "")


def workflow_to_prompt(workflow: Mapping, node_info: Mapping, rng: random.Random | None = None,
                       now: _dt.datetime | None = None) -> dict:
    """Convert an editor workflow into an API prompt, as the editor does when you press Queue.

    ``node_info``: class name -> ``INPUT_TYPES()`` dict (``{"required": ..., "optional": ...}``)
    or the server's ``/object_info`` entries. ``rng`` resolves ``{a|b}`` dynamic prompts
    (random, as in the editor, unless given); ``now`` fills ``%date:...%`` in SaveImage prefixes.
    """
    graph = _Graph(workflow)
    nodes = graph.nodes

    live = [n for n in nodes.values() if n.get("type") not in VIRTUAL_TYPES
            and n.get("mode") not in (MODE_MUTED, MODE_BYPASS)]
    missing = sorted({n.get("type") for n in live if n.get("type") not in node_info})
    if missing:
        raise WorkflowError(
            "these node types are not installed (the editor would list them as missing): " + ", ".join(missing)
        )

    # Widget values of every node ComfyUI knows, by node id.
    values: dict[int, dict[str, Any]] = {}
    layouts: dict[int, list[Widget]] = {}
    for node in nodes.values():
        if node.get("type") in VIRTUAL_TYPES or node.get("type") not in node_info:
            continue
        layout = _layout_for(_input_types(node_info, node["type"]), node.get("widgets_values") or [])
        layouts[node["id"]] = layout
        values[node["id"]] = _widget_values(node, layout)

    # app.js graphToPrompt, first loop: virtual nodes applyToGraph -- a PrimitiveNode copies
    # its value (widgets_values[0]) into the widget of every input it feeds.
    for prim in nodes.values():
        if prim.get("type") != PRIMITIVE:
            continue
        saved = prim.get("widgets_values") or []
        if not saved:
            continue
        value = saved[0]
        if isinstance(value, str) and (prim.get("properties") or {}).get("Run widget replace on values"):
            value = apply_text_replacements(value, lambda n, w: _lookup(nodes, values, n, w), now)
        for link in graph.primitive_targets(prim):
            target = nodes[link.target_id]
            inputs = target.get("inputs") or []
            if not 0 <= link.target_slot < len(inputs) or link.target_id not in values:
                continue
            inp = inputs[link.target_slot]
            name = (inp.get("widget") or {}).get("name") or inp.get("name")
            if name in values[link.target_id]:
                values[link.target_id][name] = value

    prompt: dict[str, dict] = {}
    for node in sorted(live, key=lambda n: (n.get("order", 0), n["id"])):
        nid = node["id"]
        layout = layouts[nid]
        inputs: dict[str, Any] = {}
        for w in layout:
            if not w.serialize:
                continue
            v = values[nid][w.name]
            if w.dynamic_prompts and isinstance(v, str):
                v = resolve_dynamic_prompt(v, rng)
            elif w.name == "filename_prefix" and node["type"] == "SaveImage" and isinstance(v, str):
                # saveImageExtraOutput.js: SaveImage's prefix gets %...% replacements.
                v = apply_text_replacements(v, lambda n, wn: _lookup(nodes, values, n, wn), now)
            # 2025 executionUtil.ts: a list value is wrapped so it is not read as a link.
            inputs[w.name] = {"__value__": v} if isinstance(v, list) else v
        for slot, inp in enumerate(node.get("inputs") or []):
            if inp.get("link") is None:
                continue
            source = graph.resolve(node, slot)
            if source is not None:
                inputs[inp["name"]] = [str(source[0]), int(source[1])]
        prompt[str(nid)] = {"inputs": inputs, "class_type": node["type"], "_meta": {"title": _title(node)}}

    # "Remove inputs connected to removed nodes" (muted ones, or links into nothing).
    for entry in prompt.values():
        for name in list(entry["inputs"]):
            v = entry["inputs"][name]
            if isinstance(v, list) and len(v) == 2 and v[0] not in prompt:
                del entry["inputs"][name]
    return prompt


def _lookup(nodes: Mapping, values: Mapping, node_name: str, widget: str):
    """applyTextReplacements: the node with that "Node name for S&R" property, else that title."""
    matches = [n for n in nodes.values() if (n.get("properties") or {}).get("Node name for S&R") == node_name]
    if not matches:
        matches = [n for n in nodes.values() if n.get("title") == node_name]
    for n in matches[:1]:
        v = values.get(n["id"], {})
        if widget in v:
            return v[widget] if v[widget] is not None else ""
        if n.get("type") == PRIMITIVE and widget == "value" and n.get("widgets_values"):
            return n["widgets_values"][0]
    return None


# --------------------------------------------------------------------------------------
# Editing a workflow (what a user does in the editor), for the headless runner
# --------------------------------------------------------------------------------------

def find_nodes(workflow: Mapping, node_title_or_type: str) -> list[dict]:
    """Nodes whose title is ``node_title_or_type``; if none, nodes of that type."""
    nodes = [n for n in workflow["nodes"] if n.get("title") == node_title_or_type]
    return nodes or [n for n in workflow["nodes"] if n.get("type") == node_title_or_type]


def find_node(workflow: Mapping, node_title_or_type: str) -> dict:
    nodes = find_nodes(workflow, node_title_or_type)
    if not nodes:
        titles = sorted({_title(n) for n in workflow["nodes"]})
        raise WorkflowError(f"no node titled or of type {node_title_or_type!r}; nodes: {', '.join(titles)}")
    if len(nodes) > 1:
        raise WorkflowError(
            f"{len(nodes)} nodes match {node_title_or_type!r} (ids {[n['id'] for n in nodes]}); name one by its title"
        )
    return nodes[0]


def set_widget(workflow: dict, node_title_or_type: str, input_name: str, value, node_info: Mapping) -> dict:
    """Set a widget value in an editor workflow, in place, as typing it into the editor would.

    The node is found by title, else by type (it must be unique). If the widget was turned
    into an input fed by a PrimitiveNode, the primitive's value is set instead. Returns the
    node whose value changed.
    """
    node = find_node(workflow, node_title_or_type)
    if node.get("type") == PRIMITIVE:
        if input_name not in ("value", None):
            raise WorkflowError(f"a PrimitiveNode has one widget, 'value', not {input_name!r}")
        node.setdefault("widgets_values", [None])[0] = value
        return node
    if node.get("type") in VIRTUAL_TYPES:
        if node.get("type") in NOTE_TYPES and input_name in ("text", "", None):
            node["widgets_values"] = [value]
            return node
        raise WorkflowError(f"{_title(node)!r} is a {node.get('type')} node; it has no widget {input_name!r}")
    if node.get("type") not in node_info:
        raise WorkflowError(f"node type {node.get('type')!r} is not in node_info")

    linked, origin = _widget_source(workflow, node, input_name)
    if linked:
        if origin is not None and origin.get("type") == PRIMITIVE:
            origin.setdefault("widgets_values", [None])[0] = value
            return origin
        raise WorkflowError(f"{_title(node)!r} input {input_name!r} is connected to another node; "
                            "it takes its value from there")

    saved = node.get("widgets_values")
    layout = _layout_for(_input_types(node_info, node["type"]), saved if saved is not None else [])
    names = [w.name for w in layout if w.serialize]
    if input_name not in names:
        raise WorkflowError(f"{_title(node)!r} ({node['type']}) has no widget {input_name!r}; widgets: {', '.join(names)}")
    if isinstance(saved, Mapping):
        saved[input_name] = value
        return node
    index = [x.name for x in layout].index(input_name)
    saved = list(saved or [])
    while len(saved) <= index:
        saved.append(layout[len(saved)].default())
    saved[index] = value
    node["widgets_values"] = saved
    return node


def _widget_source(workflow: Mapping, node: Mapping, input_name: str):
    """(whether the widget is fed by a link, the node at the far end past Reroutes or None)."""
    graph = _Graph(workflow)
    for inp in node.get("inputs") or []:
        if inp.get("name") == input_name and inp.get("link") is not None:
            link = graph.links.get(inp["link"])
            origin = graph.nodes.get(link.origin_id) if link else None
            while origin is not None and origin.get("type") == REROUTE:
                up = graph.input_link(origin, 0)
                origin = graph.nodes.get(up.origin_id) if up else None
            return True, origin
    return False, None


def widget_values(node: Mapping, node_info: Mapping) -> dict[str, Any]:
    """A node's widget values by input name, as the editor holds them (front-end-only ones included)."""
    if node.get("type") in NOTE_TYPES:
        return {"text": (node.get("widgets_values") or [""])[0]}
    if node.get("type") == PRIMITIVE:
        return {"value": (node.get("widgets_values") or [None])[0]}
    layout = _layout_for(_input_types(node_info, node["type"]), node.get("widgets_values") or [])
    return _widget_values(node, layout)


def get_widget(workflow: Mapping, node_title_or_type: str, input_name: str, node_info: Mapping):
    """The value a widget holds in the workflow (the PrimitiveNode's value if one feeds it)."""
    node = find_node(workflow, node_title_or_type)
    linked, origin = _widget_source(workflow, node, input_name)
    if linked:
        if origin is not None and origin.get("type") == PRIMITIVE:
            return (origin.get("widgets_values") or [None])[0]
        raise WorkflowError(f"{_title(node)!r} input {input_name!r} is connected to another node")
    values = widget_values(node, node_info)
    if input_name not in values:
        raise WorkflowError(f"{_title(node)!r} ({node['type']}) has no widget {input_name!r}")
    return values[input_name]


def node_info_from_classes(mappings: Mapping[str, Any], class_types: Iterable[str] | None = None) -> dict:
    """node_info from ComfyUI's ``nodes.NODE_CLASS_MAPPINGS`` (``{name: cls.INPUT_TYPES()}``)."""
    names = list(class_types) if class_types is not None else list(mappings)
    return {name: mappings[name].INPUT_TYPES() for name in names if name in mappings}


def used_node_types(workflow: Mapping) -> set[str]:
    """Node types a workflow needs from the server (front-end-only nodes left out)."""
    return {n["type"] for n in workflow["nodes"] if n.get("type") not in VIRTUAL_TYPES}
