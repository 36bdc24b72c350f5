"""locales/zh/ gives every tooltip the pack declares in Chinese (issue 21: a large share of ComfyUI's users read
Chinese): each input's and each output's, so that a front end set to Chinese shows no English tooltip of the pack's.
English stays the Python source (locales/en/ copies no tooltip). What the user types stays as typed (AU codes,
preset names, file names); an at sign is written full-width, as the front end's i18n would read an ASCII one as
a linked message (tests/test_locales.py checks every string for those characters)."""
from __future__ import annotations

import json
import os
import re

import pytest

from tests.support import comfy_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CJK = re.compile(r"[\u4e00-\u9fff]")


def locale(lang: str) -> dict:
    with open(os.path.join(ROOT, "locales", lang, "nodeDefs.json"), encoding="utf-8") as f:
        return json.load(f)


def declared_tooltips() -> dict[str, dict[str, str]]:
    """class id -> {"in:<input>" or "out:<index>": English tooltip} as the pack declares them."""
    out = {}
    for class_id, cls, _ in comfy_env.pack_module("nodes").NODES:
        tips = {}
        for section in ("required", "optional"):
            for name, spec in cls.INPUT_TYPES().get(section, {}).items():
                if len(spec) > 1 and isinstance(spec[1], dict) and spec[1].get("tooltip"):
                    tips[f"in:{name}"] = spec[1]["tooltip"]
        for i, tip in enumerate(getattr(cls, "OUTPUT_TOOLTIPS", ()) or ()):
            tips[f"out:{i}"] = tip
        out[class_id] = tips
    return out


@pytest.fixture(scope="module")
def tooltips(registry):
    return declared_tooltips()


def zh_tooltip(entry: dict, key: str):
    kind, name = key.split(":", 1)
    return entry["inputs" if kind == "in" else "outputs"].get(name, {}).get("tooltip")


def test_every_declared_tooltip_is_in_chinese(tooltips):
    zh = locale("zh")
    assert sum(map(len, tooltips.values())) > 100, "the pack's tooltips were not found"
    missing = [(class_id, key) for class_id, tips in tooltips.items() for key in tips
               if not (zh_tooltip(zh[class_id], key) and CJK.search(zh_tooltip(zh[class_id], key)))]
    assert not missing, f"tooltips without a Chinese text: {missing}"


def test_no_chinese_tooltip_is_left_over(tooltips):
    """A tooltip in the locale for an input or output that declares none (or no longer exists) is stale."""
    zh = locale("zh")
    stale = [(class_id, f"{kind}:{name}") for class_id, entry in zh.items()
             for kind, part in (("in", "inputs"), ("out", "outputs")) for name, v in entry[part].items()
             if "tooltip" in v and f"{kind}:{name}" not in tooltips.get(class_id, {})]
    assert not stale, stale


def test_what_the_user_types_stays_as_typed(tooltips):
    """The AU codes and file names a tooltip names appear in its Chinese text too."""
    zh = locale("zh")
    kept = re.compile(r"AU\d+|\w+\.(?:ckpt|safetensors|pt)\b")
    for class_id, tips in tooltips.items():
        for key, english in tips.items():
            chinese = zh_tooltip(zh[class_id], key)
            lost = set(kept.findall(english)) - set(kept.findall(chinese))
            assert not lost, f"{class_id} {key}: {sorted(lost)} missing from the Chinese tooltip"


def test_english_copies_no_tooltip():
    en = locale("en")
    assert not [c for c, e in en.items() for part in ("inputs", "outputs") for v in e[part].values() if "tooltip" in v]
