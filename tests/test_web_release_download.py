"""The "Download weights" button on FineFace Release Loader, clicked in a real browser on a real ComfyUI server,
with HF_ENDPOINT pointing at a hub stand-in on 127.0.0.1: the files arrive in models/fineface/, the node shows the
progress and the outcome, and lists the files afterwards with the workflow's values unchanged.

Front ends: those tests/test_web_au_face.py runs (the tree's own: the 2024 tree's legacy LiteGraph front end in CI,
or a newer tree's pinned comfyui-frontend-package; more named in $FINEFACE_FRONTENDS), with nodes drawn on the
canvas and as Vue components. Skipped, saying what to install, only where no Chromium or selenium is there.
"""
from __future__ import annotations

import json
import os

import pytest

from fineface_core.weightfiles.releases import RELEASES
from tests.support import browser
from tests.support.comfy_env import comfy_path
from tests.support.comfy_server import ComfyServer
from tests.support.hub_server import HubServer, release_bytes
from tests.support.frontend_cases import frontend_cases, pack_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = "Tvaranka/fineface"
NODE = "FineFaceReleaseLoader"

HELPERS = """
window.ffDl = {
    node: (id) => app.graph.getNodeById(id),
    loaders: () => app.graph._nodes.filter((n) => n.type === "FineFaceReleaseLoader").map((n) => n.id),
    button: (id) => window.ffDl.node(id).widgets.find((w) => w.name === "fineface_download"),
    status: (id) => window.ffDl.node(id).widgets.find((w) => w.name === "fineface_download_status"),
    draw() {
        app.canvas.setDirty(true, true);
        app.canvas.draw(true, true);
        for (const n of app.graph._nodes) n.widgets?.find((w) => w.name === "fineface_download_status")?.triggerDraw?.(); // Vue nodes
    },
    // Put the node at a known place at scale 1 (clear of the new front ends' bars), draw it, and give the
    // button's centre in page pixels.
    place(id) {
        const node = this.node(id);
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [300 - node.pos[0], 250 - node.pos[1]];
        this.draw();
    },
    buttonCentre(id) {
        const node = this.node(id);
        this.place(id);
        const b = this.button(id), rect = app.canvas.canvas.getBoundingClientRect();
        const x = node.pos[0] + node.size[0] / 2 + app.canvas.ds.offset[0];
        const y = node.pos[1] + (b.last_y ?? b.y) + LiteGraph.NODE_WIDGET_HEIGHT / 2 + app.canvas.ds.offset[1];
        return [Math.round(rect.left + x), Math.round(rect.top + y)];
    },
    said(id) { this.place(id); const s = this.status(id); return [s.status && s.status.state, s.shown || ""]; },
};
"""


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module", params=frontend_cases())
def page(request, hub):
    why = browser.missing()
    if why:
        pytest.skip(f"no browser for the front-end test: {why}")
    frontend, settings = request.param
    old = os.environ.get("HF_ENDPOINT")
    os.environ["HF_ENDPOINT"] = hub.url  # the server inherits it
    try:
        server = ComfyServer(comfy_path(), frontend, settings).start()
    finally:
        if old is None:
            del os.environ["HF_ENDPOINT"]
        else:
            os.environ["HF_ENDPOINT"] = old
    driver = browser.start_chromium()
    try:
        browser.open_comfy(driver, server.url)
        driver.execute_script(HELPERS)
        driver.server = server
        yield driver
    finally:
        driver.quit()
        server.stop()


def js(driver, script, *args):
    return driver.execute_script(f"const D = window.ffDl; {script}", *args)


