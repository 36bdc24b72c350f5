"""The exact edit of an animation under AnimateDiff: the frames' latents as one LATENT (a batch of eight), inverted
once with the motion model applied and the frames' own AUs, then regenerated with the same motion model.

With the source AUs the replay gives every frame's latent back (bit for bit from Regenerate Exact Edit, to ComfyUI's
latent scaling round trip from SamplerCustom), with and without sliding context windows: every step of the replay
calls the model on exactly the latents the inversion called it on, so windows, their fusing and the motion module's
mixing of the frames are the same deterministic function in both passes. Other AUs move the frames.

The motion module is the suite's TemporalMixer (temporal attention over a window's frames, tests/support/
animatediff_protocol.py); the windows are AnimateDiff-Evolved's protocol as the suite reproduces it, and with
``ANIMATEDIFF_EVOLVED_PATH`` (a 2025 ComfyUI: ``COMFYUI_PATH``) the real pack's ADE_UseEvolvedSampling.
"""
import importlib
import os

import pytest
import torch

from fineface_core.aus import parse_aus
from fineface_core.conditioning import AUVectors
from tests.support import comfy_env
from tests.support.animatediff_protocol import TemporalMixer, apply_animatediff, static_windows
from tests.support.animation_windows import FRAMES, SPECS
from tests.support.exact_edit import Fam, exact_edit_nodes, rel

TARGETS = SPECS[::-1]  # every frame gets another frame's expression
CONTEXT = {"windows": 4, "one_batch": FRAMES}  # context length 4: three overlapping windows; 8: one call per step


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    fam = Fam(exact_edit_nodes(), "sd15", tmp_path_factory.mktemp("ad_sd15"))
    g = torch.Generator().manual_seed(3)
    # an animation: one picture drifting a little from frame to frame
    fam.photo = {"samples": torch.randn(1, 4, 8, 8, generator=g) + 0.2 * torch.randn(FRAMES, 4, 8, 8, generator=g)}
    return fam


def per_frame(specs):
    return AUVectors(torch.stack([parse_aus(s) for s in specs]))


def patched(fam, model, specs):
    emb, = fam.pack.encode(fam.weights, per_frame(specs))
    return fam.pack.apply(model, fam.weights, emb, 1.0, 1.0, 0.0, 1.0)[0]


def animated(fam, context_length, order):
    """(source model, target model, the protocol's record of calls): FineFace under or over the AnimateDiff clone."""
    def windows(n):
        return static_windows(n, context_length, 1)

    mixer = TemporalMixer(seed=7)
    if order == "animatediff_first":
        model, context = apply_animatediff(fam.model, windows, context_length, mixer)
        return patched(fam, model, SPECS), patched(fam, model, TARGETS), context
    source, context = apply_animatediff(patched(fam, fam.model, SPECS), windows, context_length, mixer)
    target, _ = apply_animatediff(patched(fam, fam.model, TARGETS), windows, context_length, mixer)
    return source, target, context


def invert_and_replay(fam, source, target, cfg, steps=8, scheduler="karras", start_step=2):
    p, photo = fam.pack, fam.photo
    fam.calls[0] = 0
    record, _ = p.invert(source, fam.pos, fam.neg, photo, cfg, steps, scheduler, start_step, 1)
    fam.inversion_calls = fam.calls[0]
    same = p.regenerate(source, fam.pos, fam.neg, record, cfg, photo)[0]["samples"]
    sampler, sigmas = p.sampler(record)
    custom = p.custom(source, False, 0, cfg, fam.pos, fam.neg, sampler, sigmas, photo)[0]["samples"]
    edit = p.regenerate(target, fam.pos, fam.neg, record, cfg, photo)[0]["samples"]
    return record, same, custom, edit


def frame_changes(edit, photo):
    return [rel(edit[i], photo[i]) for i in range(photo.shape[0])]


@pytest.mark.parametrize("cfg, context, order", [
    (7.5, "windows", "animatediff_first"), (7.5, "windows", "fineface_first"), (7.5, "one_batch", "animatediff_first"),
    (7.5, "one_batch", "fineface_first"), (1.0, "windows", "animatediff_first")])
def test_an_animations_own_aus_give_its_frames_back_and_other_aus_move_them(sd15, cfg, context, order):
    source, target, calls = animated(sd15, CONTEXT[context], order)
    photo = sd15.photo["samples"]
    record, same, custom, edit = invert_and_replay(sd15, source, target, cfg)
    assert record.batch == FRAMES and record.means.shape[0] == 6
    assert torch.equal(same, photo)
    assert rel(custom, photo) <= 1e-5
    assert min(frame_changes(edit, photo)) > 1e-2  # every frame took its new expression
    windows = {tuple(w) for _, w in calls.calls if w is not None}
    if context == "windows":  # the replays ran on the windows, as the inversion did
        assert windows == {(0, 1, 2, 3), (3, 4, 5, 6), (4, 5, 6, 7)}
    else:
        assert windows == set()


