"""AU vectors and AU-spec refusals, as the AU tests write them."""
from __future__ import annotations

import pytest
import torch

from fineface_core.aus import AU_ORDER, N_AUS
from fineface_core.errors import AUSpecError


def vec(**aus) -> torch.Tensor:
    """The expected AU vector from keyword intensities: vec(AU6=3, AU12=4); the AUs not named are 0."""
    out = torch.zeros(N_AUS)
    for code, value in aus.items():
        out[AU_ORDER.index(code)] = value
    return out


def refusal(call, *args) -> str:
    """The message of the AUSpecError that ``call(*args)`` raises; the test fails if it raises none."""
    with pytest.raises(AUSpecError) as info:
        call(*args)
    return str(info.value)


def assert_names(message: str, fragments):
    """Every fragment is in the message (shown whole when one is not)."""
    for fragment in fragments:
        assert fragment in message, message
