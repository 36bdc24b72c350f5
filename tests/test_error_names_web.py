"""A FineFace error as a user meets it, in a real browser on a real ComfyUI server: a graph queued from the page
(Empty Image -> Face Crop -> Preview Image: a black image has no face) fails in Face Crop, and the error the page
shows names the node by its display name, not only by the class id ComfyUI titles its dialog with.

Front ends: those of tests/support/frontend_cases.py (the tree's own; more in $FINEFACE_FRONTENDS), on the
canvas and as Vue nodes. Skipped, saying what to install, only where no Chromium or selenium is there.
"""
from __future__ import annotations

import pytest

from tests.support import browser
from tests.support.frontend_cases import frontend_cases, served_page

QUEUE = """
app.graph.clear();
const add = (type) => { const n = LiteGraph.createNode(type); app.graph.add(n); return n; };
const image = add("EmptyImage"), crop = add("FineFaceFaceCrop"), preview = add("PreviewImage");
image.connect(0, crop, 0);
crop.connect(0, preview, 0);
return Promise.resolve(app.queuePrompt(0, 1)).then(() => true);
"""


@pytest.fixture(scope="module", params=frontend_cases())
def page(request):
    for driver, _ in served_page(request.param):
        yield driver


def test_the_error_the_page_shows_names_the_node_as_the_user_sees_it(page):
    page.execute_script(QUEUE)
    shown = browser.wait_for(page, "const t = document.body.innerText;"
                                   " return t.includes('no face found') ? t : null;", 60)
    assert shown, "no error shown within 60 s"
    assert "Face Crop (FineFace): no face found in " in shown
