"""The face on the AU Vector node, in a real browser against a real ComfyUI server with the pack installed.

Front ends tested: the one the ComfyUI tree under test serves by itself (the 2024 tree's own LiteGraph front end;
for a newer tree the comfyui-frontend-package version its requirements pin, when that is installed), and every
front-end package folder named in $FINEFACE_FRONTENDS (os.pathsep-separated ``.../comfyui_frontend_package/static``
folders, e.g. the newest from the registry), which a newer tree serves with --front-end-root. The 2024 server
is paired with its own front end only (tests/support/frontend_cases.py says why). The new front ends run twice: drawing nodes on
the graph's canvas (their default) and as Vue components (their Vue nodes setting).
Skipped, saying what to install, only where no Chromium or selenium is there.
"""
from __future__ import annotations

import json
import os
import statistics

import pytest

from fineface_core.aus import parse_aus
from fineface_core.errors import AUSpecError
from tests.support import browser
from tests.support.frontend_cases import frontend_cases, served_page, pack_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE_HELPERS = open(os.path.join(ROOT, "tests", "support", "face_page.js"), encoding="utf-8").read()
N_WIDGETS = 14  # AU1..AU26, preset, spec: what a saved workflow holds for the node


@pytest.fixture(scope="module", params=frontend_cases())
def page(request):
    for driver, _ in served_page(request.param, script=PAGE_HELPERS):
        yield driver


def js(driver, script, *args):
    return driver.execute_script(f"const T = window.ffTest; {script}", *args)


def answered(driver, node_id, timeout=10.0):
    """Wait until the face has the server's answer for the node's current state; that answer."""
    js(driver, "T.draw()")
    answer = browser.wait_for(driver, "const f = window.ffTest.face(window.ffTest.node(arguments[0]));"
                                      "return f && f.answeredKey === f.key && f.answer", timeout, node_id)
    js(driver, "T.draw()")
    return answer


def changed(a, b) -> int:
    assert len(a) == len(b) and a, "the region's pixels could not be read"
    return sum(x != y for x, y in zip(a, b))


def test_face_appears_and_follows_the_sliders(page):
    node = js(page, "return T.add()")
    js(page, "T.show(arguments[0])", node)
    assert answered(page, node)["error"] is None
    labels = js(page, "return T.node(arguments[0]).widgets.map(w => w.label || null)", node)
    assert labels[6] == "AU12 Lip Corner Puller" and labels[0] == "AU1 Inner Brow Raiser"
    mouth0, brows0 = js(page, "return [T.pixels(arguments[0], 'mouth'), T.pixels(arguments[0], 'brows')]", node)
    js(page, "T.set(arguments[0], 'AU12', 5)", node)
    mouth5, brows5 = js(page, "return [T.pixels(arguments[0], 'mouth'), T.pixels(arguments[0], 'brows')]", node)
    assert changed(mouth0, mouth5) > 50, "AU12 = 5 did not move the mouth"
    assert changed(brows0, brows5) == 0, "AU12 moved the brows"
    caption = js(page, "return T.face(T.node(arguments[0])).lines.join(' ')", node)
    assert "AU12 Lip Corner Puller 5" in caption
    js(page, "T.set(arguments[0], 'AU12', 8)", node)
    assert "(extrapolated)" in js(page, "return T.face(T.node(arguments[0])).lines.join(' ')", node)
    assert pack_errors(page) == []


