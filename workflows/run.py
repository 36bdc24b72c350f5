"""Render FineFace images without the editor: a shipped workflow, your overrides, ComfyUI's executor.

    python -m workflows.run --prompt "a close-up photo of a woman in a park" --aus "AU6@3 + AU12@4" --out out.png
    python -m workflows.run --sweep AU12 --from 0 --to 5 --cells 6 --out sweep.png
    python -m workflows.run --workflow edit --image photo.jpg --aus "AU12@2" --out smiling.png
    python -m workflows.run --image photo.jpg --neutral --out neutral.png
    python -m workflows.run --workflow redraw --image portrait.png --aus surprise --denoise 0.6 --out redrawn.png
    python -m workflows.run --workflow grid --aus "neutral; happiness; AU4@4 + AU15@3" --out expressions.png

It loads the shipped workflow file (workflows/fineface_*.json, the editor's format), converts it
to an API prompt with :mod:`workflows.api_format`, sets the values you give on the prompt's nodes
(which option sets which node's input: the workflow's row in ``workflows.SHIPPED``) and runs it
through ComfyUI's own executor with this node pack loaded as a custom node. Only local files are
used; nothing is downloaded.

Every option is checked before ComfyUI is imported (workflows/run_checks.py); a bad one, or a
missing model file (checked before anything renders), ends with a message and exit status 2.
A failed render ends with status 1, Ctrl-C with 130. --out is replaced when it exists (the user
named it), whole or not at all; the numbered files of a workflow that saves several images are not,
unless --overwrite.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
import time

from fineface_core.errors import AUSpecError, FineFaceError
from fineface_core.files import safe_write
from fineface_core.weightfiles.releases import NO_LORA, RELEASES, download_source

from . import CHECKPOINT, SHIPPED, aus_from_photo, exact_edit_cli, image_input, keyframes_cli, workflow_path
from .api_format import (MODE_BYPASS, MODE_MUTED, WorkflowError, check_prompt_text, node_info_from_classes,
                         used_node_types, with_prompt_values, workflow_to_prompt)
from .overrides import FINEFACE_LOADER, RELEASE_LOADER, edit_graph, set_options
from .executor import ExecutionFailed, ExecutorServer, load_builtin_nodes, run_prompt, wait
from .run_checks import UsageError, check_args, check_unnamed_outputs, grid_specs, out_paths

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADLESS = tuple(name for name, row in SHIPPED.items() if row.headless)

# Where the files the workflows name come from.
CHECKPOINT_SOURCES = {
    "v2-1_512-ema-pruned.safetensors": "Hugging Face stabilityai/stable-diffusion-2-1-base, file v2-1_512-ema-pruned.safetensors",
    "Realistic_Vision_V4.0_noVAE.safetensors": "Hugging Face SG161222/Realistic_Vision_V4.0_noVAE, file Realistic_Vision_V4.0_noVAE.safetensors",
}


def converted_file(family: str) -> str:
    """The file name the docs and messages give `python -m fineface_core convert`'s output: fineface_sd21.safetensors."""
    return f"fineface_{family}.safetensors"


