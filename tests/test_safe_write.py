"""fineface_core/files/safe_write.py is the one atomic writer (one durability policy), and files/digest.py the
one file sha256: every writer of the project goes through them, and no module imports another package's
private names."""
from __future__ import annotations

import ast
import hashlib
import os
import subprocess

import pytest

from fineface_core.files import safe_write
from fineface_core.files.digest import BLOCK, file_sha256

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sources() -> dict[str, str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    out = {}
    for path in listed:
        if not path.startswith("tests/") and os.path.isfile(os.path.join(REPO, path)):
            with open(os.path.join(REPO, path), encoding="utf-8") as f:
                out[path] = f.read()
    return out


def test_a_write_is_whole_with_an_ordinary_files_permissions(tmp_path):
    path = tmp_path / "deeper" / "record.json"
    assert safe_write.write_bytes(str(path), b"first") == str(path)
    safe_write.write_bytes(str(path), b"second")
    assert path.read_bytes() == b"second"
    assert os.stat(path).st_mode & 0o777 == safe_write.file_mode()  # mkstemp's private 0600 is not kept
    assert os.listdir(path.parent) == ["record.json"]
    safe_write.write_bytes(str(path), b"third", mode=0o640)
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_a_failed_write_leaves_the_old_file_and_nothing_else(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"previous")
    seen = []

    def fill(tmp):
        seen.append(tmp)
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        safe_write.write_atomically(str(path), fill)
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["weights.bin"]
    # the temporary file was beside the destination, hidden, and named as the cleanups expect
    assert os.path.dirname(seen[0]) == str(tmp_path)
    name = os.path.basename(seen[0])
    assert name.startswith(".weights.bin.") and name.endswith(safe_write.PARTIAL)


def test_staged_files_replace_nothing_until_committed(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"old")
    tmp = safe_write.stage(str(dest), lambda t: open(t, "wb").close())
    assert dest.read_bytes() == b"old" and os.path.exists(tmp)
    safe_write.discard(tmp)
    assert os.listdir(tmp_path) == ["out.png"]
    tmp = safe_write.stage(str(dest), lambda t: open(t, "wb").write(b"new"))
    safe_write.commit(tmp, str(dest))
    assert dest.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.png"]


def test_write_problem_names_the_nearest_existing_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    assert safe_write.write_problem(str(tmp_path / "a" / "b")) == (str(tmp_path), None)
    assert safe_write.write_problem(str(tmp_path / "notes.txt" / "x")) == (str(tmp_path / "notes.txt"),
                                                                            safe_write.NOT_A_FOLDER)
    base, why = safe_write.write_problem("/proc/fineface-test/out")  # a file system that takes no files
    assert base == "/proc" and why


def test_file_sha256_is_the_whole_files(tmp_path):
    data = os.urandom(2 * BLOCK + 17)  # two whole read blocks and a short last one
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(str(tmp_path / "f")) == hashlib.sha256(data).hexdigest()


def test_atomic_writing_and_file_hashing_are_written_once():
    sources = _sources()
    for needle in ("mkstemp(", "os.fsync(", "TemporaryFile(dir="):
        holders = sorted(p for p, text in sources.items() if needle in text)
        assert holders == ["fineface_core/files/safe_write.py"], (needle, holders)
    holders = sorted(p for p, text in sources.items() if "iter(lambda: f.read(" in text)  # a file read to hash
    assert holders == ["fineface_core/files/digest.py"], holders


def test_no_module_imports_a_private_name_from_another_package():
    found = []
    for path, text in _sources().items():
        package = os.path.dirname(path)
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                target = os.path.normpath(os.path.join(package, *[".."] * (node.level - 1), *(node.module or "").split(".")))
            else:
                target = (node.module or "").replace(".", "/")
            same_package = os.path.dirname(target) == package or target == package
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and not same_package:
                    found.append(f"{path}: from {node.module} import {alias.name}")
    assert not found, found
