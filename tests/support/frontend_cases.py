"""The front ends a browser test runs on, as pytest params, and the console errors that are the pack's.

The tree's own front end (the 2024 tree's LiteGraph one; for a newer tree the comfyui-frontend-package version
its requirements pin, when installed), and every ``.../comfyui_frontend_package/static`` folder named in
$FINEFACE_FRONTENDS (os.pathsep-separated), each drawn on the canvas and as Vue nodes."""
from __future__ import annotations

import os
import re

import pytest

from tests.support import browser
from tests.support.comfy_env import comfy_path
from tests.support.comfy_server import ComfyServer, is_legacy, pinned_frontend

LEGACY_ONLY = ("the new front ends do not start on the 2024 server (checked with 1.58.1: its routes are not under "
               "/api and its /object_info has no python_module); set COMFYUI_PATH to a newer tree")


def _installed_frontend() -> tuple[str, str] | None:
    try:
        import comfyui_frontend_package
        from importlib.metadata import version
    except ImportError:
        return None
    return version("comfyui-frontend-package"), os.path.join(os.path.dirname(comfyui_frontend_package.__file__), "static")


def _version_of(static: str) -> str:
    parent = os.path.dirname(os.path.dirname(os.path.abspath(static)))
    for name in os.listdir(parent):
        if name.startswith("comfyui_frontend_package-") and name.endswith(".dist-info"):
            return name[len("comfyui_frontend_package-"):-len(".dist-info")]
    return os.path.basename(parent)


def _vue_marks(static: str | None) -> tuple:
    """Vue nodes draw a canvas widget through their WidgetLegacy component; the experimental Vue nodes of the
    front ends before it (1.27) draw none, whatever the pack does."""
    if static is None:
        installed = _installed_frontend()
        static = installed and installed[1]
    assets = os.path.join(static, "assets") if static else None
    if assets and os.path.isdir(assets) and not any(n.startswith("WidgetLegacy") for n in os.listdir(assets)):
        return (pytest.mark.skip(reason="this front end's Vue nodes (experimental) draw no canvas widgets"),)
    return ()


def frontend_cases():
    """(front-end static folder or None for the tree's own, front-end settings) per case."""
    tree = comfy_path()
    if is_legacy(tree):
        cases = [pytest.param((None, {}), id="tree-legacy-frontend")]
    else:
        pin, installed = pinned_frontend(tree), _installed_frontend()
        skip = () if installed and installed[0] == pin else (pytest.mark.skip(
            reason=f"this tree pins comfyui-frontend-package=={pin}; install it to test its own front end"),)
        cases = [pytest.param((None, {}), id=f"tree-pinned-{pin}", marks=skip),
                 pytest.param((None, browser.VUE_NODES), id=f"tree-pinned-{pin}-vue-nodes",
                              marks=skip or _vue_marks(None))]
    for static in filter(None, os.environ.get("FINEFACE_FRONTENDS", "").split(os.pathsep)):
        marks = (pytest.mark.skip(reason=LEGACY_ONLY),) if is_legacy(tree) else ()
        version = _version_of(static)
        cases += [pytest.param((static, {}), id=f"frontend-{version}", marks=marks),
                  pytest.param((static, browser.VUE_NODES), id=f"frontend-{version}-vue-nodes",
                               marks=marks or _vue_marks(static))]
    return cases


LOCALE_DOC_PROBE = re.compile(r"/docs/FineFace\w+/[a-z]{2}(-[A-Za-z]+)?\.md - Failed to load resource: .* 404")


def pack_errors(driver) -> list[str]:
    """Console errors from the pack's code or routes. New front ends also probe the download URLs a shipped
    workflow names for its models (their missing-models dialog): this machine is offline, and that is no error
    of the pack's. Their help panel asks for docs/<Node>/<locale>.md first and falls back to docs/<Node>.md, the
    page the pack ships; the browser logs the first 404 all the same."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "fineface" in e["message"].lower()
            and not e["message"].startswith("https://") and not LOCALE_DOC_PROBE.search(e["message"])]


def served_page(case, settings: dict | None = None, size: tuple[int, int] = (1400, 1000), script: str | None = None,
                prepare=None):
    """The body of a module's ``page`` fixture (a generator to ``yield from``): a ComfyUI server for one front-end
    case (``request.param``), ``prepare(server)`` before the page opens, chromium on it with ``script`` run in the
    page; yields (driver, server). Skips where no browser is installed."""
    why = browser.missing()
    if why:
        pytest.skip(f"no browser for the front-end test: {why}")
    frontend, case_settings = case
    server = ComfyServer(comfy_path(), frontend, {**(settings or {}), **case_settings}).start()
    driver = None
    try:
        if prepare:
            prepare(server)
        driver = browser.start_chromium(*size)
        browser.open_comfy(driver, server.url)
        if script:
            driver.execute_script(script)
        yield driver, server
    finally:
        if driver is not None:
            driver.quit()
        server.stop()

