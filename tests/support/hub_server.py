"""A stand-in for the Hugging Face hub on 127.0.0.1: real HTTP (http.server in a thread) serving files the test
made at ``/<repo>/resolve/main/<name>``, with Range requests, and on demand a body cut short or a web page."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    body: bytes
    content_type: str = "application/octet-stream"
    cut_after: int | None = None  # the next answer stops after this many body bytes (then the connection drops)
    ranges: bool = True  # False: the server ignores Range and sends it all
    pause: tuple[int, float] | None = None  # (bytes, seconds): the next answer waits that long after those bytes


@dataclass
class HubLog:
    requests: list = field(default_factory=list)  # (path, Range header or None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        hub = self.server.hub
        rng = self.headers.get("Range")
        hub.log.requests.append((self.path, rng))
        served = hub.files.get(self.path)
        if served is None:
            body = b"<!doctype html><title>404</title>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data, start = served.body, 0
        m = re.match(r"^bytes=(\d+)-$", rng or "")
        if m and served.ranges:
            start = int(m[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        part = data[start:]
        self.send_header("Content-Type", served.content_type)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if served.cut_after is not None:
            part, served.cut_after = part[:served.cut_after], None
            self.wfile.write(part)
            self.wfile.flush()
            self.close_connection = True
            return
        if served.pause is not None:
            (at, seconds), served.pause = served.pause, None
            self.wfile.write(part[:at])
            self.wfile.flush()
            time.sleep(seconds)
            part = part[at:]
        self.wfile.write(part)


class HubServer:
    """``with HubServer() as hub: hub.put("Tvaranka/fineface", "au_encoder.ckpt", data)``; ``hub.url`` is the endpoint."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix.rstrip("/")
        self.files: dict[str, Served] = {}
        self.log = HubLog()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{self.prefix}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def put(self, repo: str, name: str, body: bytes, **how) -> Served:
        served = Served(body, **how)
        self.files[f"{self.prefix}/{repo}/resolve/main/{name}"] = served
        return served

    def paths(self) -> list[str]:
        return [p for p, _ in self.log.requests]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def release_bytes(release: str, seed: int = 0) -> dict[str, bytes]:
    """Each file of an official release (names from the release table), as bytes in its own format: torch
    pickles of small state dicts with the release's key names, a peft-named safetensors LoRA. The adapter file
    is the largest (a few MB), so that a download of it takes several reads."""
    import io

    import torch
    from safetensors.torch import save as save_safetensors

    from fineface_core.weightfiles.releases import RELEASES

    v = RELEASES[release]
    g = torch.Generator().manual_seed(seed)
    width = 1024 if release == "sd21" else 768
    path = "down_blocks.0.attentions.0.transformer_blocks.0.attn2"

    def pickled(sd) -> bytes:
        buf = io.BytesIO()
        torch.save(sd, buf)
        return buf.getvalue()

    out = {
        v.encoder_file: pickled({"au_encoder.weight": torch.randn(v.encoder_hidden, 12, generator=g),
                                 "au_encoder.bias": torch.randn(v.encoder_hidden, generator=g)}),
        v.processors_file: pickled({f"{path}.processor.au_to_{k}.weight": torch.randn(640, width, generator=g)
                                    for k in "kv"}),
    }
    if v.lora_file:
        out[v.lora_file] = save_safetensors({f"unet.{path}.to_k.lora_A.weight": torch.randn(8, 320, generator=g),
                                             f"unet.{path}.to_k.lora_B.weight": torch.randn(320, 8, generator=g)})
    return out
