"""What the front end is served: the AU facts, the node's own spec check, the help pages.

The face in the browser is tested in test_web_au_face.py; here the answers themselves, against the core and
the node (loaded from ComfyUI's registry as ComfyUI loads the pack).
"""
import asyncio
import importlib
import json
import os
import re
import sys
from types import SimpleNamespace

import pytest

from fineface_core.au_vector import au_schema, preview
from fineface_core.aus import ACTION_UNITS, AU_ORDER, PRESETS, SAFE_MAX, SAFE_MIN, parse_aus
from fineface_core.errors import AUSpecError
from tests.support.route_client import route_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZERO = {code: 0.0 for code in AU_ORDER}


@pytest.fixture(scope="module")
def pack(registry):
    """The pack's au_vector and web_routes modules, as ComfyUI imported them."""
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"]
    package = cls.__module__.rsplit(".", 1)[0]
    return SimpleNamespace(node=cls, au_vector=sys.modules[cls.__module__],
                           routes=importlib.import_module(f"{package}.web_routes"))


def test_schema_is_the_cores_facts_as_json():
    schema = json.loads(json.dumps(au_schema()))
    assert schema["order"] == list(AU_ORDER)
    assert [(a["code"], a["name"], a["region"]) for a in schema["aus"]] == [(a.code, a.name, a.region) for a in ACTION_UNITS]
    assert set(schema["presets"]) == set(PRESETS)
    assert schema["presets"]["happiness"]["aus"] == {"AU6": 3.0, "AU12": 3.0}
    assert schema["safe_range"] == [SAFE_MIN, SAFE_MAX]
    # every region the face draws has its AUs, and every AU is in one region
    assert sorted(c for codes in schema["regions"].values() for c in codes) == sorted(AU_ORDER)
    assert set(schema["regions"]) == {"brows", "eyes", "cheeks", "nose", "mouth", "chin", "jaw"}


def test_preview_is_what_the_node_computes(pack):
    answer = preview("happiness", "AU25@2\nsurprise", ZERO)
    assert answer["error"] is None
    assert answer["base"] == [(parse_aus("happiness") + parse_aus("AU25@2")).tolist(),
                              parse_aus("happiness + surprise").tolist()]
    assert answer["titles"] == ["happiness + AU25@2", "happiness + surprise"]


def test_preview_gives_the_nodes_own_refusals(pack):
    bad = preview("none", "AU6@2\nAU7", ZERO)
    assert bad["base"] is None
    assert bad["error"] == pack.node.VALIDATE_INPUTS(spec="AU6@2\nAU7")
    assert bad["error"].startswith("spec line 2: AU7 (Lid Tightener)")
    # the spec alone is fine, the sliders take it out of range: the face keeps the spec and shows why
    over = preview("none", "AU12@8", dict(ZERO, AU12=4.0))
    assert over["base"] == [parse_aus("AU12@8").tolist()]
    with pytest.raises(AUSpecError) as refused:
        pack.node().build(spec="AU12@8", **dict(ZERO, AU12=4.0))
    # the node's error starts with its display name (ComfyUI's dialog shows the class id); the face shows the rest
    assert str(refused.value) == f"AU Vector (Expression & Emotion) (FineFace): {over['error']}"


def _client(pack):
    return route_client(pack.routes.register)


