"""What the pack's nodes say after a run, on the nodes themselves, in a real browser on a real ComfyUI server: a
graph queued from the page reads astronaut.png (scikit-image's photograph) with a LibreFace-layout estimator (random
weights, tests/support/libreface_files.py): AU From Image shows the AUs it read and the faces found, Face Crop the
faces found, and the AU Vector whose base AU From Image feeds draws the face of base + its own sliders and says so.

Front ends: those of tests/support/frontend_cases.py, on the canvas and as Vue nodes. Skipped, saying what to
install, only where no Chromium or selenium is there.
"""
from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.support import browser
from tests.support.frontend_cases import frontend_cases, served_page, pack_errors
from tests.support.libreface_files import write_libreface_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GRAPH = """
for (const node of [...app.graph._nodes]) app.graph.remove(node);
const add = (type, x, y) => { const n = LiteGraph.createNode(type); n.pos = [x, y]; app.graph.add(n); return n; };
const photo = add("LoadImage", 0, 0), read = add("FineFaceAUFromImage", 400, 0), vector = add("FineFaceAUVector", 800, 0);
const crop = add("FineFaceFaceCrop", 400, 600), shown = add("PreviewImage", 800, 900), cropped = add("PreviewImage", 800, 1300);
photo.widgets.find((w) => w.name === "image").value = "astronaut.png";
read.widgets.find((w) => w.name === "estimator").value = "resnet.pt";
vector.widgets.find((w) => w.name === "AU12").value = 1;
photo.connect(0, read, 0);
photo.connect(0, crop, 0);
read.connect(read.findOutputSlot("aus"), vector, vector.findInputSlot("base"));
read.connect(read.findOutputSlot("face"), shown, 0);
crop.connect(0, cropped, 0);
return [read.id, vector.id, crop.id];
"""


@pytest.fixture(scope="module", params=frontend_cases())
def page(request):
    def prepare(server):
        write_libreface_checkpoint(os.path.join(server.folder, "models", "libreface", "resnet.pt"))
        import skimage.data
        shutil.copy(os.path.join(os.path.dirname(skimage.data.__file__), "astronaut.png"),
                    os.path.join(server.folder, "input", "astronaut.png"))

    yield from served_page(request.param, prepare=prepare)


def history_ui(driver, node_id):
    """The node's "ui" part as the server recorded it in /history for the last prompt (once it has finished)."""
    return browser.wait_for(driver, """
        return fetch(new URL('history', window.location.href)).then(r => r.json()).then((h) => {
            const last = Object.values(h).pop();
            return last?.outputs?.[String(arguments[0])] ?? null;
        });""", 120, node_id)


def test_copy_expression_shows_what_it_read(page):
    driver, server = page
    read, vector, crop = driver.execute_script(GRAPH)
    shown = lambda node: driver.execute_script(  # noqa: E731
        "const n = app.graph.getNodeById(arguments[0]); app.canvas.draw(true, true);"
        "const w = n.widgets.find((w) => w.name === 'fineface_text'); w.triggerDraw?.(); return w.shown", node)
    assert shown(read) == ["After a run: the AUs read and the faces found."]
    driver.execute_script("return app.queuePrompt(0, 1)")
    text = browser.wait_for(driver, "return app.graph.getNodeById(arguments[0]).widgets"
                                    ".find((w) => w.name === 'fineface_text').text", 120, read)
    assert text, f"AU From Image showed nothing after the run; server log:\n{server.log_text()[-3000:]}"

    ui = history_ui(driver, read)
    label, found = ui["fineface_text"][0], ui["fineface_text"][1]
    assert text == ui["fineface_text"] and label.startswith("AU") and "face" in found.lower()
    assert shown(read)[:2] == [label, found] or " ".join(shown(read)).startswith(label)
    crop_text = browser.wait_for(driver, "return app.graph.getNodeById(arguments[0]).widgets"
                                         ".find((w) => w.name === 'fineface_text').text", 30, crop)
    assert crop_text == history_ui(driver, crop)["fineface_text"] and "face" in " ".join(crop_text).lower()

    # the AU Vector fed by it: the face is base + sliders, and says where the base came from
    reading = ui["fineface_aus"][0]
    driver.execute_script("app.canvas.ds.scale = 1; app.canvas.ds.offset = [-700, 40]; app.canvas.draw(true, true);"
                          "app.graph.getNodeById(arguments[0]).widgets.find((w) => w.name === 'fineface_face')"
                          ".triggerDraw?.()", vector)
    caption = browser.wait_for(driver, "const f = app.graph.getNodeById(arguments[0]).widgets"
                                       ".find((w) => w.name === 'fineface_face').fineface;"
                                       "return f.answeredKey === f.key && f.lines.join(' ')", 10, vector)
    assert caption.startswith("with the base AU From Image read in the last run"), caption
    drawn = re.search(r"AU12 Lip Corner Puller (-?[\d.]+)", caption)
    assert drawn and abs(float(drawn.group(1)) - (reading[6] + 1)) < 0.011, (caption, reading)
    # unlinked, the base is no longer drawn
    driver.execute_script("const v = app.graph.getNodeById(arguments[0]); v.disconnectInput(v.findInputSlot('base'));"
                          "app.canvas.draw(true, true); v.widgets.find((w) => w.name === 'fineface_face').triggerDraw?.()",
                          vector)
    caption = driver.execute_script("const v = app.graph.getNodeById(arguments[0]); app.canvas.draw(true, true);"
                                    "v.widgets.find((w) => w.name === 'fineface_face').triggerDraw?.();"
                                    "return v.widgets.find((w) => w.name === 'fineface_face').fineface.lines.join(' ')",
                                    vector)
    assert caption.startswith("AU12 Lip Corner Puller 1"), caption
    assert pack_errors(driver) == []
