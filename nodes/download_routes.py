"""Routes for the Release Loader's "Download weights" button (web/release_download.js).

POST /fineface/download {"release": "sd21"} starts fetching that release's files into models/fineface/ in a
thread (never on the event loop); a request names a release and nothing else: the pack knows the addresses
and the folder. Progress goes to every open page as the ``fineface.download`` event and is answered by
GET /fineface/download. One download at a time: two would write the same .partial files.
"""
from __future__ import annotations

import threading
import time

from fineface_core.errors import FineFaceError
from fineface_core.weightfiles import download
from fineface_core.weightfiles.releases import RELEASES

from .paths import fineface_dirs
from .web_routes import read_json

EVENT = "fineface.download"
EVERY_S = 0.25  # progress events at most this often (and at every change of file or state)


class Downloads:
    """The state of each release's download, shared by the worker thread and the routes."""

    def __init__(self, send=None):
        self._lock = threading.Lock()
        self._jobs: dict[str, dict] = {}
        self._send = send or (lambda event, data: None)
        self._last_sent = 0.0

    def snapshot(self) -> dict:
        with self._lock:
            return {release: dict(job) for release, job in self._jobs.items()}

    def running(self) -> str | None:
        with self._lock:
            return next((r for r, job in self._jobs.items() if job["state"] == "running"), None)

    def start(self, release: str, folder: str, endpoint: str) -> dict:
        with self._lock:
            busy = next((r for r, job in self._jobs.items() if job["state"] == "running"), None)
            if busy is not None:
                return dict(self._jobs[busy])
            self._jobs[release] = {"release": release, "name": RELEASES[release].label, "state": "running",
                                   "folder": folder, "file": None, "index": 0, "count": len(download.release_files(release)),
                                   "done": 0, "total": None, "files": {}, "message": "starting"}
            job = dict(self._jobs[release])
        threading.Thread(target=self._run, args=(release, folder, endpoint), daemon=True,
                         name=f"fineface-download-{release}").start()
        return job

    def _update(self, release: str, force: bool = False, **changes):
        with self._lock:
            job = self._jobs[release]
            job.update(changes)
            now = time.monotonic()
            if not force and now - self._last_sent < EVERY_S:
                return
            self._last_sent = now
            data = dict(job)
        self._send(EVENT, data)

    def _run(self, release: str, folder: str, endpoint: str):
        def progress(p):
            files = {**self.snapshot()[release]["files"]}
            if p.state in ("present", "done"):
                files[p.file] = "present" if p.state == "present" else "downloaded"
            self._update(release, force=p.state != "downloading", file=p.file, index=p.index, done=p.done,
                         total=p.total, files=files, message=f"{p.file} ({p.index + 1} of {p.count})")
        try:
            states = download.download_release(release, folder, progress, endpoint)
        except FineFaceError as e:
            self._update(release, force=True, state="failed", message=str(e))
        except Exception as e:  # noqa: BLE001 (a bug must still end the job, and say what it was)
            self._update(release, force=True, state="failed", message=f"the download failed: {type(e).__name__}: {e}")
        else:
            fetched = [n for n, s in states.items() if s == "downloaded"]
            kept = [n for n, s in states.items() if s == "present"]
            said = (f"downloaded {', '.join(fetched)}" if fetched else "nothing to download") + (
                f"; already there, kept as they are: {', '.join(kept)}" if kept else "")
            self._update(release, force=True, state="done", files=states, message=f"{RELEASES[release].label} release in {folder}: {said}")


def read_download_request(body) -> str:
    """The release a request names, or raise ValueError saying what is wrong with it."""
    if not isinstance(body, dict) or set(body) != {"release"}:
        raise ValueError('send {"release": "sd21"} (or "sd15") and nothing else: the pack knows where each file '
                         "comes from and where it goes; a request never gives an address or a folder")
    release = body["release"]
    if not isinstance(release, str) or (release not in RELEASES and release not in download.WHERE_ELSE):
        raise ValueError(f"unknown release {str(release)[:40]!r}: choose one of {', '.join(sorted(RELEASES))}")
    return release


def catalogue(folder: str) -> dict:
    return {"releases": {r: {"name": RELEASES[r].label, "files": [f.name for f in download.release_files(r)]} for r in RELEASES},
            "folder": folder, "elsewhere": dict(download.WHERE_ELSE)}


def register(server, downloads: Downloads | None = None) -> Downloads:
    """Add the routes to ComfyUI's PromptServer (send_sync is safe to call from the worker thread)."""
    from aiohttp import web

    if downloads is None:
        downloads = Downloads(lambda event, data: server.send_sync(event, data))

    @server.routes.get("/fineface/download")
    async def fineface_download_state(request):
        return web.json_response({**catalogue(fineface_dirs()[0]), "jobs": downloads.snapshot()})

    @server.routes.post("/fineface/download")
    async def fineface_download(request):
        body, wrong = await read_json(request)
        try:
            if wrong:
                raise ValueError(wrong)
            release = read_download_request(body)
            if release in download.WHERE_ELSE:
                return web.json_response({"release": release, "state": "elsewhere", "message": download.WHERE_ELSE[release]})
            endpoint = download.hub_endpoint()
        except ValueError as e:  # FineFaceError is one too
            return web.json_response({"error": str(e)}, status=400)
        busy = downloads.running()
        if busy is not None and busy != release:
            return web.json_response({"error": f"the {RELEASES[busy].label} release is downloading; wait until it ends"},
                                     status=409)
        return web.json_response(downloads.start(release, fineface_dirs()[0], endpoint), status=202)

    return downloads
