"""One rule for AU Vector's inputs (issue 21.6, issue 25.3): base + preset + spec terms + sliders, everything adds;
``neutral`` clears what comes before it (the base included), ``AU12=v`` sets one AU; a sum outside the trained 0..5
is kept and flagged (label, face preview). Plain words (smile, frown, open mouth ...), the controls for hands
(step, search aliases) and AU Keyframes' advice (issue 21.7, 21.8). Through the real node classes from ComfyUI's
registry, ComfyUI's own queue-time validation, and (slow) renders through ComfyUI's executor."""
import re
import time

import numpy as np
import pytest
import torch
from PIL import Image

from fineface_core.au_vector import au_schema, preview
from fineface_core.aus import ACTION_UNITS, AU_ORDER, PRESETS, format_aus, parse_aus, parse_spec
from fineface_core.conditioning import AUVectors
from fineface_core.errors import AUSpecError
from fineface_core.keyframes import keyframe_vectors
from tests.support import comfy_env
from tests.support.au_specs import assert_names, refusal, vec
from tests.support.queue_validation import validate_node

ZERO = {au.code: 0.0 for au in ACTION_UNITS}
AU4, AU6, AU12, AU15 = (AU_ORDER.index(c) for c in ("AU4", "AU6", "AU12", "AU15"))


@pytest.fixture(scope="module")
def au_vector(registry):
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"]

    def build(preset="none", spec="", base=None, append_to=None, **sliders):
        return getattr(cls(), cls.FUNCTION)(preset=preset, spec=spec, base=base, append_to=append_to,
                                            **dict(ZERO, **sliders))
    return build


# A photo's reading, as AU From Image gives it to AU Vector's base.
PHOTO = AUVectors(vec(AU4=1.5, AU6=2.0, AU12=2.5, AU15=0.75)[None])


# -- the four cases of issue 21.6 ---------------------------------------------------------------------------------

def test_preset_plus_slider_adds_and_a_sum_past_5_is_flagged(au_vector):
    aus, label = au_vector(preset="happiness", AU12=4.0)
    assert aus.values[0, AU12] == 7.0 and aus.values[0, AU6] == 3.0  # kept, not clipped
    assert label == "happiness: AU6@3 + AU12@7 (outside the trained 0..5: AU12)"
    # the face's preview says the same (the front end colours the AUs it lists)
    answer = preview("happiness", "", dict(ZERO, AU12=4.0))
    assert answer["outside"] == [["AU12"]] and answer["error"] is None
    # below 0 is outside the trained range too
    assert au_vector(spec="AU5@-3")[1] == "AU5@-3 (outside the trained 0..5: AU5)"


def test_preset_plus_spec_term_adds_to_the_presets_au(au_vector):
    aus, label = au_vector(preset="happiness", spec="AU12@1")
    assert torch.equal(aus.values[0], vec(AU6=3, AU12=4))
    assert label == "happiness + AU12@1: AU6@3 + AU12@4"


def test_slider_plus_spec_term_adds(au_vector):
    aus, label = au_vector(spec="AU12@1", AU12=4.0)
    assert torch.equal(aus.values[0], vec(AU12=5)) and label == "AU12@5"  # 5 is inside 0..5: no flag


def test_the_same_au_twice_in_a_spec_adds(au_vector):
    assert torch.equal(au_vector(spec="AU12@4 + AU12@1")[0].values[0], vec(AU12=5))
    assert torch.equal(parse_aus("AU12@4, AU12@1"), vec(AU12=5))


# -- neutral, set, relative ---------------------------------------------------------------------------------------