def click_button(page, node):
    """Click the node's button as a user does: the DOM button where nodes are Vue components, else on the canvas."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    x, y = js(page, "return D.buttonCentre(arguments[0])", node)
    label = js(page, "return D.button(arguments[0]).label", node)
    dom = [b for b in page.find_elements("xpath", f"//button[normalize-space(.)='{label}']") if b.is_displayed()]
    if dom:
        dom[0].click()
        return
    actions = ActionBuilder(page)
    actions.pointer_action.move_to_location(x, y)
    actions.pointer_action.click()
    actions.perform()


def load(page, workflow):
    """Open a workflow as a user does; the new front ends' missing-models dialog is closed, as a user closes it
    (it offers the checkpoint and the LoRA, and refuses the .ckpt files)."""
    from selenium.webdriver.common.keys import Keys

    page.execute_script("app.graph.clear(); return Promise.resolve(app.loadGraphData(arguments[0])).then(() => true)",
                        workflow)
    if page.find_elements("css selector", ".p-dialog"):
        page.find_element("tag name", "body").send_keys(Keys.ESCAPE)
        browser.wait_for(page, "return document.querySelectorAll('.p-dialog').length === 0", 5)


def test_the_button_downloads_the_release_with_progress_on_the_node(page, hub):
    files = release_bytes("sd21")
    for name, body in files.items():
        hub.put(REPO, name, body)
    big = RELEASES["sd21"].processors_file
    hub.files[f"/{REPO}/resolve/main/{big}"].pause = (3 << 20, 3.0)  # the hub stalls 3 s after 3 MB of it
    with open(os.path.join(ROOT, "workflows", "fineface_basic.json"), encoding="utf-8") as f:
        workflow = json.load(f)
    saved = next(n for n in workflow["nodes"] if n["type"] == NODE)["widgets_values"]
    load(page, workflow)
    (node,) = js(page, "return D.loaders()")
    assert js(page, "return D.button(arguments[0]).label", node) == "Download weights"
    assert js(page, "return D.said(arguments[0])", node) == [
        None, f'Not in models/fineface: {", ".join(saved)}. "Download weights" fetches the SD 2.1 release.']
    folder = os.path.join(page.server.folder, "models", "fineface")
    assert not os.path.exists(folder) or os.listdir(folder) == []

    click_button(page, node)
    running = browser.wait_for(page, "const s = window.ffDl.said(arguments[0]);"
                                     "return s[0] === 'running' && /\\d%/.test(s[1]) && s[1]", 15, node)
    assert running and running.startswith(f"{big}: ") and "(file 2 of 3)" in running, running

    done = browser.wait_for(page, "const s = window.ffDl.said(arguments[0]); return s[0] === 'done' && s[1]", 30, node)
    assert done and "downloaded " + ", ".join(files) in done, done
    for name, body in files.items():
        with open(os.path.join(folder, name), "rb") as f:
            assert f.read() == body
    # the node's menus list the files now, and the workflow's names are kept as they were
    menus = js(page, "return D.node(arguments[0]).widgets.filter((w) => w.type === 'combo').map((w) => w.options.values)", node)
    assert [m[0] for m in menus] == saved
    out = js(page, "return app.graph.serialize()")
    values = next(n for n in out["nodes"] if n["type"] == NODE)["widgets_values"]
    assert values[:3] == saved and all(v is None for v in values[3:]), "the button saved a value into the workflow"


def test_a_failed_download_says_why_on_the_node(page, hub):
    sd15 = RELEASES["sd15"]
    hub.files.pop(f"/{REPO}/resolve/main/{sd15.encoder_file}", None)  # the hub does not have it
    node = js(page, """
        for (const n of [...app.graph._nodes]) app.graph.remove(n);
        const node = LiteGraph.createNode("FineFaceReleaseLoader");
        node.pos = [100, 100];
        app.graph.add(node);
        const w = node.widgets.find((w) => w.name === "au_encoder");
        w.value = arguments[0];
        w.callback(w.value, app.canvas, node);
        return node.id;""", sd15.encoder_file)
    assert js(page, "return D.said(arguments[0])", node) == [
        None, f'Not in models/fineface: {sd15.encoder_file}, attn_processors. "Download weights" fetches the SD 1.5 release.']
    click_button(page, node)
    failed = browser.wait_for(page, "const s = window.ffDl.said(arguments[0]); return s[0] === 'failed' && s[1]", 30, node)
    assert failed and f"{sd15.encoder_file} answered HTTP 404" in failed and "nothing was written" in failed, failed
    assert not os.path.exists(os.path.join(page.server.folder, "models", "fineface", sd15.encoder_file))


def test_au_from_image_says_where_the_libreface_model_comes_from(page):
    node = js(page, """
        for (const n of [...app.graph._nodes]) app.graph.remove(n);
        const node = LiteGraph.createNode("FineFaceAUFromImage");
        node.pos = [100, 100];
        app.graph.add(node);
        return node.id;""")
    assert js(page, "return D.button(arguments[0]).label", node) == "Where to get the LibreFace model"
    click_button(page, node)
    said = browser.wait_for(page, "const s = window.ffDl.said(arguments[0]); return s[0] === 'elsewhere' && s[1]", 15, node)
    assert said and "models/libreface/" in said and "non-commercial" in said and "ihp-lab/LibreFace" in said, said
    assert not os.path.exists(os.path.join(page.server.folder, "models", "libreface"))  # nothing was fetched
    out = js(page, "return app.graph.serialize()")
    values = next(n for n in out["nodes"] if n["type"] == "FineFaceAUFromImage")["widgets_values"]
    assert values[0] == "resnet.pt" and all(v is None for v in values[5:]), values  # the button saves nothing
    assert pack_errors(page) == []  # nothing the pack's page code did went wrong in this module's tests
