"""Per-frame AU vectors under AnimateDiff's sliding context windows: frame i always receives AU vector i.

AnimateDiff(-Evolved) runs the UNet on windows of the frames (which ones: ``ad_params["sub_idxs"]``) and
its motion modules mix the frames of a window, so a wrong AU row would show in every frame of the window.
In CI the protocol is reproduced (tests/support/animatediff_protocol.py) around the real ComfyUI UNet of a
small SD 1.5 model, with a tiny temporal-attention motion module; where ``ANIMATEDIFF_EVOLVED_PATH`` names a
checkout of ComfyUI-AnimateDiff-Evolved (it needs a 2025 ComfyUI: ``COMFYUI_PATH``), the real pack samples too.

The oracle for a window is the same call on a model patched with that window's AU vectors only, in the
order the window holds them, and without any ad_params: no row picking involved.
"""
import importlib
import os

import pytest
import torch

from fineface_core.aus import parse_aus
from fineface_core.conditioning import AUVectors, rows_for_chunks
from fineface_core.errors import AUSpecError
from tests.support import comfy_env
from tests.support.animatediff_protocol import TemporalMixer, apply_animatediff, pyramid_weights, static_windows
from tests.support.animation_windows import FRAMES, SPECS, TOL, WINDOWS, call
from tests.support.patched_unet import Family, rel


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    return Family("sd15", tmp_path_factory.mktemp("ad15"))


def vectors(specs):
    return AUVectors(torch.stack([parse_aus(s) for s in specs]))


_PATCHED = {}


def fineface(pack, fam, specs, model=None):
    """``model`` (default: the family's) patched by the nodes with one AU vector per spec; one patch per input."""
    model = model or fam.model
    key = (id(fam), id(model), tuple(specs))
    if key not in _PATCHED:
        emb, = pack.encode(fam.weights, vectors(specs))
        _PATCHED[key] = (model, pack.apply(model, fam.weights, emb, 1.0, 1.0, 0.0, 1.0)[0])  # keeps model alive: ids stay unique
    return _PATCHED[key][1]


