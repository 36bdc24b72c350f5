"""Downloading the official release: a real HTTP download from a hub stand-in on 127.0.0.1 (tests never reach
the internet), interrupted and resumed, checked, refused when the server sends something else."""
from __future__ import annotations

import hashlib
import os

import pytest

from fineface_core.errors import WeightFileError
from fineface_core.weightfiles import download as dl
from fineface_core.weightfiles.releases import RELEASES
from tests.support.hub_server import HubServer, release_bytes

REPO = "Tvaranka/fineface"
SD21 = RELEASES["sd21"]


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


def serve(hub, release="sd21", **how):
    files = release_bytes(release)
    for name, body in files.items():
        hub.put(REPO, name, body, **how)
    return files


def test_downloads_every_file_of_the_release(hub, tmp_path):
    files = serve(hub, "sd21")
    seen = []
    states = dl.download_release("sd21", str(tmp_path), seen.append, endpoint=hub.url)
    assert states == dict.fromkeys(files, "downloaded")
    assert sorted(os.listdir(tmp_path)) == sorted(files)  # no .partial left behind
    for name, body in files.items():
        assert (tmp_path / name).read_bytes() == body
    assert hub.paths() == [f"/{REPO}/resolve/main/{n}" for n in (SD21.encoder_file, SD21.processors_file, SD21.lora_file)]
    big = [p for p in seen if p.file == SD21.processors_file and p.state == "downloading"]
    assert len(big) >= 5 and [p.done for p in big] == sorted(p.done for p in big)  # one report per read, growing
    assert big[-1].done == big[-1].total == len(files[SD21.processors_file]) and big[-1].count == 3
    assert [p.state for p in seen if p.file == SD21.lora_file] == ["starting", "downloading", "done"]


def test_sd15_release_has_two_files(hub, tmp_path):
    files = serve(hub, "sd15")
    assert dl.download_release("sd15", str(tmp_path), endpoint=hub.url) == dict.fromkeys(files, "downloaded")
    assert sorted(files) == sorted([RELEASES["sd15"].encoder_file, RELEASES["sd15"].processors_file])


def test_an_interrupted_download_is_continued_with_a_range_request(hub, tmp_path):
    files = serve(hub, "sd21")
    name = SD21.processors_file
    cut = len(files[name]) * 2 // 5
    hub.files[f"/{REPO}/resolve/main/{name}"].cut_after = cut
    with pytest.raises(WeightFileError) as stopped:
        dl.download_release("sd21", str(tmp_path), endpoint=hub.url)
    assert f"stopped at {cut:,} of {len(files[name]):,} bytes" in str(stopped.value)
    assert "download again to continue" in str(stopped.value)
    partial = tmp_path / (name + dl.PARTIAL)
    assert partial.read_bytes() == files[name][:cut]  # the bytes fetched are kept, under the .partial name only
    assert not (tmp_path / name).exists() and (tmp_path / SD21.encoder_file).exists()

    hub.log.requests.clear()
    states = dl.download_release("sd21", str(tmp_path), endpoint=hub.url)
    assert states == {SD21.encoder_file: "present", name: "downloaded", SD21.lora_file: "downloaded"}
    assert hub.log.requests[0] == (f"/{REPO}/resolve/main/{name}", f"bytes={cut}-")
    assert (tmp_path / name).read_bytes() == files[name] and not partial.exists()


def test_a_server_that_ignores_range_sends_it_all_and_the_file_starts_over(hub, tmp_path):
    files = serve(hub, "sd15", ranges=False)
    name = RELEASES["sd15"].processors_file
    (tmp_path / (name + dl.PARTIAL)).write_bytes(b"\0" * 1000)  # bytes that are not the file's start
    dl.download_release("sd15", str(tmp_path), endpoint=hub.url)
    assert (tmp_path / name).read_bytes() == files[name]


