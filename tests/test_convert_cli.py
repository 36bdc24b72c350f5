"""`python -m fineface_core convert` never loses a file: no overwriting without --overwrite, never
onto one of its inputs, atomic writes, no silent fp16 overflow, and clear errors (exit 2) for
output paths it cannot use."""
import os
import resource
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fineface_core.weightfiles.cli import main
from fineface_core.weightfiles.loading import load_weights
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LORA = "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_official_release(str(tmp_path_factory.mktemp("release") / "sd21"), tiny_unet("sd21"), "sd21", seed=9)


def convert(capsys, *argv):
    capsys.readouterr()
    code = main(["convert", *map(str, argv)])
    return code, capsys.readouterr()


def test_an_existing_output_is_replaced_only_with_overwrite(release, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"the user's other file")
    code, io = convert(capsys, release, out)
    assert code == 2 and "already exists" in io.err and "--overwrite" in io.err
    assert out.read_bytes() == b"the user's other file"
    code, io = convert(capsys, release, out, "--overwrite")
    assert code == 0, io.err
    assert load_weights(str(out)).family.key == "sd21"
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's private one


def test_the_output_is_never_one_of_the_inputs(release, tmp_path, capsys):
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    lora_bytes = (folder / LORA).read_bytes()
    os.symlink(folder, tmp_path / "alias")
    os.symlink(folder / LORA, tmp_path / "link.safetensors")
    os.link(folder / LORA, tmp_path / "hardlink.safetensors")
    spellings = [folder / LORA, f"{folder}/./{LORA}", f"{folder}/../release/{LORA}", tmp_path / "alias" / LORA,
                 tmp_path / "link.safetensors", tmp_path / "hardlink.safetensors"]
    for out in spellings:
        code, io = convert(capsys, folder, out, "--overwrite")
        assert code == 2 and "is one of the files being read" in io.err, (out, io.err)
        assert (folder / LORA).read_bytes() == lora_bytes
    # A single-file source onto itself.
    single = tmp_path / "single.safetensors"
    assert convert(capsys, folder, single)[0] == 0
    before = single.read_bytes()
    code, io = convert(capsys, single, single, "--overwrite")
    assert code == 2 and "is one of the files being read" in io.err and single.read_bytes() == before
    # A new file inside the source folder is fine: the load did not read it.
    assert convert(capsys, folder, folder / "converted.safetensors")[0] == 0


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(release, tmp_path):
    # A real write failure: the process may not write files over 64 KiB (RLIMIT_FSIZE, which binds root too).
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"previous version")
    r = subprocess.run([sys.executable, "-m", "fineface_core", "convert", release, str(out), "--overwrite"],
                       cwd=ROOT, capture_output=True, text=True, preexec_fn=_limit_file_size)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: could not write {out}") and "nothing was written" in r.stderr
    assert "Traceback" not in r.stderr
    assert out.read_bytes() == b"previous version"
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_fp16_overflow_is_refused_naming_the_tensor(release, tmp_path, capsys):
    src = tmp_path / "big.safetensors"
    assert convert(capsys, release, src)[0] == 0
    tensors = load_file(str(src))
    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    key = "adapter.up_blocks.1.attentions.2.transformer_blocks.0.attn2.au_to_v.weight"
    tensors[key][3, 5] = -1.5e5
    save_file(tensors, str(src), metadata=meta)
    out = tmp_path / "half.safetensors"
    code, io = convert(capsys, src, out, "--dtype", "fp16")
    assert code == 2 and not out.exists()
    assert f"cannot store {key!r} as float16: its values reach 150000" in io.err and "--dtype bf16" in io.err
    code, io = convert(capsys, src, out, "--dtype", "bf16")
    assert code == 0, io.err
    assert load_weights(str(out)).au_to_v[key[len("adapter."):-len(".au_to_v.weight")]].dtype == torch.bfloat16


def test_unusable_output_paths_get_a_clear_error(release, tmp_path, capsys):
    (tmp_path / "folder.safetensors").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    cases = [
        (tmp_path / "folder.safetensors", "is a folder"),
        (tmp_path / "notes.txt" / "m.safetensors", f"{tmp_path / 'notes.txt'} is a file, not a folder"),
        (tmp_path / "notes.txt" / "deeper" / "m.safetensors", f"{tmp_path / 'notes.txt'} is a file, not a folder"),
        ("/proc/fineface_test.safetensors", "cannot write /proc/fineface_test.safetensors"),
        ("/proc/fineface_test/m.safetensors", "cannot write /proc/fineface_test/m.safetensors"),
    ]
    for out, says in cases:
        code, io = convert(capsys, release, out)
        assert code == 2 and io.err.startswith("error: ") and says in io.err, (out, io.err)
    assert sorted(os.listdir(tmp_path)) == ["folder.safetensors", "notes.txt"]
    assert os.listdir(tmp_path / "folder.safetensors") == []
    # The same through the real command line: a message, no traceback.
    r = subprocess.run([sys.executable, "-m", "fineface_core", "convert", release, "/proc/fineface_test.safetensors"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: cannot write") and "Traceback" not in r.stderr


def test_a_torch_checkpoint_renamed_safetensors_is_named_as_such(release, tmp_path, capsys):
    """Not "truncated, download it again" (it would never download whole): what the file really is."""
    import pickle

    zipped, pickled = tmp_path / "zip.safetensors", tmp_path / "pickle.safetensors"
    torch.save({"a": torch.zeros(2)}, zipped)
    pickled.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    for source, what in ((zipped, "a torch checkpoint (a zip archive"), (pickled, "a Python pickle")):
        code, io = convert(capsys, source, tmp_path / "out.safetensors")
        assert code == 2 and f"{source} is {what}" in io.err and "Download it again" not in io.err, io.err
        capsys.readouterr()
        assert main(["inspect", str(source)]) == 2 and what in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()


def test_help_and_option_mistakes_answer_before_torch_is_imported():
    probe = ("import sys\nfrom fineface_core.weightfiles.cli import main\n"
             "for argv in (['--help'], ['convert', 'a', 'b.txt'], ['convert', 'a']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'safetensors')))\n")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "must end in .safetensors" in r.stderr and "required: out" in r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
