"""The headless runner's options, set on a converted API prompt by node title and input name.

Which option sets which node's input in which workflow is the table ``workflows.SHIPPED``; here is
how an option's value becomes input values where that is more than the value itself (``--aus`` also
zeroes the AU Vector's sliders, ``--face`` also picks "by index" ...), and the two changes that are
made on the editor graph before conversion because they change what is sent: a bypassed node
switched on (``enables``) and ``--fineface``, which swaps the release loader for FineFace Model Loader.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from fineface_core.aus import AU_ORDER

from . import Shipped
from .api_format import MODE_BYPASS, WorkflowError
from .keyframes_cli import keyframe_lines
from .run_checks import grid_specs, sweep_choice

RELEASE_LOADER, FINEFACE_LOADER = "FineFaceReleaseLoader", "FineFaceModelLoader"


def _aus(inp: str, spec: str) -> dict:
    # the sliders and preset add to the spec: zeroed, so the expression is the spec alone; the grid's
    # cells are one spec a line
    return {**{au: 0.0 for au in AU_ORDER}, "preset": "none", inp: "\n".join(grid_specs(spec))}


# option -> (input name, option value) -> {input: value}; any other option sets its one input to its value
VALUES: dict[str, Callable[[str, Any], dict]] = {
    "aus": _aus,
    "sweep": lambda inp, au: {inp: sweep_choice(au)},
    "face": lambda inp, index: {"which_face": "by index", inp: index},
    "keyframes": lambda inp, keyframes: {inp: keyframe_lines(keyframes)},
}


def find_entry(prompt: Mapping, title_or_type: str) -> tuple[str, dict]:
    """The one prompt node titled ``title_or_type``, else the one of that type: (id, entry)."""
    found = [k for k, v in prompt.items() if v.get("_meta", {}).get("title") == title_or_type] or \
            [k for k, v in prompt.items() if v["class_type"] == title_or_type]
    if not found:
        titles = sorted({v.get("_meta", {}).get("title") or v["class_type"] for v in prompt.values()})
        raise WorkflowError(f"no node titled or of type {title_or_type!r}; nodes: {', '.join(titles)}")
    if len(found) > 1:
        raise WorkflowError(f"{len(found)} nodes match {title_or_type!r} (ids {', '.join(found)}); name one by its title")
    return found[0], prompt[found[0]]


def set_input(prompt: dict, title_or_type: str, name: str, value) -> dict:
    """Set a widget input of a prompt node, in place; refuses an input the node does not have or one that a
    link feeds. Returns the node's entry."""
    _, entry = find_entry(prompt, title_or_type)
    inputs = entry["inputs"]
    if name not in inputs:
        widgets = [k for k, v in inputs.items() if not isinstance(v, list)]
        raise WorkflowError(f"{title_or_type!r} ({entry['class_type']}) has no widget {name!r}; widgets: {', '.join(widgets)}")
    if isinstance(inputs[name], list):
        raise WorkflowError(f"{title_or_type!r} input {name!r} is connected to another node; it takes its value from there")
    inputs[name] = value
    return entry


def input_value(prompt: Mapping, title_or_type: str, name: str):
    """A prompt node's input value (a link is ``[origin id, slot]``)."""
    _, entry = find_entry(prompt, title_or_type)
    if name not in entry["inputs"]:
        raise WorkflowError(f"{title_or_type!r} ({entry['class_type']}) has no input {name!r}")
    return entry["inputs"][name]


def find_node(workflow: Mapping, title_or_type: str) -> dict:
    """The one editor-graph node titled ``title_or_type``, else the one of that type."""
    nodes = [n for n in workflow["nodes"] if n.get("title") == title_or_type] or \
            [n for n in workflow["nodes"] if n.get("type") == title_or_type]
    if len(nodes) != 1:
        raise WorkflowError(f"{len(nodes)} nodes titled or of type {title_or_type!r} in the workflow; expected one")
    return nodes[0]


def edit_graph(workflow: dict, row: Shipped, options: Mapping[str, Any]):
    """What changes which nodes are sent, on the editor graph (in place): the bypassed nodes the options
    switch on, and --fineface's loader (the shipped graphs load the release's own files; a converted file
    or a release folder goes through FineFace Model Loader instead, which has the same outputs)."""
    for option, title in row.enables.items():
        if options.get(option):
            node = find_node(workflow, title)
            if node.get("mode") == MODE_BYPASS:
                node["mode"] = 0
    weights = options.get("fineface")
    if weights is not None:
        node = find_node(workflow, RELEASE_LOADER)
        node.update(type=FINEFACE_LOADER, properties={"Node name for S&R": FINEFACE_LOADER}, widgets_values=[weights])


def set_options(prompt: dict, row: Shipped, options: Mapping[str, Any]):
    """Every option given (not None) that the workflow's row names, set on the converted prompt (and on the
    inputs that take the same value, ``also_sets``)."""
    for option, (title, name) in row.sets.items():
        value = options.get(option)
        if value is None:
            continue
        for inp, v in VALUES.get(option, lambda i, x: {i: x})(name, value).items():
            set_input(prompt, title, inp, v)
        if option in row.also_sets:
            set_input(prompt, *row.also_sets[option], value)