def test_a_partial_larger_than_the_file_is_removed(hub, tmp_path):
    files = serve(hub, "sd15")
    name = RELEASES["sd15"].encoder_file
    (tmp_path / (name + dl.PARTIAL)).write_bytes(b"\0" * (len(files[name]) + 10))
    with pytest.raises(WeightFileError, match="larger than .* on the server .* was removed"):
        dl.download_release("sd15", str(tmp_path), endpoint=hub.url)
    assert not (tmp_path / (name + dl.PARTIAL)).exists()
    dl.download_release("sd15", str(tmp_path), endpoint=hub.url)
    assert (tmp_path / name).read_bytes() == files[name]


def test_an_existing_file_is_never_replaced(hub, tmp_path):
    serve(hub, "sd21")
    mine = tmp_path / SD21.encoder_file
    mine.write_bytes(b"the user's own file")
    states = dl.download_release("sd21", str(tmp_path), endpoint=hub.url)
    assert states[SD21.encoder_file] == "present" and mine.read_bytes() == b"the user's own file"
    assert f"/{REPO}/resolve/main/{SD21.encoder_file}" not in hub.paths()  # not even fetched


def test_a_folder_under_the_files_name_is_named_not_taken_for_the_file(hub, tmp_path):
    serve(hub, "sd15")
    (tmp_path / RELEASES["sd15"].encoder_file).mkdir()
    with pytest.raises(WeightFileError, match="is a folder, not sd15_au_encoder.ckpt: move it out of"):
        dl.download_release("sd15", str(tmp_path), endpoint=hub.url)
    assert os.listdir(tmp_path) == [RELEASES["sd15"].encoder_file] and hub.log.requests == []


def test_a_file_that_appears_during_the_download_is_kept(hub, tmp_path):
    files = serve(hub, "sd21")
    name = SD21.processors_file

    def meanwhile(p):
        if p.file == name and p.state == "downloading" and not (tmp_path / name).exists():
            (tmp_path / name).write_bytes(b"copied in by hand meanwhile")

    with pytest.raises(WeightFileError, match="appeared while it was downloading; it was left as it is"):
        dl.download_release("sd21", str(tmp_path), meanwhile, endpoint=hub.url)
    assert (tmp_path / name).read_bytes() == b"copied in by hand meanwhile"
    assert (tmp_path / (name + dl.PARTIAL)).read_bytes() == files[name]  # the download is not lost either


@pytest.mark.parametrize("case", ["html-page", "html-as-binary", "lfs-pointer", "pickle-for-safetensors",
                                  "safetensors-for-pickle", "truncated-pickle"])
