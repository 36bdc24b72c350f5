"""Fetching the official release's files from the Hugging Face hub into a folder (models/fineface/).

Only files this pack knows, from their known address: ``{endpoint}/{repo}/resolve/main/{file}``, where the
endpoint is ``HF_ENDPOINT`` (a mirror) or https://huggingface.co. A caller names a release, never a URL or a path.

Each file streams into ``<name>.partial`` beside its final place; an interrupted download is continued from
there with an HTTP Range request. The size the server states (Content-Length / Content-Range) and, where
known, a sha256 are checked, then the file is read as what it must be (a safetensors header, a torch pickle
read as tensors only) before it takes its name, by a link that fails rather than replace a file.
"""
from __future__ import annotations

import errno
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import WeightFileError
from ..files.safe_load import load_pickled_state_dict, read_safetensors_header
from ..files.digest import file_sha256
from ..files.safe_write import check_output_path, fsync_file, fsync_folder
from .releases import HUB_REPO, RELEASES

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO = HUB_REPO
# file name -> sha256 (hex) of the official file, checked when present. None are published with the release
# and none were measured here (the hub cannot be reached from this machine); add them as they are known.
SHA256: dict[str, str] = {}
PARTIAL = ".partial"
CHUNK = 1 << 20
USER_AGENT = "comfyui-fineface (release download)"


@dataclass(frozen=True)
class HubFile:
    name: str
    repo: str = REPO
    sha256: str | None = None

    @property
    def is_safetensors(self) -> bool:
        return self.name.endswith(".safetensors")


@dataclass(frozen=True)
class Progress:
    """What a download is doing, for a progress bar: file ``index`` (from 0) of ``count``."""
    file: str
    index: int
    count: int
    done: int  # bytes of this file on disk
    total: int | None  # its size, once the server said it
    state: str  # "starting", "downloading", "present" (kept as it was), "done"


def release_files(release: str) -> tuple[HubFile, ...]:
    """The hub files of one release ('sd21', 'sd15'), with their sha256 where known."""
    variant = RELEASES.get(release) if isinstance(release, str) else None
    if variant is None:
        raise WeightFileError(f"unknown release {release!r}: choose one of {', '.join(sorted(RELEASES))}")
    names = (variant.encoder_file, variant.processors_file, variant.lora_file)
    return tuple(HubFile(n, sha256=SHA256.get(n)) for n in names if n)


def hub_endpoint(environ=None) -> str:
    """HF_ENDPOINT (a mirror of the hub), else the hub itself; refused unless it is a plain http(s) address."""
    raw = (os.environ if environ is None else environ).get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    parts = urllib.parse.urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise WeightFileError(f"HF_ENDPOINT is {raw!r}: set it to a mirror's address such as https://hf-mirror.com "
                              f"(or unset it for {DEFAULT_ENDPOINT}) and restart ComfyUI")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def file_url(file: HubFile, endpoint: str | None = None) -> str:
    endpoint = hub_endpoint() if endpoint is None else endpoint
    return f"{endpoint}/{file.repo}/resolve/main/{urllib.parse.quote(file.name)}"


def download_release(release: str, folder: str, progress: Callable[[Progress], None] | None = None,
                     endpoint: str | None = None, timeout: float = 60.0) -> dict[str, str]:
    """Fetch the release's files that ``folder`` lacks; file name -> 'downloaded' or 'present' (left as it was)."""
    files = release_files(release)
    endpoint = hub_endpoint() if endpoint is None else endpoint
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise WeightFileError(f"cannot create {folder} for the {RELEASES[release].label} release: {e.strerror or e}") from None
    report = progress or (lambda p: None)
    states = {}
    for i, file in enumerate(files):
        def file_progress(done, total, state, name=file.name, index=i):
            report(Progress(name, index, len(files), done, total, state))
        states[file.name] = download_file(file, folder, file_progress, endpoint, timeout)
    return states


