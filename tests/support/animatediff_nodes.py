"""ComfyUI-AnimateDiff-Evolved's node definitions, read from its source without importing it.

The pack (github.com/Kosinkadink/ComfyUI-AnimateDiff-Evolved) is not installed in CI, and it only
imports into a 2025 ComfyUI. Its ``INPUT_TYPES`` are dict literals built from constants spread over
the package's modules (``BetaSchedules.ALIAS_LIST`` in utils_model.py, ``LENGTH_MAX`` in
nodes_context.py, the motion-model menu ``get_available_motion_models()``), so they are evaluated here
from the syntax trees of ``animatediff/*.py``: ``from .module import name`` is followed, class-level
constants are evaluated in their class, a no-argument helper that returns an expression is evaluated
through it, and ``folder_paths.get_filename_list(x)`` becomes a :class:`FileList` (a menu of the user's
files, any name valid).

Where the source is not on this machine, ``tests/data/animatediff_nodes.json`` holds the nodes the shipped
AnimateDiff workflow (and the tests) use, written by this module from the real files:

    python -m tests.support.animatediff_nodes /path/to/ComfyUI-AnimateDiff-Evolved > tests/data/animatediff_nodes.json
"""
from __future__ import annotations

import ast
import hashlib
import json
import operator
import os
import sys

from tests.support.ipadapter_nodes import FileList, _from_json, _to_json

SNAPSHOT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "animatediff_nodes.json")
SNAPSHOT_NODES = ("ADE_AnimateDiffLoaderGen1", "ADE_StandardUniformContextOptions", "ADE_StandardStaticContextOptions",
                  "ADE_UseEvolvedSampling")
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Pow: operator.pow,
           ast.FloorDiv: operator.floordiv}


def source_path() -> str | None:
    root = os.environ.get("ANIMATEDIFF_EVOLVED_PATH")
    return root if root and os.path.isfile(os.path.join(root, "animatediff", "nodes.py")) else None


class _Package:
    """The modules of ``animatediff/``: what each name at module level is, and how to evaluate it."""

    def __init__(self, root: str):
        self.folder = os.path.join(root, "animatediff")
        self.scopes: dict[str, dict] = {}
        for name in sorted(os.listdir(self.folder)):
            if name.endswith(".py"):
                with open(os.path.join(self.folder, name), encoding="utf-8") as f:
                    self.scopes[name[:-3]] = self._scope(ast.parse(f.read(), filename=name))

    @staticmethod
    def _scope(tree: ast.Module) -> dict:
        scope = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.level == 1 and stmt.module:
                for alias in stmt.names:
                    scope[alias.asname or alias.name] = ("import", stmt.module, alias.name)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                scope[stmt.targets[0].id] = ("value", stmt.value)
            elif isinstance(stmt, ast.ClassDef):
                scope[stmt.name] = ("class", stmt)
            elif isinstance(stmt, ast.FunctionDef):
                scope[stmt.name] = ("function", stmt)
        return scope

    def lookup(self, module: str, name: str):
        """(module it is defined in, its entry), following relative imports."""
        entry = self.scopes.get(module, {}).get(name)
        if entry is None:
            raise ValueError(f"{name} is not defined at module level in {module}")
        if entry[0] == "import":
            return self.lookup(entry[1], entry[2])
        return module, entry

    def class_attr(self, module: str, cls: ast.ClassDef, attr: str):
        """A class attribute, evaluated in its class (names in a class body see the earlier ones), bases followed."""
        local: dict = {}
        found = False
        for item in cls.body:
            if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                try:
                    local[item.targets[0].id] = self.eval(item.value, module, local)
                except ValueError:
                    continue
                found = found or item.targets[0].id == attr
            if isinstance(item, ast.FunctionDef) and item.name == attr:
                returns = [n for n in ast.walk(item) if isinstance(n, ast.Return)]
                return self.eval(returns[-1].value, module, local)
        if found:
            return local[attr]
        for base in cls.bases:
            if isinstance(base, ast.Name):
                base_module, entry = self.lookup(module, base.id)
                if entry[0] == "class":
                    try:
                        return self.class_attr(base_module, entry[1], attr)
                    except KeyError:
                        pass
        raise KeyError(attr)

    def eval(self, node, module: str, local: dict | None = None):
        local = local or {}
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Dict):
            return {self.eval(k, module, local): self.eval(v, module, local) for k, v in zip(node.keys, node.values)}
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.eval(e, module, local) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.eval(node.operand, module, local)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](self.eval(node.left, module, local), self.eval(node.right, module, local))
        if isinstance(node, ast.Name):
            if node.id in local:
                return local[node.id]
            where, entry = self.lookup(module, node.id)
            if entry[0] == "value":
                return self.eval(entry[1], where)
            raise ValueError(f"{node.id} is a {entry[0]}, not a value")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            where, entry = self.lookup(module, node.value.id)
            if entry[0] == "class":
                try:
                    return self.class_attr(where, entry[1], node.attr)
                except KeyError:
                    raise ValueError(f"{node.value.id}.{node.attr} is not a class constant") from None
        if isinstance(node, ast.Call) and not node.keywords:
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get_filename_list":
                return FileList(self.eval(node.args[0], module, local))
            if isinstance(node.func, ast.Name) and node.func.id == "list" and len(node.args) == 1:
                return list(self.eval(node.args[0], module, local))
            if isinstance(node.func, ast.Name) and not node.args:
                where, entry = self.lookup(module, node.func.id)
                body = entry[1].body if entry[0] == "function" else []
                if len(body) == 1 and isinstance(body[0], ast.Return) and not entry[1].args.args:
                    return self.eval(body[0].value, where)
        raise ValueError(f"cannot evaluate {ast.dump(node)[:120]}")


