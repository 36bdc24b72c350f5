"""Routes for the face on the AU Vector node (web/au_face.js): the AU facts and the server's own spec check.

The front end never parses a spec: it asks here, and the answer is what the node itself computes.
"""
from __future__ import annotations

import math
import sys

from fineface_core.au_schema import au_schema
from fineface_core.aus import AU_ORDER

from .au_vector import preview


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
    for code, value in sliders.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"slider {code} is {value!r}: give a finite number"
    return preset, spec, {code: float(value) for code, value in sliders.items()}


def register(server) -> None:
    """Add the routes to ComfyUI's PromptServer (served under / and, in newer ComfyUI, /api too)."""
    from aiohttp import web

    routes = server.routes

    @routes.get("/fineface/aus")
    async def fineface_aus(request):
        return web.json_response(au_schema())

    @routes.post("/fineface/au_vector")
    async def fineface_au_vector(request):
        try:
            body = await request.json()
        except ValueError:
            return _bad_request(web, "the request body is not JSON")
        parsed = read_preview_request(body)
        if isinstance(parsed, str):
            return _bad_request(web, parsed)
        # A refused spec is an answer, not a failed request: the face shows its message.
        return web.json_response(preview(*parsed))


def register_with_running_server() -> None:
    """Register when ComfyUI's server is up (it is not when the headless runner or the tests load the pack)."""
    server_module = sys.modules.get("server")  # main.py imports it before it loads custom nodes
    instance = getattr(getattr(server_module, "PromptServer", None), "instance", None)
    if instance is not None:
        register(instance)
