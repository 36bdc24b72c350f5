"""AU keyframes -> one AU vector per frame: exact at the keyframes, eased between them, held outside them.

The expected values are the easing formulas written out here; the node is taken from ComfyUI's
registry and its queue-time check runs through ComfyUI's own validate_prompt.
"""
import math

import pytest
import torch

from fineface_core.aus import AU_ORDER, format_aus, parse_aus
from fineface_core.errors import AUSpecError
from fineface_core.keyframes import EASINGS, interpolate, keyframe_vectors, parse_keyframes
from tests.support.queue_validation import validate_node

TEXT = "0: neutral\n12: happiness@4\n24: AU1@3 + AU2@3 + AU26@4"
FORMULAS = {
    "linear": lambda t: t,
    "ease-in-out": lambda t: (1 - math.cos(math.pi * t)) / 2,
    "hold": lambda t: 0.0,
}


def expected(keys, frames, easing):
    """The frame values from the formulas, in float64: hold before the first and after the last keyframe."""
    rows = []
    for f in range(frames):
        if f <= keys[0][0]:
            rows.append(parse_aus(keys[0][1]).double())
            continue
        if f >= keys[-1][0]:
            rows.append(parse_aus(keys[-1][1]).double())
            continue
        (fa, sa), (fb, sb) = next((a, b) for a, b in zip(keys, keys[1:]) if a[0] <= f < b[0])
        a, b = parse_aus(sa).double(), parse_aus(sb).double()
        rows.append(a + FORMULAS[easing]((f - fa) / (fb - fa)) * (b - a))
    return torch.stack(rows)


@pytest.mark.parametrize("easing", EASINGS)
def test_keyframes_are_exact_and_frames_between_follow_the_easing(easing):
    keys = [(3, "neutral"), (9, "happiness@4"), (17, "AU1@3 + AU2@3 + AU26@4"), (20, "AU4@2.5 + AU15@1")]
    text = "\n".join(f"{f}: {s}" for f, s in keys)
    aus = keyframe_vectors(text, 24, easing)
    assert aus.values.shape == (24, 12) and aus.values.dtype == torch.float32
    for frame, spec in keys:
        assert torch.equal(aus.values[frame], parse_aus(spec)), frame  # bit for bit
    assert torch.allclose(aus.values.double(), expected(keys, 24, easing), atol=1e-6)
    # before the first keyframe its values hold, after the last the last one's
    assert (aus.values[:3] == 0).all() and torch.equal(aus.values[23], parse_aus(keys[-1][1]))


def test_the_easings_differ_where_they_should():
    lin, smooth, hold = (keyframe_vectors("0: neutral\n8: AU12@4", 9, e).values[:, AU_ORDER.index("AU12")] for e in EASINGS)
    assert torch.allclose(lin, torch.arange(9) * 0.5)
    assert smooth[1] < lin[1] and smooth[4] == pytest.approx(lin[4]) and smooth[7] > lin[7]  # slow, even, slow
    assert (hold[:8] == 0).all() and hold[8] == 4


def test_labels_name_every_frames_aus_and_the_keyframes_preset():
    aus = keyframe_vectors(TEXT, 25, "linear")
    assert len(aus) == len(aus.labels) == len(aus.titles) == 25
    assert aus.labels == tuple(format_aus(v) for v in aus.values)
    assert aus.labels[0] == "neutral" and aus.labels[12] == "AU6@4 + AU12@4"
    assert aus.labels[6] == "AU6@2 + AU12@2" and aus.labels[24] == "AU1@3 + AU2@3 + AU26@4"
    assert aus.titles[12] == "frame 12 (happiness@4)" and aus.titles[6] == "frame 6" and aus.titles[24] == "frame 24"
    assert aus.text.split("\n")[12] == "frame 12 (happiness@4): AU6@4 + AU12@4"


def test_keyframes_on_one_line_and_blank_lines():
    one_line = keyframe_vectors("0: neutral; 16: happiness@4", 17, "linear")
    lines = keyframe_vectors("\n  0 : neutral \n\n16:happiness@4\n", 17, "linear")
    assert torch.equal(one_line.values, lines.values)


def test_a_keyframe_at_the_end_of_the_clip_is_headed_for_and_a_loop_closes():
    smile = keyframe_vectors("0: neutral; 16: happiness@4", 16, "linear").values[:, AU_ORDER.index("AU12")]
    assert torch.allclose(smile, torch.arange(16) * 0.25)  # frame 15 is 15/16 of the way
    loop = keyframe_vectors("0: neutral; 8: AU12@4; 16: neutral", 16, "linear").values[:, AU_ORDER.index("AU12")]
    # the step from the last frame back to the first equals every other step
    steps = torch.diff(torch.cat([loop, loop[:1]])).abs()
    assert torch.allclose(steps, torch.full((16,), 0.5))


def test_one_keyframe_holds_for_every_frame():
    aus = keyframe_vectors("5: surprise", 8, "ease-in-out")
    assert torch.equal(aus.values, parse_aus("surprise").expand(8, -1))


