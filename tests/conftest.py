# sys.path, offline hub and ComfyUI are set up by the plugin tests/support/pytest_comfy.py, which
# pyproject's addopts loads before collection.
import os

import pytest

from tests.support import comfy_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def registry():
    """ComfyUI's node registry with this pack loaded as a custom node (ComfyUI's ``nodes`` module)."""
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import nodes

    return nodes
