"""locales/<lang>/ (en, zh): every node of the NODES table, each input of its INPUT_TYPES and each output, by name,
in the files ComfyUI's server reads (main.json and nodeDefs.json) and serves to the front end at /i18n.

English repeats the Python names exactly (the node's DESCRIPTION and tooltips stay the English source, so none is
copied); Chinese names every node, input and output in Chinese (a node's title and its one-line description).
"""
from __future__ import annotations

import json
import os
import re

import pytest

from tests.support import comfy_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGS = ("en", "zh")
CJK = re.compile(r"[\u4e00-\u9fff]")


def load(lang: str, name: str) -> dict:
    with open(os.path.join(ROOT, "locales", lang, name), encoding="utf-8") as f:
        return json.load(f)


def declared(registry) -> dict[str, tuple[str, list[str], list[str], str]]:
    """class id -> (display name, input names, output names, category) as the pack declares them."""
    out = {}
    for class_id, cls, display in comfy_env.pack_module("nodes").NODES:
        types = cls.INPUT_TYPES()
        inputs = [name for section in ("required", "optional") for name in types.get(section, {})]
        outputs = list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)
        out[class_id] = (display, inputs, outputs, cls.CATEGORY)
    return out


@pytest.fixture(scope="module")
def nodes_declared(registry):
    return declared(registry)


@pytest.mark.parametrize("lang", LANGS)
def test_every_node_input_and_output_is_named(lang, nodes_declared):
    defs = load(lang, "nodeDefs.json")
    assert sorted(defs) == sorted(nodes_declared), "one entry per node of the NODES table, and no other"
    for class_id, (_, inputs, outputs, _) in nodes_declared.items():
        entry = defs[class_id]
        assert entry["display_name"].strip(), class_id
        assert sorted(entry["inputs"]) == sorted(inputs), f"{class_id}'s inputs"
        assert sorted(entry["outputs"]) == [str(i) for i in range(len(outputs))], f"{class_id}'s outputs"
        names = [v["name"] for v in (*entry["inputs"].values(), *entry["outputs"].values())]
        assert all(isinstance(n, str) and n.strip() for n in names), class_id


@pytest.mark.parametrize("lang", LANGS)
def test_every_category_is_named(lang, nodes_declared):
    categories = load(lang, "main.json")["nodeCategories"]
    for *_, category in nodes_declared.values():
        assert all(part in categories for part in category.split("/")), category


def strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    else:
        yield value


@pytest.mark.parametrize("name", ["main.json", "nodeDefs.json"])
@pytest.mark.parametrize("lang", LANGS)
def test_no_message_holds_the_front_ends_message_syntax(lang, name):
    """The front end compiles every message with vue-i18n: '@' starts a linked message, braces a placeholder, '|' a
    plural. One 'happiness@4' in a description stopped front end 1.35.9 from starting at all (seen here)."""
    for text in strings(load(lang, name)):
        assert isinstance(text, str) and not re.search(r"[@{}|]", text), text


def test_english_is_the_python_names(nodes_declared):
    defs = load("en", "nodeDefs.json")
    for class_id, (display, inputs, outputs, _) in nodes_declared.items():
        entry = defs[class_id]
        assert entry["display_name"] == display
        assert {k: v["name"] for k, v in entry["inputs"].items()} == {name: name for name in inputs}
        assert [entry["outputs"][str(i)]["name"] for i in range(len(outputs))] == outputs
        assert "description" not in entry, "the node's DESCRIPTION is the English text; a copy would go stale"


def test_chinese_is_chinese(nodes_declared):
    defs = load("zh", "nodeDefs.json")
    for class_id, (display, inputs, _, _) in nodes_declared.items():
        entry = defs[class_id]
        assert CJK.search(entry["display_name"]) and entry["display_name"] != display, class_id
        assert CJK.search(entry["description"]), class_id
        translated = [name for name, v in entry["inputs"].items() if CJK.search(v["name"])]
        # Names such as "lora", "cfg" or "fineface" (a type) stay as they are; most inputs are words to translate.
        assert len(translated) >= len(inputs) / 2, f"{class_id}: {len(translated)} of {len(inputs)} inputs translated"


def test_comfyuis_server_serves_them(comfy, tmp_path):
    """ComfyUI's own loader (app/custom_node_manager.py, 2025 trees on) reads the pack's locales as /i18n serves them."""
    try:
        from app.custom_node_manager import CustomNodeManager
    except ImportError:
        pytest.skip("this ComfyUI tree has no translations loader (app/custom_node_manager.py came in 2025); "
                    "set COMFYUI_PATH to a newer tree")
    folder = tmp_path / "custom_nodes"
    folder.mkdir()
    os.symlink(ROOT, folder / "fineface")
    saved = comfy.folder_paths.folder_names_and_paths["custom_nodes"]
    comfy.folder_paths.folder_names_and_paths["custom_nodes"] = ([str(folder)], saved[1])
    try:
        translations = CustomNodeManager().build_translations()
    finally:
        comfy.folder_paths.folder_names_and_paths["custom_nodes"] = saved
    for lang in LANGS:
        assert translations[lang]["nodeDefs"] == load(lang, "nodeDefs.json")
        assert translations[lang]["nodeCategories"] == load(lang, "main.json")["nodeCategories"]