def test_neutral_clears_the_base_and_the_preset(au_vector):
    aus, label = au_vector(preset="sadness", spec="neutral", base=PHOTO)
    assert torch.equal(aus.values[0], torch.zeros(12)) and label == "neutral"
    # "neutral + surprise@3" is surprise at 3 whatever the photo shows; its title drops what was cleared
    aus, label = au_vector(spec="neutral + surprise@3", base=PHOTO)
    assert torch.equal(aus.values[0], parse_aus("surprise@3")) and aus.titles == ("surprise@3",)
    # sliders come last: they add to the cleared face
    assert torch.equal(au_vector(spec="neutral", base=PHOTO, AU12=2.0)[0].values[0], vec(AU12=2))
    # a term after neutral adds to zeros; a term before it is cleared too
    assert torch.equal(parse_aus("AU12@4 + neutral + AU6@1"), vec(AU6=1))
    assert parse_spec("neutral").clears_all and not parse_spec("AU4=0").clears_all


def test_an_empty_spec_keeps_the_base(au_vector):
    assert torch.equal(au_vector(base=PHOTO)[0].values[0], PHOTO.values[0])


def test_set_terms_neutralize_chosen_aus_of_the_photo(au_vector):
    aus, _ = au_vector(spec="AU4=0 + AU15=0", base=PHOTO)
    assert torch.equal(aus.values[0], vec(AU6=2.0, AU12=2.5))
    # a set term then an added one: set, then add; an added one then a set: the set wins
    assert torch.equal(au_vector(spec="AU12=0 + AU12@1", base=PHOTO)[0].values[0, AU12], torch.tensor(1.0))
    assert torch.equal(au_vector(spec="AU12@1 + AU12=0", base=PHOTO)[0].values[0, AU12], torch.tensor(0.0))
    assert torch.equal(au_vector(preset="happiness", spec="AU12=D")[0].values[0], vec(AU6=3, AU12=4))
    # AU12=+3 is a value with its sign, not a term '+3'; AU12@+3 adds 3
    assert torch.equal(parse_aus("AU12=+3"), vec(AU12=3)) and torch.equal(parse_aus("AU12@+3"), vec(AU12=3))


def test_a_spec_on_a_base_is_relative_to_it(au_vector):
    aus, _ = au_vector(spec="AU12@2", base=PHOTO)
    assert torch.equal(aus.values[0], PHOTO.values[0] + vec(AU12=2))
    aus, _ = au_vector(spec="AU12@-2.5", base=PHOTO)
    assert aus.values[0, AU12] == 0.0
    # without a base the same term is the absolute intensity, as before
    assert torch.equal(au_vector(spec="AU12@2")[0].values[0], vec(AU12=2))
    # one line on a batch of bases: each base gets it
    two = AUVectors(torch.stack([vec(AU12=1), vec(AU12=3)]))
    assert au_vector(spec="AU12@1", base=two)[0].values[:, AU12].tolist() == [2.0, 4.0]
    # the preset adds to the base as well
    assert torch.equal(au_vector(preset="happiness", base=PHOTO)[0].values[0], PHOTO.values[0] + parse_aus("happiness"))


def test_a_sum_outside_the_safe_range_is_refused_with_the_spec():
    with pytest.raises(AUSpecError, match=r"AU12 = 16 is outside the safe range.*add up to it"):
        parse_aus("AU12@8 + AU12@8")
    with pytest.raises(AUSpecError, match="'neutral' takes no intensity"):
        parse_aus("neutral@2")
    with pytest.raises(AUSpecError, match="'=' sets one action unit"):
        parse_aus("happiness=2")


def test_the_preview_says_when_a_line_clears_a_linked_base():
    answer = preview("happiness", "neutral + AU12@1\nAU4=0\nAU12@1", ZERO)
    assert answer["clears_base"] == [True, False, False]
    assert answer["base"][0] == vec(AU12=1).tolist() and answer["base"][1] == parse_aus("happiness").tolist()