def test_routes_answer_json_and_refuse_bad_requests(pack):
    async def run():
        async with _client(pack) as client:
            schema = await (await client.get("/fineface/aus")).json()
            ok = await client.post("/fineface/au_vector", json={"preset": "sadness", "spec": "", "sliders": ZERO})
            refused = await client.post("/fineface/au_vector", json={"spec": "AU99", "sliders": ZERO})
            no_json = await client.post("/fineface/au_vector", data=b"{")
            no_sliders = await client.post("/fineface/au_vector", json={"spec": ""})
            nan = await client.post("/fineface/au_vector", data=json.dumps({"sliders": dict(ZERO, AU1=float("nan"))}))
            return (schema, ok.status, await ok.json(), refused.status, await refused.json(), no_json.status,
                    await no_json.json(), no_sliders.status, await no_sliders.json(), nan.status, await nan.json())

    schema, ok_status, ok, ref_status, ref, nj_status, nj, ns_status, ns, nan_status, nan = asyncio.run(run())
    assert schema == au_schema()
    assert ok_status == 200 and ok["base"] == [parse_aus("sadness").tolist()] and ok["error"] is None
    # a refused spec is an answer the face shows, not a failed request (that would be a console error)
    assert ref_status == 200 and "AU99 is not an action unit" in ref["error"]
    assert nj_status == 400 and nj["error"] == "the request body is not JSON"
    assert ns_status == 400 and "sliders must map each of AU1" in ns["error"]
    assert nan_status == 400 and nan["error"] == "slider AU1 is nan: give a finite number"


def test_hostile_bodies_get_a_400_with_a_message_never_a_500(pack):
    """Python's JSON reads integers of any size and nests as deep as its recursion limit; ComfyUI's server takes
    bodies up to its upload limit (100 MB), and a spec is parsed on its event loop."""
    async def chunked():
        for _ in range(100):
            yield b" " * 1000

    bodies = {
        "huge integer": json.dumps({"sliders": dict(ZERO, AU6=10 ** 400)}).encode(),
        "deep nesting": b"[" * 20_000 + b"]" * 20_000,
        "a list slider": json.dumps({"sliders": dict(ZERO, AU6=[[1] * 1000])}).encode(),
        "too large": json.dumps({"spec": "AU12\n" * 20_000, "sliders": ZERO}).encode(),
        "too large, chunked": chunked(),
    }

    async def run():
        async with _client(pack) as client:
            answers = {}
            for name, body in bodies.items():
                res = await client.post("/fineface/au_vector", data=body)
                answers[name] = (res.status, await res.json())
            return answers

    answers = asyncio.run(run())
    assert {name: status for name, (status, _) in answers.items()} == {name: 400 for name in bodies}
    assert answers["huge integer"][1]["error"] == "slider AU6 is a whole number too large for a float: give a finite number"
    assert answers["deep nesting"][1]["error"] == "the request body is not JSON"
    assert answers["a list slider"][1]["error"].startswith("slider AU6 is '[[1, 1, 1")
    assert len(answers["a list slider"][1]["error"]) < 200
    for name in ("too large", "too large, chunked"):
        assert answers[name][1]["error"].startswith("the request body is larger than 65,536 bytes")


def test_every_node_has_a_help_page_naming_its_inputs(registry):
    pack_nodes = {n: c for n, c in registry.NODE_CLASS_MAPPINGS.items() if n.startswith("FineFace")}
    assert len(pack_nodes) == 16
    for name, cls in pack_nodes.items():
        path = os.path.join(ROOT, "web", "docs", f"{name}.md")
        assert os.path.isfile(path), f"no help page for {name}"
        text = open(path, encoding="utf-8").read()
        assert text.startswith(f"# {registry.NODE_DISPLAY_NAME_MAPPINGS[name]}\n")
        named = set(re.findall(r"`([A-Za-z0-9_]+)`", text))
        inputs = {k for kind, section in cls.INPUT_TYPES().items() if kind != "hidden" for k in section}  # not the user's
        if {"AU1", "AU26"} <= named:  # "`AU1` ... `AU26`" names the twelve sliders
            named |= set(AU_ORDER)
        assert inputs <= named, f"{name}.md does not name {sorted(inputs - named)}"
        assert cls.DESCRIPTION  # what front ends without the page show


def test_the_pack_exports_its_web_folder():
    text = open(os.path.join(ROOT, "__init__.py"), encoding="utf-8").read()
    assert re.search(r'^WEB_DIRECTORY = "\./web"$', text, re.M)
    assert os.path.isfile(os.path.join(ROOT, "web", "au_face.js"))