def test_hovering_a_region_names_its_aus(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    node = js(page, "return T.add()")
    js(page, "T.show(arguments[0])", node)
    answered(page, node)
    for region, expected in (("mouth", "mouth: AU12 Lip Corner Puller, AU15 Lip Corner Depressor, AU20 Lip Stretcher"),
                             ("brows", "brows: AU1 Inner Brow Raiser, AU2 Outer Brow Raiser, AU4 Brow Lowerer")):
        x, y = js(page, "return T.regionCentre(arguments[0], arguments[1])", node, region)
        actions = ActionBuilder(page)
        actions.pointer_action.move_to_location(x, y)
        actions.perform()
        assert browser.wait_for(page, "return window.ffTest.face(window.ffTest.node(arguments[0])).hover", 5, node) == region
        js(page, "T.draw()")
        assert " ".join(js(page, "return T.face(T.node(arguments[0])).hoverLines", node)).startswith(expected)
    ActionChains(page).reset_actions()


def test_preset_change_redraws_from_the_server(page):
    node = js(page, "return T.add()")
    js(page, "T.show(arguments[0])", node)
    answered(page, node)
    mouth0 = js(page, "return T.pixels(arguments[0], 'mouth')", node)
    js(page, "T.set(arguments[0], 'preset', 'happiness')", node)
    answer = answered(page, node)
    assert answer["base"][0] == parse_aus("happiness").tolist()
    assert changed(mouth0, js(page, "return T.pixels(arguments[0], 'mouth')", node)) > 50
    assert "AU6 Cheek Raiser 3" in js(page, "return T.face(T.node(arguments[0])).lines.join(' ')", node)
    assert pack_errors(page) == []


def test_refused_spec_shows_the_servers_message(page):
    node = js(page, "return T.add()")
    js(page, "T.show(arguments[0])", node)
    # typed into the spec box, as a user does: the face follows without any other event
    box = js(page, "const w = T.node(arguments[0]).widgets.find(w => w.name === 'spec');"  # Vue nodes: their own
                   "return document.querySelector(`[data-node-id='${arguments[0]}'] textarea`) || w.inputEl || w.element", node)
    box.click()
    box.send_keys("AU7@3")
    assert browser.wait_for(page, "return window.ffTest.face(window.ffTest.node(arguments[0])).answer?.error", 10, node)
    with pytest.raises(AUSpecError) as refused:
        parse_aus("AU7@3")
    assert answered(page, node)["error"] == str(refused.value)
    shown = js(page, "return T.face(T.node(arguments[0])).lines.join(' ')", node)
    assert shown.startswith("AU7 (Lid Tightener) is a FACS action unit")
    assert pack_errors(page) == []


def test_shipped_workflow_loads_and_saves_with_its_values(page):
    with open(os.path.join(ROOT, "workflows", "fineface_basic.json"), encoding="utf-8") as f:
        workflow = json.load(f)
    saved = next(n for n in workflow["nodes"] if n["type"] == "FineFaceAUVector")["widgets_values"]
    page.execute_script("app.graph.clear(); return Promise.resolve(app.loadGraphData(arguments[0])).then(() => true)", workflow)
    (node,) = js(page, "return T.auNodes()")
    js(page, "T.show(arguments[0])", node)
    assert answered(page, node)["error"] is None
    assert js(page, "return T.values(arguments[0])", node) == saved
    assert js(page, "return T.face(T.node(arguments[0])).rects.mouth.w", node) > 0

    js(page, "T.set(arguments[0], 'AU12', 5); T.set(arguments[0], 'preset', 'surprise')", node)
    out = js(page, "return app.graph.serialize()")
    values = next(n for n in out["nodes"] if n["type"] == "FineFaceAUVector")["widgets_values"]
    assert values[:N_WIDGETS] == [*saved[:6], 5, *saved[7:12], "surprise", saved[13]]
    assert all(v is None for v in values[N_WIDGETS:]), "the face saved a value into the workflow"
    page.execute_script("app.graph.clear(); return Promise.resolve(app.loadGraphData(arguments[0])).then(() => true)", out)
    (again,) = js(page, "return T.auNodes()")
    assert js(page, "return T.values(arguments[0])", again) == values[:N_WIDGETS]
    assert js(page, "return !!T.faceWidget(T.node(arguments[0]))", again)
    assert pack_errors(page) == []


def test_a_linked_base_is_named_as_left_out(page):
    node = js(page, "return T.add()")
    js(page, """const b = T.node(arguments[0]), a = LiteGraph.createNode('FineFaceAUVector');
                a.pos = [-400, 100]; app.graph.add(a); a.connect(0, b, b.findInputSlot('base'));""", node)
    js(page, "T.show(arguments[0])", node)
    answered(page, node)
    assert js(page, "return T.face(T.node(arguments[0])).lines.join(' ')", node).startswith("without the linked base:")
    assert pack_errors(page) == []


def test_help_pages_are_served_where_the_front_end_looks(page):
    # comfyui-frontend-package's node documentation panel reads /extensions/<pack folder>/docs/<node>.md
    pages = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all(arguments[0].map((name) => fetch(`/extensions/comfyui-fineface/docs/${name}.md`)
            .then(async (r) => [r.status, r.headers.get("content-type"), await r.text()])))
            .then(done, (e) => done(String(e)));""", ["FineFaceAUVector", "FineFaceAUFromImage"])
    for (status, kind, text), title in zip(pages, ("# AU Vector", "# AU From Image")):
        assert status == 200 and "html" not in (kind or "") and text.startswith(title)
    # and shown: front ends with a properties panel (1.58) show the selected node's page in its Info tab
    toggle = "document.querySelector(\"button[aria-label='Toggle properties panel']\")"
    if not page.execute_script(f"return !!{toggle}"):
        return
    node = js(page, "return T.add()")
    js(page, "T.show(arguments[0]); app.canvas.selectNode(T.node(arguments[0]))", node)
    page.execute_script(f"{toggle}.click()")
    try:
        assert browser.wait_for(page, "const tab = [...document.querySelectorAll('[role=tab], button')]"
                                      ".find(e => e.offsetParent && e.textContent.trim() === 'Info');"
                                      "tab?.click(); return !!tab", 10)
        shown = browser.wait_for(page, "return document.body.innerText.includes('The face on the node')", 10)
        assert shown, "the Info tab does not show web/docs/FineFaceAUVector.md"
    finally:
        page.execute_script(f"{toggle}?.click()")


def test_redraw_time(page):
    node = js(page, "return T.add()")
    js(page, "T.show(arguments[0])", node)
    answered(page, node)
    times = js(page, "return T.timeRedraws(arguments[0], 60)", node)
    median, worst = statistics.median(times), max(times)
    version = page.execute_script("return window.__COMFYUI_FRONTEND_VERSION__ || 'legacy (2024 tree)'")
    print(f"\nface redraw, front end {version}: median {median:.2f} ms, max {worst:.2f} ms over {len(times)} draws")
    assert median < 16, f"a redraw takes {median:.1f} ms (median), over one 60 Hz frame"


def test_every_shipped_workflow_loads_with_its_nodes_links_and_values(page):
    """Each shipped graph whose node types this server has (IP-Adapter and AnimateDiff ones need those packs)
    loads in the front end with every node, every link (custom types such as FACE_CROP included) and the pack's
    widget values as the file has them; and the front end's own ``app.graphToPrompt()`` makes of it the API
    prompt that the headless runner's converter (workflows.api_format) makes, with the node definitions this
    server gives the front end."""
    from workflows import SHIPPED, workflow_path
    from workflows.api_format import workflow_to_prompt

    registered = set(js(page, "return Object.keys(LiteGraph.registered_node_types)"))
    # as text: the order of each node's inputs is the order of its widget values, which a JS object handed
    # back through WebDriver does not keep
    object_info = json.loads(js(page, "return fetch(new URL('object_info', window.location.href)).then(r => r.text())"))
    loaded = []
    for name in SHIPPED:
        with open(workflow_path(name), encoding="utf-8") as f:
            workflow = json.load(f)
        if {n["type"] for n in workflow["nodes"]} - registered:
            continue
        page.execute_script("app.graph.clear(); return Promise.resolve(app.loadGraphData(arguments[0])).then(() => true)",
                            workflow)
        out = js(page, "return app.graph.serialize()")
        assert sorted(n["id"] for n in out["nodes"]) == sorted(n["id"] for n in workflow["nodes"]), name
        assert sorted(map(tuple, out["links"])) == sorted(map(tuple, workflow["links"])), name
        saved = {n["id"]: n for n in out["nodes"]}
        for node in workflow["nodes"]:
            if node["type"].startswith("FineFace"):
                want = node.get("widgets_values") or []
                assert (saved[node["id"]].get("widgets_values") or [])[:len(want)] == want, (name, node["type"])
        front_end = js(page, "return app.graphToPrompt().then(p => p.output)")
        ours = workflow_to_prompt(workflow, object_info)
        assert browser.prompt_nodes(ours) == browser.prompt_nodes(front_end), name
        loaded.append(name)
    assert {"basic", "edit", "face_crop", "regions_photo", "animation"} <= set(loaded), loaded
    assert pack_errors(page) == []