def parse_animatediff_evolved(root: str, names=None) -> dict:
    """{node name: {"input": INPUT_TYPES(), "output": RETURN_TYPES, "output_name": RETURN_NAMES}}."""
    package = _Package(root)
    mapping = next(e[1] for n, e in package.scopes["nodes"].items() if n == "NODE_CLASS_MAPPINGS")
    nodes = {}
    for key, value in zip(mapping.keys, mapping.values):
        name = key.value
        if names is not None and name not in names:
            continue
        module, (kind, cls) = package.lookup("nodes", value.id)

        def attr(a, default=None, module=module, cls=cls):
            try:
                return package.class_attr(module, cls, a)
            except (KeyError, ValueError):
                return default

        nodes[name] = {"input": attr("INPUT_TYPES"), "output": list(attr("RETURN_TYPES", ())),
                       "output_name": list(attr("RETURN_NAMES", ()))}
    return nodes


def snapshot(root: str, names=SNAPSHOT_NODES) -> dict:
    folder = os.path.join(root, "animatediff")
    digests = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as f:
                digests[f"animatediff/{name}"] = hashlib.sha256(f.read()).hexdigest()
    return {
        "source": {
            "repository": "https://github.com/Kosinkadink/ComfyUI-AnimateDiff-Evolved",
            "sha256": digests,
            "generated_by": "python -m tests.support.animatediff_nodes <ComfyUI-AnimateDiff-Evolved folder>",
            "note": "Node names, input names, input types and fixed option lists of the nodes the AnimateDiff workflow "
                    "and the tests use; {\"file_list\": folder} stands for a menu of that models folder.",
        },
        "nodes": {name: _to_json(node) for name, node in parse_animatediff_evolved(root, set(names)).items()},
    }


def load_animatediff_nodes() -> tuple[dict, str]:
    """(nodes, where they came from): parsed from the source if present, else the snapshot."""
    root = source_path()
    if root is not None:
        return parse_animatediff_evolved(root, set(SNAPSHOT_NODES)), root
    with open(SNAPSHOT, encoding="utf-8") as f:
        data = json.load(f)
    return {k: _from_json(v) for k, v in data["nodes"].items()}, SNAPSHOT


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ANIMATEDIFF_EVOLVED_PATH", "")
    json.dump(snapshot(root), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
