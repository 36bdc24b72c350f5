"""Headless Chromium (Debian's chromium + chromium-driver, driven by selenium) on a ComfyUI page."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time

INSTALL_HINT = ("apt-get install -y chromium chromium-driver (as root; .ci/run does it) and pip install selenium "
                "(requirements-dev.txt)")

# New front ends open the templates browser on a first visit; a settings file says the visit is not the first.
FIRST_RUN_SETTINGS = {"Comfy.TutorialCompleted": True}


def missing() -> str | None:
    """Why no browser can run here, or None."""
    if importlib.util.find_spec("selenium") is None:
        return f"selenium is not installed: {INSTALL_HINT}"
    for binary in ("chromium", "chromedriver"):
        if shutil.which(binary) is None:
            return f"no {binary} on PATH: {INSTALL_HINT}"
    return None


# The new front ends' other way of drawing nodes: as Vue components, a canvas widget on a canvas of its own.
VUE_NODES = {"Comfy.VueNodes.Enabled": True}


def write_first_run_settings(user_folder: str, settings: dict | None = None) -> None:
    folder = os.path.join(user_folder, "default")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "comfy.settings.json"), "w", encoding="utf-8") as f:
        json.dump({**FIRST_RUN_SETTINGS, **(settings or {})}, f)


def start_chromium(width: int = 1400, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingOptions", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_script_timeout(30)
    return driver


def open_comfy(driver, url: str, timeout: float = 60.0) -> None:
    """Load the page and wait until the app, its graph and the pack's node definitions are there."""
    driver.get(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if driver.execute_script(
                "return !!(window.app && window.app.graph && window.LiteGraph"
                " && window.LiteGraph.registered_node_types['FineFaceAUVector'])"):
            return
        time.sleep(0.2)
    logs = "\n".join(e["message"] for e in driver.get_log("browser"))
    raise AssertionError(f"the ComfyUI page at {url} did not start within {timeout:.0f} s; console:\n{logs}")


def wait_for(driver, script: str, timeout: float = 10.0, *args):
    """Poll a JS expression (``return ...``) until it gives a truthy value; that value."""
    deadline = time.time() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value or time.time() > deadline:
            return value
        time.sleep(0.05)


def prompt_nodes(prompt: dict) -> dict:
    """An API prompt as the server reads it: node id -> (class_type, inputs). ``_meta`` (the title, sent by the
    front ends only in their dev mode, and not read by the executor) is left out, and so is Load Image's ``upload``:
    the upload button's value, which the 2024 front end sends and newer ones (1.35 on) do not; it is no input of
    the node, and the executor never reads it."""
    return {str(k): (v["class_type"], {name: value for name, value in v["inputs"].items()
                                       if not (name == "upload" and v["class_type"].startswith("LoadImage"))})
            for k, v in prompt.items()}
