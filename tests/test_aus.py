"""fineface_core.aus: the 12 AUs and their table, AU specs from strings, dicts, sequences, tensors and batches,
intensity checks, format_aus and the presets."""
import dataclasses
import re

import numpy as np
import pytest
import torch

from fineface_core.aus import (
    ACTION_UNITS, AU_BY_CODE, AU_ORDER, DEFAULT_INTENSITY, INTENSITY_LETTERS, N_AUS,
    OTHER_FACS_AUS, PRESETS, SAFE_MAX, SAFE_MIN, ActionUnit, Preset, describe_au, format_aus,
    get_preset, parse_au_batch, parse_aus, validate_intensities,
)
from fineface_core.errors import AUSpecError
from tests.support.au_specs import assert_names, refusal, vec


def assert_vec(actual, expected):
    assert actual.dtype == torch.float32
    assert actual.shape == (N_AUS,)
    assert torch.equal(actual, expected), f"{actual.tolist()} != {expected.tolist()}"


# -- the AU table ------------------------------------------------------------------------

def test_au_order_and_table():
    assert AU_ORDER == ("AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17",
                        "AU20", "AU25", "AU26")
    assert N_AUS == 12 == len(ACTION_UNITS)
    assert tuple(au.code for au in ACTION_UNITS) == AU_ORDER
    for i, au in enumerate(ACTION_UNITS):
        assert isinstance(au, ActionUnit)
        assert au.index == i and au.code == f"AU{au.number}"
        assert AU_BY_CODE[au.code] is au
        assert au.name and au.movement
        assert au.region in {"brows", "eyes", "cheeks", "nose", "mouth", "chin", "jaw"}
    assert AU_BY_CODE["AU12"].name == "Lip Corner Puller"
    assert AU_BY_CODE["AU6"].region == "cheeks"
    assert AU_BY_CODE["AU26"].region == "jaw"
    assert AU_BY_CODE["AU5"].region == "eyes"
    with pytest.raises(dataclasses.FrozenInstanceError):
        AU_BY_CODE["AU12"].index = 3  # frozen


def test_other_facs_aus_disjoint_from_the_twelve():
    assert not set(OTHER_FACS_AUS) & {au.number for au in ACTION_UNITS}
    assert OTHER_FACS_AUS[7] == "Lid Tightener"
    assert OTHER_FACS_AUS[10] == "Upper Lip Raiser"
    assert OTHER_FACS_AUS[14] == "Dimpler"


def test_constants():
    assert INTENSITY_LETTERS == {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0, "E": 5.0}
    assert (SAFE_MIN, SAFE_MAX) == (-10.0, 10.0)
    assert DEFAULT_INTENSITY == 3.0


def test_describe_au():
    text = describe_au("AU12")
    assert text.startswith("AU12 Lip Corner Puller (mouth): ")
    assert "lip corners" in text
    assert describe_au(12) == describe_au("au12") == describe_au("12") == text
    assert describe_au("AU6").startswith("AU6 Cheek Raiser (cheeks): ")
    with pytest.raises(AUSpecError, match="Lid Tightener"):
        describe_au("AU7")


