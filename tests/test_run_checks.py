"""The headless runner refuses bad options before it imports ComfyUI, and never replaces an
output file the user did not name."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from workflows import run as headless
from workflows.run_checks import SWEEP_CHOICES, UsageError, out_paths, sweep_choice

from tests.support import comfy_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKEN = "BROKEN-TREE-IMPORTED"


@pytest.fixture
def broken_comfyui(tmp_path):
    """A folder that looks like ComfyUI (is_comfyui passes) but fails loudly when imported."""
    root = tmp_path / "ComfyUI"
    (root / "comfy").mkdir(parents=True)
    for name in ("nodes.py", "execution.py", "folder_paths.py", "comfy/__init__.py"):
        (root / name).write_text(f"raise RuntimeError({BROKEN!r})\n")
    return str(root)


def files(tmp_path):
    d = tmp_path / "files"
    d.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(d / "opaque.png")
    (d / "notes.txt").write_text("not an image")
    whole = (d / "opaque.png").read_bytes()
    (d / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (d / "folder").mkdir()
    return d


def run_in_fresh_python(cases, comfyui):
    """main() for each argument list, in one new process: [(rc, stderr)], and which ComfyUI modules got imported."""
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        from workflows import run
        results = []
        for argv in json.loads(sys.argv[1]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    rc = run.main(argv)
                except SystemExit as e:  # argparse
                    rc = e.code
            results.append([rc, err.getvalue()])
        imported = sorted(m for m in ("comfy", "folder_paths", "execution", "server") if m in sys.modules)
        print(json.dumps({"results": results, "imported": imported}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    argvs = [["--comfyui", comfyui, "--prompt", "a face"] + list(args) for args, _ in cases]
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(argvs)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_bad_option_fails_before_comfyui_is_imported(tmp_path, broken_comfyui):
    f = files(tmp_path)
    missing = str(tmp_path / "missing")
    png, txt, folder = str(f / "opaque.png"), str(f / "notes.txt"), str(f / "folder")
    cases = [
        (["--sweep", "AU7"], "--sweep AU7: not one of the 12 AUs"),
        (["--sweep", "13"], "not one of the 12 AUs"),
        (["--sweep", "AU12", "--cells", "-3"], "--cells -3"),
        (["--sweep", "AU12", "--cells", "1"], "at least 2 cells"),
        (["--sweep", "AU12", "--from", "inf"], "--from inf: give a finite number"),
        (["--sweep", "AU12", "--to", "nan"], "--to nan: give a finite number"),
        (["--sweep", "AU12", "--to", "11"], "--to 11: intensities go from -10 to 10"),
        (["--steps", "-1"], "--steps -1"),
        (["--steps", "0"], "at least 1 sampling step"),
        (["--cfg", "nan"], "--cfg nan: give a finite number"),
        (["--cfg", "-2"], "--cfg -2"),
        (["--seed", "-1"], "--seed -1"),
        (["--seed", str(2 ** 64)], "--seed"),
        (["--width", "500"], "--width 500: give a positive multiple of 8"),
        (["--height", "-64"], "--height -64"),
        (["--width", "0"], "--width 0"),
        (["--image", png, "--denoise", "1.5"], "--denoise 1.5: give a value from 0"),
        (["--image", png, "--denoise", "nan"], "--denoise nan"),
        (["--image", png, "--width", "100"], "--width 100: give a positive multiple of 8 (or 0"),
        (["--image", missing], "no such file"),
        (["--image", txt], "not an image file"),
        (["--image", str(f / "truncated.png")], "cannot be read"),
        (["--image", folder], "is not a file"),
        (["--image", png, "--mask-from-alpha"], "no transparent area"),
        (["--models-dir", missing], "--models-dir " + missing + ": no such folder"),
        (["--models-dir", txt], "is a file, not a folder"),
        (["--output-dir", txt], "--output-dir " + txt + ": is a file"),
        (["--output-dir", os.path.join(txt, "sub")], "is a file, so no folder can be made"),
        (["--comfyui", missing], "--comfyui " + missing + ": no such folder"),
        (["--comfyui", txt], "--comfyui " + txt + ": is a file"),
        (["--comfyui", folder], "is not a ComfyUI folder"),
        # /sys refuses new files even to root, for whom access() says yes everywhere
        (["--output-dir", "/sys/fineface-output"], "--output-dir /sys/fineface-output: cannot write in /sys"),
        (["--out", "/sys/fineface.png"], "--out /sys/fineface.png: cannot write in /sys"),
        (["--out", folder], "is a folder; give a file name in it"),
        (["--out", os.path.join(txt, "x.png")], "is a file, so no folder can be made under it"),
        (["--out", str(tmp_path / "x.jpg")], "must be a .png file"),
        (["--aus", "AU7@3"], "AU7"),
        (["--aus", "happiness", "--sweep", "AU12"], "the sweep workflow sweeps one AU (--sweep) over intensities; --aus "
                                                    "belongs to the basic, edit, redraw, face_crop and grid workflows"),
        (["--workflow", "basic", "--aus", "happiness; sadness"],
         "several expressions (separated by ';') are for the grid workflow (--workflow grid)"),
        (["--steps", "many"], "invalid int value"),  # argparse's own check, same exit status
        (["--keyframes", "0: neutral; 20: happiness", "--frames", "16"], "frame 20 is past the end"),
        (["--keyframes", "0: neutral; 4: smirk"], "smirk"),
        (["--keyframes", "4: happiness; 2: neutral"], "increasing frame order"),
        (["--keyframes", "0: neutral", "--aus", "happiness"], "--aus belong to the other workflows"),
        (["--keyframes", "0: neutral", "--out", str(tmp_path / "x.png")], "must be a .webp file (an animation"),
        (["--keyframes", "0: neutral", "--out", folder], "e.g. " + os.path.join(folder, "fineface.webp")),
        (["--keyframes", "0: neutral", "--fps", "0"], "--fps 0: give a frame rate"),
        (["--keyframes", "0: neutral", "--frames", "0"], "--frames 0: give 1 to 4096 frames"),
        (["--frames", "8"], "give --keyframes"),
        (["--easing", "hold", "--aus", "happiness"], "give --keyframes"),
        (["--workflow", "face_crop"], "the face_crop workflow needs --image"),
        (["--workflow", "face_crop", "--image", png, "--width", "512"], "--width / --height do not apply to the face_crop workflow"),
        (["--workflow", "face_crop", "--image", png, "--mask-from-alpha"], "--mask-from-alpha belongs to the redraw"),
        (["--workflow", "face_crop", "--image", png, "--face", "-1"], "--face -1: give a face index"),
        (["--workflow", "redraw", "--image", png, "--face", "1"], "--face / --crop-size belong to the edit, neutralize, edit_sweep and face_crop"),
        (["--workflow", "face_crop", "--image", png, "--crop-size", "500"], "--crop-size 500: give a multiple of 64"),
        (["--workflow", "basic", "--denoise", "0.5"], "--denoise belongs to the redraw and face_crop workflows"),
        (["--workflow", "basic", "--image", png], "--image belongs to the edit, neutralize, edit_sweep, redraw and face_crop"),
        # options that would otherwise be dropped without a word
        (["--workflow", "basic", "--keyframes", "0: happiness"], "--keyframes renders the AU animation workflow, not --workflow basic"),
        (["--workflow", "grid", "--aus", "neutral; sadness", "--keyframes", "0: happiness"], "not --workflow grid"),
        (["--workflow", "animation"], "the animation workflow needs --keyframes, e.g."),
        (["--which-face", "rightmost"], "--which-face goes with --aus-from PHOTO"),
        (["--face-index", "1", "--intensities", "LibreFace raw"], "--face-index / --intensities go with --aus-from PHOTO"),
        (["--aus-from", png, "--face-index", "1"], "--face-index goes with --which-face 'by index': add that"),
        (["--aus-from", png, "--which-face", "by index", "--face-index", "-1"], "--face-index -1: faces are counted from 0"),
    ]
    out = run_in_fresh_python(cases, broken_comfyui)
    for (args, expected), (rc, err) in zip(cases, out["results"]):
        assert rc == 2, (args, err)
        assert expected in err, (args, err)
        assert BROKEN not in err and "Traceback" not in err, (args, err)
    assert out["imported"] == []  # ComfyUI was never imported
    assert not os.listdir(tmp_path / "files" / "folder")  # nothing was written


def test_good_options_do_reach_comfyui(tmp_path, broken_comfyui):
    """The control for the test above: with valid options the runner does import the tree (and says
    clearly that it failed to start, without a traceback)."""
    f = files(tmp_path)
    out = run_in_fresh_python([(["--sweep", "AU12", "--from", "-2", "--to", "4", "--cells", "4", "--seed", "0",
                                 "--steps", "1", "--cfg", "0", "--width", "64", "--height", "64",
                                 "--models-dir", str(f), "--output-dir", str(tmp_path / "new" / "output"),
                                 "--out", str(tmp_path / "new" / "sweep.png")], "")], broken_comfyui)
    (rc, err), = out["results"]
    assert rc == 1
    assert "failed to start" in err and BROKEN in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()  # no folder made before ComfyUI ran


def test_sweep_choice_names_the_au_as_the_sweep_node_lists_it():
    assert sweep_choice("AU12") == sweep_choice("12") == sweep_choice("au12") == "AU12 Lip Corner Puller"
    assert sweep_choice("AU4 Brow Lowerer") == "AU4 Brow Lowerer"
    with pytest.raises(UsageError, match="AU7 Lid Tightener is a FACS action unit FineFace was not trained on"):
        sweep_choice("AU7")
    with pytest.raises(UsageError, match="AU1, AU2, AU4, AU5, AU6, AU9, AU12, AU15, AU17, AU20, AU25, AU26"):
        sweep_choice("smile")


def test_sweep_choices_are_the_sweep_nodes_menu(tmp_path):
    comfy_env.import_comfy()
    comfy_env.load_custom_node_pack(ROOT)
    import nodes

    menu = nodes.NODE_CLASS_MAPPINGS["FineFaceAUSweep"].INPUT_TYPES()["required"]["au"][0]
    assert list(SWEEP_CHOICES) == list(menu) and len(menu) == 12


def test_one_image_replaces_the_named_file(tmp_path):
    image = tmp_path / "rendered.png"
    Image.new("RGB", (8, 8), (0, 255, 0)).save(image)
    out = tmp_path / "out" / "mine.png"
    out.parent.mkdir()
    Image.new("RGB", (8, 8)).save(out)
    headless.copy_out([str(image)], str(out), overwrite=False)
    assert Image.open(out).getpixel((0, 0)) == (0, 255, 0)


def test_several_images_never_replace_unnamed_files_without_overwrite(tmp_path):
    images = []
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        images.append(str(tmp_path / f"rendered_{i}.png"))
        Image.new("RGB", (8, 8), colour).save(images[-1])
    out = str(tmp_path / "result.png")
    assert out_paths(out, 2) == [str(tmp_path / "result_1.png"), str(tmp_path / "result_2.png")]
    (tmp_path / "result_2.png").write_bytes(b"the user's file")
    with pytest.raises(UsageError, match=r"result_2.png exists; choose another --out, or pass --overwrite"):
        headless.copy_out(images, out, overwrite=False)
    assert (tmp_path / "result_2.png").read_bytes() == b"the user's file"
    assert not (tmp_path / "result_1.png").exists()  # all or nothing
    headless.copy_out(images, out, overwrite=True)
    assert Image.open(tmp_path / "result_2.png").getpixel((0, 0)) == (0, 0, 255)


def test_a_failed_copy_leaves_every_file_as_it_was_and_nothing_half_written(tmp_path):
    """Two images to <out>_1 / <out>_2 with --overwrite; the second one cannot be read (gone): the user's
    <out>_1 is kept, not replaced by the first image, and no temporary file is left beside it."""
    first = tmp_path / "rendered_0.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(first)
    (tmp_path / "result_1.png").write_bytes(b"the user's file")
    with pytest.raises(FileNotFoundError):
        headless.copy_out([str(first), str(tmp_path / "gone.png")], str(tmp_path / "result.png"), overwrite=True)
    assert (tmp_path / "result_1.png").read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rendered_0.png", "result_1.png"]


def test_out_may_name_the_saved_image_itself(tmp_path):
    """--out pointing at the very file ComfyUI saved (--output-dir x --out x/FineFace_00001_.png) is kept whole."""
    image = tmp_path / "FineFace_00001_.png"
    Image.new("RGB", (8, 8), (0, 255, 0)).save(image)
    headless.copy_out([str(image)], str(image), overwrite=False)
    assert Image.open(image).getpixel((0, 0)) == (0, 255, 0)
    assert [p.name for p in tmp_path.iterdir()] == [image.name]


@pytest.mark.slow
def test_ctrl_c_mid_render_says_so_and_leaves_the_named_file_as_it_was(models_dir, tmp_path):
    """A real `python -m workflows.run` interrupted with SIGINT while it samples: it stops there (from 0.3.x
    ComfyUI's asyncio.run would take the signal over and finish the prompt first), exit status 130, a line saying
    what happened instead of ComfyUI's traceback, --out untouched, no scratch folder left behind."""
    out = tmp_path / "mine.png"
    out.write_bytes(b"the user's file")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, COMFYUI_PATH=comfy_env.comfy_path(), TMPDIR=str(scratch))
    argv = [sys.executable, "-m", "workflows.run", "--cpu", "--models-dir", str(models_dir), "--output-dir",
            str(tmp_path / "output"), "--prompt", "a face", "--aus", "happiness", "--steps", "500", "--width", "64",
            "--height", "64", "--out", str(out)]
    # a shell's background job ignores SIGINT, and children inherit that: the runner gets Python's own handler
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:
            if "step 2/500" in line:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # seconds when it stops in the sampler; 500 steps take minutes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    # the last word is the runner's (a newer tree logs its own import warnings with tracebacks at start-up)
    assert err.strip().splitlines()[-1].startswith(f"interrupted (Ctrl-C): the render stopped; --out {out} was not")
    assert "KeyboardInterrupt" not in err and "samplers.py" not in err
    assert out.read_bytes() == b"the user's file"
    assert not list((tmp_path / "output").rglob("*.png"))  # stopped in the sampler, not after Save Image
    assert not list(scratch.iterdir())  # the runner's scratch folder (input copy, previews) is gone