FINEFACE_FAMILY = {converted_file(family): family for family in RELEASES}
SAVE = "SaveImage"


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workflows.run",
        description="Render an image (or an AU sweep or expression grid) from a prompt and action units with a shipped "
                    "FineFace workflow, through ComfyUI's own executor, without the editor.",
        epilog="AU specs: 'AU6@3 + AU12@4', 'AU12D' (FACS letter A-E = 1-5), presets ('happiness', 'surprise@4'). "
               "Model files come from the ComfyUI models folder (or --models-dir); nothing is downloaded.",
    )
    p.add_argument("--comfyui", help="ComfyUI folder (default: the ComfyUI this repo sits in, custom_nodes/<this>, "
                                     "else $COMFYUI_PATH)")
    p.add_argument("--workflow", choices=HEADLESS,
                   help="basic (prompt + AUs), sweep (one AU over intensities, labelled grid), edit (the expression "
                        "of a face you already have changed exactly, --aus relative to what the photo shows), "
                        "neutralize (its AUs to 0), edit_sweep (one AU of it over intensities, labelled grid), "
                        "redraw (an existing image re-rendered at a denoise: a new face), face_crop (one face of a "
                        "large photo redrawn at 512 px and pasted back) or grid (several expressions, same noise, "
                        "labelled grid); default: edit with --image (neutralize with --neutral, edit_sweep with "
                        "--sweep, redraw with --denoise / --width / --height / --mask-from-alpha), sweep with "
                        "--sweep, grid with several --aus, else basic")
    p.add_argument("--prompt", help="the scene (the Positive prompt node's text)")
    p.add_argument("--negative", help="negative prompt (default: the workflow's, empty as in the official pipeline)")
    p.add_argument("--aus", help="the expression: an AU spec or preset, e.g. 'AU6@3 + AU12@4' (replaces the AU Vector's sliders); "
                                 "for the grid, several separated by ';'; for edit, the change added to the AUs "
                                 "read off the photo ('AU12@2': two more of AU12)")
    p.add_argument("--out", help="also write the image here (.png; replaced if it exists, since you named it); a "
                                 "workflow that saves several images writes <out>_1.png, <out>_2.png ... and refuses "
                                 "to replace those unless --overwrite; default: only the ComfyUI output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing <out>_1.png, <out>_2.png ...")
    g = p.add_argument_group("sampling")
    g.add_argument("--seed", type=int)
    g.add_argument("--steps", type=int)
    g.add_argument("--cfg", type=float)
    g.add_argument("--sampler", help="KSampler sampler_name, e.g. ddim, dpmpp_2m, euler")
    g.add_argument("--scheduler", help="KSampler scheduler, e.g. ddim_uniform, karras, normal")
    g.add_argument("--width", type=int, help="image width (redraw: the width the input image is scaled to)")
    g.add_argument("--height", type=int, help="image height (redraw: 0 keeps the input's aspect ratio)")
    g = p.add_argument_group("sweep")
    g.add_argument("--sweep", metavar="AU", help="sweep this AU (AU12, 12 or 'AU12 Lip Corner Puller')")
    g.add_argument("--from", dest="sweep_from", type=float, help="first intensity (default 0)")
    g.add_argument("--to", dest="sweep_to", type=float, help="last intensity (default 5)")
    g.add_argument("--cells", type=int, help="number of cells (default 6)")
    g = p.add_argument_group("a face you already have: edit, neutralize, edit_sweep, redraw and face_crop")
    g.add_argument("--image", help="the photo whose face to edit (edit, neutralize, edit_sweep) or redraw (face_crop), "
                                   "or the image to re-render (redraw)")
    g.add_argument("--denoise", type=float, help="redraw, face_crop: how much of the image (face_crop: the face) is "
                                                 "redrawn, 0..1 (default 0.6)")
    g.add_argument("--face", type=int, metavar="INDEX",
                   help="edit this face, counted from the left from 0 (default: the largest)")
    g.add_argument("--crop-size", type=int, metavar="PX",
                   help="the side the face's square is edited at, a multiple of 64 (default 512, FineFace's "
                        "training size)")
    g.add_argument("--mask-from-alpha", action="store_true",
                   help="redraw only where the image is transparent (enables the Set Latent Noise Mask node)")
    g = p.add_argument_group("models and folders")
    g.add_argument("--checkpoint", help="checkpoint file name in models/checkpoints (default: the workflow's)")
    g.add_argument("--fineface", help="instead of the release's own files in models/fineface (the workflows' default): FineFace weights as listed by FineFace Model Loader, e.g. fineface_sd21.safetensors "
                                      "or '<folder>/[official SD 2.1]' (default: the workflow's)")
    g.add_argument("--models-dir", help="use this folder instead of ComfyUI/models (checkpoints/, fineface/, ... under it)")
    g.add_argument("--output-dir", help="ComfyUI output folder, made if missing (default: ComfyUI/output)")
    g.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is there")
    exact_edit_cli.add_arguments(p)
    aus_from_photo.add_arguments(p)
    keyframes_cli.add_arguments(p)
    return p