@pytest.mark.parametrize("text, frames, message", [
    ("0: neutral\n12: happiness\n6: sadness", 24, r"line 3 \('6: sadness'\): frame 6 comes after frame 12 \(line 2"),
    ("0: neutral\n12: happiness\n12: sadness", 24, r"line 3 \('12: sadness'\): frame 12 has a keyframe already \(line 2"),
    ("0: neutral; -2: happiness", 24, r"line 1 \('-2: happiness'\): frame -2 is before the first frame"),
    ("0: neutral\n30: happiness", 24, r"line 2 \('30: happiness'\): frame 30 is past the end .*24 frames are numbered 0 to 23.*at least 31"),
    ("0: neutral\n25: happiness", 24, r"frame 25 is past the end"),
    ("0: neutral\nhappiness", 24, r"line 2 \('happiness'\): no ':'"),
    ("0: neutral\n1.5: happiness", 24, r"line 2 .*'1.5' is not a frame number"),
    ("0: neutral\n4: AU7@2", 24, r"line 2 \('4: AU7@2'\): AU7 \(Lid Tightener\)"),
    ("0:", 24, r"line 1 .*no AU spec"),
    ("\n  \n", 24, r"no keyframes"),
    # past any clip: no advice to raise frames beyond its maximum, and no number too long for int()
    ("0: neutral\n4097: happiness", 24, r"line 2 .*frame 4097 is past the end of any animation \(at most 4096 frames\)"),
    ("0: neutral\n4096: happiness", 24, r"raise frames to at least 4096,"),
    ("0: neutral", 0, r"number of frames"),
])
def test_bad_keyframes_are_refused_naming_the_line(text, frames, message):
    with pytest.raises(AUSpecError, match=message):
        keyframe_vectors(text, frames, "linear")


def test_a_frame_number_too_long_for_int_is_refused_naming_the_line():
    with pytest.raises(AUSpecError, match=r"line 2 .*frame '9{20}…' \(5,000 characters\) is past the end of any anim"):
        keyframe_vectors("0: neutral\n" + "9" * 5000 + ": happiness", 24, "linear")


def test_an_unknown_easing_is_refused():
    with pytest.raises(AUSpecError, match="easing 'bounce' is not one of linear, ease-in-out, hold"):
        interpolate(parse_keyframes("0: neutral"), 4, "bounce")


def test_messages_stay_short_whatever_the_input():
    with pytest.raises(AUSpecError) as err:
        keyframe_vectors("0: neutral\n3: " + "x" * 100_000, 8, "linear")
    assert len(str(err.value)) < 1000


# -- the node --------------------------------------------------------------------------------------

def test_the_node_gives_one_vector_and_one_label_line_per_frame(registry):
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceAUKeyframes"]
    aus, label = getattr(cls(), cls.FUNCTION)(keyframes=TEXT, frames=25, easing="ease-in-out")["result"]
    assert torch.equal(aus.values, keyframe_vectors(TEXT, 25, "ease-in-out").values)
    assert label.split("\n") == [f"{t}: {l}" for t, l in zip(aus.titles, aus.labels)]
    # the default text makes an animation of the default length
    spec = cls.INPUT_TYPES()["required"]
    aus, _ = getattr(cls(), cls.FUNCTION)(spec["keyframes"][1]["default"], spec["frames"][1]["default"], spec["easing"][1]["default"])["result"]
    assert len(aus) == 16


def test_the_keyframes_are_checked_when_the_prompt_is_queued(registry):
    """ComfyUI's own input validation runs the node's VALIDATE_INPUTS: the front end marks the node before anything runs."""
    bad = {"1": {"class_type": "FineFaceAUKeyframes", "inputs": {"keyframes": "0: neutral\n8: smirk", "frames": 16, "easing": "linear"}}}
    ok, errors = validate_node(bad, "1")[:2]
    assert not ok and "line 2" in str(errors) and "smirk" in str(errors)
    good = {"1": {"class_type": "FineFaceAUKeyframes", "inputs": {"keyframes": TEXT, "frames": 25, "easing": "hold"}}}
    assert validate_node(good, "1")[0]
    # the frame count is ComfyUI's own check (min 1), the end of the clip the node's when it runs
    zero = {"1": {"class_type": "FineFaceAUKeyframes", "inputs": {"keyframes": TEXT, "frames": 0, "easing": "hold"}}}
    assert not validate_node(zero, "1")[0]
    cls = registry.NODE_CLASS_MAPPINGS["FineFaceAUKeyframes"]
    assert cls.VALIDATE_INPUTS(keyframes=None) is True  # a linked text has no value at queue time
    # a frame number too long for int() is a refusal with its line, not an exception in ComfyUI's validation
    huge = {"1": {"class_type": "FineFaceAUKeyframes", "inputs": {"keyframes": "0: neutral\n" + "1" * 5000 + ": smirk",
                                                                  "frames": 16, "easing": "linear"}}}
    ok, errors = validate_node(huge, "1")[:2]
    assert not ok and "custom_validation_failed" in str(errors) and "past the end of any animation" in str(errors)
    with pytest.raises(AUSpecError, match="past the end"):
        getattr(cls(), cls.FUNCTION)(keyframes=TEXT, frames=12, easing="hold")
