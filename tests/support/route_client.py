"""An aiohttp test client serving exactly the routes a pack module registers (``register(server)``), without
starting ComfyUI's server."""
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


def route_client(register) -> TestClient:
    server = SimpleNamespace(routes=web.RouteTableDef())
    register(server)
    app = web.Application()
    app.add_routes(server.routes)
    return TestClient(TestServer(app))
