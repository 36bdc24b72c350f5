"""The architecture's one hard rule, checked from outside: ``fineface_core`` never imports ComfyUI or the
pack's own ComfyUI-, runner- and trainer-side packages.

Every module of the package is imported in a fresh interpreter (so nothing a test imported earlier can hide
an import) and ``sys.modules`` is read afterwards: a forbidden import anywhere in the chain is found, however
deep or lazy-at-module-level it is.
"""
import json
import os
import subprocess
import sys

# ComfyUI's top-level modules and packages that a node pack sees, and the pack's own non-core packages.
FORBIDDEN = ("comfy", "comfy_extras", "comfy_api", "folder_paths", "nodes", "server", "execution",
             "workflows", "training")

_PROBE = r"""
import importlib, json, pkgutil, sys
root, package, forbidden = sys.argv[1], sys.argv[2], tuple(sys.argv[3].split(","))
sys.path.insert(0, root)
pkg = importlib.import_module(package)
names = [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")
                     if not m.name.endswith(".__main__")]
found = {}
for name in names:
    before = set(sys.modules)
    importlib.import_module(name)
    for mod in set(sys.modules) - before:
        if mod.split(".")[0] in forbidden:
            found.setdefault(name, []).append(mod)
print(json.dumps({"modules": names, "forbidden": found}))
"""


def forbidden_imports(root: str, package: str = "fineface_core", extra_path: str = "") -> dict:
    """Import every module of ``package`` (found under ``root``) in a fresh interpreter; returns
    ``{"modules": [...], "forbidden": {module: [forbidden modules it brought in]}}``. ``extra_path`` goes on
    PYTHONPATH (a ComfyUI tree, so that an import of ComfyUI would succeed and be seen, not fail)."""
    env = dict(os.environ, PYTHONPATH=extra_path)
    proc = subprocess.run([sys.executable, "-c", _PROBE, root, package, ",".join(FORBIDDEN)],
                          capture_output=True, text=True, env=env, cwd=root, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"importing {package} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
