"""The shipped workflows' template pictures (workflows/<file stem>.jpg, the picture ComfyUI's template browser
shows for a pack's example workflow): the AU faces of the expressions each workflow sets, drawn in a real browser
by the AU Vector widget's own code (web/face_draw.js) with the server's own spec parser, under the first line of
its Start here note. Not a render: no model runs here.

``python -m tests.support.thumbnails`` writes them (after a workflow's expression or note changes);
tests/test_web_templates.py draws them again and compares.
"""
from __future__ import annotations

import base64
import json
import os

from workflows import SHIPPED, WORKFLOWS_DIR, workflow_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "tests", "support", "thumbnail_page.js")
SIZE = 400


def picture_path(name: str) -> str:
    return os.path.join(WORKFLOWS_DIR, os.path.splitext(SHIPPED[name].file)[0] + ".jpg")


def render(driver, name: str) -> dict:
    """The picture of a shipped workflow as JPEG bytes, with how many faces it drew and its sentence."""
    driver.execute_script(open(PAGE, encoding="utf-8").read())
    with open(workflow_path(name), encoding="utf-8") as f:
        workflow = json.load(f)
    out = driver.execute_script("return window.ffThumb.render(arguments[0], arguments[1])", workflow, SIZE)
    out["jpeg"] = base64.b64decode(out["jpeg"].split(",", 1)[1])
    return out


def main() -> None:
    from tests.support import browser
    from tests.support.comfy_env import comfy_path
    from tests.support.comfy_server import ComfyServer

    server = ComfyServer(comfy_path()).start()
    driver = browser.start_chromium()
    try:
        browser.open_comfy(driver, server.url)
        for name in SHIPPED:
            out = render(driver, name)
            with open(picture_path(name), "wb") as f:
                f.write(out["jpeg"])
            print(f"{picture_path(name)}: {out['faces']} faces, {len(out['jpeg']):,} bytes")
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":
    main()
