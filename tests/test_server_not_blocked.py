"""The face's spec route never stalls ComfyUI: a real server on 127.0.0.1 (the tree under test, this pack
installed) keeps answering /object_info while 50 of the costliest previews a request can ask for are in flight.

Bounded: 50 requests, each at most 64 KiB; every wait has a timeout; the server is stopped at the end.
"""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from fineface_core.au_vector import MAX_SPEC_LINES, PREVIEW_LINES
from fineface_core.aus import AU_ORDER, MAX_TERMS
from tests.support.comfy_env import comfy_path
from tests.support.comfy_server import ComfyServer

ZERO = {code: 0.0 for code in AU_ORDER}
N_REQUESTS = 50
# The costliest spec the route reads whole: as many lines and terms per line as it takes (one term is the preset),
# each term a preset (its AUs looked up and range-checked one by one). Terms add (one rule), so they alternate in
# sign: the running sum stays in range and every term is read (a sum out of range would end the line early).
WORST = "\n".join(["+".join(["happiness@4", "happiness@-4"] * ((MAX_TERMS - 1) // 2))] * PREVIEW_LINES)
# The case: 20,000 lines "1" (60 KB), once 2.2 s of the event loop and a 1.3 MB answer each.
MANY_LINES = "1\n" * 20_000


@pytest.fixture(scope="module")
def server():
    server = ComfyServer(comfy_path()).start()
    try:
        yield server
    finally:
        server.stop()


async def _object_info(session, url) -> float:
    t0 = time.perf_counter()
    async with session.get(url + "/object_info", timeout=aiohttp.ClientTimeout(total=30)) as res:
        assert res.status == 200
        await res.read()
    return time.perf_counter() - t0


async def _preview(session, url, spec) -> tuple[int, int, dict, float]:
    body = json.dumps({"preset": "fear", "spec": spec, "sliders": ZERO})
    async with session.post(url + "/fineface/au_vector", data=body, timeout=aiohttp.ClientTimeout(total=120)) as res:
        raw = await res.read()
        return res.status, len(raw), json.loads(raw), time.perf_counter()


def test_fifty_costly_previews_do_not_delay_object_info_by_a_second(server):
    assert len(WORST.encode()) < 64 * 1024 and len(MANY_LINES) > MAX_SPEC_LINES * 2

    async def run():
        async with aiohttp.ClientSession() as session:
            await _object_info(session, server.url)  # warm: the first answer builds ComfyUI's node list
            baseline = min([await _object_info(session, server.url) for _ in range(3)])
            specs = [WORST if i % 2 == 0 else MANY_LINES for i in range(N_REQUESTS)]
            posts = [asyncio.create_task(_preview(session, server.url, spec)) for spec in specs]
            await asyncio.sleep(0.3)  # every request sent and being read or parsed
            loaded = await _object_info(session, server.url)
            answered_at = time.perf_counter()
            answers = await asyncio.wait_for(asyncio.gather(*posts), timeout=180)
            return baseline, loaded, answered_at, answers

    baseline, loaded, answered_at, answers = asyncio.run(run())
    print(f"/object_info: {baseline * 1000:.0f} ms alone, {loaded * 1000:.0f} ms with {N_REQUESTS} previews in flight; "
          f"last preview answered {max(a[3] for a in answers) - answered_at:.2f} s after it")
    # the previews were still being worked on when /object_info answered: it did not wait for them
    assert sum(done > answered_at for *_, done in answers) >= N_REQUESTS // 4
    assert loaded - baseline < 1.0, (baseline, loaded)
    worst, many = answers[0], answers[1]
    assert worst[0] == 200 and worst[2]["error"] is None and len(worst[2]["base"]) == PREVIEW_LINES
    assert many[0] == 200 and many[2]["base"] is None
    assert many[2]["error"].startswith("the spec has 20,000 lines: AU Vector takes at most 4,096")
    assert max(size for _, size, _, _ in answers) < 16 * 1024  # small answers (once 1.3 MB), whatever the spec
    assert all(status == 200 for status, *_ in answers)