# -- strings -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("AU6+AU12", vec(AU6=3, AU12=3)),
    ("AU6@2.5 + AU12@4", vec(AU6=2.5, AU12=4)),
    ("  AU6 @ 2.5 ,AU12@ 4 ", vec(AU6=2.5, AU12=4)),
    ("au6@.5,au12@1.", vec(AU6=0.5, AU12=1)),
    ("AU12D", vec(AU12=4)),
    ("AU12@D", vec(AU12=4)),
    ("au12b", vec(AU12=2)),
    ("AU1A + AU26E", vec(AU1=1, AU26=5)),
    ("AU12@-2", vec(AU12=-2)),
    ("AU5@-10", vec(AU5=-10)),
    ("AU5@10", vec(AU5=10)),
    ("AU 12 @ 7.5", vec(AU12=7.5)),
    ("6+12", vec(AU6=3, AU12=3)),
    ("6@1,12@2", vec(AU6=1, AU12=2)),
    ("AU06", vec(AU6=3)),
    ("happiness", vec(AU6=3, AU12=3)),
    ("happiness@4", vec(AU6=4, AU12=4)),
    ("happiness@B", vec(AU6=2, AU12=2)),
    ("happiness + AU25@2", vec(AU6=3, AU12=3, AU25=2)),
    # terms add up (issue 21.6): a preset and an AU term, or one AU twice, sum
    ("happiness + AU12@1", vec(AU6=3, AU12=4)),
    ("AU12@1 + happiness", vec(AU6=3, AU12=4)),
    ("AU12@1 + AU12@2", vec(AU12=3)),
    ("neutral + AU12", vec(AU12=3)),
    ("surprise", vec(AU1=3, AU2=3, AU5=2, AU26=3)),
    ("Happily Surprised", vec(AU1=3, AU2=3, AU12=3, AU25=3)),
    ("happily-surprised@2", vec(AU1=2, AU2=2, AU12=2, AU25=2)),
    ("HAPPILY_SURPRISED", vec(AU1=3, AU2=3, AU12=3, AU25=3)),
    ("AU12@0", vec()),
])
def test_parse_string(spec, expected):
    assert_vec(parse_aus(spec), expected)


@pytest.mark.parametrize("spec", ["", "   ", "neutral", "None", " NEUTRAL "])
def test_neutral_spellings_give_zeros(spec):
    assert_vec(parse_aus(spec), vec())


@pytest.mark.parametrize("spec, fragments", [
    ("AU6++AU12", ["empty term", "AU6++AU12"]),
    ("AU6+", ["empty term"]),
    (", AU6", ["empty term"]),
    ("AU99", ["AU99", "AU1, AU2, AU4"]),
    ("AU0", ["AU0"]),
    ("AU7", ["AU7 (Lid Tightener)", "trained on these 12 only", "AU1, AU2, AU4, AU5, AU6, "
             "AU9, AU12, AU15, AU17, AU20, AU25, AU26"]),
    ("AU6 + AU10@2", ["AU10 (Upper Lip Raiser)"]),
    ("AU43", ["Eyes Closed", "AU5@-3"]),
    ("happyness", ["'happyness'", "Did you mean happiness"]),
    ("frobnicate", ["'frobnicate'", "happiness", "AU12@3.5"]),
    ("AU12@@3", ["AU12@@3"]),
    ("AU12@x", ["'x'", "AU12@x"]),
    ("AU12@", ["AU12@"]),
    ("AU12@3x", ["'3x'", "AU12@3x"]),
    ("AU12@nan", ["'nan'", "AU12@nan"]),
    ("AU12@inf", ["'inf'"]),
    ("AU12F", ["'F'", "AU12F", "A (trace"]),
    ("AU12@F", ["'F'"]),
    ("AU12DD", ["AU12DD"]),
    ("AU12.5", ["AU12.5"]),
    ("AU12-2", ["AU12-2"]),
    ("AU12@10.5", ["AU12 = 10.5", "safe range", "AU12@10.5"]),
    ("AU5@-11", ["AU5 = -11", "safe range"]),
    ("happiness@11", ["AU6 = 11", "happiness@11"]),
    ("neutral@2", ["'neutral@2'", "no intensity"]),
    ("AU12@3;AU6", ["AU12@3;AU6"]),
])
def test_parse_string_refusals(spec, fragments):
    assert_names(refusal(parse_aus, spec), fragments)


def test_unknown_preset_does_not_suggest_when_nothing_is_close():
    assert "Did you mean" not in refusal(parse_aus, "qqqqqqq")


