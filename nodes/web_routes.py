"""Routes for the face on the AU Vector node (web/au_face.js): the AU facts and the server's own spec check.

The front end never parses a spec: it asks here, and the answer is what the node itself computes.
"""
from __future__ import annotations

import asyncio
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor

from fineface_core.au_vector import au_schema, preview
from fineface_core.aus import AU_ORDER
from fineface_core.errors import quoted


# The face sends one node's preset, spec and sliders: a few hundred bytes. ComfyUI's server takes bodies up to
# its upload limit (100 MB); a cap keeps one request short.
MAX_BODY = 64 * 1024
# Python's int() refuses more than 4,300 digits (ValueError, read as "not JSON"): a longer number is named as such.
MAX_JSON_DIGITS = 4300

# Specs are parsed off ComfyUI's event loop, one at a time: however many previews are asked for at once, the
# server's own routes (/object_info, /prompt) share the interpreter with at most one parsing thread.
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fineface-spec")


class _TooLongNumber(ValueError):
    pass


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise _TooLongNumber(f"the request holds a number of {len(text.lstrip('-')):,} digits; the face sends "
                             "intensities between -10 and 10")
    return int(text)


def _bad_request(web, message: str):
    return web.json_response({"error": message}, status=400)


def read_preview_request(body) -> tuple[str, str, dict[str, float]] | str:
    """(preset, spec, sliders) from the request's JSON, or what is wrong with it."""
    if not isinstance(body, dict):
        return "send a JSON object {preset, spec, sliders}"
    preset, spec, sliders = body.get("preset", "none"), body.get("spec", ""), body.get("sliders")
    if not isinstance(preset, str) or not isinstance(spec, str):
        return "preset and spec must be strings"
    if not isinstance(sliders, dict) or sorted(sliders) != sorted(AU_ORDER):
        return f"sliders must map each of {', '.join(AU_ORDER)} to a number"
    values = {}
    for code, value in sliders.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"slider {code} is {quoted(json.dumps(value), 40)}: give a finite number"
        try:
            values[code] = float(value)  # a JSON integer has no size limit: 10**400 does not fit a float
        except OverflowError:
            return f"slider {code} is a whole number too large for a float: give a finite number"
        if not math.isfinite(values[code]):
            return f"slider {code} is {values[code]!r}: give a finite number"
    return preset, spec, values


async def read_json(request) -> tuple[object, str | None]:
    """(the request's JSON, None), or (None, what is wrong with the body)."""
    too_large = (f"the request body is larger than {MAX_BODY:,} bytes; the face sends one node's preset, spec and "
                 "sliders (a spec this long is checked when the node runs)")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None, too_large
    body = b""
    while len(body) <= MAX_BODY:  # a chunked body has no length: read at most one byte past the cap
        chunk = await request.content.read(MAX_BODY + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > MAX_BODY:
        return None, too_large
    try:
        return json.loads(body, parse_int=_json_int), None
    except _TooLongNumber as err:
        return None, str(err)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than Python's recursion limit
        return None, "the request body is not JSON"


def register(server) -> None:
    """Add the routes to ComfyUI's PromptServer (served under / and, in newer ComfyUI, /api too)."""
    from aiohttp import web

    routes = server.routes

    @routes.get("/fineface/aus")
    async def fineface_aus(request):
        return web.json_response(au_schema())

    @routes.post("/fineface/au_vector")
    async def fineface_au_vector(request):
        body, wrong = await read_json(request)
        if wrong:
            return _bad_request(web, wrong)
        parsed = read_preview_request(body)
        if isinstance(parsed, str):
            return _bad_request(web, parsed)
        # A refused spec is an answer, not a failed request: the face shows its message.
        return web.json_response(await asyncio.get_running_loop().run_in_executor(_PARSER, preview, *parsed))


def register_with_running_server() -> None:
    """Register when ComfyUI's server is up (it is not when the headless runner or the tests load the pack)."""
    server_module = sys.modules.get("server")  # main.py imports it before it loads custom nodes
    instance = getattr(getattr(server_module, "PromptServer", None), "instance", None)
    if instance is not None:
        register(instance)
        # imported here, not on top: download_routes imports read_json from this module
        from . import download_routes
        download_routes.register(instance)
