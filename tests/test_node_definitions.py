"""What a ComfyUI user sees of the nodes: names, category, tooltips, outputs, the inputs' checks.

The patching math is in test_patch_equals_reference.py; here the nodes are taken from ComfyUI's registry after the
pack is loaded the way ComfyUI loads a folder in custom_nodes.
"""
import inspect

import pytest
import torch

from fineface_core.aus import ACTION_UNITS, PRESETS, parse_aus
from fineface_core.errors import AUSpecError
from tests.support.queue_validation import validate_node

PACK = {
    "FineFaceModelLoader": "FineFace Model Loader",
    "FineFaceReleaseLoader": "FineFace Release Loader",
    "FineFaceAUVector": "AU Vector (Expression & Emotion)",
    "FineFaceAUEncoder": "AU Encoder",
    "FineFaceApplyAdapter": "Apply FineFace Adapter",
    "FineFaceAUSweep": "AU Intensity Sweep",
    "FineFaceAUBatchLatent": "AU Batch Latent",
    "FineFaceAUGrid": "AU Label Grid",
    "FineFaceAUFromImage": "AU From Image",
    "FineFaceAUKeyframes": "AU Keyframes",
    "FineFaceFaceMask": "Face Mask",
    "FineFaceFaceCrop": "Face Crop",
    "FineFaceFacePaste": "Face Paste",
    "FineFaceInvertPhoto": "Invert Photo (FineFace)",
    "FineFaceRegenerateEdit": "Regenerate Exact Edit (FineFace)",
    "FineFaceExactEditSampler": "Exact Edit Sampler (FineFace)",
}


def make(registry, name):
    cls = registry.NODE_CLASS_MAPPINGS[name]
    return cls, getattr(cls(), cls.FUNCTION)


def test_the_pack_registers_every_node_under_its_display_name_in_one_category(registry):
    for name, display in PACK.items():
        assert registry.NODE_CLASS_MAPPINGS[name].CATEGORY == "FineFace"
        assert registry.NODE_DISPLAY_NAME_MAPPINGS[name] == display


def test_a_search_for_expression_or_emotion_finds_the_pack(registry):
    """Front end 1.35.9 (ComfyUI 0.8.0) searches the class name and display name only, and 0.8.0 serves no
    search aliases: the words a newcomer types must be in a display name (issue 21 item 7)."""
    for word in ("expression", "emotion"):
        assert any(word in registry.NODE_DISPLAY_NAME_MAPPINGS[name].lower() for name in PACK), word


@pytest.mark.parametrize("name", sorted(PACK))
def test_every_input_and_output_says_what_it_is(registry, name):
    cls = registry.NODE_CLASS_MAPPINGS[name]
    spec = cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for field, entry in (spec.get(section) or {}).items():
            assert len(entry) == 2 and entry[1].get("tooltip"), f"{name}.{field} has no tooltip"
    assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) == len(cls.OUTPUT_TOOLTIPS)
    assert cls.DESCRIPTION
    # the function takes exactly the declared inputs
    params = set(inspect.signature(getattr(cls, cls.FUNCTION)).parameters) - {"self"}
    declared = {k for s in ("required", "optional") for k in (spec.get(s) or {})}
    assert declared <= params or "sliders" in params


def test_an_au_tooltip_names_its_facs_movement(registry):
    spec = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"].INPUT_TYPES()["required"]
    assert list(spec) == [au.code for au in ACTION_UNITS]
    for au in ACTION_UNITS:
        tip = spec[au.code][1]["tooltip"]
        assert au.name in tip and au.movement in tip
        assert spec[au.code][1]["min"] < 0 and spec[au.code][1]["max"] > 5  # room to extrapolate


def test_au_vector_adds_sliders_to_preset_and_spec_and_labels_them(registry):
    _, build = make(registry, "FineFaceAUVector")
    sliders = {au.code: 0.0 for au in ACTION_UNITS}
    aus, label = build(preset="happiness", spec="AU1@2", **dict(sliders, AU12=1.0))
    expected = parse_aus("happiness") + parse_aus("AU1@2")
    expected[[au.code for au in ACTION_UNITS].index("AU12")] += 1.0
    assert torch.equal(aus.values[0], expected)
    assert aus.titles[0] == "happiness + AU1@2" and "AU1@2" in aus.labels[0]
    assert label == f"happiness + AU1@2: {aus.labels[0]}"
    batch, labels = build(append_to=aus, **dict(sliders, AU4=3.0))
    assert len(batch) == 2 and labels.split("\n") == [label, "AU4@3"]


def test_au_vector_spec_lines_make_a_batch(registry):
    _, build = make(registry, "FineFaceAUVector")
    sliders = {au.code: 0.0 for au in ACTION_UNITS}
    aus, label = build(preset="sadness", spec="AU12@1\n\n  happiness  \nneutral\n", **dict(sliders, AU25=2.0))
    assert len(aus) == 3  # blank lines are skipped
    lips = parse_aus("AU25@2")
    # a 'neutral' line clears the preset before it (the one rule of issue 21.6): the sliders alone are left
    for row, spec in zip(aus.values, ("sadness + AU12@1", "sadness + happiness", "neutral")):
        assert torch.equal(row, parse_aus(spec) + lips)
    assert aus.titles == ("sadness + AU12@1", "sadness + happiness", "")
    assert label.split("\n") == [f"{t}: {l}" if t else l for t, l in zip(aus.titles, aus.labels)] and len(set(aus.labels)) == 3
    with pytest.raises(AUSpecError, match="spec line 2: .*AU7"):
        build(spec="AU12\nAU7@2", **sliders)