# -- dicts -------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ({"AU12": 3}, vec(AU12=3)),
    ({"au12": 3.5, "AU6": 1}, vec(AU6=1, AU12=3.5)),
    ({"12": 3}, vec(AU12=3)),
    ({12: 2, 6: 1}, vec(AU6=1, AU12=2)),
    ({np.int64(12): np.float32(1.5)}, vec(AU12=1.5)),
    ({"AU12": "D"}, vec(AU12=4)),
    ({"AU12": "b"}, vec(AU12=2)),
    ({"AU12": "2.5"}, vec(AU12=2.5)),
    ({"AU5": -10}, vec(AU5=-10)),
    ({" AU 26 ": 5}, vec(AU26=5)),
    ({}, vec()),
])
def test_parse_dict(spec, expected):
    assert_vec(parse_aus(spec), expected)


@pytest.mark.parametrize("spec, fragments", [
    ({"AU7": 3}, ["AU7 (Lid Tightener)"]),
    ({99: 3}, ["AU99"]),
    ({"smile": 3}, ["'smile'", "AU12"]),
    ({True: 3}, ["boolean"]),
    ({(12,): 3}, ["(12,)"]),
    ({"AU12": True}, ["AU12", "boolean"]),
    ({"AU12": None}, ["AU12", "None"]),
    ({"AU12": [3]}, ["AU12", "[3]"]),
    ({"AU12": "F"}, ["'F'"]),
    ({"AU12": "lots"}, ["'lots'"]),
    ({"AU12": float("nan")}, ["AU12 is nan", "finite"]),
    ({"AU12": float("inf")}, ["AU12 is inf"]),
    ({"AU9": 10.01}, ["AU9 = 10.01", "safe range"]),
    ({"AU12": 3, 12: 4}, ["AU12 is given twice"]),
])
def test_parse_dict_refusals(spec, fragments):
    assert_names(refusal(parse_aus, spec), fragments)


# -- sequences and tensors ---------------------------------------------------------------

SEQ = [0, 1, 2, 3, 4, 5, -1, 0.5, 0, 0, 0, 10]


@pytest.mark.parametrize("spec", [
    SEQ, tuple(SEQ), np.array(SEQ, dtype=np.float64), np.array(SEQ, dtype=np.float32),
    torch.tensor(SEQ, dtype=torch.float64), torch.tensor(SEQ, dtype=torch.float16),
    np.array(SEQ, dtype=object),
])
def test_parse_sequence(spec):
    assert_vec(parse_aus(spec), torch.tensor(SEQ, dtype=torch.float32))


def test_parse_integer_tensor_and_array():
    ints = [0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 1]
    expected = torch.tensor(ints, dtype=torch.float32)
    assert_vec(parse_aus(torch.tensor(ints)), expected)
    assert_vec(parse_aus(np.array(ints)), expected)


def test_parse_tensor_returns_a_copy():
    t = torch.zeros(12)
    out = parse_aus(t)
    out[0] = 5
    assert t[0] == 0


@pytest.mark.parametrize("spec, fragments", [
    ([1] * 11, ["12 numbers", "got 11"]),
    ([1] * 13, ["got 13"]),
    ([], ["got 0"]),
    (torch.zeros(11), ["shape [11]"]),
    (torch.zeros(1, 12), ["shape [1, 12]", "parse_au_batch"]),
    (np.zeros((2, 12)), ["shape [2, 12]"]),
    ([0] * 11 + [float("nan")], ["AU26 is nan"]),
    ([0] * 3 + [float("-inf")] + [0] * 8, ["AU5 is -inf"]),
    (torch.tensor([0.0] * 6 + [11.0] + [0.0] * 5), ["AU12 = 11", "safe range"]),
    ([0] * 8 + [-10.5] + [0] * 3, ["AU17 = -10.5"]),
    ([True] + [0] * 11, ["item 0 (AU1)", "boolean"]),
    ([0] * 4 + ["AU6"] + [0] * 7, ["item 4 (AU6)", "'AU6'"]),
    ([0] * 4 + [None] + [0] * 7, ["item 4 (AU6)", "None"]),
    (torch.ones(12, dtype=torch.bool), ["bool"]),
    (np.ones(12, dtype=bool), ["bool"]),
    (torch.zeros(12, dtype=torch.complex64), ["complex"]),
    (3, ["int", "12 numbers"]),
    (3.0, ["float"]),
    (True, ["bool"]),
    (None, ["NoneType"]),
    ({1, 2}, ["set"]),
])
def test_parse_sequence_refusals(spec, fragments):
    assert_names(refusal(parse_aus, spec), fragments)


