"""Every shipped workflow opens readable, in a real browser on a real ComfyUI server: at the view the file saves
(extra.ds), the "Start here" note is on screen whole and clear of the front end's bars, so is the first row of
nodes as far as the screen reaches, and no node's box overlaps another's -- the boxes as the front end lays them
out (AU Vector with its face and caption, the nodes' text boxes), on the canvas and as Vue nodes.

Front ends: those of tests/support/frontend_cases.py. Every row of workflows.SHIPPED is checked, so a workflow
added there is too. Nodes of packs this server lacks (IP-Adapter, AnimateDiff) are drawn by the front end as
placeholders of their saved size and are checked as such. Skipped, saying what to install, only where no
Chromium or selenium is there.
"""
from __future__ import annotations

import json
import time
import os

import pytest

from tests.support import browser
from tests.support.frontend_cases import frontend_cases, served_page
from workflows import SHIPPED, workflow_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = open(os.path.join(ROOT, "tests", "support", "layout_page.js"), encoding="utf-8").read()
# What a new user opens the file with: the dialogs about missing models and packs closed (they cover the page
# until closed, and the view under them is the same). Front end 1.58 shows missing models as an overlay at the
# top right ("4 issues found", 418 x 121 px under the action bar) until closed, under a setting of its own.
DIALOGS_OFF = {"Comfy.Workflow.ShowMissingModelsWarning": False, "Comfy.Workflow.ShowMissingNodesWarning": False,
               "Comfy.ErrorSystem.ShowMissingModels": False, "Comfy.Workflow.ShowMissingMediaWarning": False}
WIDTH, HEIGHT = 1400, 1000  # the browser window; the page is a little smaller
EDGE = 4  # page pixels inside a box's edge where a point is probed


@pytest.fixture(scope="module", params=frontend_cases())
def page(request):
    for driver, _ in served_page(request.param, DIALOGS_OFF, (WIDTH, HEIGHT), HELPERS):
        yield driver


def opened(driver, name: str) -> list[dict]:
    """Load the shipped workflow as the front end opens a file; its node boxes once the faces have drawn."""
    with open(workflow_path(name), encoding="utf-8") as f:
        workflow = json.load(f)
    driver.execute_script("app.graph.clear(); return Promise.resolve(app.loadGraphData(arguments[0])).then(() => true)",
                          workflow)
    # the 2024 front end's dialog about missing node types has no setting: closed, as the user closes it
    driver.execute_script("app.ui?.dialog?.close?.()")
    assert browser.wait_for(driver, "return window.ffLayout.settled()", 20), f"{name}: the AU faces did not draw"
    # Vue nodes lay out over the next frames (on a busy machine, many): the boxes once two reads 0.3 s apart agree
    boxes, deadline = None, time.time() + 15
    while time.time() < deadline:
        driver.execute_script("window.ffLayout.settled()")
        now = driver.execute_script("return window.ffLayout.boxes()")
        if now == boxes:
            break
        boxes = now
        time.sleep(0.3)
    return boxes


def overlap(a, b) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return min(w, h) if w > 0 and h > 0 else 0.0


def edge_points(box, per_edge=6):
    """Points just inside the box's four edges."""
    x, y, w, h = box
    xs = [x + EDGE + (w - 2 * EDGE) * i / (per_edge - 1) for i in range(per_edge)]
    ys = [y + EDGE + (h - 2 * EDGE) * i / (per_edge - 1) for i in range(per_edge)]
    return ([[px, y + EDGE] for px in xs] + [[px, y + h - EDGE] for px in xs]
            + [[x + EDGE, py] for py in ys] + [[x + w - EDGE, py] for py in ys])


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_workflow_opens_readable(page, name):
    boxes = opened(page, name)
    width, height = page.execute_script("return [window.innerWidth, window.innerHeight]")

    clashes = [(a["title"], b["title"], round(overlap(a["box"], b["box"])))
               for i, a in enumerate(boxes) for b in boxes[i + 1:] if overlap(a["box"], b["box"]) > 1]
    assert not clashes, f"{name}: overlapping nodes (title, title, px): {clashes}"

    (note,) = [b for b in boxes if b["title"] == "Start here"]
    x, y, w, h = note["box"]
    assert x >= 0 and y >= 0 and x + w <= width and y + h <= height, \
        f"{name}: the Start here note {note['box']} is not all inside the page {width} x {height}"
    hidden = [(p, seen) for p, seen in zip(edge_points(note["box"]), page.execute_script(
        "return window.ffLayout.visible(arguments[0], arguments[1])", note["id"], edge_points(note["box"]))) if seen is not True]
    assert not hidden, f"{name}: the Start here note is covered at {hidden}"

    # the first row: the nodes level with the note, their title bars as far as the page shows them
    first_row = [b for b in boxes if abs(b["box"][1] - y) < 4 and b is not note]
    assert first_row, f"{name}: no node beside the note"
    for node in first_row:
        bx, by, bw, _ = node["box"]
        points = [[px, by + EDGE] for px in (bx + EDGE, bx + bw / 2, bx + bw - EDGE) if px < width]
        if not points:
            continue
        seen = page.execute_script("return window.ffLayout.visible(arguments[0], arguments[1])", node["id"], points)
        assert all(s is True for s in seen), f"{name}: the top of {node['title'] or node['type']} is covered at {points} ({seen})"
