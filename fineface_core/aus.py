"""The 12 FACS action units FineFace controls, expression presets, and AU spec parsing.

Every AU vector in this project is a float32 tensor [..., 12] in ``AU_ORDER``, the index
order of the official weights. A *spec* is what a user gives: a string such as
``"AU6@2.5 + AU12D"`` or ``"happiness@4 + AU25@2"``, a dict such as ``{"AU12": 3}``, or 12
numbers in AU order. ``""``, ``"neutral"`` and ``"none"`` mean the neutral face (all zeros).

A string's terms follow one rule, in reading order: every term ADDS to what comes before it
(``AU12@4 + AU12@1`` = AU12 at 5; ``happiness + AU12@1`` = happiness with AU12 at 4), except
``neutral``, which clears everything before it, and ``AU12=0``, which sets one AU. What comes
before a spec is AU Vector's base (the AUs read off a photo) and preset, so ``AU12@2`` there is
relative to the photo: ``SpecEffect`` holds a spec as that rule, ``parse_aus`` applies it to zeros.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from .au_words import ADJECTIVES, MOVEMENTS, NOT_IN_MODEL
from .errors import AUSpecError, quoted

AU_ORDER: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26",
)
N_AUS = 12

# FACS intensity letters: A trace, B slight, C marked, D severe, E maximum.
INTENSITY_LETTERS = {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0, "E": 5.0}

# Training covered 0..5. Beyond it the model extrapolates (>5 stronger, negative = the
# opposite movement, paper Fig. 8; the official validation used AU5 = -10), so we allow it
# within a bound where results are still meaningful.
SAFE_MIN, SAFE_MAX = -10.0, 10.0

# An AU named without intensity ("AU6+AU12") gets FACS C, "marked".
DEFAULT_INTENSITY = 3.0

# A spec that needs more terms than this (12 AUs, a preset, a few additions) is a pasted or generated text,
# refused before its terms are read.
MAX_TERMS = 64
# Intensities are small numbers and FACS numbers AUs 1..46: longer numbers are refused as such, never handed to
# int() (which refuses more than 4,300 digits) or float() (which reads 400 digits as inf).
MAX_INTENSITY_CHARS = 32
MAX_AU_DIGITS = 3


@dataclass(frozen=True)
class ActionUnit:
    code: str
    number: int
    index: int
    name: str
    movement: str
    region: str


_AU_FACTS = (  # (number, FACS name, region, visible movement), in AU_ORDER
    (1, "Inner Brow Raiser", "brows", "raises the inner ends of the eyebrows"),
    (2, "Outer Brow Raiser", "brows", "raises the outer ends of the eyebrows"),
    (4, "Brow Lowerer", "brows", "lowers the brows and draws them together, as in a frown"),
    (5, "Upper Lid Raiser", "eyes", "raises the upper eyelids, widening the eyes"),
    (6, "Cheek Raiser", "cheeks",
     "raises the cheeks and narrows the eyes from below, as in a genuine smile"),
    (9, "Nose Wrinkler", "nose", "wrinkles the nose and lifts the upper lip, as in disgust"),
    (12, "Lip Corner Puller", "mouth", "pulls the lip corners up and back, as in a smile"),
    (15, "Lip Corner Depressor", "mouth", "pulls the lip corners down, as in sadness"),
    (17, "Chin Raiser", "chin", "pushes the chin boss and lower lip up, wrinkling the chin"),
    (20, "Lip Stretcher", "mouth", "stretches the lips sideways, as in fear"),
    (25, "Lips Part", "mouth", "parts the lips"),
    (26, "Jaw Drop", "jaw", "lowers the jaw, opening the mouth"),
)
ACTION_UNITS: tuple[ActionUnit, ...] = tuple(
    ActionUnit(f"AU{n}", n, i, name, movement, region)
    for i, (n, name, region, movement) in enumerate(_AU_FACTS)
)
AU_BY_CODE: dict[str, ActionUnit] = {au.code: au for au in ACTION_UNITS}
_AU_BY_NUMBER = {au.number: au for au in ACTION_UNITS}

# FACS AUs the model was not trained on; only used to make refusals informative.
OTHER_FACS_AUS: dict[int, str] = {
    7: "Lid Tightener", 8: "Lips Toward Each Other", 10: "Upper Lip Raiser",
    11: "Nasolabial Deepener", 13: "Sharp Lip Puller", 14: "Dimpler",
    16: "Lower Lip Depressor", 18: "Lip Pucker", 19: "Tongue Show", 21: "Neck Tightener",
    22: "Lip Funneler", 23: "Lip Tightener", 24: "Lip Pressor", 27: "Mouth Stretch",
    28: "Lip Suck", 29: "Jaw Thrust", 30: "Jaw Sideways", 31: "Jaw Clencher",
    32: "Lip Bite", 33: "Cheek Blow", 34: "Cheek Puff", 35: "Cheek Suck",
    36: "Tongue Bulge", 37: "Lip Wipe", 38: "Nostril Dilator", 39: "Nostril Compressor",
    41: "Lid Droop", 42: "Slit", 43: "Eyes Closed", 44: "Squint", 45: "Blink", 46: "Wink",
}
# Negative AU5 resembles closed eyes (paper Fig. 8): the one substitute the paper shows.
_SUBSTITUTES = {n: "negative AU5 (e.g. AU5@-3) closes the eyes (paper Fig. 8)"
                for n in (41, 42, 43, 45, 46)}

_AU_LIST = ", ".join(AU_ORDER)
_TERM_HELP = ("write terms like AU12, 12, AU12@3.5, AU12@-2, AU12D (FACS letter A-E), "
              "a preset (happiness) or preset@4, a word (smile, frown, open mouth), joined by + or ,; "
              "terms add up, AU12=0 sets one AU, neutral clears what comes before it")


@dataclass(frozen=True)
class Preset:
    name: str
    aus: dict[str, float]
    source: str
    note: str


def _prototype(notation: str) -> dict[str, float]:
    """FACS notation "1+2+5B+26" -> {"AU1": 3.0, "AU2": 3.0, "AU5": 2.0, "AU26": 3.0}."""
    aus = {}
    for part in notation.split("+"):
        number, letter = re.fullmatch(r"(\d+)([A-E]?)", part).groups()
        aus[f"AU{number}"] = INTENSITY_LETTERS[letter] if letter else DEFAULT_INTENSITY
    return aus


_EMFACS = "EMFACS prototype, Ekman, Friesen & Hager (2002), FACS Investigator's Guide"
_DU = ("prototypical AUs, Du, Tao & Martinez (2014), 'Compound facial expressions of "
       "emotion', PNAS 111(15)")
_COMPLETE = "complete: every prototype AU is one of the 12"

# Contempt (R12A+R14A) is left out: it is unilateral and needs AU14, while FineFace's labels
# are symmetric and lack AU14.
# From Du et al., happily/sadly/fearfully/angrily disgusted, appalled and hatred are left out:
# AU10 (Upper Lip Raiser) defines them, and without it they collapse into other presets
# (fearfully disgusted -> sadly fearful) or into a bare AU4 / AU12+25 / AU4+17.
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("happiness", _prototype("6+12"), f"{_EMFACS}: 6+12", _COMPLETE),
    Preset("sadness", _prototype("1+4+15"), f"{_EMFACS}: 1+4+15", _COMPLETE),
    Preset("surprise", _prototype("1+2+5B+26"), f"{_EMFACS}: 1+2+5B+26", _COMPLETE),
    Preset("fear", _prototype("1+2+4+5+20+26"), f"{_EMFACS}: 1+2+4+5+7+20+26",
           "AU7 (Lid Tightener) left out: not in the model"),
    Preset("anger", _prototype("4+5"), f"{_EMFACS}: 4+5+7+23",
           "AU7 (Lid Tightener) and AU23 (Lip Tightener) left out: not in the model"),
    Preset("disgust", _prototype("9+15"), f"{_EMFACS}: 9+15+16",
           "AU16 (Lower Lip Depressor) left out: not in the model"),
    Preset("happily_surprised", _prototype("1+2+12+25"),
           f"{_DU}: 1+2+12+25; the FineFace paper (Sec. 3) describes happily surprised "
           "as 1+2+6+12", _COMPLETE),
    Preset("sadly_fearful", _prototype("1+4+20+25"), f"{_DU}: 1+4+20+25", _COMPLETE),
    Preset("sadly_angry", _prototype("4+15"), f"{_DU}: 4+15", _COMPLETE),
    Preset("sadly_surprised", _prototype("1+4+25+26"), f"{_DU}: 1+4+25+26", _COMPLETE),
    Preset("fearfully_angry", _prototype("4+20+25"), f"{_DU}: 4+20+25", _COMPLETE),
    Preset("fearfully_surprised", _prototype("1+2+5+20+25"), f"{_DU}: 1+2+5+20+25",
           _COMPLETE),
    Preset("angrily_surprised", _prototype("4+25+26"), f"{_DU}: 4+25+26", _COMPLETE),
    Preset("disgustedly_surprised", _prototype("1+2+5"), f"{_DU}: 1+2+5+10",
           "AU10 (Upper Lip Raiser) left out: not in the model"),
    Preset("awed", _prototype("1+2+5+25"), f"{_DU}: 1+2+5+25", _COMPLETE),
)}


def _norm_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


# Plain words (fineface_core.au_words), each read as a preset of the AUs it stands for.
WORDS: dict[str, Preset] = {
    **{word: Preset(word, _prototype(notation), f"plain word for {why}", "") for word, (notation, why) in MOVEMENTS.items()},
    **{word: Preset(word, dict(PRESETS[name].aus), f"plain word for the preset {name} ({PRESETS[name].source})", "")
       for word, name in ADJECTIVES.items()},
}
_PRESET_BY_NORM = {_norm_name(name): preset for name, preset in (*PRESETS.items(), *WORDS.items())}
_NOT_IN_MODEL = {_norm_name(word): (word, hint) for word, hint in NOT_IN_MODEL.items()}
_NEUTRAL_WORDS = ("", "neutral", "none")


def get_preset(name: str) -> Preset:
    """The preset or plain word (``smile``) called ``name``; case, spaces, hyphens and underscores do not matter."""
    preset = _PRESET_BY_NORM.get(_norm_name(name))
    if preset is not None:
        return preset
    if _norm_name(name) in _NOT_IN_MODEL:
        word, hint = _NOT_IN_MODEL[_norm_name(name)]
        raise AUSpecError(f"{quoted(word)} is a movement FineFace was not trained on: {hint}")
    # Close matches only for a word-sized name: difflib is quadratic in the text's length.
    close = (difflib.get_close_matches(_norm_name(name), list(_PRESET_BY_NORM), n=3, cutoff=0.5)
             if len(name) <= 40 else [])
    hint = (f" Did you mean {' or '.join(_PRESET_BY_NORM[c].name for c in close)}?"
            if close else "")
    raise AUSpecError(
        f"{quoted(name)} is neither an action unit nor a preset.{hint} Presets: "
        f"{', '.join(PRESETS)}; words: smile, frown, open mouth, raise brows, happy, sad ... "
        f"Action units: {_AU_LIST}; {_TERM_HELP}."
    )


def _fmt(value: float) -> str:
    return f"{value:g}"


def _range_problem(code: str, value: float) -> str | None:
    if not math.isfinite(value):
        return (f"{code} is {value}: intensities must be finite numbers "
                f"(trained range 0..5, allowed {_fmt(SAFE_MIN)}..{_fmt(SAFE_MAX)})")
    if not SAFE_MIN <= value <= SAFE_MAX:
        return (f"{code} = {_fmt(value)} is outside the safe range "
                f"[{_fmt(SAFE_MIN)}, {_fmt(SAFE_MAX)}]: FineFace was trained on 0..5; above 5 "
                f"strengthens and below 0 reverses the movement (paper Fig. 8), but "
                f"farther out the output is untested")
    return None


def _au_by_number(number: int) -> ActionUnit:
    au = _AU_BY_NUMBER.get(number)
    if au is not None:
        return au
    if abs(number) >= 10 ** MAX_AU_DIGITS:  # never written out whole: str() of a huge int is refused too
        raise AUSpecError(f"an AU number of {number.bit_length():,} bits is too large: FACS numbers action units "
                          f"1 to 46; FineFace was trained on {_AU_LIST}")
    if number in OTHER_FACS_AUS:
        hint = f" Hint: {_SUBSTITUTES[number]}." if number in _SUBSTITUTES else ""
        raise AUSpecError(
            f"AU{number} ({OTHER_FACS_AUS[number]}) is a FACS action unit, but FineFace was "
            f"trained on these 12 only: {_AU_LIST}.{hint}"
        )
    raise AUSpecError(
        f"AU{number} is not an action unit FineFace knows; it was trained on these 12 "
        f"only: {_AU_LIST}"
    )


def _au_from_key(key: Any) -> ActionUnit:
    """An AU named as "AU12", "au12", "12" or 12."""
    if isinstance(key, (bool, np.bool_)):
        raise AUSpecError(f"{quoted(repr(key))} is a boolean, not an action unit (write AU12 or 12)")
    if isinstance(key, numbers.Integral):
        return _au_by_number(int(key))
    if isinstance(key, str):
        match = re.fullmatch(r"(?:au)?(\d+)", re.sub(r"\s+", "", key), re.IGNORECASE)
        if match:
            return _au_by_number(_au_number(match[1], key))
    raise AUSpecError(f"{quoted(repr(key))} is not an action unit: write it as AU12, au12 or 12 "
                      f"(one of {_AU_LIST})")


# One way to match each number (no nested or adjacent repeats that could share digits): linear time.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _au_number(digits: str, where: str) -> int:
    """The AU number written as ``digits`` in ``where``, refused as too long before int() reads it."""
    if len(digits.lstrip("0")) > MAX_AU_DIGITS:
        raise AUSpecError(f"the AU number {quoted(digits, 20)} in {quoted(where, 40)} is too long: FACS numbers action units 1 to 46; FineFace was trained on {_AU_LIST}")
    return int(digits.lstrip("0") or "0")


def _parse_intensity(text: str, where: str) -> float:
    """A number ("2.5", "-2", "+3") or a FACS letter ("D") found in ``where``."""
    if len(text) > MAX_INTENSITY_CHARS and _NUMBER.fullmatch(text):
        raise AUSpecError(f"the intensity {quoted(text, 20)} in {quoted(where)} is too long: give a number such as 3, 2.5 or -2 (trained range 0..5)")
    if _NUMBER.fullmatch(text):
        return float(text)
    if len(text) == 1 and text.isalpha():
        letter = text.upper()
        if letter in INTENSITY_LETTERS:
            return INTENSITY_LETTERS[letter]
        raise AUSpecError(f"{quoted(text)} in {quoted(where)} is not a FACS intensity letter: use A (trace, "
                          f"1), B (2), C (3), D (4) or E (maximum, 5), or a number")
    raise AUSpecError(f"{quoted(text)} in {quoted(where)} is not an intensity: give a number such as "
                      f"3, 2.5, +3 or -2, or a FACS letter A-E; {_TERM_HELP}")


def _to_float(value: Any, where: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise AUSpecError(f"{where}: {quoted(repr(value))} is a boolean, not an intensity")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        return float(value.item())
    if isinstance(value, str):
        return _parse_intensity(re.sub(r"\s+", "", value), where)
    raise AUSpecError(f"{where}: {quoted(repr(value))} ({type(value).__name__}) is not an intensity: "
                      f"give a number or a FACS letter A-E")


def _checked(code: str, value: float, where: str) -> float:
    problem = _range_problem(code, value)
    if problem:
        raise AUSpecError(f"{problem} (in {quoted(where)})")  # quoted only here: it is not free
    return value


_AU_TERM = re.compile(r"(?:au)?(\d+)(?:([@=])(.*)|([a-z]))?", re.IGNORECASE)
_PRESET_TERM = re.compile(r"([a-z][a-z_\-]*)(?:@(.*))?", re.IGNORECASE)
_WORD_SET = re.compile(r"[a-z][a-z_\-]*=.*", re.IGNORECASE)
# Terms are joined by + or ,; a + right after the @ or = is the intensity's sign (AU12@+3, AU12=+3).
_SEPARATOR = re.compile(r"[@=]\s*\+|[+,]")

# What a term does to the vector before it (module docstring).
ADD, SET, CLEAR = "add", "set", "clear"


@dataclass(frozen=True)
class SpecEffect:
    """A spec as what it does to the AU vector before it (AU Vector's base and preset): per AU, whether that value
    is kept (False after ``neutral`` or ``AU12=v``), and what the spec adds to it (or, where not kept, sets)."""

    keep: tuple[bool, ...]
    add: tuple[float, ...]

    @classmethod
    def nothing(cls) -> "SpecEffect":
        """The empty spec: everything before it stays."""
        return cls((True,) * N_AUS, (0.0,) * N_AUS)

    @property
    def clears_all(self) -> bool:
        """Nothing before the spec survives it ("neutral", "neutral + surprise@3")."""
        return not any(self.keep)

    def apply(self, before: torch.Tensor) -> torch.Tensor:
        """The AU vector(s) [..., 12] ``before`` with this spec applied: kept values plus what the spec adds."""
        keep = torch.tensor(self.keep, device=before.device)
        add = torch.tensor(self.add, dtype=before.dtype, device=before.device)
        return torch.where(keep, before, torch.zeros((), dtype=before.dtype, device=before.device)) + add


def _split_terms(spec: str) -> list[str]:
    """The terms of one spec as written (white space kept), in one pass over the text."""
    terms, start = [], 0
    for match in _SEPARATOR.finditer(spec):
        if match[0][0] not in "@=":
            terms.append(spec[start:match.start()])
            start = match.end()
    terms.append(spec[start:])
    return terms


def split_specs(text: str, separator: str = ";") -> list[str]:
    """Several specs in one text ("neutral; happiness; AU4@4", or one per line with ``"\n"``), blanks dropped."""
    return [part.strip() for part in text.split(separator) if part.strip()]


_AROUND_SIGN = re.compile(r" ?([@=]) ?")


def _is_neutral_term(term: str) -> bool:
    return _norm_name(term) in _NEUTRAL_WORDS


def expression_title(spec: str) -> str:
    """What the user wrote, as a cell's title, when it names a preset or a word ("happiness", "smile",
    "surprise@4 + AU25@2"); "" when the spec is AU terms only (its label, the AU decomposition, says it all
    already). What a ``neutral`` term clears is left out: "happiness + neutral + surprise" is titled "surprise"."""
    # white space collapsed first (so the sub sees no runs of it): "open  mouth @ 4" -> "open mouth@4"
    terms = [_AROUND_SIGN.sub(r"\1", " ".join(t.split())) for t in _split_terms(spec) if t.strip()]
    last_neutral = max((i for i, t in enumerate(terms) if _is_neutral_term(t)), default=-1)
    terms = terms[last_neutral + 1:]
    if not any(_PRESET_TERM.fullmatch("".join(t.split())) for t in terms):
        return ""
    return " + ".join(terms)


def is_neutral(spec: str) -> bool:
    """``""``, ``"neutral"`` or ``"none"``: the neutral face when nothing comes before the spec."""
    return "".join(spec.split()).lower() in _NEUTRAL_WORDS


def _parse_au_term(match: re.Match, term: str) -> tuple[str, list[tuple[int, float]]]:
    """"AU12", "AU12@3", "AU12D" (add) or "AU12=0" (set) -> (kind, [(AU index, intensity)])."""
    au = _au_by_number(_au_number(match[1], term))
    if match[2] is not None:
        value = _parse_intensity(match[3], term)
    elif match[4] is not None:
        value = _parse_intensity(match[4], term)
    else:
        value = DEFAULT_INTENSITY
    return (SET if match[2] == "=" else ADD), [(au.index, _checked(au.code, value, term))]


def _parse_term(term: str, spec: str) -> tuple[str, list[tuple[int, float]]]:
    """One term without white space ("AU12@3", "AU12=0", "happiness@4", "smile", "neutral") -> what it does
    (ADD, SET or CLEAR) and its (AU index, intensity) pairs."""
    au_match = _AU_TERM.fullmatch(term)
    if au_match:
        return _parse_au_term(au_match, term)
    preset_match = _PRESET_TERM.fullmatch(term)
    if not preset_match:
        if _WORD_SET.fullmatch(term):
            raise AUSpecError(f"{quoted(term)} in {quoted(spec)}: '=' sets one action unit (AU12=0); a preset or a "
                              "word takes '@' (happiness@4), and 'neutral + happiness@4' gives the preset alone")
        raise AUSpecError(f"cannot read the term {quoted(term)} in {quoted(spec)}: {_TERM_HELP}")
    if _is_neutral_term(preset_match[1]):
        if preset_match[2] is not None:
            raise AUSpecError(f"{quoted(term)} in {quoted(spec)}: 'neutral' takes no intensity: it clears every AU "
                              "before it (the base, the preset and earlier terms)")
        return CLEAR, []
    preset = get_preset(preset_match[1])
    level = None if preset_match[2] is None else _parse_intensity(preset_match[2], term)
    return ADD, [(AU_BY_CODE[code].index, _checked(code, value if level is None else level, term))
                 for code, value in preset.aus.items()]


def _is_term(text: str) -> bool:
    try:
        _parse_term(text, text)
    except AUSpecError:
        return False
    return True


def _read_term(raw: str, spec: str) -> tuple[str, list[tuple[int, float]]]:
    """One term as written (white space allowed inside: "AU 12 @ 3"), read."""
    term = "".join(raw.split())
    if not term:
        raise AUSpecError(f"empty term in {quoted(spec)} (two separators in a row, or one at "
                          f"an end); {_TERM_HELP}")
    try:
        return _parse_term(term, spec)
    except AUSpecError:
        # "AU12@3 AU6@2": two terms without a '+' read as one bad term; name the fix when every piece is a term
        # of its own.
        pieces = raw.split()
        if 1 < len(pieces) <= 12 and all(_is_term(p) for p in pieces):
            raise AUSpecError(
                f"{quoted(raw.strip())} holds {len(pieces)} terms without a '+' between them: "
                f"did you mean {quoted(' + '.join(pieces))}?"
            ) from None
        raise


def parse_spec(spec: str) -> SpecEffect:
    """A spec string as the rule it applies to the vector before it (module docstring): its terms add in
    reading order, ``neutral`` clears what came before, ``AU12=v`` sets one AU. Raises AUSpecError naming the
    offending term; a sum outside the safe range is refused too."""
    if not isinstance(spec, str):
        raise AUSpecError(f"an AU spec here is text, got {type(spec).__name__}")
    if not spec.strip():
        return SpecEffect.nothing()
    raws = _split_terms(spec)
    if len(raws) > MAX_TERMS:
        raise AUSpecError(f"{quoted(spec)} holds {len(raws):,} terms; a spec takes at most {MAX_TERMS} (12 AUs, a "
                          "preset and a few additions need no more): write one AU vector per line")
    keep, add = [True] * N_AUS, [0.0] * N_AUS
    for raw in raws:
        kind, updates = _read_term(raw, spec)
        if kind == CLEAR:
            keep, add = [False] * N_AUS, [0.0] * N_AUS
        for index, value in updates:
            if kind == SET:
                keep[index], add[index] = False, value
            else:
                add[index] += value
    for code, value in zip(AU_ORDER, add):
        problem = _range_problem(code, value)
        if problem:
            raise AUSpecError(f"{problem} (the terms of {quoted(spec)} add up to it)")
    return SpecEffect(tuple(keep), tuple(add))


def _parse_string(spec: str) -> torch.Tensor:
    # one tensor at the end: a tensor write per term costs more than the term's parsing
    return torch.tensor(parse_spec(spec).add, dtype=torch.float32)


def _parse_mapping(spec: Mapping) -> torch.Tensor:
    vec = torch.zeros(N_AUS, dtype=torch.float32)
    seen: dict[str, Any] = {}
    for key, value in spec.items():
        au = _au_from_key(key)
        if au.code in seen:
            raise AUSpecError(f"{au.code} is given twice, as {quoted(repr(seen[au.code]))} and {quoted(repr(key))}")
        seen[au.code] = key
        value = _to_float(value, au.code)
        vec[au.index] = _checked(au.code, value, f"{{{key!r}: {spec[key]!r}}}")
    return vec


def _parse_tensor(t: torch.Tensor) -> torch.Tensor:
    if t.dtype == torch.bool or t.is_complex():
        raise AUSpecError(f"AU intensities must be real numbers, got a {t.dtype} tensor")
    if tuple(t.shape) != (N_AUS,):
        hint = " (for several vectors use parse_au_batch)" if t.dim() == 2 else ""
        raise AUSpecError(f"an AU vector must have shape [12] in the order {_AU_LIST}; got "
                          f"shape {list(t.shape)}{hint}")
    return validate_intensities(t.detach().to(device="cpu", dtype=torch.float32, copy=True))


def _parse_sequence(seq) -> torch.Tensor:
    if len(seq) != N_AUS:
        raise AUSpecError(f"a list of intensities must hold 12 numbers in the order "
                          f"{_AU_LIST}; got {len(seq)} items")
    values = [_to_float(v, f"item {i} ({AU_ORDER[i]})") for i, v in enumerate(seq)]
    return validate_intensities(torch.tensor(values, dtype=torch.float32))


def parse_aus(spec: Any) -> torch.Tensor:
    """Read one AU spec into a new float32 CPU tensor [12] in AU_ORDER.

    Accepts a string ("AU6@2.5 + AU12D", "6+12", "happiness@4 + AU25@2", "smile"; terms add
    up, "AU12=0" sets one AU, "neutral" clears what comes before it), a dict ({"AU12": 3}, {12: "D"}), 12 numbers in AU order (list,
    tuple, numpy array, tensor). "", "neutral" and "none" give all zeros.
    Raises AUSpecError naming the offending part.
    """
    if isinstance(spec, str):
        return _parse_string(spec)
    if isinstance(spec, Mapping):
        return _parse_mapping(spec)
    if isinstance(spec, torch.Tensor):
        return _parse_tensor(spec)
    if isinstance(spec, np.ndarray):
        if spec.dtype.kind in "biufc":
            return _parse_tensor(torch.as_tensor(spec))
        return _parse_sequence(spec.tolist())
    if isinstance(spec, (list, tuple)):
        return _parse_sequence(spec)
    raise AUSpecError(
        f"cannot read an AU spec from {type(spec).__name__} {quoted(repr(spec))}: give a string such as "
        f"'AU6@2 + AU12@4' or 'happiness', a dict such as {{'AU12': 3}}, or 12 numbers in "
        f"the order {_AU_LIST}"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def parse_au_batch(specs: Any) -> torch.Tensor:
    """Read several specs into a float32 tensor [N, 12].

    ``specs`` is a list of specs (each as for parse_aus) or an [N, 12] tensor/array; a
    single spec (a string, a dict, or one vector of 12 numbers) gives [1, 12].
    """
    if isinstance(specs, (str, Mapping)):
        items = [specs]
    elif isinstance(specs, (torch.Tensor, np.ndarray)):
        if specs.ndim not in (1, 2):
            raise AUSpecError(f"a batch of AU vectors must have shape [N, 12]; got "
                              f"{list(specs.shape)}")
        items = [specs] if specs.ndim == 1 else list(specs)
    elif isinstance(specs, (list, tuple)):
        # A bare number is never a spec, so a flat list of numbers is one vector.
        items = [specs] if specs and all(_is_number(v) for v in specs) else list(specs)
    else:
        raise AUSpecError(f"cannot read a batch of AU specs from {type(specs).__name__}: "
                          f"give a list of specs")
    if not items:
        raise AUSpecError("the batch of AU specs is empty: give at least one spec "
                          "('' or 'neutral' for a neutral face)")
    rows = []
    for i, spec in enumerate(items):
        try:
            rows.append(parse_aus(spec))
        except AUSpecError as err:
            raise AUSpecError(f"item {i}: {err}") from err
    return torch.stack(rows)


def validate_intensities(t: torch.Tensor) -> torch.Tensor:
    """Check an AU tensor [..., 12] (finite, within the safe range) and return it unchanged."""
    if not isinstance(t, torch.Tensor):
        raise AUSpecError(f"expected an AU tensor [..., 12], got {type(t).__name__}")
    if t.dim() == 0 or t.shape[-1] != N_AUS:
        raise AUSpecError(f"an AU tensor must have 12 values in its last dimension (order "
                          f"{_AU_LIST}); got shape {list(t.shape)}")
    if t.dtype == torch.bool or t.is_complex():
        raise AUSpecError(f"AU intensities must be real numbers, got a {t.dtype} tensor")
    bad = ~torch.isfinite(t) | (t < SAFE_MIN) | (t > SAFE_MAX)
    if bool(bad.any()):
        pos = tuple(int(i) for i in bad.nonzero()[0])
        where = f" (at row {pos[:-1] if len(pos) > 2 else pos[0]})" if len(pos) > 1 else ""
        raise AUSpecError(_range_problem(AU_ORDER[pos[-1]], float(t[pos])) + where)
    return t


def format_aus(vec: Any, precision: int = 2) -> str:
    """A short label such as "AU6@3 + AU12@4.5"; all zeros give "neutral".

    Inverse of parse_aus up to ``precision`` decimals; AUs that round to 0 are omitted.
    """
    values = parse_aus(vec).tolist()
    terms = []
    for code, value in zip(AU_ORDER, values):
        text = f"{value:.{precision}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text not in ("0", "-0"):
            terms.append(f"{code}@{text}")
    return " + ".join(terms) if terms else "neutral"


def describe_au(code: Any) -> str:
    """A one-line tooltip: "AU12 Lip Corner Puller (mouth): pulls the lip corners ..."."""
    au = _au_from_key(code)
    return f"{au.code} {au.name} ({au.region}): {au.movement}"