# -- plain words --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("word, expected", [
    ("smile", vec(AU12=3)),  # FACS: AU12 is the smile; happiness (6+12) is the felt one
    ("smile@4", vec(AU12=4)),
    ("frown", vec(AU4=3)),
    ("open mouth", vec(AU25=3, AU26=3)),
    ("Open-Mouth@2", vec(AU25=2, AU26=2)),
    ("raise brows", vec(AU1=3, AU2=3)),
    ("raised eyebrows@B", vec(AU1=2, AU2=2)),
    ("wide eyes", vec(AU5=3)),
    ("happy", parse_aus("happiness")),
    ("surprised", parse_aus("surprise")),
    ("smile + raise cheeks@2", vec(AU6=2, AU12=3)),
])
def test_plain_words_expand_to_their_aus(word, expected):
    assert torch.equal(parse_aus(word), expected)


def test_a_word_is_shown_as_what_it_expands_to(au_vector):
    assert au_vector(spec="smile")[1] == "smile: AU12@3"
    assert au_vector(spec="open  mouth @ 4")[1] == "open mouth@4: AU25@4 + AU26@4"
    words = au_schema()["words"]
    assert words["smile"]["label"] == "AU12@3" and words["frown"]["aus"] == {"AU4": 3.0}
    assert not set(words) & set(PRESETS)


@pytest.mark.parametrize("text, fragments", [
    ("smiling", ["Did you mean smile"]),
    ("blink", ["not trained on", "AU5@-3"]),
    ("closed eyes", ["AU5@-3"]),
    ("smirk", ["one-sided"]),
    ("smile frown", ["did you mean 'smile + frown'"]),
])
def test_words_the_model_cannot_do_are_refused_with_what_comes_closest(text, fragments):
    assert_names(refusal(parse_aus, text), fragments)


# -- queue time: ComfyUI's own validation runs the node's check ---------------------------------------------------

def _validate(spec):
    """ComfyUI's validation of AU Vector in a queued prompt: (ok, errors)."""
    prompt = {"1": {"class_type": "FineFaceAUVector", "inputs": dict(ZERO, preset="happiness", spec=spec)}}
    return validate_node(prompt, "1")[:2]


@pytest.mark.parametrize("spec", ["neutral + surprise@3", "AU4=0 + AU15=0", "smile", "happiness + AU12@1\nneutral"])
def test_the_new_terms_pass_comfyuis_queue_time_check(registry, spec):
    ok, errors = _validate(spec)
    assert ok, errors


def test_a_bad_term_is_marked_on_the_node_at_queue_time(registry):
    ok, errors = _validate("AU12@1\nsmile=3")
    assert not ok and "spec line 2" in str(errors) and "'=' sets one action unit" in str(errors)


# -- controls for hands, and found by what a newcomer searches ----------------------------------------------------

def test_au_inputs_step_half_a_facs_step(registry):
    for name in ("FineFaceAUVector", "FineFaceAUSweep"):
        inputs = registry.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()["required"]
        steps = {k: v[1]["step"] for k, v in inputs.items() if v[0] == "FLOAT"}
        assert steps and set(steps.values()) == {0.5}, (name, steps)


def test_the_pack_is_found_by_expression_and_emotion(registry):
    for word in ("expression", "emotion"):
        found = [name for name, cls in registry.NODE_CLASS_MAPPINGS.items() if name.startswith("FineFace")
                 and any(word in alias for alias in getattr(cls, "SEARCH_ALIASES", ()))]
        assert "FineFaceAUVector" in found and "FineFaceAUKeyframes" in found, (word, found)
    assert "expression" in registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"].DESCRIPTION.lower()


# -- AU Keyframes' advice works the first time (issue 21.8) -------------------------------------------------------

@pytest.mark.parametrize("text, frames", [
    ("0: neutral\n11: happiness\n15: smile", 10),
    ("0: neutral; 12: happiness; 13: sadness; 40: neutral", 12),
    ("0: neutral\n30: happiness\nnot a keyframe\n20: sadness", 24),  # later lines refused on their own
    ("0: neutral\n4096: happiness", 24),
])
def test_raise_frames_names_what_the_whole_text_needs(text, frames):
    need = int(re.search(r"raise frames to at least (\d+)", refusal(keyframe_vectors, text, frames, "linear"))[1])
    try:
        keyframe_vectors(text, need, "linear")
    except AUSpecError as err:  # what remains is about something else than the clip's length
        assert "past the end of the animation" not in str(err), str(err)