def test_aus_spec_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_aus("AU7")


# -- batches -----------------------------------------------------------------------------

def test_parse_au_batch_list_of_mixed_specs():
    out = parse_au_batch(["happiness", {"AU5": -3}, SEQ, "", torch.zeros(12)])
    assert out.shape == (5, 12) and out.dtype == torch.float32
    assert torch.equal(out[0], vec(AU6=3, AU12=3))
    assert torch.equal(out[1], vec(AU5=-3))
    assert torch.equal(out[2], torch.tensor(SEQ, dtype=torch.float32))
    assert torch.equal(out[3], vec()) and torch.equal(out[4], vec())


@pytest.mark.parametrize("single", ["AU12@4", ["AU12@4"], {"AU12": 4}, ("AU12D",),
                                    [0] * 6 + [4] + [0] * 5, vec(AU12=4)])
def test_parse_au_batch_single_spec_gives_one_row(single):
    out = parse_au_batch(single)
    assert out.shape == (1, 12)
    assert torch.equal(out[0], vec(AU12=4))


def test_parse_au_batch_from_matrix():
    m = torch.stack([vec(AU1=1), vec(AU26=2)])
    assert torch.equal(parse_au_batch(m), m)
    assert torch.equal(parse_au_batch(m.numpy()), m)


@pytest.mark.parametrize("specs, fragments", [
    ([], ["empty"]),
    ((), ["empty"]),
    (torch.zeros(0, 12), ["empty"]),
    (["AU6", "AU12", "AU7"], ["item 2", "AU7 (Lid Tightener)"]),
    (["AU6", "AU6++AU12"], ["item 1", "empty term"]),
    ([{"AU12": 3}, {"AU12": float("nan")}], ["item 1", "AU12 is nan"]),
    ([SEQ, [1, 2]], ["item 1", "got 2"]),
    (torch.zeros(2, 3, 12), ["[2, 3, 12]"]),
    (torch.zeros(2, 11), ["item 0", "shape [11]"]),
    (5, ["int"]),
])
def test_parse_au_batch_refusals(specs, fragments):
    assert_names(refusal(parse_au_batch, specs), fragments)


# -- validate_intensities ----------------------------------------------------------------

def test_validate_intensities_passes_good_tensors_through():
    t = torch.zeros(2, 3, 12)
    t[..., 3] = -10
    t[..., 6] = 10
    assert validate_intensities(t) is t
    assert validate_intensities(torch.zeros(0, 12)).shape == (0, 12)


@pytest.mark.parametrize("value, fragment", [
    (float("nan"), "AU17 is nan"), (float("inf"), "AU17 is inf"),
    (10.5, "AU17 = 10.5"), (-20.0, "AU17 = -20"),
])
def test_validate_intensities_names_the_first_bad_au(value, fragment):
    t = torch.zeros(3, 12)
    t[1, 8] = value
    t[2, 0] = 99  # a later offender must not be the one named
    message = refusal(validate_intensities, t)
    assert fragment in message
    assert "row 1" in message


@pytest.mark.parametrize("bad, fragment", [
    (torch.zeros(11), "[11]"), (torch.zeros(12, 3), "[12, 3]"), (torch.tensor(1.0), "[]"),
    ([0.0] * 12, "list"), (torch.zeros(12, dtype=torch.bool), "bool"),
])
def test_validate_intensities_refuses_bad_shapes_and_types(bad, fragment):
    with pytest.raises(AUSpecError, match=re.escape(fragment)):
        validate_intensities(bad)


# -- format_aus --------------------------------------------------------------------------

