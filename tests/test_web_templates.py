"""The template cards of the pack's workflows, in a real browser on a real ComfyUI server: each shipped workflow
has its picture (workflows/<name>.jpg, which ComfyUI serves beside the workflow and the template browser shows as
the card), and that picture is what tests/support/thumbnails.py draws now: the AU faces of the workflow's
expressions drawn by the AU Vector widget's own code (web/face_draw.js), under the first sentence of its Start here
note -- so a changed expression or note with a stale picture fails here.

The template browser of comfyui-frontend-package (1.35.9, and 1.58.1 read too) gives a pack's workflows no
description of their own (its title and text are the file name: only its built-in templates have an index.json),
so the sentence is in the picture. Front ends: those of tests/support/frontend_cases.py (the card check needs a
template browser; the 2024 front end has none). Skipped, saying what to install, only where no Chromium or
selenium is there.
"""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from tests.support import browser
from tests.support.comfy_server import PACK_NAME
from tests.support.frontend_cases import frontend_cases, served_page, pack_errors
from tests.support.thumbnails import SIZE, picture_path, render
from workflows import SHIPPED

# JPEG noise between two encodings of one drawing is ~1 level; another workflow's picture differs by 10+.
SAME = 3.0


@pytest.fixture(scope="module", params=frontend_cases())
def page(request):
    for driver, _ in served_page(request.param):
        yield driver


def pixels(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG" and im.size == (SIZE, SIZE)
        return np.asarray(im.convert("RGB"), dtype=np.float32)


def test_each_picture_is_the_workflows_faces_as_drawn_now(page):
    drawn = {}
    for name in SHIPPED:
        assert os.path.isfile(picture_path(name)), f"{name}: no {picture_path(name)}; python -m tests.support.thumbnails"
        out = render(page, name)
        assert out["faces"] >= 1 and out["sentence"], name
        with open(picture_path(name), "rb") as f:
            shipped = pixels(f.read())
        drawn[name] = pixels(out["jpeg"])
        diff = float(np.abs(shipped - drawn[name]).mean())
        assert diff < SAME, f"{name}: its picture is stale (mean difference {diff:.1f}); python -m tests.support.thumbnails"
    # the comparison tells pictures apart: the closest pair (edit: a smile on the photo's AUs; neutralize: the
    # neutral face, under other sentences) differs by about 8 levels, a stale picture by more than SAME
    names = list(SHIPPED)
    for a, b in zip(names, names[1:]):
        assert float(np.abs(drawn[a] - drawn[b]).mean()) > 2 * SAME, (a, b)
    assert pack_errors(page) == []


def test_template_cards_show_the_pictures(page):
    listed = page.execute_script("return fetch(new URL('api/workflow_templates', window.location.href))"
                                 ".then(r => r.ok ? r.json() : null)")
    if listed is None:
        pytest.skip("this server has no /api/workflow_templates (the 2024 tree): no template browser")
    stems = sorted(os.path.splitext(row.file)[0] for row in SHIPPED.values())
    assert set(stems) <= set(listed[PACK_NAME])
    for stem in stems:
        status, kind, size = page.execute_script(
            "return fetch(new URL(`api/workflow_templates/${arguments[0]}/${arguments[1]}.jpg`, window.location.href))"
            ".then(async r => [r.status, r.headers.get('content-type'), (await r.arrayBuffer()).byteLength])",
            PACK_NAME, stem)
        assert status == 200 and kind == "image/jpeg" and size > 1000, (stem, status, kind)

    # the template browser, the pack's entry: each card shows its picture (a 404 would show a placeholder)
    page.execute_script("app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    assert browser.wait_for(page, "const e = [...document.querySelectorAll('[role=dialog] *')].find((e) =>"
                                  " e.children.length === 0 && e.textContent.trim() === arguments[0]);"
                                  "e?.click(); return !!e", 20, PACK_NAME), "the template browser lists no comfyui-fineface"
    try:
        for stem in stems:
            card = """const title = [...document.querySelectorAll('[role=dialog] *')].find((e) =>
                          e.children.length === 0 && e.textContent.trim() === arguments[0]);
                      // the card: the title's largest ancestor that holds no other card's title
                      const titles = (e) => [...e.querySelectorAll('*')].filter((c) => c.children.length === 0
                          && arguments[1].includes(c.textContent.trim())).length;
                      let card = title;
                      while (card?.parentElement && titles(card.parentElement) === 1) card = card.parentElement;
                      if (!card) return null;
                      card.scrollIntoView({block: 'center'});
                      const img = card.querySelector('img');
                      return img?.complete && img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null;"""
            assert browser.wait_for(page, card, 20, stem, stems) == [SIZE, SIZE], f"{stem}: its card shows no picture"
    finally:
        page.execute_script("document.querySelector('[role=dialog] button[aria-label=Close], .p-dialog-close-button')?.click()")
    assert pack_errors(page) == []
