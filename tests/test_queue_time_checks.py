"""Checks a ComfyUI user meets before anything runs, and refusals that keep a graph from silently mixing models.

- AU Vector's spec is checked by ComfyUI's own ``validate_prompt`` (the node's ``VALIDATE_INPUTS``), so
  the front end marks the node when the prompt is queued; messages stay short whatever the input.
- Two Apply nodes with the LoRAs of two different FineFace files are refused.
- Grid and sweep cells name the preset as the user wrote it, with its AUs under it.
"""
import asyncio
import inspect
import time
import uuid

import numpy as np
import pytest
import torch

from fineface_core.aus import ACTION_UNITS
from fineface_core.conditioning import AUVectors
from fineface_core.errors import AUSpecError, FineFaceError
from fineface_core.grid import labelled_grid
from fineface_core.weightfiles.loading import load_weights
from tests.support.comfy_models import comfy_model
from tests.support.official_files import write_official_release
from tests.support.tiny_unets import tiny_unet

SLIDERS = {au.code: 0.0 for au in ACTION_UNITS}


def node(registry, name):
    cls = registry.NODE_CLASS_MAPPINGS[name]
    return getattr(cls(), cls.FUNCTION)


def validate(prompt):
    """ComfyUI's own check of a queued prompt: (valid, node_errors)."""
    import execution

    fn = execution.validate_prompt
    result = fn(str(uuid.uuid4()), prompt, None) if len(inspect.signature(fn).parameters) >= 3 else fn(prompt)
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    valid, _, _, node_errors = result
    return valid, node_errors


def au_vector_prompt(spec):
    """AU Vector -> AU Label Grid (with an empty image) -> Preview Image: the smallest graph that validates it."""
    return {
        "1": {"class_type": "FineFaceAUVector", "inputs": {**SLIDERS, "preset": "none", "spec": spec}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "3": {"class_type": "FineFaceAUGrid", "inputs": {"images": ["2", 0], "aus": ["1", 0], "columns": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }


def messages(node_errors, node_id):
    return " ".join(f"{e.get('message')} {e.get('details')}" for e in node_errors.get(node_id, {}).get("errors", []))


def test_a_bad_spec_is_refused_when_the_prompt_is_queued(registry):
    valid, errors = validate(au_vector_prompt("AU6@2\nAU7@3"))
    assert not valid and set(errors) == {"1"}
    text = messages(errors, "1")
    assert "spec line 2" in text and "AU7 (Lid Tightener)" in text
    assert validate(au_vector_prompt("happiness\nAU12@4 + AU25"))[0]


def test_two_terms_without_a_plus_are_named_with_the_fix(registry):
    valid, errors = validate(au_vector_prompt("AU12@3 AU6@2"))
    assert not valid and "did you mean 'AU12@3 + AU6@2'?" in messages(errors, "1")
    with pytest.raises(AUSpecError, match=r"'happiness AU25' holds 2 terms without a '\+'"):
        node(registry, "FineFaceAUVector")(spec="happiness AU25", **SLIDERS)
    # white space inside one term stays allowed
    aus, _ = node(registry, "FineFaceAUVector")(spec="AU 12 @ 3", **SLIDERS)
    assert aus.labels == ("AU12@3",)


def test_a_huge_spec_gives_a_short_message_quickly(registry):
    spec = "x" * 1_000_000
    t0 = time.perf_counter()
    valid, errors = validate(au_vector_prompt(spec))
    elapsed = time.perf_counter() - t0
    text = messages(errors, "1")
    assert not valid and "(1,000,000 characters)" in text
    assert len(text) < 1_000, len(text)
    assert elapsed < 5, elapsed
    with pytest.raises(AUSpecError) as err:
        node(registry, "FineFaceAUVector")(spec="AU12@" + "9" * 5000, **SLIDERS)
    assert len(str(err.value)) < 600 and "(5,005 characters)" in str(err.value)


def test_a_spec_from_a_link_is_checked_when_the_node_runs(registry):
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"]
    assert cls.VALIDATE_INPUTS(spec=None) is True  # no value yet at queue time
    assert cls.VALIDATE_INPUTS() is True
    assert "AU7" in cls.VALIDATE_INPUTS(spec="AU7")


# -- two FineFace models' LoRAs -------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_models(registry, tmp_path_factory):
    unet = tiny_unet("sd21", seed=0)
    tmp = tmp_path_factory.mktemp("two")
    a = load_weights(write_official_release(str(tmp / "a"), unet, "sd21", seed=1))
    b = load_weights(write_official_release(str(tmp / "b"), unet, "sd21", seed=2))
    return comfy_model(unet, "sd21"), a, b


def test_the_loras_of_two_fineface_models_are_not_merged(registry, two_models):
    model, a, b = two_models
    encode, apply = node(registry, "FineFaceAUEncoder"), node(registry, "FineFaceApplyAdapter")
    aus, _ = node(registry, "FineFaceAUVector")(spec="AU12@4", **SLIDERS)
    (emb_a,), (emb_b,) = encode(a, aus), encode(b, aus)
    (first,) = apply(model, a, emb_a, 1.0, 1.0, 0.0, 0.5)
    with pytest.raises(FineFaceError, match="already carries the LoRA of another FineFace model.*lora_strength to 0"):
        apply(first, b, emb_b, 1.0, 1.0, 0.5, 1.0)
    # its AU branch alone is allowed, and the first LoRA stays the only one
    (both,) = apply(first, b, emb_b, 1.0, 0.0, 0.5, 1.0)
    assert both.patches.keys() == first.patches.keys() and all(len(p) == 1 for p in both.patches.values())


# -- cells named as the user wrote them --------------------------------------------------------------

def test_preset_cells_carry_the_preset_name_over_their_aus(registry):
    aus, text = node(registry, "FineFaceAUVector")(spec="happiness\nAU4@4 + AU15@3\nsurprise@4 + AU25@2\nneutral", **SLIDERS)
    assert aus.titles == ("happiness", "", "surprise@4 + AU25@2", "")
    assert aus.captions[0] == "happiness\nAU6@3 + AU12@3" and aus.captions[1] == "AU4@4 + AU15@3"
    assert text.split("\n")[0] == "happiness: AU6@3 + AU12@3"
    preset, _ = node(registry, "FineFaceAUVector")(preset="sadness", spec="", **SLIDERS)
    assert preset.titles == ("sadness",)
    # the sweep keeps its base's name on every cell
    happiness = AUVectors(aus.values[:1], aus.labels[:1], aus.titles[:1])
    swept, _, labels = node(registry, "FineFaceAUSweep")("AU12 Lip Corner Puller", 0.0, 5.0, 3, {"samples": torch.zeros(1, 4, 8, 8)},
                                                         base=happiness)
    assert swept.titles == ("happiness",) * 3 and labels.split("\n")[2] == "happiness: AU6@3 + AU12@5"
    assert AUVectors(aus.values[:2]).concat(aus).titles == ("", "", *aus.titles)


def test_a_two_line_caption_draws_two_text_lines():
    img = np.full((2, 64, 160, 3), 0.5, dtype=np.float32)
    one = labelled_grid(img, ["AU6@3", "AU6@3"], font_size=12)
    two = labelled_grid(img, ["happiness\nAU6@3", "AU6@3"], font_size=12)
    assert two.shape[0] == one.shape[0] + 14  # one more line of 12 px + 2
    # the first cell's caption area holds ink in two separate text rows
    rows = (two[64 + 4:, 4:164].mean(axis=(1, 2)) < 0.99).nonzero()[0]
    assert len(np.split(rows, np.where(np.diff(rows) > 1)[0] + 1)) >= 2