def test_format_aus_examples():
    assert format_aus(vec(AU6=3, AU12=4.5)) == "AU6@3 + AU12@4.5"
    assert format_aus(vec(AU12=-2, AU1=0.25)) == "AU1@0.25 + AU12@-2"
    assert format_aus(vec()) == "neutral"
    assert format_aus(vec(AU1=0.001, AU2=-0.004)) == "neutral"  # rounds to 0 at 2 decimals
    assert format_aus(vec(AU26=1.23456), precision=3) == "AU26@1.235"
    assert format_aus(vec(AU26=1.6), precision=0) == "AU26@2"
    assert format_aus("happiness + AU12@2") == "AU6@3 + AU12@5"
    assert format_aus([0] * 11 + [10]) == "AU26@10"


@pytest.mark.parametrize("seed", range(5))
def test_format_aus_round_trips(seed):
    g = torch.Generator().manual_seed(seed)
    v = torch.round(torch.empty(12).uniform_(-10, 10, generator=g) * 100) / 100
    v[torch.rand(12, generator=g) < 0.4] = 0
    back = parse_aus(format_aus(v))
    assert torch.allclose(back, v, atol=1e-6), (format_aus(v), v.tolist(), back.tolist())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_format_round_trips_every_preset(name):
    v = parse_aus(name)
    assert torch.equal(parse_aus(format_aus(v)), v)


# -- presets -----------------------------------------------------------------------------

EXPECTED_PRESETS = {
    "happiness": {"AU6": 3, "AU12": 3},
    "sadness": {"AU1": 3, "AU4": 3, "AU15": 3},
    "surprise": {"AU1": 3, "AU2": 3, "AU5": 2, "AU26": 3},
    "fear": {"AU1": 3, "AU2": 3, "AU4": 3, "AU5": 3, "AU20": 3, "AU26": 3},
    "anger": {"AU4": 3, "AU5": 3},
    "disgust": {"AU9": 3, "AU15": 3},
    "happily_surprised": {"AU1": 3, "AU2": 3, "AU12": 3, "AU25": 3},
    "sadly_fearful": {"AU1": 3, "AU4": 3, "AU20": 3, "AU25": 3},
    "sadly_angry": {"AU4": 3, "AU15": 3},
    "sadly_surprised": {"AU1": 3, "AU4": 3, "AU25": 3, "AU26": 3},
    "fearfully_angry": {"AU4": 3, "AU20": 3, "AU25": 3},
    "fearfully_surprised": {"AU1": 3, "AU2": 3, "AU5": 3, "AU20": 3, "AU25": 3},
    "angrily_surprised": {"AU4": 3, "AU25": 3, "AU26": 3},
    "disgustedly_surprised": {"AU1": 3, "AU2": 3, "AU5": 3},
    "awed": {"AU1": 3, "AU2": 3, "AU5": 3, "AU25": 3},
}


def test_preset_contents():
    assert {name: dict(p.aus) for name, p in PRESETS.items()} == EXPECTED_PRESETS
    assert "contempt" not in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_is_well_formed_and_parses(name):
    preset = PRESETS[name]
    assert isinstance(preset, Preset) and preset.name == name
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", name)
    assert preset.aus and set(preset.aus) <= set(AU_ORDER)
    assert all(0 < v <= 5 for v in preset.aus.values())
    assert preset.source.strip() and preset.note.strip()
    expected = vec(**preset.aus)
    assert_vec(parse_aus(name), expected)
    assert_vec(parse_aus(name.replace("_", " ").title()), expected)
    assert_vec(parse_aus(name.replace("_", "-").upper()), expected)
    assert get_preset(name.replace("_", " ")) is preset


def test_preset_sources_and_notes():
    assert "Ekman" in PRESETS["happiness"].source
    assert "Du, Tao & Martinez" in PRESETS["awed"].source
    assert "1+2+6+12" in PRESETS["happily_surprised"].source
    assert "AU7" in PRESETS["fear"].note
    assert "AU7" in PRESETS["anger"].note and "AU23" in PRESETS["anger"].note
    assert "AU16" in PRESETS["disgust"].note
    assert "AU10" in PRESETS["disgustedly_surprised"].note


def test_get_preset_unknown_suggests():
    with pytest.raises(AUSpecError, match="Did you mean sadly_angry"):
        get_preset("sadly angri")

