"""Issue 22 items 5 and 10: the headless runner's --image (and --aus-from) as ComfyUI's Load Image reads it.

Files PIL refuses (decompression bombs, PNG text chunks past its limit) or Load Image misreads (16-bit grayscale
turned white, an animation made a batch, a name ending in " [output]") are named before ComfyUI starts."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.support.shipped_runs import comfy_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


RUNS = textwrap.dedent("""
    import contextlib, io, json, sys
    from workflows import run
    out = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            out.append([run.main(argv), err.getvalue()])
    print(json.dumps({"results": out, "comfyui": "folder_paths" in sys.modules}))
""")


def run_in_one_process(argvs: list[list[str]]) -> dict:
    """The runner's main() on each argv in a fresh process: {"results": [[rc, stderr]...], "comfyui": imported?}."""
    proc = subprocess.run([sys.executable, "-c", RUNS, json.dumps(argvs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def hostile_images(folder):
    """The issue's files, written with real writers: {name: (path, what the message must say)}."""
    import struct
    import zlib

    from PIL import Image, PngImagePlugin

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    side = 20000  # 1-bit, all black: 48 KB on disk, 400 megapixels
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * ((side // 8 + 1) * side), 9)) + chunk(b"IEND", b""))
    (folder / "bomb.png").write_bytes(bomb)
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (8 << 20), zip=True)  # 8 MB of text, a few KB compressed
    Image.new("RGB", (64, 64), (200, 120, 90)).save(folder / "text_bomb.png", pnginfo=info)
    gray16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "gray16.png")
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    return {
        "bomb": (folder / "bomb.png", "decompression bomb"),
        "text chunk": (folder / "text_bomb.png", "a PNG text chunk"),
        "16-bit": (folder / "gray16.png", "16-bit grayscale image"),
        "animation": (folder / "anim.gif", "is an animation (GIF, 3 frames)"),
    }


def test_images_pil_refuses_or_comfyui_misreads_are_named_before_comfyui_starts(comfy, tmp_path):
    paths = hostile_images(tmp_path)
    argvs = [["--comfyui", comfy_path(), "--workflow", workflow, "--image", str(path), "--aus", "happiness"]
             for path, _ in paths.values() for workflow in ("edit", "face_crop")]
    report = run_in_one_process(argvs)
    says = [s for _, s in paths.values() for _ in (0, 1)]
    for (rc, err), (argv, say) in zip(report["results"], zip(argvs, says)):
        assert rc == 2 and err.startswith(f"error: --image {argv[5]}: ") and say in err, (argv, err)
        assert "Traceback" not in err
    assert not report["comfyui"]  # refused before ComfyUI was imported


def test_comfyui_reads_the_runners_name_as_the_users_file(tmp_path):
    """ComfyUI's own folder_paths: the name the runner hands over resolves to the copied file, never to the output
    folder's file of the same stem (--image "photo.png [output]")."""
    from tests.support import comfy_env
    from workflows.image_input import comfy_name

    comfy_env.import_comfy()
    import folder_paths

    for user in ("photo.png [output]", "photo.png [input]", "x [temp]", "../../etc/passwd", ".hidden.png", "é.png"):
        name = comfy_name(os.path.join(str(tmp_path), user))
        assert folder_paths.annotated_filepath(name) == (name, None) and os.sep not in name and name[0] != "."
        assert folder_paths.get_annotated_filepath(name, "/in") == os.path.join("/in", name)


@pytest.mark.slow
def test_headless_image_named_like_an_output_is_the_users_photo(comfy, models_dir, tmp_path, capsys):
    """The issue's run: --image "photo.png [output]" rendered the output folder's photo.png, exit 0."""
    from PIL import Image

    from tests.support.libreface_files import skimage_photo
    from workflows import run as headless

    photo = np.full((300, 420, 3), 120, np.uint8)
    photo[20:276, 150:406] = skimage_photo("astronaut.png")[:256, 96:352]
    user = tmp_path / "photo.png [output]"
    Image.fromarray(photo).save(user, format="PNG")
    os.makedirs(tmp_path / "output")
    Image.new("RGB", (200, 160), (10, 200, 10)).save(tmp_path / "output" / "photo.png")  # no face, another size
    out = tmp_path / "face.png"
    rc = headless.main(["--comfyui", comfy_path(), "--models-dir", str(models_dir), "--output-dir",
                        str(tmp_path / "output"), "--workflow", "face_crop", "--image", str(user), "--face", "0",
                        "--aus", "happiness", "--denoise", "0.5", "--steps", "1", "--crop-size", "64", "--out", str(out)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == photo.shape  # the user's photo, not the output folder's
    assert np.array_equal(image[:, :140], photo[:, :140])  # outside the face's square, untouched


def test_aus_from_photo_pil_refuses_is_named_before_comfyui_starts(tmp_path):
    """--aus-from reads its photo with PIL in the runner itself: a bomb was a raw DecompressionBombError."""
    paths = hostile_images(tmp_path)
    cases = [paths["bomb"], paths["text chunk"]]
    argvs = [["--comfyui", comfy_path(), "--workflow", "basic", "--aus-from", str(path)] for path, _ in cases]
    report = run_in_one_process(argvs)
    for (rc, err), (path, say) in zip(report["results"], cases):
        assert rc == 2 and f"--aus-from {path}: " in err and say in err, err
        assert "Traceback" not in err
    assert not report["comfyui"]

