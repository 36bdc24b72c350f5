"""AU Vector's spec logic in the core (fineface_core.au_vector), without ComfyUI: lines, preset, base, sliders,
and the face's preview. The node and the route are glue around it (tested in test_node_definitions.py and
test_web_routes.py)."""
import pytest
import torch

from fineface_core.au_vector import au_vectors, parse_lines, preview, spec_lines, with_base
from fineface_core.aus import AU_ORDER, parse_aus
from fineface_core.conditioning import AUVectors
from fineface_core.errors import AUSpecError

ZERO = {code: 0.0 for code in AU_ORDER}


def test_spec_lines_skip_blanks_and_keep_neutral_as_a_term():
    # "neutral" is a term (it clears what comes before it), no longer an empty line
    assert spec_lines("AU12\n\n  neutral \nhappiness@4\n") == ["AU12", "neutral", "happiness@4"]
    assert spec_lines("") == [""] and spec_lines(" \n\n") == [""]


def test_each_line_is_the_preset_followed_by_the_line():
    rows = parse_lines("AU25@2\nneutral\n", "surprise")
    assert [row.written for row in rows] == ["surprise + AU25@2", "surprise + neutral"]
    assert torch.equal(rows[0].effect.apply(torch.zeros(12)), parse_aus("surprise + AU25@2"))
    assert torch.equal(rows[1].effect.apply(torch.zeros(12)), torch.zeros(12))  # neutral clears the preset
    assert [row.title for row in rows] == ["surprise + AU25@2", ""]
    assert parse_lines("", "surprise")[0].title == "surprise"
    with pytest.raises(AUSpecError, match=r"^spec line 2: AU7 \(Lid Tightener\)"):
        parse_lines("AU12\nAU7")
    with pytest.raises(AUSpecError, match=r"^AU7 \(Lid Tightener\)"):  # one line: no line number
        parse_lines("AU7")


def test_base_vectors_pair_with_lines_or_broadcast():
    rows = parse_lines("AU12@1\nAU4@2")
    one = AUVectors(parse_aus("AU6@2")[None], titles=("happiness",))
    added = with_base(rows, one)
    assert torch.equal(added[0][0], parse_aus("AU6@2 + AU12@1")) and torch.equal(added[1][0], parse_aus("AU6@2 + AU4@2"))
    assert [t for _, t in with_base(rows, one)] == ["happiness + AU12@1", "happiness + AU4@2"]
    two = AUVectors(torch.stack([parse_aus("AU1@1"), parse_aus("AU2@1")]))
    paired = with_base(rows, two)
    assert torch.equal(paired[1][0], parse_aus("AU2@1 + AU4@2"))
    three = AUVectors(torch.zeros(3, 12))
    with pytest.raises(AUSpecError, match="3 base AU vectors and 2 spec lines"):
        with_base(rows, three)
    assert len(with_base(parse_lines("AU12"), three)) == 3


def test_au_vectors_add_the_sliders_and_append():
    first = au_vectors("happiness", "AU1@2", dict(ZERO, AU12=1.0))
    assert torch.equal(first.values[0], parse_aus("happiness + AU1@2 + AU12@1"))
    assert first.titles == ("happiness + AU1@2",)
    both = au_vectors("none", "AU4@3", ZERO, append_to=first)
    assert len(both) == 2 and both.labels[1] == "AU4@3"
    with pytest.raises(AUSpecError, match=r"^spec line 2 with the sliders: AU12 = 11"):
        au_vectors("none", "AU1\nAU12@8", dict(ZERO, AU12=3.0))


def test_preview_is_what_au_vectors_computes_and_its_refusal():
    answer = preview("happiness", "AU25@2\nsurprise", ZERO)
    assert answer == {"base": [parse_aus("happiness + AU25@2").tolist(), parse_aus("happiness + surprise").tolist()],
                      "titles": ["happiness + AU25@2", "happiness + surprise"], "outside": [[], []],
                      "clears_base": [False, False], "error": None}
    over = preview("none", "AU12@8", dict(ZERO, AU12=4.0))
    with pytest.raises(AUSpecError) as refused:
        au_vectors("none", "AU12@8", dict(ZERO, AU12=4.0))
    assert over["base"] == [parse_aus("AU12@8").tolist()] and over["error"] == str(refused.value)
    assert preview("none", "smirk", ZERO)["base"] is None