def download_file(file: HubFile, folder: str, progress: Callable[[int, int | None, str], None] | None = None,
                  endpoint: str | None = None, timeout: float = 60.0) -> str:
    """One file into ``folder``: 'present' if a file of that name is there (never replaced), else 'downloaded'."""
    report = progress or (lambda done, total, state: None)
    final = os.path.join(folder, file.name)
    partial = final + PARTIAL
    if os.path.isdir(final):
        raise WeightFileError(f"{final} is a folder, not {file.name}: move it out of {folder} and download again")
    if os.path.lexists(final):
        report(_size(final), _size(final), "present")
        return "present"
    check_output_path(final, overwrite=False)
    url = file_url(file, endpoint)
    start = _size(partial) if os.path.isfile(partial) else 0
    report(start, None, "starting")
    total = _fetch(file, url, partial, start, report, timeout)
    _check(file, partial, total)
    _publish(partial, final)
    report(total, total, "done")
    return "downloaded"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_RANGE_UNSATISFIED = re.compile(r"^bytes \*/(\d+)$")


def _fetch(file: HubFile, url: str, partial: str, start: int, report, timeout: float) -> int:
    """Stream the file into ``partial`` from byte ``start``; its full size."""
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    kept = f"the {start:,} bytes already fetched stay in {partial}" if start else "nothing was written"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        unsatisfied = _RANGE_UNSATISFIED.match(e.headers.get("Content-Range", "")) if e.code == 416 else None
        if unsatisfied and int(unsatisfied[1]) == start:
            return start  # the partial already holds the whole file: check it
        if unsatisfied:
            _remove(partial)
            raise WeightFileError(
                f"{partial} is {start:,} bytes, larger than {file.name} on the server ({int(unsatisfied[1]):,}): it is "
                "not a piece of this file and was removed. Download again.") from None
        raise WeightFileError(f"{url} answered HTTP {e.code} ({e.reason}): {_http_hint(e.code)}; {kept}.") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise WeightFileError(f"could not reach {url} ({reason}): check the connection, or set HF_ENDPOINT to a "
                              f"Hugging Face mirror; {kept}.") from None
    with response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
            raise WeightFileError(f"{url} sent a web page (HTML), not {file.name}: a sign-in or error page, or "
                                  f"HF_ENDPOINT is not a Hugging Face mirror; {kept}.")
        if response.status == 206:
            got = _RANGE.match(response.headers.get("Content-Range", ""))
            if not got or int(got[1]) != start:
                raise WeightFileError(f"{url} answered the request for bytes {start:,} on with "
                                      f"{response.headers.get('Content-Range')!r}; {kept}.")
            total, mode = int(got[3]), "ab"
        elif response.status == 200:
            length = response.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise WeightFileError(f"{url} did not say how large {file.name} is (no Content-Length), so it cannot be "
                                      f"checked; {kept}.")
            total, start, mode = int(length), 0, "wb"  # a server that ignores Range sends it all: start over
        else:
            raise WeightFileError(f"{url} answered HTTP {response.status}, not the file; {kept}.")
        return _stream(file, response, partial, start, total, mode, report)


def _stream(file: HubFile, response, partial: str, done: int, total: int, mode: str, report) -> int:
    try:
        out = open(partial, mode)  # noqa: SIM115 (closed below; the open alone gets its own message)
    except OSError as e:
        raise WeightFileError(f"cannot write {partial}: {e.strerror or e}") from None
    with out:
        try:
            while done < total:
                chunk = response.read(min(CHUNK, total - done))
                if not chunk:
                    break
                if done == 0:
                    _refuse_wrong_start(file, chunk, partial)
                out.write(chunk)
                done += len(chunk)
                report(done, total, "downloading")
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise WeightFileError(f"the disk is full: {partial} stopped at {done:,} of {total:,} bytes; free "
                                      "space and download again to continue") from None
            raise WeightFileError(_stopped(file, partial, done, total, e)) from None
        out.flush()
    fsync_file(partial)  # what was received stays received, whatever happens next
    if done < total:
        raise WeightFileError(_stopped(file, partial, done, total, "the connection closed"))
    return total


def _stopped(file: HubFile, partial: str, done: int, total: int, why) -> str:
    return (f"the download of {file.name} stopped at {done:,} of {total:,} bytes ({why}); they are kept in "
            f"{partial}: download again to continue from there")


