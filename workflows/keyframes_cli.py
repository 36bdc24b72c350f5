"""Headless AU animations: ``--keyframes`` renders workflows/fineface_au_animation.json (an animated WEBP + frames).

    python -m workflows.run --keyframes "0: neutral; 16: happiness@4" --frames 16 --out smile.webp
    python -m workflows.keyframes_cli --keyframes "0: neutral; 8: happiness@4; 16: neutral" --easing linear --out loop.webp

The options join those of ``workflows.run`` (prompt, sampling, models and folders); the run itself is
``workflows.run``'s: the shipped file, your overrides, ComfyUI's own executor, the same missing-file report.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import os
import random
import shutil
import sys
import tempfile
import time

from . import workflow_path

ANIMATION = "fineface_au_animation.json"
KEYFRAMES, ANIMATED = "FineFaceAUKeyframes", "SaveAnimatedWEBP"
FAMILY_LIKE = "grid"  # the animation workflow's loaders are the expression grid's (SD 2.1)


def load_extra_nodes(nodes_module):
    """Save Animated WEBP lives in comfy_extras/nodes_images.py, which ComfyUI's server loads at start-up and a
    headless run does not: load it the way the server does."""
    from .run import _run_maybe_async

    if ANIMATED in nodes_module.NODE_CLASS_MAPPINGS:
        return
    root = os.path.dirname(os.path.abspath(nodes_module.__file__))
    _import_utils_package(root)
    path = os.path.join(root, "comfy_extras", "nodes_images.py")
    kwargs = {"module_parent": "comfy_extras"} if "module_parent" in inspect.signature(nodes_module.load_custom_node).parameters else {}
    if not _run_maybe_async(nodes_module.load_custom_node(path, **kwargs)) or ANIMATED not in nodes_module.NODE_CLASS_MAPPINGS:
        raise RuntimeError(f"ComfyUI could not load its {ANIMATED} node from {path} (see the log above)")


def _import_utils_package(root: str):
    """2025 trees: comfy_extras import server.py, which needs ComfyUI's top-level ``utils`` package; nodes.py has put
    comfy/ first on sys.path, where comfy/utils.py would be found instead. main.py imports the package before nodes.py."""
    folder = os.path.join(root, "utils")
    if "utils" in sys.modules or not os.path.isfile(os.path.join(folder, "__init__.py")):
        return
    spec = importlib.util.spec_from_file_location("utils", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules["utils"] = module
    spec.loader.exec_module(module)


def add_arguments(parser):
    g = parser.add_argument_group("animation")
    g.add_argument("--keyframes", help="AU keyframes, '<frame>: <AU spec>' separated by ';' (or new lines), frames from 0, "
                                       "e.g. '0: neutral; 16: happiness@4'; renders an animated WEBP (--out FILE.webp)")
    g.add_argument("--frames", type=int, help="number of frames (default: the workflow's, 16)")
    g.add_argument("--easing", choices=("linear", "ease-in-out", "hold"), help="how the AUs move between keyframes (default ease-in-out)")
    g.add_argument("--fps", type=float, help="frames per second of the WEBP (default 8)")
    return parser


def wants_animation(args) -> bool:
    return getattr(args, "keyframes", None) is not None


def check_args(args, usage_error):
    """Refuse what does not belong to an animation, and bad keyframes, before ComfyUI starts."""
    from fineface_core.keyframes import keyframe_vectors

    others = [flag for flag, value in (("--aus", args.aus), ("--sweep", args.sweep), ("--image", args.image),
                                       ("--workflow", args.workflow), ("--from", args.sweep_from), ("--to", args.sweep_to),
                                       ("--cells", args.cells), ("--denoise", args.denoise)) if value is not None]
    if args.mask_from_alpha:
        others.append("--mask-from-alpha")
    if others:
        raise usage_error(f"--keyframes renders the AU animation workflow; {', '.join(others)} belong(s) to the other workflows")
    if args.out and not args.out.lower().endswith(".webp"):
        raise usage_error("--out must be a .webp file for an animation (the frames also go to the output folder as PNG)")
    if args.fps is not None and not 0.01 <= args.fps <= 1000:
        raise usage_error("--fps must be between 0.01 and 1000")
    frames = args.frames if args.frames is not None else default_frames()
    keyframe_vectors(args.keyframes, frames, args.easing or "ease-in-out")  # raises AUSpecError naming the line


def default_frames() -> int:
    with open(workflow_path(ANIMATION), encoding="utf-8") as f:
        wf = json.load(f)
    node = next(n for n in wf["nodes"] if n["type"] == KEYFRAMES)
    return node["widgets_values"][1]


def apply_overrides(wf: dict, args, info: dict, run):
    from .api_format import set_widget

    run.apply_overrides(wf, "animation", args, info, None)  # prompts, sampler, loaders, latent size

    def put(node, field, value):
        if value is not None:
            set_widget(wf, node, field, value, info)

    put(KEYFRAMES, "keyframes", "\n".join(part.strip() for part in args.keyframes.split(";") if part.strip()))
    put(KEYFRAMES, "frames", args.frames)
    put(KEYFRAMES, "easing", args.easing)
    put(ANIMATED, "fps", args.fps)


def animations(fp, outputs: dict, prompt: dict, class_type: str) -> list[str]:
    paths = []
    for node_id, ui in outputs.items():
        if prompt.get(node_id, {}).get("class_type") == class_type:
            for image in ui.get("images", []):
                paths.append(os.path.join(fp.get_output_directory(), image.get("subfolder", ""), image["filename"]))
    return paths


def run_animation(args) -> int:
    """``workflows.run.main`` for --keyframes: check, boot ComfyUI, render, copy the WEBP to --out."""
    from . import run
    from .api_format import WorkflowError, node_info_from_classes, used_node_types, workflow_to_prompt

    comfyui = args.comfyui or run.default_comfyui()
    if not comfyui:
        print("error: no ComfyUI found: pass --comfyui /path/to/ComfyUI, set COMFYUI_PATH, or clone this repo "
              "into ComfyUI/custom_nodes/", file=sys.stderr)
        return 2
    if not run.is_comfyui(comfyui):
        print(f"error: {comfyui} is not a ComfyUI folder (no nodes.py / execution.py / comfy/)", file=sys.stderr)
        return 2
    if run.REPO_ROOT not in sys.path:
        sys.path.insert(0, run.REPO_ROOT)
    try:
        check_args(args, run.UsageError)
    except Exception as e:  # UsageError, AUSpecError
        print(f"error: {e}", file=sys.stderr)
        return 2
    with open(workflow_path(ANIMATION), encoding="utf-8") as f:
        wf = json.load(f)

    fp, nodes_module, execution_module, comfy_utils = run.boot_comfyui(comfyui, args.cpu)
    state = run.snapshot_folders(fp)
    scratch = tempfile.mkdtemp(prefix="fineface-run-")
    old_hook = getattr(comfy_utils, "PROGRESS_BAR_HOOK", None)
    try:
        if args.models_dir:
            run.use_models_dir(fp, args.models_dir)
        else:
            run.load_extra_model_paths(fp, comfyui)
        if args.output_dir:
            os.makedirs(args.output_dir, exist_ok=True)
            fp.set_output_directory(os.path.abspath(args.output_dir))
        fp.set_temp_directory(os.path.join(scratch, "temp"))
        run.load_pack(nodes_module)
        load_extra_nodes(nodes_module)
        needed = used_node_types(wf)
        missing_nodes = sorted(t for t in needed if t not in nodes_module.NODE_CLASS_MAPPINGS)
        if missing_nodes:
            print(f"error: this ComfyUI lacks the node types {', '.join(missing_nodes)}", file=sys.stderr)
            return 2
        info = node_info_from_classes(nodes_module.NODE_CLASS_MAPPINGS, needed)
        try:
            apply_overrides(wf, args, info, run)
            prompt = workflow_to_prompt(wf, info, rng=random.Random(args.seed))
        except WorkflowError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        problems = run.missing_files(prompt, FAMILY_LIKE, fp, nodes_module)
        if problems:
            print("Missing model files -- nothing was rendered.\n", file=sys.stderr)
            for problem in problems:
                print(problem + "\n", file=sys.stderr)
            print("Use --checkpoint / --fineface for other file names, --models-dir for another models folder. "
                  "See workflows/README.md.", file=sys.stderr)
            return 2

        server = run.HeadlessServer()
        server.prompt = prompt
        comfy_utils.set_progress_bar_global_hook(server.progress_hook)
        print(f"FineFace animation: {workflow_path(ANIMATION)} on {comfyui}", flush=True)
        t0 = time.time()
        try:
            outputs = run.execute(execution_module, server, prompt, wf)
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        webps, frames = animations(fp, outputs, prompt, ANIMATED), run.saved_images(fp, outputs, prompt)
        print(f"done in {time.time() - t0:.1f} s", flush=True)
        for path in frames + webps:
            print(f"wrote {path}")
        if args.out and webps:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            shutil.copy(webps[0], args.out)
            print(f"wrote {args.out}")
        return 0 if webps else 1
    finally:
        comfy_utils.set_progress_bar_global_hook(old_hook)
        run.restore_folders(fp, state)
        shutil.rmtree(scratch, ignore_errors=True)


def dispatch(args) -> int | None:
    """For ``workflows.run.main``: the exit status when ``args`` ask for an animation (or misuse its options), else None."""
    if wants_animation(args):
        return run_animation(args)
    if any(getattr(args, name, None) is not None for name in ("frames", "easing", "fps")):
        print("error: --frames / --easing / --fps belong to an animation: give --keyframes", file=sys.stderr)
        return 2
    return None


def main(argv=None) -> int:
    """``workflows.run``'s command line with the animation options; --keyframes renders the animation."""
    from . import run

    parser = run.build_parser()
    if not any(a.dest == "keyframes" for a in parser._actions):  # run.py may add them itself
        add_arguments(parser)
    code = dispatch(parser.parse_args(argv))
    return run.main(argv) if code is None else code


if __name__ == "__main__":
    sys.exit(main())
