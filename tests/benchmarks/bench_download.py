"""Speed of the release download over local HTTP, and what its checks cost.

    python -m tests.benchmarks.bench_download [--mb 100] [--repeats 3]

A torch pickle of ``--mb`` MB (the SD 2.1 release's attn_processors.ckpt is about 100 MB: au_to_k / au_to_v of
16 layers, 12,480 channels in all, 1024 wide, float32) served by the tests' hub stand-in on 127.0.0.1, fetched
with download_file into a fresh folder; then the same with a sha256 in the table; then the check alone (the
file read back as tensors only). Medians of wall and process CPU seconds after a warm-up. The network is
loopback: a real download is bound by the connection, these figures are what the pack adds to it.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import tempfile

from tests.benchmarks.timing import timed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    from fineface_core.files.safe_load import load_pickled_state_dict
    from fineface_core.weightfiles import download as dl
    from tests.support.hub_server import HubServer

    g = torch.Generator().manual_seed(0)
    n = args.mb * (1 << 20) // 4 // 1024
    buf = io.BytesIO()
    torch.save({"down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.au_to_v.weight":
                torch.randn(n, 1024, generator=g)}, buf)
    body = buf.getvalue()
    size_mb = len(body) / 1e6
    with HubServer() as hub, tempfile.TemporaryDirectory() as tmp:
        hub.put(dl.REPO, "bench.ckpt", body)
        runs = iter(range(10**6))

        def fetch(file):
            folder = os.path.join(tmp, str(next(runs)))
            os.makedirs(folder)
            assert dl.download_file(file, folder, endpoint=hub.url) == "downloaded"
            return os.path.join(folder, file.name)

        plain = timed(lambda: fetch(dl.HubFile("bench.ckpt")), args.repeats)
        hashed = timed(lambda: fetch(dl.HubFile("bench.ckpt", sha256=hashlib.sha256(body).hexdigest())), args.repeats)
        path = fetch(dl.HubFile("bench.ckpt"))
        check = timed(lambda: load_pickled_state_dict(path, "bench"), args.repeats)
    print(f"file: {size_mb:.0f} MB torch pickle, loopback HTTP, median of {args.repeats}")
    for what, (wall, cpu) in (("download + size + format check", plain), ("... + sha256", hashed),
                              ("format check alone (read as tensors)", check)):
        print(f"  {what:40s} {wall:6.2f} s wall ({size_mb / wall:6.0f} MB/s)  {cpu:6.2f} s CPU")


if __name__ == "__main__":
    main()