def test_the_advice_names_the_last_keyframe():
    with pytest.raises(AUSpecError, match=r"at least 16 \(the last keyframe is at frame 15\)"):
        keyframe_vectors("0: neutral\n11: happiness\n15: smile", 10, "linear")


# -- linear time for the new syntax -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "AU12=" + " " * 100_000 + "x", "=" * 100_000, "AU12=+" * 20_000, "neutral + " * 10_000,
    "0: neutral\n100: AU4\n" + "200: AU12\n" * 20_000,  # past the end: the advice reads every line once
], ids=["set then spaces", "equals signs", "set with signs", "neutral terms", "keyframes past the end"])
def test_the_new_syntax_is_read_in_linear_time(text):
    t0 = time.perf_counter()
    for parse in (parse_aus, lambda t: keyframe_vectors(t, 8, "linear"), lambda t: preview("happiness", t, ZERO)):
        try:
            parse(text)
        except AUSpecError as err:
            assert len(str(err)) < 1_000
    assert time.perf_counter() - t0 < 1.0


# -- through ComfyUI's executor: the copy-expression workflow's base, cleared or edited by the spec ------------------

@pytest.fixture
def photo_dirs(comfy_dirs, models_dir):
    from tests.support.libreface_files import skimage_photo, write_libreface_checkpoint

    path = models_dir / "libreface" / "resnet.pt"
    if not path.exists():
        write_libreface_checkpoint(str(path), seed=11)
    from tests.support.shipped_workflows import photo_name

    Image.fromarray(skimage_photo("astronaut.png")).save(comfy_dirs / "input" / photo_name("copy"))
    return comfy_dirs


@pytest.mark.slow
def test_a_spec_on_the_photos_reading_renders_as_the_rule_says(photo_dirs, models_dir, node_info):
    from fineface_core.faces.libreface import load_estimator
    from fineface_core.faces.photo_aus import read_expressions
    from tests.support.shipped_runs import TEST_SIZE, TEST_STEPS, images_of
    from tests.support.shipped_workflows import load_shipped, photo_name
    from workflows.api_format import workflow_to_prompt
    from workflows.overrides import set_input

    def render(name, spec):
        prompt = workflow_to_prompt(load_shipped(name), node_info)
        for node, field, value in [("EmptyLatentImage", "width", TEST_SIZE), ("EmptyLatentImage", "height", TEST_SIZE),
                                   ("KSampler", "steps", TEST_STEPS), ("FineFaceAUVector", "spec", spec),
                                   *[("FineFaceAUVector", au.code, 0.0) for au in ACTION_UNITS]]:
            set_input(prompt, node, field, value)
        (image,) = images_of(comfy_env.run_prompt(prompt), prompt, "SaveImage")
        return image.astype(int)

    photo = np.asarray(Image.open(photo_dirs / "input" / photo_name("copy")))[None].astype(np.float32) / 255
    read = read_expressions(photo, load_estimator(str(models_dir / "libreface" / "resnet.pt"))).aus.values[0]
    # neutral clears the photo's reading: the copy workflow renders what the basic one does for neutral
    assert np.abs(render("copy", "neutral") - render("basic", "neutral")).max() <= 1
    # AU4=0 + AU12@1 on the reading: the reading with AU4 removed and AU12 one higher
    edited = read.clone()
    edited[AU4], edited[AU12] = 0.0, read[AU12] + 1
    copied = render("copy", "AU4=0 + AU12@1")
    assert np.abs(copied - render("basic", format_aus(edited, precision=6))).max() <= 1
    assert np.abs(copied - render("copy", "")).mean() > 0.5  # the edit changed the render
