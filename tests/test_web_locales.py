"""The pack's locales in a real browser: the front end set to Chinese (setting Comfy.Locale = zh) titles a new
AU Vector node, and names its inputs as locales/zh/ says; set to English, as the Python
names. New front ends only (the 2024 tree's legacy front end has no translations): set COMFYUI_PATH to a 2025 tree,
or name front ends in $FINEFACE_FRONTENDS; skipped, saying what to install, where no Chromium or selenium is there.
"""
from __future__ import annotations

import json
import os

import pytest

from tests.support import browser
from tests.support.comfy_env import comfy_path
from tests.support.comfy_server import ComfyServer
from tests.support.frontend_cases import LEGACY_ONLY, frontend_cases, pack_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE = "FineFaceAUVector"

READ = """
const node = LiteGraph.createNode(arguments[0]);
app.graph.add(node);
const input = (name) => {
    const slot = node.inputs?.find((i) => i.name === name);
    return slot ? (slot.label || slot.localized_name || slot.name) : null;
};
return {title: node.title, base: input("base")};
"""


def cases():
    out = []
    for case in frontend_cases():
        frontend, settings = case.values[0]
        for lang in ("zh", "en"):
            out.append(pytest.param((frontend, {**settings, "Comfy.Locale": lang}, lang),
                                    id=f"{case.id}-{lang}", marks=case.marks))
    return out


@pytest.fixture(scope="module", params=cases())
def page(request):
    why = browser.missing()
    if why:
        pytest.skip(f"no browser for the front-end test: {why}")
    frontend, settings, lang = request.param
    from tests.support.comfy_server import is_legacy

    if is_legacy(comfy_path()) and frontend is None:
        pytest.skip(f"the 2024 tree's own front end has no translations; {LEGACY_ONLY}")
    server = ComfyServer(comfy_path(), frontend, settings).start()
    driver = browser.start_chromium()
    try:
        browser.open_comfy(driver, server.url)
        driver.lang = lang
        yield driver
    finally:
        driver.quit()
        server.stop()


def test_a_new_node_is_titled_in_the_chosen_language(page):
    with open(os.path.join(ROOT, "locales", page.lang, "nodeDefs.json"), encoding="utf-8") as f:
        entry = json.load(f)[NODE]
    seen = page.execute_script(READ, NODE)
    assert seen["title"] == entry["display_name"]
    assert seen["base"] == entry["inputs"]["base"]["name"]
    assert pack_errors(page) == []