def default_comfyui() -> str | None:
    """../.. when this repo is ComfyUI/custom_nodes/<repo>, else $COMFYUI_PATH."""
    parent = os.path.dirname(REPO_ROOT)
    if os.path.basename(parent) == "custom_nodes" and is_comfyui(os.path.dirname(parent)):
        return os.path.dirname(parent)
    return os.environ.get("COMFYUI_PATH") or None


def is_comfyui(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, f)) for f in ("nodes.py", "execution.py", "folder_paths.py", "comfy"))


def choose_workflow(args) -> str:
    if args.workflow:
        return "neutralize" if args.workflow == "edit" and args.neutral else args.workflow
    if keyframes_cli.chosen(args):
        return keyframes_cli.NAME
    exact = exact_edit_cli.choose(args)
    if exact:
        return exact
    if args.sweep:
        return "sweep"
    if args.image:
        return "redraw"
    several = [name for name in HEADLESS if SHIPPED[name].several_aus]
    if args.aus and len(grid_specs(args.aus)) > 1 and several:
        return several[0]
    return "basic"


# --------------------------------------------------------------------------------------
# ComfyUI, headless
# --------------------------------------------------------------------------------------

class HeadlessServer(ExecutorServer):
    """Stands in for ComfyUI's PromptServer: the executor reports to it; it prints progress."""

    def __init__(self, stream=None):
        super().__init__()
        self.outputs = {}  # node id -> ui output ({"images": [...]})
        self.stream = stream or sys.stdout
        self._last_progress = None

    def send_sync(self, event, data, sid=None):
        if not isinstance(event, str):  # binary preview images
            return
        super().send_sync(event, data, sid)
        if event == "executing" and data.get("node") is not None:
            print(f"[{time.strftime('%H:%M:%S')}] {self.node_name(data['node'])}", file=self.stream, flush=True)
        elif event == "progress":
            key = (data.get("node"), data.get("value"), data.get("max"))
            if key != self._last_progress:
                self._last_progress = key
                print(f"    step {data.get('value')}/{data.get('max')}", file=self.stream, flush=True)
        elif event == "executed" and data.get("output"):
            self.outputs[str(data.get("node"))] = data["output"]

    def progress_hook(self, value, total, preview=None, prompt_id=None, node_id=None, **_):
        self.send_sync("progress", {"value": value, "max": total, "prompt_id": prompt_id or self.last_prompt_id,
                                    "node": node_id or self.last_node_id}, self.client_id)


def boot_comfyui(path: str, cpu: bool):
    """Import ComfyUI from ``path`` (or check that the one already imported is that one)."""
    path = os.path.abspath(path)
    loaded = sys.modules.get("folder_paths")
    if loaded is not None:
        here = os.path.dirname(os.path.abspath(loaded.__file__))
        if os.path.realpath(here) != os.path.realpath(path):
            raise UsageError(f"another ComfyUI ({here}) is already imported in this process; cannot switch to {path}")
    else:
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
        import comfy.cli_args  # ComfyUI parses no command line unless asked (comfy.options)
        import torch

        mps = getattr(torch.backends, "mps", None)
        if not cpu and not torch.cuda.is_available() and not (mps is not None and mps.is_available()):
            print("no GPU found: running on the CPU", flush=True)
            cpu = True
        if cpu:
            comfy.cli_args.args.cpu = True
    import folder_paths
    import nodes
    import execution
    import comfy.utils
    return folder_paths, nodes, execution, comfy.utils