@pytest.mark.parametrize("spec, part", [("AU7@2", "AU7"), ("AU12@nan", "nan"), ("smirk", "smirk"), ("AU12@50", "50")])
def test_au_vector_refuses_what_the_model_does_not_have(registry, spec, part):
    _, build = make(registry, "FineFaceAUVector")
    with pytest.raises(AUSpecError, match=part):
        build(spec=spec, **{au.code: 0.0 for au in ACTION_UNITS})


def test_au_vector_refuses_a_nan_slider(registry):
    _, build = make(registry, "FineFaceAUVector")
    with pytest.raises(AUSpecError, match="AU6"):
        build(**dict({au.code: 0.0 for au in ACTION_UNITS}, AU6=float("nan")))


def test_sweep_labels_every_cell_and_keeps_the_base(registry):
    _, vector = make(registry, "FineFaceAUVector")
    _, sweep = make(registry, "FineFaceAUSweep")
    base, _ = vector(spec="AU6@2 + AU12@1", **{au.code: 0.0 for au in ACTION_UNITS})
    latent = {"samples": torch.randn(1, 4, 8, 8), "batch_index": [5]}
    aus, out, labels = sweep(au="AU12 Lip Corner Puller", start=0.0, end=2.0, cells=5, latent=latent, base=base)
    assert labels.split("\n") == ["AU6@2 + AU12@0", "AU6@2 + AU12@0.5", "AU6@2 + AU12@1", "AU6@2 + AU12@1.5", "AU6@2 + AU12@2"]
    order = [au.code for au in ACTION_UNITS]
    assert torch.equal(aus.values[:, order.index("AU12")], torch.linspace(0, 2, 5))
    assert (aus.values[:, order.index("AU6")] == 2).all()  # from the base, in every cell
    others = [i for i, c in enumerate(order) if c not in ("AU6", "AU12")]
    assert (aus.values[:, others] == 0).all()
    assert out["batch_index"] == [5] * 5  # one noise for every cell
    assert torch.equal(out["samples"], latent["samples"].repeat(5, 1, 1, 1))
    with pytest.raises(AUSpecError, match="batch size 1"):
        sweep(au="AU12 Lip Corner Puller", start=0.0, end=2.0, cells=3, latent={"samples": torch.zeros(2, 4, 8, 8)})


def test_au_batch_latent_gives_every_image_the_same_noise_in_comfyuis_sampler(registry):
    """Through ComfyUI's own KSampler: identical AU vectors on the repeated latent give identical images,
    while a plain latent batch of the same size starts each image from its own noise."""
    from tests.support.comfy_models import comfy_model

    _, vector = make(registry, "FineFaceAUVector")
    _, batch_latent = make(registry, "FineFaceAUBatchLatent")
    aus, _ = vector(spec="AU12@2\nAU12@2\nAU12@2", **{au.code: 0.0 for au in ACTION_UNITS})
    latent = {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [7]}
    (repeated,) = batch_latent(latent=latent, aus=aus)
    assert repeated["samples"].shape[0] == 3 and repeated["batch_index"] == [7, 7, 7]
    torch.manual_seed(0)
    model = comfy_model(None, "sd21")
    with torch.no_grad():
        for p in model.model.diffusion_model.parameters():  # ComfyUI leaves weights uninitialised
            p.copy_(torch.randn(p.shape) * 0.05)
    g = torch.Generator().manual_seed(1)
    positive, negative = [[torch.randn(1, 77, 1024, generator=g), {}]], [[torch.randn(1, 77, 1024, generator=g), {}]]

    def sample(lat):
        return registry.common_ksampler(model, 5, 2, 7.5, "euler", "normal", positive, negative, lat)[0]["samples"]

    def gap(x, i):  # how far image i is from image 0
        return ((x[i] - x[0]).norm() / x[0].norm()).item()

    same, different = sample(repeated), sample({"samples": torch.zeros(3, 4, 8, 8)})
    assert max(gap(same, 1), gap(same, 2)) < 1e-5  # equal up to the batched arithmetic's rounding
    assert min(gap(different, 1), gap(different, 2)) > 0.1
    with pytest.raises(AUSpecError, match="batch size 1"):
        batch_latent(latent={"samples": torch.zeros(2, 4, 8, 8)}, aus=aus)


def test_loader_says_where_missing_weights_go_before_anything_runs(registry):
    prompt = {"1": {"class_type": "FineFaceModelLoader", "inputs": {"weights": "fineface_sd21.safetensors"}}}
    # ComfyUI's own input validation of the loader (what runs when a prompt is queued)
    ok, errors = validate_node(prompt, "1")[:2]
    assert not ok
    text = " ".join(str(e) for e in errors)
    assert "fineface_sd21.safetensors" in text and "Put a FineFace .safetensors file" in text and "README" in text


def test_au_presets_are_offered_by_name(registry):
    spec = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"].INPUT_TYPES()["optional"]["preset"][0]
    assert spec[0] == "none" and set(spec[1:]) == set(PRESETS)
