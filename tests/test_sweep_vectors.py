"""The AU Intensity Sweep's vectors and labels, from fineface_core alone (the node is glue around them)."""
import pytest
import torch

from fineface_core.au_vector import sweep_vectors
from fineface_core.aus import AU_ORDER, parse_aus
from fineface_core.conditioning import AUVectors
from fineface_core.errors import AUSpecError

AU6, AU12 = AU_ORDER.index("AU6"), AU_ORDER.index("AU12")


def test_the_swept_au_runs_from_start_to_end_on_a_neutral_face():
    swept = sweep_vectors("AU12", 0.0, 5.0, 6)
    assert swept.labels == ("AU12@0", "AU12@1", "AU12@2", "AU12@3", "AU12@4", "AU12@5")
    assert torch.equal(swept.values[:, AU12], torch.linspace(0, 5, 6))
    assert swept.values[:, [i for i in range(12) if i != AU12]].abs().sum() == 0
    assert swept.titles == ("",) * 6


def test_the_base_s_other_aus_come_from_its_values_not_its_label():
    base = AUVectors(parse_aus("AU6@2.25 + AU12@1")[None], labels=("my smile",), titles=("happiness",))
    swept = sweep_vectors("AU12", -1.0, 1.0, 3, base)
    assert swept.labels == ("AU6@2.25 + AU12@-1", "AU6@2.25 + AU12@0", "AU6@2.25 + AU12@1")
    assert (swept.values[:, AU6] == 2.25).all() and torch.equal(swept.values[:, AU12], torch.tensor([-1.0, 0.0, 1.0]))
    assert swept.titles == ("happiness",) * 3
    assert swept.text.split("\n")[0] == "happiness: AU6@2.25 + AU12@-1"


def test_what_a_sweep_cannot_take_is_refused():
    with pytest.raises(AUSpecError, match="unknown AU 'AU7'"):
        sweep_vectors("AU7", 0.0, 5.0, 3)
    with pytest.raises(AUSpecError, match="one AU vector, got a batch of 2"):
        sweep_vectors("AU12", 0.0, 5.0, 3, AUVectors(torch.zeros(2, 12)))
    with pytest.raises(AUSpecError, match="at least one cell"):
        sweep_vectors("AU12", 0.0, 5.0, 0)
