"""Every node of the pack, created fresh at its default size, shows its input names and values whole, in a real
browser on a real ComfyUI server (issue 21, item 10).

On the canvas: the texts the front end draws in each widget's row (fillText caught for one frame; their widths by
the canvas's own measureText in the font it draws with) lie inside the node, do not run into each other, and are
not shortened by the front end (an ellipsis, or fillText's maxWidth). The rows of input and output names above
the widgets are held to the same. As Vue nodes: no element of the node with text of its own (the widgets' labels)
runs past itself or past an ancestor that clips it, and the AU Vector's face canvas (every canvas of a node) lies
inside the node's box. The title and a control's shown value (a select's chosen item, which the front end
truncates with an ellipsis at any width) are not held to it there; the Vue node is as wide as the node was made.

Front ends: those of tests/support/frontend_cases.py. Every row of nodes.NODES is checked, so a node added there is
too. Skipped, saying what to install, only where no Chromium or selenium is there.
"""
from __future__ import annotations

import ast
import os
import time

import pytest

from tests.support.frontend_cases import frontend_cases, served_page

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = open(os.path.join(ROOT, "tests", "support", "layout_page.js"), encoding="utf-8").read()
SLACK = 0.5  # canvas pixels: text edges are fractional
ELLIPSIS = ("\u2026", "...")


def node_table() -> list[tuple[str, str]]:
    """(class id, display name) of every row of nodes.NODES, read from the source: collecting this file must not
    import ComfyUI (the browser's server does), and ComfyUI's own ``nodes`` module shadows the pack's."""
    with open(os.path.join(ROOT, "nodes", "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    (table,) = [n.value for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "NODES"]
    return [(row.elts[0].value, row.elts[2].value) for row in table.elts]


NODES = node_table()
# Cuts found and not yet fixed, each with why; any other cut fails.
KNOWN_VUE_CUTS: dict[str, str] = {}


@pytest.fixture(scope="module", params=frontend_cases())
def page(request):
    for driver, _ in served_page(request.param, size=(1400, 1000), script=HELPERS):
        driver.vue_nodes = request.param[1].get("Comfy.VueNodes.Enabled", False)
        yield driver


def settled(driver, script: str, *args, timeout: float = 15.0):
    """The script's answer once two reads 0.3 s apart agree (Vue nodes lay out over many frames when busy)."""
    last, deadline = None, time.time() + timeout
    while time.time() < deadline:
        now = driver.execute_script(script, *args)
        if now is not None and now == last:
            return now
        last = now
        time.sleep(0.3)
    return last


def waited(driver, script: str, timeout: float = 15.0) -> bool:
    """Whether the script answered true within the timeout."""
    deadline = time.time() + timeout
    while not driver.execute_script(script):
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


def fresh(driver, class_id: str) -> tuple[int, float]:
    """A fresh node of the class alone on the graph: its id, and the width it was made with. The graph is emptied
    and its Vue nodes gone from the page first: graph.clear() restarts the ids at 1, and a node added in the same
    tick as the clear takes over the Vue component of the old node 1, still mounted, which keeps the old node's
    width (1.35.9 sets a Vue node's width on mount only) and writes it back to the new node. A user never adds a
    node that way (a new node gets an unused id); the test did, and saw one node's width on the next."""
    driver.execute_script("app.graph.clear()")
    assert waited(driver, "return !document.querySelector('[data-node-id]')"), \
        "the Vue nodes stayed on the page 15 s after the graph was cleared"
    # the width as made, read before the front end's next tick can change it
    node_id, width = driver.execute_script(
        "const id = window.ffLabels.fresh(arguments[0]); return [id, app.graph.getNodeById(id).size[0]]", class_id)
    return node_id, width


def row_faults(texts: list[dict], box: list[float], own: bool = False) -> list[str]:
    """What is cut among the texts of one row: shortened (an ellipsis, or squeezed by fillText's maxWidth), outside
    the node, or running into the next text on its line. The pack's own text widgets (``fineface_*``: the face's
    caption, the text after a run) may squeeze a line to the node's width; they are held to the node's box."""
    x0, x1 = box[0], box[0] + box[2]
    faults = [f"{t['text']!r} at {t['left']:.0f}..{t['right']:.0f} outside the node {x0:.0f}..{x1:.0f}"
              for t in texts if t["left"] < x0 - SLACK or t["right"] > x1 + SLACK]
    if own:
        return faults
    faults += [f"{t['text']!r} shortened" for t in texts
               if t["squeezed"] or any(t["text"].endswith(e) for e in ELLIPSIS)]
    lines: dict[int, list[dict]] = {}
    for t in texts:
        lines.setdefault(round(t["y"]), []).append(t)
    for line in lines.values():
        ordered = sorted(line, key=lambda t: t["left"])
        faults += [f"{a['text']!r} (to {a['right']:.0f}) runs into {b['text']!r} (from {b['left']:.0f})"
                   for a, b in zip(ordered, ordered[1:]) if a["right"] > b["left"] + SLACK]
    return faults


def canvas_faults(drawn: dict) -> list[str]:
    x, y, _, h = drawn["box"]
    body = [t for t in drawn["texts"] if y <= t["y"] <= y + h]  # the title bar (above pos) is the front end's
    faults, claimed = [], set()
    for row in drawn["rows"]:
        texts = [t for t in body if row["y"] <= t["y"] <= row["y"] + row["h"]]
        claimed.update(id(t) for t in texts)
        own = row["name"].startswith("fineface_")
        faults += [f"widget {row['label']}: {f}" for f in row_faults(texts, drawn["box"], own)]
    slots = [t for t in body if id(t) not in claimed]  # the input and output names above the widgets
    faults += [f"slot names: {f}" for f in row_faults(slots, drawn["box"])]
    return faults


@pytest.mark.parametrize("class_id,display", NODES, ids=[c for c, _ in NODES])
def test_fresh_node_shows_its_labels_whole(page, class_id, display):
    node_id, width = fresh(page, class_id)
    if page.vue_nodes:
        vue = settled(page, "return window.ffLabels.vueCuts(arguments[0])", node_id)
        assert vue is not None, f"{display}: no Vue node on the page 15 s after it was made"
        assert vue["box"][2] >= width - 1, \
            f"{display} as a Vue node is {vue['box'][2]} px wide, narrower than the {width:.0f} it was made with"
        assert not vue["outside"], \
            f"{display} as a Vue node: canvases {vue['outside']} drawn outside the node's box {vue['box']}"
        cuts = [c for c in vue["cuts"] if c["text"] not in KNOWN_VUE_CUTS]
        assert not cuts, f"{display} as a Vue node at its default size {vue['box']}: cut text {cuts}"
        if vue["cuts"]:
            pytest.xfail("; ".join(f"{c['text']!r} cut: {KNOWN_VUE_CUTS[c['text']]}" for c in vue["cuts"]))
        return
    drawn = page.execute_script("return window.ffLabels.canvasTexts(arguments[0])", node_id)
    assert drawn["texts"], f"{display}: the canvas drew no text for the node (the probe caught nothing)"
    faults = canvas_faults(drawn)
    assert not faults, f"{display} on the canvas at its default width {drawn['box'][2]:.0f}: {faults}"