def load_pack(nodes_module):
    """Register ComfyUI's built-in extra nodes and this repo's nodes, as main.py does at start-up."""
    load_builtin_nodes(nodes_module)
    if "FineFaceModelLoader" in nodes_module.NODE_CLASS_MAPPINGS:
        return
    ok = wait(nodes_module.load_custom_node(REPO_ROOT))
    if not ok or "FineFaceModelLoader" not in nodes_module.NODE_CLASS_MAPPINGS:
        raise ExecutionFailed(f"ComfyUI could not load the FineFace nodes from {REPO_ROOT} (see the log above)")


def snapshot_folders(fp) -> dict:
    state = {"paths": copy.deepcopy(fp.folder_names_and_paths), "models_dir": fp.models_dir}
    for kind in ("output", "temp", "input"):
        state[kind] = getattr(fp, f"get_{kind}_directory")()
    return state


def restore_folders(fp, state: dict):
    fp.folder_names_and_paths.clear()
    fp.folder_names_and_paths.update(state["paths"])
    fp.models_dir = state["models_dir"]
    for kind in ("output", "temp", "input"):
        getattr(fp, f"set_{kind}_directory")(state[kind])
    _clear_file_cache(fp)


def _clear_file_cache(fp):
    cache = getattr(fp, "filename_list_cache", None)
    if isinstance(cache, dict):
        cache.clear()


def use_models_dir(fp, models_dir: str):
    """Point every model folder that lives under ComfyUI's models/ at ``models_dir`` instead."""
    old = os.path.abspath(fp.models_dir)
    new = os.path.abspath(models_dir)
    for name, (paths, exts) in list(fp.folder_names_and_paths.items()):
        moved = []
        for p in paths:
            ap = os.path.abspath(p)
            moved.append(os.path.join(new, os.path.relpath(ap, old)) if ap == old or ap.startswith(old + os.sep) else p)
        fp.folder_names_and_paths[name] = (moved, exts)
    fp.models_dir = new
    if "fineface" in fp.folder_names_and_paths:
        fp.folder_names_and_paths["fineface"] = ([os.path.join(new, "fineface")], fp.folder_names_and_paths["fineface"][1])
    _clear_file_cache(fp)


def load_extra_model_paths(fp, comfyui: str):
    """ComfyUI's main.py reads extra_model_paths.yaml at startup; so does this."""
    path = os.path.join(comfyui, "extra_model_paths.yaml")
    if not os.path.isfile(path):
        return
    try:
        from utils.extra_config import load_extra_path_config  # ComfyUI 2025
    except ImportError:
        load_extra_path_config = None
    if load_extra_path_config is not None:
        load_extra_path_config(path)
        return
    import yaml
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    for conf in config.values():
        if not conf:
            continue
        conf = dict(conf)
        base = conf.pop("base_path", None)
        conf.pop("is_default", None)
        for folder, entries in conf.items():
            for entry in str(entries).split("\n"):
                if entry:
                    fp.add_model_folder_path(folder, os.path.join(base, entry) if base else entry)


# --------------------------------------------------------------------------------------
# Overrides and checks
# --------------------------------------------------------------------------------------

def apply_overrides(wf: dict, name: str, args, info: dict, image_name: str | None) -> tuple[dict, dict]:
    """The prompt to run, with the options set, and the editor graph that says the same (saved in the images):
    the graph edits first (a bypassed node switched on, --fineface's loader), then the conversion, then the
    options on the prompt's nodes as the workflow's row names them."""
    row, options = SHIPPED[name], dict(vars(args), image=image_name)
    edit_graph(wf, row, options)
    prompt = workflow_to_prompt(wf, info)
    set_options(prompt, row, options)
    check_prompt_text(prompt, info)  # e.g. {a|b} in --prompt, which the editor would resolve and this does not
    return prompt, with_prompt_values(wf, prompt, info)


