"""pyproject.toml against the Comfy Registry's specification (docs.comfy.org/registry/specifications), offline.

The rules are the spec's: the node id (letters, digits, - _ .; no two special characters in a row; a letter first;
under 100 characters; no "ComfyUI" in it), a three-number version, a license file or text, a Repository URL,
classifiers from the registry's own OS and accelerator values (ComfyUI's parser drops them all when one is not),
and [tool.comfy] PublisherId, DisplayName, Icon (a square image of at most 400 px) and requires-comfyui. Where the
ComfyUI tree under test has its own pyproject parser (comfy_config, 0.3.6x and later), it reads the file too.
"""
from __future__ import annotations

import os
import re
import sys
import tomllib
from urllib.parse import urlparse

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from PIL import Image

from tests.support.comfy_env import comfy_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRY_OS = ("Microsoft", "POSIX", "MacOS", "OS Independent")
REGISTRY_ACCELERATORS = {"GPU :: NVIDIA CUDA", "GPU :: AMD ROCm", "GPU :: Intel Arc", "NPU :: Huawei Ascend",
                         "GPU :: Apple Metal"}
TESTED_COMFYUI = ("0.3.64", "0.8.0")  # the numbered releases the suite was run on (README)


@pytest.fixture(scope="module")
def pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def node_id_problems(name: str) -> list[str]:
    """What the registry's rules say is wrong with a node id (none: an empty list)."""
    problems = []
    if not 0 < len(name) < 100:
        problems.append("must be 1 to 99 characters")
    if not re.fullmatch(r"[A-Za-z0-9_.-]*", name):
        problems.append("may hold only letters, digits, '-', '_' and '.'")
    if re.search(r"[-_.]{2}", name):
        problems.append("may not hold two special characters in a row")
    if not re.match(r"[A-Za-z]", name):
        problems.append("must start with a letter")
    if "comfyui" in name.lower():
        problems.append('should not contain "ComfyUI"')
    return problems


@pytest.mark.parametrize("bad", ["ComfyUI-fineface", "123-tool", "-fineface", "fine--face", "fine face", "x" * 100])
def test_node_id_rules_refuse_what_the_spec_refuses(bad):
    assert node_id_problems(bad)


def test_project_section(pyproject):
    project = pyproject["project"]
    assert node_id_problems(project["name"]) == []
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"]), "the registry wants X.Y.Z"
    assert project["description"].strip()
    license_ = project["license"]
    assert set(license_) in ({"file"}, {"text"}), "license = { file = ... } or { text = ... }"
    if "file" in license_:
        assert os.path.isfile(os.path.join(ROOT, license_["file"]))
    assert Version(".".join(map(str, sys.version_info[:3]))) in SpecifierSet(project["requires-python"])
    repository = urlparse(project["urls"]["Repository"])
    assert repository.scheme == "https" and repository.netloc and repository.path.strip("/")


def test_classifiers_are_the_registrys(pyproject):
    classifiers = pyproject["project"]["classifiers"]
    systems = [c.split(" :: ", 1)[1] for c in classifiers if c.startswith("Operating System :: ")]
    accelerators = [c.split(" :: ", 1)[1] for c in classifiers if c.startswith("Environment ::")]
    assert systems and all(s.startswith(REGISTRY_OS) for s in systems)
    assert accelerators and set(accelerators) <= REGISTRY_ACCELERATORS


def test_tool_comfy_section(pyproject):
    comfy = pyproject["tool"]["comfy"]
    assert re.fullmatch(r"[a-z][a-z0-9-]*", comfy["PublisherId"])
    assert comfy["DisplayName"].strip() and "comfyui" not in comfy["DisplayName"].lower()
    assert "web" not in comfy, "WEB_DIRECTORY serves web/; a `web` key would register it twice on ComfyUI 0.8.0"
    required = SpecifierSet(comfy["requires-comfyui"])
    assert all(Version(v) in required for v in TESTED_COMFYUI)


def test_icon_is_a_square_image_shipped_in_the_repository(pyproject):
    icon = urlparse(pyproject["tool"]["comfy"]["Icon"])
    repository = urlparse(pyproject["project"]["urls"]["Repository"]).path.strip("/")
    assert icon.scheme == "https" and icon.netloc == "raw.githubusercontent.com"
    owner, repo, _branch, *path = icon.path.strip("/").split("/")  # raw.githubusercontent.com/<owner>/<repo>/<branch>/...
    assert f"{owner}/{repo}" == repository, "the icon must come from the project's repository"
    local = os.path.join(ROOT, *path)
    assert path and os.path.isfile(local), f"{'/'.join(path)} is not in this repository"
    with Image.open(local) as image:
        assert image.format in ("PNG", "JPEG", "GIF")
        assert image.width == image.height <= 400


def test_comfyuis_own_parser_reads_it():
    tree = comfy_path()
    if not os.path.isdir(os.path.join(tree, "comfy_config")):
        pytest.skip("this ComfyUI tree has no pyproject parser (comfy_config came with 0.3.6x); "
                    "set COMFYUI_PATH to a newer tree")
    pytest.importorskip("pydantic_settings", reason="ComfyUI's parser needs pydantic-settings (its requirements)")
    from comfy_config import config_parser

    config = config_parser.extract_node_configuration(ROOT)
    assert config.project.name == "fineface"
    assert config.project.supported_os and config.project.supported_accelerators  # [] when one is not the registry's
    assert config.project.supported_comfyui_version.startswith(">=")
    assert config.tool_comfy.publisher_id and config.tool_comfy.icon.endswith(".png")
    assert config.tool_comfy.web is None


def test_the_workflows_readme_names_every_shipped_workflow_and_counts_none():
    from workflows import SHIPPED

    with open(os.path.join(ROOT, "workflows", "README.md"), encoding="utf-8") as f:
        text = f.read()
    assert all(f"[`{row.file}`]({row.file})" in text for row in SHIPPED.values())
    words = r"(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|\d+) (ComfyUI )?(graphs|workflows)"
    assert not re.search(words, text, re.IGNORECASE), "a count of the workflows goes stale as workflows are added"