def conditioning(fam, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ([[torch.randn(1, 77, fam.context_dim, generator=g), {}]], [[torch.randn(1, 77, fam.context_dim, generator=g), {}]])


def sample(model, fam, frames=FRAMES, steps=1, seed=5):
    import nodes

    positive, negative = conditioning(fam)
    latent = {"samples": torch.zeros(frames, 4, 8, 8)}
    return nodes.common_ksampler(model, seed, steps, 7.5, "euler", "normal", positive, negative, latent)[0]["samples"]


def per_window(pack, fam, specs):
    """Oracle: for each window, the attn2 patches of a model patched with exactly that window's AU vectors."""
    cache = {}

    def options(window):
        key = tuple(window)
        if key not in cache:
            cache[key] = fineface(pack, fam, [specs[i] for i in window]).model_options["transformer_options"]["patches_replace"]
        return {"patches_replace": cache[key]}

    return options


# -- the rows ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [(0, 1), (1, 0), (0,), (1,), (0, 0, 1)])
def test_the_rows_of_a_window_are_its_frames_rows_for_cond_and_uncond(layout):
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(FRAMES, 6, generator=g), torch.randn(FRAMES, 6, generator=g)  # distinct rows in both
    for window in (w for ws in WINDOWS.values() for w in ws):
        rows = rows_for_chunks(cond, uncond, layout, 4 * len(layout), (window, FRAMES))
        want = torch.cat([(cond if c == 0 else uncond)[window] for c in layout])
        assert torch.equal(rows, want), (layout, window)
    one = rows_for_chunks(cond[:1], uncond[:1], layout, 4 * len(layout), ([3, 4, 5, 6], FRAMES))
    assert torch.equal(one, torch.cat([(cond if c == 0 else uncond)[:1].expand(4, -1) for c in layout]))


def test_an_au_batch_that_fits_neither_the_animation_nor_one_vector_is_refused():
    rows = torch.zeros(4, 6)
    # 4 vectors for a 4-frame window of an 8-frame animation: by position they would repeat in every window
    with pytest.raises(AUSpecError, match="4 AU vectors were given for an animation of 8 frames: give one AU vector .* or exactly 8"):
        rows_for_chunks(rows, rows, (0, 1), 8, ([4, 5, 6, 7], FRAMES))


# -- one UNet call per window, through the real ComfyUI model --------------------------------------

@pytest.mark.parametrize("schedule", list(WINDOWS))
def test_every_window_call_gives_frame_i_au_vector_i(pack, sd15, schedule):
    base = sd15.model.clone()
    base.set_model_input_block_patch(TemporalMixer(seed=1))
    animated = fineface(pack, sd15, SPECS, model=base)
    g = torch.Generator().manual_seed(2)
    x_all, sigma = torch.randn(FRAMES, 4, 8, 8, generator=g), torch.tensor([3.0])
    ctx = {0: torch.randn(1, 77, 768, generator=g), 1: torch.randn(1, 77, 768, generator=g)}
    for layout in ((0, 1), (1, 0), (0,)):
        for window in WINDOWS[schedule]:
            x = x_all[window]
            ad = {"full_length": FRAMES, "context_length": len(window), "sub_idxs": window}
            got = call(pack, animated, x, sigma, ctx, layout, ad)
            want = call(pack, fineface(pack, sd15, [SPECS[i] for i in window], model=base), x, sigma, ctx, layout)
            assert rel(got, want) < TOL, (layout, window)
            if layout == (0,) and window != list(range(len(window))):
                # by position the window would get the first frames' vectors: visibly wrong
                positional = call(pack, fineface(pack, sd15, SPECS[: len(window)], model=base), x, sigma, ctx, layout)
                assert rel(positional, want) > 100 * TOL, window


def test_the_motion_module_mixes_the_frames_of_a_window(pack, sd15):
    """A different AU vector for one frame changes the other frames of its window: a wrong row could not hide."""
    base = sd15.model.clone()
    base.set_model_input_block_patch(TemporalMixer(seed=1))
    g = torch.Generator().manual_seed(3)
    x, sigma = torch.randn(4, 4, 8, 8, generator=g), torch.tensor([3.0])
    ctx = {0: torch.randn(1, 77, 768, generator=g), 1: torch.randn(1, 77, 768, generator=g)}
    a = call(pack, fineface(pack, sd15, ["AU12@3"] * 4, model=base), x, sigma, ctx, (0,))
    b = call(pack, fineface(pack, sd15, ["AU12@3"] * 3 + ["AU4@5 + AU15@5"], model=base), x, sigma, ctx, (0,))
    assert rel(b[0], a[0]) > 100 * TOL  # frame 0 kept its vector and still changed
    plain_a = call(pack, fineface(pack, sd15, ["AU12@3"] * 4), x, sigma, ctx, (0,))
    plain_b = call(pack, fineface(pack, sd15, ["AU12@3"] * 3 + ["AU4@5 + AU15@5"]), x, sigma, ctx, (0,))
    assert rel(plain_b[0], plain_a[0]) < 1e-6  # without the motion module frames do not mix


# -- whole sampling runs through ComfyUI's KSampler ------------------------------------------------

@pytest.mark.parametrize("schedule, order", [("static", "animatediff_first"), ("static", "fineface_first"),
                                             ("wrapped", "animatediff_first")])
def test_sliding_window_sampling_gives_every_frame_its_au_vector(pack, sd15, order, schedule):
    mixer = TemporalMixer(seed=4)
    windows = lambda n: WINDOWS[schedule]  # noqa: E731
    if order == "animatediff_first":
        animated, context = apply_animatediff(sd15.model, windows, 4, mixer)
        animated = fineface(pack, sd15, SPECS, model=animated)
    else:
        animated, context = apply_animatediff(fineface(pack, sd15, SPECS), windows, 4, mixer)
    got = sample(animated, sd15)
    assert {tuple(w) for _, w in context.calls} == {tuple(w) for w in WINDOWS[schedule]}  # the windows ran
    assert all(sorted(c) == [0, 1] for c, _ in context.calls)  # cond and uncond in every call
    oracle_options = per_window(pack, sd15, SPECS)
    oracle, _ = apply_animatediff(sd15.model, windows, 4, mixer, expose=False, options_for_window=oracle_options)
    want = sample(oracle, sd15)
    assert rel(got, want) < TOL
    if order == "fineface_first":
        return
    # the AU vectors by position in the window (every window gets frames 0-3's) give visibly other frames
    positional, _ = apply_animatediff(sd15.model, windows, 4, mixer, expose=False,
                                      options_for_window=lambda w: oracle_options(range(len(w))))
    assert rel(sample(positional, sd15), want) > 100 * TOL


def test_without_a_motion_module_the_windows_change_no_frame(pack, sd15):
    """With nothing mixing the frames, each window gives a frame what the whole batch gives it: sliding-window
    sampling equals sampling the animation as one batch, frame for frame (no oracle patch involved)."""
    batch = sample(fineface(pack, sd15, SPECS), sd15)
    animated, context = apply_animatediff(fineface(pack, sd15, SPECS), lambda n: static_windows(n, 4, 1), 4)
    windowed = sample(animated, sd15)
    assert len({tuple(w) for _, w in context.calls}) == 3
    assert rel(windowed, batch) < TOL
    assert min(rel(batch[i], batch[i + 1]) for i in range(FRAMES - 1)) > 100 * TOL  # the frames' AUs made a difference


def test_one_au_vector_serves_every_frame_under_windows_and_a_wrong_count_is_refused(pack, sd15):
    windows = lambda n: static_windows(n, 4, 1)  # noqa: E731
    one, _ = apply_animatediff(fineface(pack, sd15, ["happiness"]), windows, 4, TemporalMixer(seed=6))
    oracle, _ = apply_animatediff(sd15.model, windows, 4, TemporalMixer(seed=6), expose=False,
                                  options_for_window=per_window(pack, sd15, ["happiness"] * FRAMES))
    assert rel(sample(one, sd15), sample(oracle, sd15)) < TOL
    four, _ = apply_animatediff(fineface(pack, sd15, SPECS[:4]), windows, 4)
    with pytest.raises(AUSpecError, match="4 AU vectors were given for an animation of 8 frames"):
        sample(four, sd15)


def test_an_animation_that_fits_one_context_runs_as_one_batch(pack, sd15):
    """AnimateDiff sets ad_params without sub_idxs then: the batch position is the frame."""
    animated, context = apply_animatediff(fineface(pack, sd15, SPECS[:4]), lambda n: static_windows(n, 8, 2), 8)
    got = sample(animated, sd15, frames=4)
    assert {w for _, w in context.calls} == {None}
    assert rel(got, sample(fineface(pack, sd15, SPECS[:4]), sd15, frames=4)) < 1e-6


def test_the_reproduced_schedule_and_weights():
    assert static_windows(10, 4, 1) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert static_windows(14, 8, 3) == [list(range(0, 8)), list(range(5, 13)), list(range(6, 14))]
    assert static_windows(6, 8, 2) == [list(range(6))]
    assert pyramid_weights(4) == [1, 2, 2, 1] and pyramid_weights(5) == [1, 2, 3, 2, 1]


# -- ComfyUI's own context windows (2025 trees) -----------------------------------------------------

def test_comfyuis_own_context_windows_give_frame_i_au_vector_i(pack, sd15):
    """ComfyUI's Context Windows (Manual) node (2025 trees) says which frames a call holds in
    transformer_options["context_window"]; without a motion module windowed sampling equals one batch."""
    try:
        from comfy_extras.nodes_context_windows import ContextWindowsManualNode as cls
    except ImportError:
        pytest.skip("this ComfyUI (the 2024 tree) has no context windows of its own")
    import inspect

    def windows(model):
        settings = dict(context_length=4, context_overlap=1, context_schedule="standard_static", context_stride=1,
                        closed_loop=False, fuse_method="pyramid", dim=0, freenoise=False)
        params = inspect.signature(cls.execute).parameters
        return cls.execute(model, **{k: v for k, v in settings.items() if k in params})[0]

    try:
        sample(windows(sd15.model), sd15)
    except RuntimeError as exc:  # 0.3.64 compares the schedule's sigmas with every frame's timestep
        pytest.skip(f"this ComfyUI's own context windows fail on a batch of images (dim 0) without any patch: {exc}")
    model = fineface(pack, sd15, SPECS)
    assert rel(sample(windows(model), sd15), sample(model, sd15)) < TOL
    with pytest.raises(AUSpecError, match="4 AU vectors were given for an animation of 8 frames"):
        sample(windows(fineface(pack, sd15, SPECS[:4])), sd15)


# -- the real ComfyUI-AnimateDiff-Evolved ----------------------------------------------------------

REAL_ADE = os.environ.get("ANIMATEDIFF_EVOLVED_PATH")


@pytest.fixture(scope="module")
def real_ade(pack):
    if not REAL_ADE:
        pytest.skip("set ANIMATEDIFF_EVOLVED_PATH to a ComfyUI-AnimateDiff-Evolved checkout to run it against the real pack")
    import nodes

    try:
        comfy_env.load_custom_node_pack(REAL_ADE)
    except RuntimeError as exc:
        pytest.fail(f"ComfyUI-AnimateDiff-Evolved did not load into this ComfyUI tree ({exc}); it needs a 2025 ComfyUI "
                    "(comfy.patcher_extension): set COMFYUI_PATH to one")
    if "ADE_UseEvolvedSampling" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.fail("ComfyUI-AnimateDiff-Evolved loaded no nodes into this ComfyUI tree; it needs a 2025 ComfyUI: set COMFYUI_PATH")
    package = nodes.NODE_CLASS_MAPPINGS["ADE_UseEvolvedSampling"].__module__.rsplit(".", 1)[0]  # <pack>.animatediff
    return nodes.NODE_CLASS_MAPPINGS, importlib.import_module(package + ".context")


def ade_model(real_ade, model, length=4, overlap=1):
    classes, _ = real_ade
    node = classes["ADE_StandardStaticContextOptions"]()
    options, = getattr(node, node.FUNCTION)(context_length=length, context_overlap=overlap, fuse_method="pyramid")
    node = classes["ADE_UseEvolvedSampling"]()
    model, = getattr(node, node.FUNCTION)(model=model, beta_schedule="autoselect", context_options=options)
    return model


def test_real_animatediff_evolved_windows_and_weights_are_the_reproduced_ones(real_ade):
    _, context = real_ade
    for frames, length, overlap in ((10, 4, 1), (14, 8, 3), (16, 16, 4), (33, 16, 4), (7, 3, 2)):
        opts = context.ContextOptions(context_length=length, context_overlap=overlap,
                                      context_schedule=context.ContextSchedules.STATIC_STANDARD)
        assert context.get_context_windows(frames, opts) == static_windows(frames, length, overlap)
    for n in (3, 4, 7, 16):
        assert context.create_weights_pyramid(n) == pyramid_weights(n)


@pytest.mark.parametrize("order", ["animatediff_first", "fineface_first"])
def test_real_animatediff_evolved_gives_every_frame_its_au_vector(pack, sd15, real_ade, order):
    """The real pack's sliding windows (standard static, pyramid fuse) with a motion module mixing the frames
    sample what the oracle samples; without a motion module, what one batch samples."""
    mixer = TemporalMixer(seed=7)
    base = sd15.model.clone()
    base.set_model_input_block_patch(mixer)
    if order == "animatediff_first":
        animated = fineface(pack, sd15, SPECS, model=ade_model(real_ade, base))
    else:
        animated = ade_model(real_ade, fineface(pack, sd15, SPECS, model=base))
    got = sample(animated, sd15)
    windows = lambda n: static_windows(n, 4, 1)  # noqa: E731
    oracle, context = apply_animatediff(sd15.model, windows, 4, mixer, expose=False, options_for_window=per_window(pack, sd15, SPECS))
    want = sample(oracle, sd15)
    assert rel(got, want) < TOL
    reproduced, _ = apply_animatediff(fineface(pack, sd15, SPECS), windows, 4, mixer)
    assert rel(sample(reproduced, sd15), got) < TOL
    # no motion module: the real windows change no frame
    plain = ade_model(real_ade, fineface(pack, sd15, SPECS))
    assert rel(sample(plain, sd15), sample(fineface(pack, sd15, SPECS), sd15)) < TOL


def test_real_animatediff_evolved_declares_what_its_parsed_source_says(real_ade):
    """The snapshot behind the workflow checks is read from the source with ast; the loaded pack's own
    INPUT_TYPES / RETURN_TYPES say the same (a menu of model files: any list)."""
    from tests.support.animatediff_nodes import SNAPSHOT_NODES, FileList, parse_animatediff_evolved

    def same(parsed, live, where):
        if isinstance(parsed, FileList):
            assert isinstance(live, list), where
        elif isinstance(parsed, dict):
            assert isinstance(live, dict) and list(parsed) == list(live), where
            for key in parsed:
                same(parsed[key], live[key], f"{where}.{key}")
        elif isinstance(parsed, (list, tuple)):
            assert isinstance(live, (list, tuple)) and len(parsed) == len(live), where
            for i, (a, b) in enumerate(zip(parsed, live)):
                same(a, b, f"{where}[{i}]")
        else:
            assert parsed == live, where

    classes, _ = real_ade
    for name, entry in parse_animatediff_evolved(REAL_ADE, set(SNAPSHOT_NODES)).items():
        same(entry["input"], classes[name].INPUT_TYPES(), name)
        assert entry["output"] == list(classes[name].RETURN_TYPES), name