def missing_release_files(entry: dict, fp, nodes_module) -> list[str]:
    loader = nodes_module.NODE_CLASS_MAPPINGS[RELEASE_LOADER]
    menus = loader.INPUT_TYPES()["required"]  # also registers models/fineface
    folder = fp.get_folder_paths("fineface")[0]
    problems = []
    for field in ("au_encoder", "attn_processors", "lora"):
        name = entry["inputs"].get(field)
        if name == NO_LORA or (name in menus[field][0] and not str(name).startswith("(")):
            continue
        problems.append(
            f"FineFace file {name!r}\n"
            f"    from:   {download_source(name)}\n"
            f"    put in: {folder}{os.sep}\n"
            f"    (or give a converted file or a release folder instead: --fineface fineface_sd21.safetensors)"
        )
    return problems


def missing_files(prompt: dict, name: str, fp, nodes_module) -> list[str]:
    """What the prompt needs that is not on disk, each with its source and destination."""
    problems = []
    for entry in prompt.values():
        if entry["class_type"] == CHECKPOINT:
            ckpt = entry["inputs"].get("ckpt_name")
            if not isinstance(ckpt, str) or fp.get_full_path("checkpoints", ckpt) is None:
                folder = fp.get_folder_paths("checkpoints")[0]
                source = CHECKPOINT_SOURCES.get(ckpt, f"a {'Stable Diffusion 2.1 base (512 px)' if SHIPPED[name].family == 'sd21' else 'Stable Diffusion 1.5'} checkpoint")
                problems.append(
                    f"checkpoint {ckpt!r}\n"
                    f"    from:   {source}\n"
                    f"    put in: {folder}{os.sep}"
                )
        elif entry["class_type"] == RELEASE_LOADER:
            problems.extend(missing_release_files(entry, fp, nodes_module))
        elif entry["class_type"] == FINEFACE_LOADER:
            weights = entry["inputs"].get("weights")
            loader = nodes_module.NODE_CLASS_MAPPINGS[FINEFACE_LOADER]
            menu = loader.INPUT_TYPES()["required"]["weights"][0]  # also registers models/fineface
            if weights in menu:
                continue
            folder = fp.get_folder_paths("fineface")[0]
            family = FINEFACE_FAMILY.get(weights, SHIPPED[name].family)
            target = weights if isinstance(weights, str) and weights.endswith(".safetensors") else converted_file(family)
            release = RELEASES[family]
            label = release.label
            found = [m for m in menu if not m.startswith("(")]
            problems.append(
                f"FineFace weights {weights!r}\n"
                f"    from:   {release.where}, files {release.file_list()} ({label})\n"
                f"    put in: {os.path.join(folder, '<folder>')}{os.sep}  (a folder of your choice, e.g. fineface_{family}{os.sep})\n"
                f"    then:   python -m fineface_core convert models/fineface/<folder> models/fineface/{target}\n"
                f"            i.e. here: cd {REPO_ROOT} && python -m fineface_core convert "
                f"{os.path.join(folder, '<folder>')} {os.path.join(folder, target)}\n"
                f"            (or use the folder as it is: --fineface \"<folder>/[official {label}]\")\n"
                f"    FineFace Model Loader lists now: {', '.join(found) if found else 'nothing'}"
            )
    return problems


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------

def execute(execution_module, server: HeadlessServer, prompt: dict, workflow: dict):
    """Run the prompt through ComfyUI's executor (built as this tree's main.py builds it); the
    saved images carry the editor workflow, as when queued from the editor."""
    extra = {"client_id": "fineface-headless", "extra_pnginfo": {"workflow": workflow}}
    run_prompt(execution_module, server, prompt, extra)
    return server.outputs


def saved_images(fp, outputs: dict, prompt: dict, class_type: str = SAVE) -> list[str]:
    """The files the ``class_type`` nodes saved (Save Image; Save Animated WEBP for an animation)."""
    paths = []
    for node_id, ui in outputs.items():
        if prompt.get(node_id, {}).get("class_type") != class_type:
            continue
        for image in ui.get("images", []):
            base = fp.get_output_directory() if image.get("type", "output") == "output" else fp.get_temp_directory()
            paths.append(os.path.join(base, image.get("subfolder", ""), image["filename"]))
    return paths


