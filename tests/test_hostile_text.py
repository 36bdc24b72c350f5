"""Hostile AU text (issue 22, items 2, 3, 4 and 12): every parser of AU specs and keyframes runs in linear time,
AU Vector's spec is bounded when the prompt is queued, over-long numbers are refused as such (never a raw
ValueError or an HTTP 500), '+3' is an intensity, and invisible characters are named by their code point."""
from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import unicodedata

import pytest
import torch

from fineface_core.au_vector import MAX_SPEC_CHARS, MAX_SPEC_LINES, parse_lines, preview
from fineface_core.aus import AU_ORDER, expression_title, is_neutral, parse_aus, split_specs
from fineface_core.errors import AUSpecError
from fineface_core.keyframes import keyframe_vectors, parse_keyframes
from tests.support.queue_validation import validate_node
from tests.support.route_client import route_client

ZERO = {code: 0.0 for code in AU_ORDER}
N = 100_000  # a quadratic parser spends seconds on a line this long (the keyframe regex: 10.8 s), a linear one ms
TIME_BOUND = 1.0


def _adversarial_lines(n: int) -> dict[str, str]:
    """Lines made to make a backtracking regex or a per-term loop do n^2 work, and random mixes of the
    characters the parsers split on."""
    lines = {
        "keyframe without ':'": "1" + " " * n + "x",
        "digits then a letter": "AU12@" + "1" * n + "x",
        "digit, dot, digit...": "AU12@" + "1." * (n // 2),
        "signs": "AU12@" + "+-" * (n // 2),
        "spaces after @": "AU12@" + " " * n + "x",
        "ats": "@" * n, "pluses": "+" * n, "commas": "," * n, "colons": ":" * n, "semicolons": ";" * n,
        "preset-like": "a-" * (n // 2) + "@x", "AU AU AU": "AU " * (n // 3), "spaces": " " * n + "x",
        "many terms": "AU12+" * (n // 5), "many lines": "AU12\n" * (n // 5),
        "zero-width spaces": "\u200b" * n, "frame of zeros": "0" * n + "1: AU12",
        "long spec after a frame": "1: AU12@" + "9" * n, "long preset after a frame": "1: " + "happiness" * (n // 9),
    }
    rng = random.Random(22)
    for seed in range(4):
        lines[f"random mix {seed}"] = "".join(rng.choice("AU12@+-.,:; \t\n\u200b0a") for _ in range(n))
    return lines


PARSERS = {
    "parse_aus": parse_aus,
    "parse_keyframes": parse_keyframes,
    # AU Vector refuses specs over MAX_SPEC_CHARS before reading them: these two get as much as it reads
    "AU Vector's lines": lambda text: parse_lines(text[:MAX_SPEC_CHARS]),
    "the face's preview": lambda text: preview("happiness", text[:MAX_SPEC_CHARS], ZERO),
    "keyframe_vectors": lambda text: keyframe_vectors(text, 16, "linear"),
    "expression_title": expression_title,
    "is_neutral": is_neutral,
    "split_specs": split_specs,
}


class _Stopped(Exception):
    pass


def _stop(*_):
    raise _Stopped  # raised inside a regex match too: the re engine checks for signals as it runs


def _time(parse, text, stop_after: float) -> float:
    """Seconds ``parse(text)`` takes, or ``stop_after`` when it is stopped there (a quadratic parser takes minutes)."""
    alarm = hasattr(signal, "setitimer")
    if alarm:
        previous = signal.signal(signal.SIGALRM, _stop)
        signal.setitimer(signal.ITIMER_REAL, stop_after)
    t0 = time.perf_counter()
    try:
        parse(text)
    except AUSpecError as err:
        assert len(str(err)) < 1_000, len(str(err))  # a message never grows with its input
    except _Stopped:
        return stop_after
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return time.perf_counter() - t0


@pytest.mark.parametrize("parser", PARSERS)
def test_every_parser_of_au_text_is_linear_on_long_adversarial_lines(parser):
    times = {name: _time(PARSERS[parser], text, 3 * TIME_BOUND) for name, text in _adversarial_lines(N).items()}
    slow = {name: round(t, 2) for name, t in times.items() if t > TIME_BOUND}
    assert not slow, f"{parser} took more than {TIME_BOUND} s on {slow}"


# -- AU Vector's spec size, when the prompt is queued ------------------------------------------------

def test_au_vector_refuses_a_huge_spec_at_queue_time_quickly_and_says_why(registry):
    node = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"]
    valid_lines = "AU12@3 + AU6@2\n" * 70_000  # 1 MB of good lines: once 1.7 s of checking and then accepted
    t0 = time.perf_counter()
    message = node.VALIDATE_INPUTS(spec=valid_lines)
    assert time.perf_counter() - t0 < 0.5
    assert isinstance(message, str) and message.startswith("the spec 'AU12@3 + AU6@2")
    assert f"is too long: AU Vector takes at most {MAX_SPEC_CHARS:,} characters" in message
    assert "(1,050,000 characters)" in message and len(message) < 300
    lines = node.VALIDATE_INPUTS(spec="1\n" * (MAX_SPEC_LINES + 1))
    assert lines.startswith(f"the spec has {MAX_SPEC_LINES + 1:,} lines: AU Vector takes at most {MAX_SPEC_LINES:,}")
    with pytest.raises(AUSpecError, match="is too long: AU Vector takes at most"):  # a linked spec, when it runs
        node().build(spec=valid_lines, **ZERO)
    assert node.VALIDATE_INPUTS(spec="AU12@3\n" * MAX_SPEC_LINES) is True  # a whole batch's worth is fine


# -- numbers longer than Python's int() reads ------------------------------------------------------

@pytest.mark.parametrize("spec, number", [
    ("1" * 5000 + "@3", "AU number '11111111111111111111…' (5,000 characters)"),
    ("AU" + "1" * 100_000, "AU number '11111111111111111111…' (100,000 characters)"),
    ("AU12@" + "1" * 5000, "intensity '11111111111111111111…' (5,000 characters)"),
    ("AU12@-" + "0" * 5000 + "1", "intensity '-0000000000000000000…' (5,002 characters)"),
])
def test_over_long_numbers_in_a_spec_are_refused_as_too_long(spec, number):
    with pytest.raises(AUSpecError) as err:
        parse_aus(spec)
    assert f"the {number} in " in str(err.value) and "is too long" in str(err.value)
    with pytest.raises(AUSpecError, match="too large"):
        parse_aus({10 ** 5000: 3})  # an int key too long to write out
    with pytest.raises(AUSpecError, match="is too long"):
        parse_aus({"AU" + "1" * 5000: 3})


def test_an_over_long_frame_number_is_refused_as_too_long():
    with pytest.raises(AUSpecError, match=r"^line 2 .*: the frame number '0{20}…' \(5,001 characters\) is too long"):
        parse_keyframes("0: neutral\n" + "0" * 5000 + "1: AU12")
    assert parse_keyframes("0: neutral\n0001: AU12")[1].frame == 1  # a few leading zeros are still a number


def _validate_node(prompt, node_id):
    """ComfyUI's own check of one node of a queued prompt: (valid, errors)."""
    return validate_node(prompt, node_id)[:2]


def test_over_long_numbers_are_a_validation_error_when_the_prompt_is_queued(registry):
    vector = {"1": {"class_type": "FineFaceAUVector", "inputs": {**ZERO, "preset": "none", "spec": "1" * 5000 + "@3"}}}
    valid, errors = _validate_node(vector, "1")
    assert not valid and "custom_validation_failed" in str(errors) and "the AU number '1111" in str(errors)
    assert "exception_during_inner_validation" not in str(errors) and "is too long" in str(errors)
    frames = {"1": {"class_type": "FineFaceAUKeyframes",
                    "inputs": {"keyframes": "0" * 5000 + "1: AU12", "frames": 16, "easing": "linear"}}}
    valid, errors = _validate_node(frames, "1")
    assert not valid and "custom_validation_failed" in str(errors) and "the frame number '0000" in str(errors)


def _client(registry):
    import importlib

    package = registry.NODE_CLASS_MAPPINGS["FineFaceAUVector"].__module__.rsplit(".", 1)[0]
    return route_client(importlib.import_module(f"{package}.web_routes").register)


def test_the_route_answers_over_long_numbers_with_a_message_never_a_500(registry):
    async def run():
        async with _client(registry) as client:
            answers = []
            for body in (json.dumps({"spec": "1" * 5000 + "@3", "sliders": ZERO}),
                         json.dumps({"spec": "AU12@" + "1" * 5000, "sliders": ZERO}),
                         '{"spec": "", "sliders": {"AU1": 1' + "0" * 5000 + "}}"):
                res = await client.post("/fineface/au_vector", data=body)
                answers.append((res.status, await res.json()))
            return answers

    (au_status, au), (int_status, intensity), (json_status, number) = asyncio.run(run())
    # a refused spec is an answer the face shows (200 and its message), as for any refused spec
    assert au_status == 200 and au["base"] is None and au["error"].startswith("the AU number '1111")
    assert int_status == 200 and intensity["error"].startswith("the intensity '1111") and "is too long" in intensity["error"]
    # a number JSON cannot hand to int(): the request itself is refused, naming it
    assert json_status == 400 and number["error"].startswith("the request holds a number of 5,001 digits")


# -- a '+' sign, invisible characters ----------------------------------------------------------------

def test_a_leading_plus_is_an_intensity():
    assert torch.equal(parse_aus("AU12@+3"), parse_aus("AU12@3"))
    assert torch.equal(parse_aus("AU6@+2.5 + AU12 @ + 4, happiness@+1"), parse_aus("AU6@2.5 + AU12@4 + happiness@1"))
    assert torch.equal(parse_aus({"AU12": "+3"}), parse_aus("AU12@3"))
    assert expression_title("happiness@+4 + AU25@2") == "happiness@+4 + AU25@2"
    assert torch.equal(parse_keyframes("0: AU12@+3")[0].values, parse_aus("AU12@3"))
    with pytest.raises(AUSpecError, match=r"^'\+' in 'AU12@\+' is not an intensity"):
        parse_aus("AU12@+")


@pytest.mark.parametrize("char, name", [("\u200b", "<U+200B>"), ("\x00", "<U+0000>"), ("\ufeff", "<U+FEFF>"),
                                        ("\u2060", "<U+2060>"), ("\x1b", "<U+001B>")])
def test_invisible_characters_are_named_by_their_code_point(char, name):
    for spec, expected in ((f"AU12@3{char}", f"'3{name}' in 'AU12@3{name}' is not an intensity"),
                           (f"AU{char}12", f"cannot read the term 'AU{name}12'"),
                           (f"happiness@4{char}", f"'4{name}' in 'happiness@4{name}' is not an intensity")):
        with pytest.raises(AUSpecError) as err:
            parse_aus(spec)
        message = str(err.value)
        assert expected in message, message
        assert all(c == " " or unicodedata.category(c)[0] not in "CZ" for c in message), ascii(message)
    with pytest.raises(AUSpecError) as err:
        parse_keyframes(f"0: neutral\n8{char}: AU12")
    assert f"'8{name}' is not a frame number" in str(err.value)
    # a no-break space is white space, which a spec may hold anywhere
    assert torch.equal(parse_aus("AU12@\u00a03"), parse_aus("AU12@3"))