def test_a_file_that_is_not_the_release_file_is_refused(hub, tmp_path, case):
    files = release_bytes("sd21")
    pickle_name, st_name = SD21.encoder_file, SD21.lora_file
    name, body, how = {
        "html-page": (pickle_name, b"<!doctype html><html>Sign in</html>", {"content_type": "text/html; charset=utf-8"}),
        "html-as-binary": (pickle_name, b"<!DOCTYPE html><html><body>Error</body></html>" * 10, {}),
        "lfs-pointer": (pickle_name, b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 5\n", {}),
        "pickle-for-safetensors": (st_name, files[pickle_name], {}),
        "safetensors-for-pickle": (pickle_name, files[st_name], {}),
        "truncated-pickle": (pickle_name, files[pickle_name][: len(files[pickle_name]) // 2], {}),
    }[case]
    hub.put(REPO, name, body, **how)
    with pytest.raises(WeightFileError) as refused:
        dl.download_file(dl.HubFile(name), str(tmp_path), endpoint=hub.url)
    message = str(refused.value)
    expected = {
        "html-page": "sent a web page (HTML), not au_encoder.ckpt",
        "html-as-binary": "the server sent a web page (HTML), not au_encoder.ckpt (a torch checkpoint)",
        "lfs-pointer": "the server sent a Git LFS pointer, not au_encoder.ckpt",
        "pickle-for-safetensors": "the server sent a torch checkpoint, not pytorch_lora_weights.safetensors (a safetensors file)",
        "safetensors-for-pickle": "the server sent a safetensors file, not au_encoder.ckpt (a torch checkpoint)",
        "truncated-pickle": "the downloaded au_encoder.ckpt is not a usable weight file and was removed",
    }[case]
    assert expected in message
    assert os.listdir(tmp_path) == []  # neither the file nor a partial of something that is not it


def test_sha256_is_checked_where_known(hub, tmp_path):
    body = release_bytes("sd15")[RELEASES["sd15"].encoder_file]
    hub.put(REPO, "x.ckpt", body)
    with pytest.raises(WeightFileError, match=r"does not match the release \(sha256 [0-9a-f]{64}, expected 0+\)"):
        dl.download_file(dl.HubFile("x.ckpt", sha256="0" * 64), str(tmp_path), endpoint=hub.url)
    assert os.listdir(tmp_path) == []
    good = dl.HubFile("x.ckpt", sha256=hashlib.sha256(body).hexdigest())
    assert dl.download_file(good, str(tmp_path), endpoint=hub.url) == "downloaded"
    assert (tmp_path / "x.ckpt").read_bytes() == body


def test_the_sha256_table_feeds_the_release_files(monkeypatch):
    monkeypatch.setitem(dl.SHA256, SD21.processors_file, "ab" * 32)
    assert {f.name: f.sha256 for f in dl.release_files("sd21")}[SD21.processors_file] == "ab" * 32


def test_hf_endpoint_is_honoured(tmp_path, monkeypatch):
    with HubServer(prefix="/mirror") as mirror:
        files = serve(mirror, "sd15")
        monkeypatch.setenv("HF_ENDPOINT", mirror.url + "/")
        assert dl.hub_endpoint() == mirror.url
        dl.download_release("sd15", str(tmp_path))
        assert all(p.startswith(f"/mirror/{REPO}/resolve/main/") for p in mirror.paths())
        assert sorted(os.listdir(tmp_path)) == sorted(files)
    monkeypatch.delenv("HF_ENDPOINT")
    assert dl.hub_endpoint() == "https://huggingface.co"
    assert dl.file_url(dl.release_files("sd21")[0]) == f"https://huggingface.co/{REPO}/resolve/main/{SD21.encoder_file}"


@pytest.mark.parametrize("endpoint", ["file:///etc", "ftp://mirror", "hf-mirror.com", "https://m.example/?x=1"])
def test_an_hf_endpoint_that_is_not_a_web_address_is_refused(monkeypatch, endpoint):
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    with pytest.raises(WeightFileError, match="HF_ENDPOINT is .*: set it to a mirror's address"):
        dl.hub_endpoint()


@pytest.mark.parametrize("release", ["../sd21", "https://evil.example/x.ckpt", "/tmp/x", "au_encoder.ckpt", "", None, 3])
def test_only_a_known_release_name_is_accepted(release, tmp_path):
    with pytest.raises(WeightFileError, match="unknown release .*: choose one of sd15, sd21"):
        dl.download_release(release, str(tmp_path), endpoint="http://127.0.0.1:9")
    assert os.listdir(tmp_path) == []


def test_http_errors_and_an_unreachable_server_say_what_to_do(hub, tmp_path):
    with pytest.raises(WeightFileError, match=r"answered HTTP 404 .*check that it is a Hugging Face mirror; nothing was written"):
        dl.download_release("sd21", str(tmp_path), endpoint=hub.url)  # nothing served
    with pytest.raises(WeightFileError, match="could not reach .* set HF_ENDPOINT to a Hugging Face mirror"):
        dl.download_release("sd21", str(tmp_path), endpoint="http://127.0.0.1:9", timeout=5)
    assert os.listdir(tmp_path) == []
