"""fineface_core never imports ComfyUI (comfy, folder_paths, nodes, server ...) nor the pack's nodes,
workflows or training: every core module imported in a fresh interpreter, sys.modules read after."""
import os
import shutil

from tests.support import comfy_env
from tests.support.import_guard import forbidden_imports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def comfy_tree() -> str:
    import folder_paths  # already importable: the pytest plugin put ComfyUI's tree on sys.path

    return os.path.dirname(os.path.abspath(folder_paths.__file__))


def test_no_core_module_imports_comfyui_or_the_packs_other_packages():
    comfy_env.import_comfy()
    result = forbidden_imports(ROOT, extra_path=comfy_tree())
    assert len(result["modules"]) > 30  # the walk saw the sub-packages, not just the top level
    assert {"fineface_core.faces.detect", "fineface_core.weightfiles.loading",
            "fineface_core.evaluation.run"} <= set(result["modules"])
    assert result["forbidden"] == {}


def test_the_guard_finds_a_core_module_that_imports_comfyui(tmp_path):
    """A copy of the core with a module that imports ComfyUI through another one: the guard names the first."""
    comfy_env.import_comfy()
    shutil.copytree(os.path.join(ROOT, "fineface_core"), tmp_path / "fineface_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "fineface_core" / "faces" / "aa_hook.py").write_text("from . import zz_bridge  # noqa: F401\n")
    (tmp_path / "fineface_core" / "faces" / "zz_bridge.py").write_text("import folder_paths  # noqa: F401\n")
    result = forbidden_imports(str(tmp_path), extra_path=comfy_tree())
    assert "folder_paths" in result["forbidden"].get("fineface_core.faces.aa_hook", [])