def saved_image_count(wf: dict) -> int:
    """How many Save Image nodes the workflow runs (each shipped one has one, saving one image)."""
    return sum(1 for n in wf.get("nodes", []) if n.get("type") == SAVE and n.get("mode") not in (MODE_MUTED, MODE_BYPASS))


def prepare(args) -> tuple[str, str, dict]:
    """Everything that can be checked before ComfyUI is imported: (workflow name, ComfyUI folder,
    workflow). Raises UsageError / AUSpecError."""
    name = choose_workflow(args)
    exact_edit_cli.check(args, name)
    check_args(args, name)
    keyframes_cli.check(args, name, UsageError)
    try:
        aus_from_photo.check(args, name)
    except aus_from_photo.PhotoUsageError as e:
        raise UsageError(str(e)) from None
    comfyui = args.comfyui or default_comfyui()
    if not comfyui:
        raise UsageError("no ComfyUI found: pass --comfyui /path/to/ComfyUI, set COMFYUI_PATH, or clone this repo "
                         "into ComfyUI/custom_nodes/")
    if not is_comfyui(comfyui):
        source = "" if args.comfyui else " (from $COMFYUI_PATH)"
        raise UsageError(f"{comfyui}{source} is not a ComfyUI folder (no nodes.py / execution.py / comfy/)")
    with open(workflow_path(name), encoding="utf-8") as f:
        wf = json.load(f)
    if args.out and name != keyframes_cli.NAME:  # an animation's --out is its one animated file
        check_unnamed_outputs(args.out, saved_image_count(wf), args.overwrite)
    return name, comfyui, wf


