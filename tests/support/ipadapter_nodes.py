"""ComfyUI_IPAdapter_plus' node definitions, read from its source without importing it.

ComfyUI_IPAdapter_plus (github.com/cubiq/ComfyUI_IPAdapter_plus) is not installed in CI, and
importing it needs ComfyUI, insightface and its own package. Its ``INPUT_TYPES`` are plain
dict literals, so they are evaluated here from the syntax tree of ``IPAdapterPlus.py``:
module-level constants (``WEIGHT_TYPES``) are substituted, ``folder_paths.get_filename_list(x)``
becomes a :class:`FileList` (a menu of the user's files, any name valid), inherited
``INPUT_TYPES`` / ``RETURN_TYPES`` follow the class bases.

Where the source is not on this machine, ``tests/data/ipadapter_plus_nodes.json`` holds the
nodes the shipped FaceID workflow uses, written by this module from the real file:

    python -m tests.support.ipadapter_nodes /path/to/ComfyUI_IPAdapter_plus > tests/data/ipadapter_plus_nodes.json
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import sys

SNAPSHOT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "ipadapter_plus_nodes.json")
DEFAULT_PATH = "/work/ipadapter_plus/ComfyUI_IPAdapter_plus"
# The nodes the FaceID workflow uses (and the unified loader, to document why it is not used).
SNAPSHOT_NODES = ("IPAdapterModelLoader", "IPAdapterInsightFaceLoader", "IPAdapterFaceID", "IPAdapterUnifiedLoaderFaceID")


class FileList(list):
    """A combo whose options are the files of a models folder (``folder_paths.get_filename_list``)."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder


def source_path() -> str | None:
    root = os.environ.get("IPADAPTER_PLUS_PATH", DEFAULT_PATH)
    path = os.path.join(root, "IPAdapterPlus.py")
    return path if os.path.isfile(path) else None


class _Evaluator:
    def __init__(self, constants: dict):
        self.constants = constants

    def eval(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Dict):
            return {self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.eval(e) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.eval(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get_filename_list":
            return FileList(self.eval(node.args[0]))
        raise ValueError(f"cannot evaluate {ast.dump(node)[:120]}")


def parse_ipadapter_plus(path: str) -> dict:
    """{node name: {"input": INPUT_TYPES(), "output": RETURN_TYPES, "output_name": RETURN_NAMES}}."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    constants = {}
    classes = {}
    mappings = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name == "NODE_CLASS_MAPPINGS":
                mappings = {k.value: v.id for k, v in zip(stmt.value.keys, stmt.value.values)}
                continue
            try:
                constants[name] = _Evaluator(constants).eval(stmt.value)
            except ValueError:
                pass
        elif isinstance(stmt, ast.ClassDef):
            classes[stmt.name] = stmt
    ev = _Evaluator(constants)

    def own(cls: ast.ClassDef, attr: str):
        for item in cls.body:
            if attr == "INPUT_TYPES" and isinstance(item, ast.FunctionDef) and item.name == "INPUT_TYPES":
                ret = next(n for n in ast.walk(item) if isinstance(n, ast.Return))
                return ev.eval(ret.value)
            if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in item.targets):
                return ev.eval(item.value)
        return None

    def lookup(cname: str, attr: str):
        cls = classes.get(cname)
        while cls is not None:
            value = own(cls, attr)
            if value is not None:
                return value
            bases = [b.id for b in cls.bases if isinstance(b, ast.Name)]
            cls = classes.get(bases[0]) if bases else None
        return None

    nodes = {}
    for node_name, cname in mappings.items():
        try:
            inputs = lookup(cname, "INPUT_TYPES")
        except ValueError:  # built at run time (e.g. from the input folder): not needed here
            inputs = None
        nodes[node_name] = {
            "input": inputs,
            "output": list(lookup(cname, "RETURN_TYPES") or ()),
            "output_name": list(lookup(cname, "RETURN_NAMES") or ()),
        }
    return nodes


def _to_json(value):
    if isinstance(value, FileList):
        return {"file_list": value.folder}
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"file_list"}:
        return FileList(value["file_list"])
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        # an input spec is a tuple in Python: (type, options)
        return [_from_json(v) for v in value]
    return value


def snapshot(path: str, names=SNAPSHOT_NODES) -> dict:
    nodes = parse_ipadapter_plus(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {
        "source": {
            "repository": "https://github.com/cubiq/ComfyUI_IPAdapter_plus",
            "file": "IPAdapterPlus.py",
            "sha256": digest,
            "generated_by": "python -m tests.support.ipadapter_nodes <ComfyUI_IPAdapter_plus folder>",
            "note": "Node names, input names, input types and fixed option lists of the nodes the FaceID "
                    "workflow uses; {\"file_list\": folder} stands for a menu of that models folder.",
        },
        "nodes": {name: _to_json(nodes[name]) for name in names},
    }


def load_ipadapter_nodes() -> tuple[dict, str]:
    """(nodes, where they came from): parsed from the source if present, else the snapshot."""
    path = source_path()
    if path is not None:
        return parse_ipadapter_plus(path), path
    with open(SNAPSHOT, encoding="utf-8") as f:
        data = json.load(f)
    return {k: _from_json(v) for k, v in data["nodes"].items()}, SNAPSHOT


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("IPADAPTER_PLUS_PATH", DEFAULT_PATH)
    json.dump(snapshot(os.path.join(root, "IPAdapterPlus.py")), sys.stdout, indent=1)
    sys.stdout.write("\n")
