"""A real ComfyUI server with this pack installed, for the browser tests.

The ComfyUI tree is never changed: the server runs from a shadow of it in a temporary folder (its
top-level .py files copied, its packages linked), so that ComfyUI's own folders -- custom_nodes with a
link to this pack, user, input, output, models -- and, for the 2024 tree, its ``web`` folder are the
shadow's. The 2024 server serves whatever ``web`` holds (it has no --front-end-root); newer servers are
given --front-end-root.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from tests.support.browser import write_first_run_settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACK_NAME = "comfyui-fineface"
_OWN = {"custom_nodes", "user", "input", "output", "models", "temp", "web", "extra_model_paths.yaml"}


def is_legacy(tree: str) -> bool:
    """The 2024 tree carries its own front end and has no --front-end-root."""
    return os.path.isfile(os.path.join(tree, "web", "index.html"))


def pinned_frontend(tree: str) -> str | None:
    """The comfyui-frontend-package version a newer tree's requirements.txt pins."""
    req = os.path.join(tree, "requirements.txt")
    if not os.path.isfile(req):
        return None
    for line in open(req, encoding="utf-8"):
        if line.startswith("comfyui-frontend-package=="):
            return line.split("==", 1)[1].strip()
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shadow(tree: str, folder: str, web_root: str | None, settings: dict) -> None:
    for name in os.listdir(tree):
        src = os.path.join(tree, name)
        if name in _OWN or name.startswith((".", "__pycache__")):
            continue
        if os.path.isdir(src):
            os.symlink(src, os.path.join(folder, name))
        elif name.endswith((".py", ".txt", ".toml", ".ini")):
            shutil.copy(src, os.path.join(folder, name))
    for name in ("custom_nodes", "user", "input", "output", "models", "temp"):
        os.makedirs(os.path.join(folder, name))
    os.symlink(ROOT, os.path.join(folder, "custom_nodes", PACK_NAME))
    write_first_run_settings(os.path.join(folder, "user"), settings)
    if is_legacy(tree):
        os.symlink(web_root or os.path.join(tree, "web"), os.path.join(folder, "web"))


class ComfyServer:
    """``python main.py --cpu`` in a shadow of ``tree``, on a free port; ``frontend`` is a front end's
    static folder (None: the tree's own); ``settings`` are the front end's user settings."""

    def __init__(self, tree: str, frontend: str | None = None, settings: dict | None = None):
        self.tree, self.frontend, self.settings = tree, frontend, settings or {}
        self.folder = tempfile.mkdtemp(prefix="fineface-comfy-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.folder, "server.log")
        self.proc = None

    def start(self, timeout: float = 120.0) -> "ComfyServer":
        """Start the server and wait until it serves the pack's node; on failure nothing is left running."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> "ComfyServer":
        _shadow(self.tree, self.folder, self.frontend, self.settings)
        args = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--disable-auto-launch"]
        if self.frontend and not is_legacy(self.tree):
            args += ["--front-end-root", self.frontend]
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=self.folder, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/object_info/FineFaceAUVector", timeout=2) as res:
                    if res.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