def copy_out(images: list[str], out: str, overwrite: bool):
    """The saved images to --out (the names as out_paths gives them), all or none: each is copied to a hidden
    file beside its destination and renamed into place only when every copy is whole, so a failed or
    interrupted copy (Ctrl-C) leaves no half-written image and every file that was there as it was."""
    check_unnamed_outputs(out, len(images), overwrite)  # the count is known only now (batches)
    destinations = out_paths(out, len(images))
    staged = []
    try:
        for path, dest in zip(images, destinations):
            mode = os.stat(path).st_mode & 0o7777  # the saved image's permissions
            staged.append(safe_write.stage(dest, lambda tmp, path=path: shutil.copyfile(path, tmp), mode))
        for tmp, dest in zip(staged, destinations):
            safe_write.commit(tmp, dest)
    except BaseException:
        for tmp in staged:
            safe_write.discard(tmp)
        raise
    for dest in destinations:
        print(f"wrote {dest}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        try:
            name, comfyui, wf = prepare(args)
        except (UsageError, AUSpecError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return render(args, name, comfyui, wf)
    except KeyboardInterrupt:  # Ctrl-C: what stopped, not a traceback from wherever ComfyUI was
        kept = f"; --out {args.out} was not written (a file there is as it was)" if args.out else ""
        print(f"\ninterrupted (Ctrl-C): the render stopped{kept}", file=sys.stderr)
        return 130


def render(args, name: str, comfyui: str, wf: dict) -> int:
    try:
        fp, nodes_module, execution_module, comfy_utils = boot_comfyui(comfyui, args.cpu)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # an incomplete or broken tree, or one missing its requirements
        print(f"error: ComfyUI in {comfyui} failed to start: {type(e).__name__}: {e}\n"
              f"(install its requirements.txt; `python main.py --cpu` in that folder shows the whole error)",
              file=sys.stderr)
        return 1
    state = snapshot_folders(fp)
    scratch = tempfile.mkdtemp(prefix="fineface-run-")
    old_hook = getattr(comfy_utils, "PROGRESS_BAR_HOOK", None)
    try:
        if args.models_dir:
            use_models_dir(fp, args.models_dir)
        else:
            load_extra_model_paths(fp, comfyui)
        if args.output_dir:
            if not os.path.isdir(args.output_dir):
                try:
                    os.makedirs(args.output_dir)
                except OSError as e:  # checked before ComfyUI started, but a file system can still refuse
                    print(f"error: --output-dir {args.output_dir}: cannot make the folder ({e.strerror or e})",
                          file=sys.stderr)
                    return 2
                print(f"made the output folder {args.output_dir}", flush=True)
            fp.set_output_directory(os.path.abspath(args.output_dir))
        fp.set_temp_directory(os.path.join(scratch, "temp"))  # Preview Image nodes write here
        image_name = None
        if args.image:
            input_dir = os.path.join(scratch, "input")
            os.makedirs(input_dir)
            image_name = image_input.comfy_name(args.image)  # what Load Image reads as this very file
            shutil.copy(args.image, os.path.join(input_dir, image_name))
            fp.set_input_directory(input_dir)
        try:
            load_pack(nodes_module)
        except ExecutionFailed as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        if args.aus_from:
            try:
                args.aus = aus_from_photo.spec_from_photo(args, fp)
            except Exception as e:  # FineFaceError: no face, the LibreFace model missing or refused
                print(f"error: {e}", file=sys.stderr)
                return 2

        needed = used_node_types(wf)
        missing_nodes = sorted(t for t in needed if t not in nodes_module.NODE_CLASS_MAPPINGS)
        if missing_nodes:
            print(f"error: this ComfyUI lacks the node types {', '.join(missing_nodes)}", file=sys.stderr)
            return 2
        info = node_info_from_classes(nodes_module.NODE_CLASS_MAPPINGS, needed | {FINEFACE_LOADER})  # --fineface swaps it in
        try:
            prompt, wf = apply_overrides(wf, name, args, info, image_name)
        except WorkflowError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

        problems = missing_files(prompt, name, fp, nodes_module)
        if problems:
            print("Missing model files -- nothing was rendered.\n", file=sys.stderr)
            for problem in problems:
                print(problem + "\n", file=sys.stderr)
            print("Use --checkpoint / --fineface for other file names, --models-dir for another models folder. "
                  "See workflows/README.md.", file=sys.stderr)
            return 2
        if name in exact_edit_cli.EXACT:
            try:
                exact_edit_cli.report(prompt, args.image, nodes_module.NODE_CLASS_MAPPINGS)
            except (FineFaceError, WorkflowError) as e:  # no face, the LibreFace model missing, a bad spec
                print(f"error: {e} -- nothing was rendered", file=sys.stderr)
                return 2

        server = HeadlessServer()
        comfy_utils.set_progress_bar_global_hook(server.progress_hook)
        print(f"FineFace {name}: {workflow_path(name)} on {comfyui}", flush=True)
        t0 = time.time()
        try:
            outputs = execute(execution_module, server, prompt, wf)
        except ExecutionFailed as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        images = saved_images(fp, outputs, prompt)
        animated = saved_images(fp, outputs, prompt, keyframes_cli.ANIMATED)
        print(f"done in {time.time() - t0:.1f} s", flush=True)
        for path in images + animated:
            print(f"wrote {path}")
        if not images or (name == keyframes_cli.NAME and not animated):
            print("error: the workflow saved no image", file=sys.stderr)
            return 1
        if args.out:
            try:
                copy_out(animated[:1] if animated else images, args.out, args.overwrite)
            except UsageError as e:
                print(f"error: {e} (the images are in {fp.get_output_directory()})", file=sys.stderr)
                return 2
            except OSError as e:
                print(f"error: could not write --out {args.out} ({e.strerror or e}); nothing was written there "
                      f"(the images are in {fp.get_output_directory()})", file=sys.stderr)
                return 1
        return 0
    finally:
        comfy_utils.set_progress_bar_global_hook(old_hook)
        restore_folders(fp, state)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