def test_the_motion_module_takes_part_in_the_replay(sd15):
    """The same edit without the motion module (inverted and replayed without it) is another edit: the frames'
    mixing acts in both passes, and the recorded steps hold it."""
    with_motion = invert_and_replay(sd15, *animated(sd15, 4, "animatediff_first")[:2], 7.5)
    plain = invert_and_replay(sd15, patched(sd15, sd15.model, SPECS), patched(sd15, sd15.model, TARGETS), 7.5)
    assert not torch.allclose(with_motion[0].means, plain[0].means, atol=1e-3)
    assert rel(with_motion[3], plain[3]) > 1e-2
    assert torch.equal(plain[1], sd15.photo["samples"])


# -- the real ComfyUI-AnimateDiff-Evolved ----------------------------------------------------------

REAL_ADE = os.environ.get("ANIMATEDIFF_EVOLVED_PATH")


@pytest.fixture(scope="module")
def ade_nodes(sd15):
    if not REAL_ADE:
        pytest.skip("set ANIMATEDIFF_EVOLVED_PATH to a ComfyUI-AnimateDiff-Evolved checkout (and COMFYUI_PATH to a 2025 "
                    "ComfyUI) to run the exact edit under the real pack")
    import nodes

    try:
        comfy_env.load_custom_node_pack(REAL_ADE)
    except RuntimeError as exc:
        pytest.fail(f"ComfyUI-AnimateDiff-Evolved did not load into this ComfyUI tree ({exc}); it needs a 2025 ComfyUI")
    if "ADE_UseEvolvedSampling" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.fail("ComfyUI-AnimateDiff-Evolved loaded no nodes into this ComfyUI tree; it needs a 2025 ComfyUI: set COMFYUI_PATH")
    importlib.invalidate_caches()
    return nodes.NODE_CLASS_MAPPINGS


def evolved(classes, model, context_length):
    """ADE_UseEvolvedSampling on ``model``: standard static windows of ``context_length`` (pyramid fuse), or none."""
    options = None
    if context_length is not None:
        node = classes["ADE_StandardStaticContextOptions"]()
        options, = getattr(node, node.FUNCTION)(context_length=context_length, context_overlap=1, fuse_method="pyramid")
    node = classes["ADE_UseEvolvedSampling"]()
    return getattr(node, node.FUNCTION)(model=model, beta_schedule="autoselect", context_options=options)[0]


@pytest.mark.parametrize("context_length", [4, None], ids=["windows", "one_batch"])
@pytest.mark.parametrize("cfg", [1.0, 7.5])
def test_real_animatediff_evolved_replays_the_frames_exactly(sd15, ade_nodes, cfg, context_length):
    base = sd15.model.clone()
    base.set_model_input_block_patch(TemporalMixer(seed=7))
    source = evolved(ade_nodes, patched(sd15, base, SPECS), context_length)
    target = evolved(ade_nodes, patched(sd15, base, TARGETS), context_length)
    photo = sd15.photo["samples"]
    record, same, custom, edit = invert_and_replay(sd15, source, target, cfg)
    assert sd15.inversion_calls == 6 * (3 if context_length else 1)  # one UNet call per window and step: the windows ran
    assert torch.equal(same, photo)
    assert rel(custom, photo) <= 1e-5
    assert min(frame_changes(edit, photo)) > 1e-2


# -- ComfyUI's own context windows (2025 trees) -----------------------------------------------------

def core_windows(model, context_length=4):
    """Context Windows (Manual): standard static windows of ``context_length`` over the batch (dim 0), pyramid fuse."""
    try:
        from comfy_extras.nodes_context_windows import ContextWindowsManualNode as cls
    except ImportError:
        pytest.skip("this ComfyUI (the 2024 tree) has no context windows of its own")
    import inspect

    settings = dict(context_length=context_length, context_overlap=1, context_schedule="standard_static", context_stride=1,
                    closed_loop=False, fuse_method="pyramid", dim=0, freenoise=False)
    params = inspect.signature(cls.execute).parameters
    return cls.execute(model, **{k: v for k, v in settings.items() if k in params})[0]


def test_comfyuis_own_context_windows_replay_the_frames_exactly(sd15):
    base = sd15.model.clone()
    base.set_model_input_block_patch(TemporalMixer(seed=7))
    source, target = (core_windows(patched(sd15, base, specs)) for specs in (SPECS, TARGETS))
    photo = sd15.photo["samples"]
    try:
        plain = core_windows(sd15.model.clone())
        sd15.pack.invert(plain, sd15.pos, sd15.neg, sd15.photo, 1.0, 2, "karras", 0, 1)
    except RuntimeError as exc:  # 0.3.64 compares the schedule's sigmas with every frame's timestep
        pytest.skip(f"this ComfyUI's own context windows fail on a batch of images (dim 0) without any patch: {exc}")
    record, same, custom, edit = invert_and_replay(sd15, source, target, 7.5)
    assert sd15.inversion_calls == 6 * 3  # one UNet call per window and step: the windows ran
    assert torch.equal(same, photo)
    assert rel(custom, photo) <= 1e-5
    assert min(frame_changes(edit, photo)) > 1e-2
