"""POST /fineface/download through a real ComfyUI server (main.py, the pack in custom_nodes) with HF_ENDPOINT
pointing at a hub stand-in on 127.0.0.1: the files arrive in the server's models/fineface/, progress reaches
the page's websocket as the pack's event, and a request that names a URL or a path is refused."""
from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request

import aiohttp
import pytest

from fineface_core.weightfiles.releases import RELEASES
from tests.support.comfy_env import comfy_path
from tests.support.comfy_server import ComfyServer
from tests.support.hub_server import HubServer, release_bytes

REPO = "Tvaranka/fineface"


@pytest.fixture(scope="module")
def hub():
    with HubServer(prefix="/mirror") as server:
        yield server


@pytest.fixture(scope="module")
def comfy(hub):
    old = os.environ.get("HF_ENDPOINT")
    os.environ["HF_ENDPOINT"] = hub.url  # the server inherits it
    try:
        server = ComfyServer(comfy_path()).start()
    finally:
        if old is None:
            del os.environ["HF_ENDPOINT"]
        else:
            os.environ["HF_ENDPOINT"] = old
    yield server
    server.stop()


def post(comfy, body, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(comfy.url + "/fineface/download", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.load(e)


def state(comfy):
    with urllib.request.urlopen(comfy.url + "/fineface/download", timeout=10) as res:
        return json.load(res)


def wait_until_ended(comfy, release, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = state(comfy)["jobs"].get(release)
        if job and job["state"] != "running":
            return job
        time.sleep(0.1)
    raise AssertionError(f"the {release} download did not end within {timeout} s: {state(comfy)}")


@pytest.mark.parametrize("body", [
    {"release": "sd21", "url": "http://127.0.0.1:9/au_encoder.ckpt"},
    {"release": "sd21", "folder": "/tmp"},
    {"path": "/etc/passwd"},
    {"release": "../../etc"},
    {"release": "https://evil.example/x.ckpt"},
    ["sd21"],
    {"release": 21},
])
def test_a_request_that_is_not_just_a_release_name_is_refused(comfy, hub, body):
    before = len(hub.log.requests)
    status, answer = post(comfy, body)
    assert status == 400
    assert "sd21" in answer["error"] and ("never gives an address or a folder" in answer["error"] or "unknown release" in answer["error"])
    assert len(hub.log.requests) == before  # nothing was fetched
    assert post(comfy, None, raw=b"release=sd21")[0] == 400


def test_files_the_pack_does_not_fetch_get_where_to_find_them(comfy):
    status, answer = post(comfy, {"release": "libreface"})
    assert status == 200 and answer["state"] == "elsewhere"
    assert "models/libreface" in answer["message"] and "non-commercial" in answer["message"]
    assert "stabilityai/stable-diffusion-2-1-base" in post(comfy, {"release": "checkpoint"})[1]["message"]


async def _events_while(comfy, start, release):
    """Start the download with a page's websocket open; the pack's events it receives until the job ends."""
    events = []
    async with aiohttp.ClientSession() as session, session.ws_connect(comfy.url.replace("http", "ws") + "/ws") as ws:
        await asyncio.get_running_loop().run_in_executor(None, start)
        deadline = time.time() + 60
        while time.time() < deadline:
            msg = await ws.receive(timeout=60)
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["type"] == "fineface.download":
                events.append(data["data"])
                if data["data"]["release"] == release and data["data"]["state"] != "running":
                    return events
    raise AssertionError(f"no end of the download reached the page: {events}")


def test_the_release_downloads_into_models_fineface_with_progress_on_the_websocket(comfy, hub):
    files = release_bytes("sd21")
    for name, body in files.items():
        hub.put(REPO, name, body)
    big = RELEASES["sd21"].processors_file
    hub.files[f"/mirror/{REPO}/resolve/main/{big}"].cut_after = len(files[big]) // 3
    folder = os.path.join(comfy.folder, "models", "fineface")

    # the connection drops in the middle of the adapter file: the job says so, the bytes stay for the next try
    answers = []
    events = asyncio.run(_events_while(comfy, lambda: answers.append(post(comfy, {"release": "sd21"})), "sd21"))
    assert answers[0][0] == 202 and answers[0][1]["state"] == "running"
    assert events[-1]["state"] == "failed" and f"{big} stopped at" in events[-1]["message"]
    assert os.path.getsize(os.path.join(folder, big + ".partial")) == len(files[big]) // 3

    hub.log.requests.clear()
    events = asyncio.run(_events_while(comfy, lambda: post(comfy, {"release": "sd21"}), "sd21"))
    assert events[-1]["state"] == "done", events[-1]
    # the page is told where the adapter file continues from (events during a file are at most 4 a second)
    assert any(e["state"] == "running" and e["file"] == big and e["done"] == len(files[big]) // 3 for e in events)
    assert hub.log.requests[0] == (f"/mirror/{REPO}/resolve/main/{big}", f"bytes={len(files[big]) // 3}-")
    for name, body in files.items():
        with open(os.path.join(folder, name), "rb") as f:
            assert f.read() == body
    assert sorted(os.listdir(folder)) == sorted(files)
    assert state(comfy)["jobs"]["sd21"]["files"] == {
        RELEASES["sd21"].encoder_file: "present", big: "downloaded", RELEASES["sd21"].lora_file: "downloaded"}

    # the node lists them now, and asking again fetches nothing and replaces nothing
    with urllib.request.urlopen(comfy.url + "/object_info/FineFaceReleaseLoader", timeout=10) as res:
        inputs = json.load(res)["FineFaceReleaseLoader"]["input"]["required"]
    assert inputs["au_encoder"][0][0] == RELEASES["sd21"].encoder_file
    hub.log.requests.clear()
    assert post(comfy, {"release": "sd21"})[0] == 202
    job = wait_until_ended(comfy, "sd21")
    assert job["state"] == "done" and "nothing to download" in job["message"] and hub.log.requests == []