def _refuse_wrong_start(file: HubFile, head: bytes, partial: str):
    """The first bytes name a web page or the other format early, before the whole body is fetched."""
    what = _what_it_is(head)
    expected = "a safetensors file" if file.is_safetensors else "a torch checkpoint"
    if what != expected:
        _remove(partial)
        raise WeightFileError(f"the server sent {what}, not {file.name} ({expected}); nothing was kept. "
                              "If HF_ENDPOINT is set, check that it is a Hugging Face mirror.")


def _what_it_is(head: bytes) -> str:
    if head.startswith((b"PK\x03\x04", b"\x80")):
        return "a torch checkpoint"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return "a safetensors file"
    text = head[:200].lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")):
        return "a web page (HTML)"
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer"
    return f"something else (it starts with {head[:16]!r})"


def _check(file: HubFile, partial: str, total: int):
    """Size, sha256 where known, then the format read for real; a file that fails is removed."""
    size = _size(partial)
    if size != total:
        _remove(partial)
        raise WeightFileError(f"{partial} is {size:,} bytes, the server said {file.name} is {total:,}; it was removed. "
                              "Download again.")
    if file.sha256:
        digest = file_sha256(partial)
        if digest != file.sha256.lower():
            _remove(partial)
            raise WeightFileError(f"{file.name} does not match the release (sha256 {digest}, expected "
                                  f"{file.sha256}); the download was removed. If HF_ENDPOINT is set, check the mirror.")
    try:
        if file.is_safetensors:
            read_safetensors_header(partial, file.name)
        else:
            load_pickled_state_dict(partial, file.name)
    except WeightFileError as e:
        _remove(partial)
        raise WeightFileError(f"the downloaded {file.name} is not a usable weight file and was removed: {e}") from None


def _publish(partial: str, final: str):
    """Give the checked file its name without replacing one that appeared meanwhile. safe_write has no such
    helper (its writer replaces the target on purpose); a hard link is atomic and fails on an existing name."""
    try:
        os.link(partial, final)
    except FileExistsError:
        raise WeightFileError(f"{final} appeared while it was downloading; it was left as it is, and the download "
                              f"stays in {partial}") from None
    except OSError as e:  # a file system without hard links: a rename, which Windows refuses over a file too
        if os.name != "nt" and os.path.lexists(final):
            raise WeightFileError(f"{final} appeared while it was downloading; it was left as it is") from None
        try:
            os.rename(partial, final)
        except OSError as e2:
            raise WeightFileError(f"cannot name the download {final}: {e2.strerror or e2} (link: {e.strerror or e})") from None
        fsync_folder(os.path.dirname(final) or ".")
        return
    _remove(partial)
    fsync_folder(os.path.dirname(final) or ".")


def _remove(path: str):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _http_hint(code: int) -> str:
    if code in (401, 403):
        return "the server wants a sign-in or refuses this address (a mirror that does not carry the repository?)"
    if code == 404:
        return "the file is not there: if HF_ENDPOINT is set, check that it is a Hugging Face mirror"
    if code == 429 or code >= 500:
        return "the server is busy or failing: try again later"
    return "not the file"


WHERE_ELSE = {
    # Files the workflows need that this action does not fetch, and why: what the button says instead.
    "libreface": ("LibreFace's AU model resnet.pt goes into models/libreface/ (then refresh the page). It is not fetched "
                  "for you: it comes under USC's non-commercial research license, which is yours to accept. It is in "
                  "LibreFace's GitHub repository ihp-lab/LibreFace, file AU_Recognition/resnet_disfa_all/DISFA/all/"
                  "resnet.pt; docs/copy_expression.md gives its download address."),
    "checkpoint": ("Also needed: a Stable Diffusion checkpoint in models/checkpoints/, SD 2.1 base for the SD 2.1 "
                   "release (Hugging Face stabilityai/stable-diffusion-2-1-base, v2-1_512-ema-pruned.safetensors), an "
                   "SD 1.5 model for the SD 1.5 release."),
}
