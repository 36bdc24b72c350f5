"""AU encoders: a [B, 12] intensity vector -> one token [B, 1, width] for the AU adapter.

All six encoders of the paper's Table 2 share one interface. Every encoder emits exactly
one token, so the adapter's attention over it is a constant (softmax over one key is 1):
see ``FineFaceWeights.au_values``. ``width`` is the text encoder's width: 1024 for SD 2.x,
768 for SD 1.5, 2048 for SDXL.

The paper fixes only "Res + MLP64" precisely (it matches the released weights bit for
bit). For the three encoders it describes in a sentence each (Res + 3MLP, Individual
encoding + MLP, and the sizes of their hidden layers) the layouts here are our reading of
that sentence, recorded in each class and in the weight file's metadata.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightFileError

N_AUS = 12
MAX_WIDTH = 8192  # wider than any text encoder a FineFace model could sit beside
MAX_HIDDEN = 16384


class AUEncoder(nn.Module):
    """Base class. Subclasses set ``kind`` and implement ``encode`` -> [B, D] with D <= width."""

    kind: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    # Settings beyond ``width`` that a config may give, with their types (checked before building).
    settings: ClassVar[dict[str, type]] = {}

    def __init__(self, width: int):
        super().__init__()
        if width <= N_AUS:
            raise ValueError(f"encoder width must exceed {N_AUS}, got {width}")
        self.width = int(width)

    def config(self) -> dict:
        return {"kind": self.kind, "width": self.width}

    def fingerprint(self) -> str:
        """Names this encoder by its settings and values: an AU embedding carries it, so that it is only
        applied beside the encoder that made it (two loaders of the same file agree; different files do not)."""
        h = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:16]

    def encode(self, aus: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, aus: torch.Tensor) -> torch.Tensor:
        if aus.ndim != 2 or aus.shape[1] != N_AUS:
            raise ValueError(f"AU encoder expects a [batch, {N_AUS}] tensor, got shape {tuple(aus.shape)}")
        param = next(self.parameters(), None)
        if param is not None and aus.dtype != param.dtype:
            aus = aus.to(param.dtype)
        x = self.encode(aus)
        if x.shape[1] < self.width:
            # Zero padding up to the text width, as the released Res + MLP64 encoder does.
            x = torch.cat([x, x.new_zeros(x.shape[0], self.width - x.shape[1])], dim=1)
        return x.reshape(-1, 1, self.width)


class NoEncoding(AUEncoder):
    """Table 2 row 1: the raw 12 intensities, zero padded to the text width."""

    kind = "none"
    display_name = "No encoding"

    def encode(self, aus):
        return aus


class MLPEncoder(AUEncoder):
    """Table 2 row 2: one linear layer lifting the 12 AUs to the text width."""

    kind = "mlp"
    display_name = "MLP"

    def __init__(self, width: int):
        super().__init__(width)
        self.mlp = nn.Linear(N_AUS, width)

    def encode(self, aus):
        return self.mlp(aus)


class ResMLPEncoder(AUEncoder):
    """Table 2 rows 3 and 4: ``concat(y, W y + b)``, zero padded to the text width.

    ``hidden_dim=64`` is "Res + MLP64", the paper's choice and the released SD 2.1
    encoder; ``hidden_dim=width-12`` is "Res + MLP" (and the released SD 1.5 encoder,
    756 = 768 - 12). The parameter name ``au_encoder`` is the official one, so released
    state dicts load without renaming.
    """

    kind = "res_mlp"
    settings = {"hidden_dim": int}

    def __init__(self, width: int, hidden_dim: int | None = None):
        super().__init__(width)
        hidden_dim = width - N_AUS if hidden_dim is None else int(hidden_dim)
        if not 0 < hidden_dim <= width - N_AUS:
            raise ValueError(f"res_mlp hidden_dim must be in 1..{width - N_AUS}, got {hidden_dim}")
        self.hidden_dim = hidden_dim
        self.au_encoder = nn.Linear(N_AUS, hidden_dim)

    @property
    def display_name(self):  # type: ignore[override]
        if self.hidden_dim == self.width - N_AUS:
            return "Res + MLP"
        return f"Res + MLP{self.hidden_dim}"

    def config(self):
        return {**super().config(), "hidden_dim": self.hidden_dim}

    def encode(self, aus):
        return torch.cat([aus, self.au_encoder(aus)], dim=1)


class Res3MLPEncoder(AUEncoder):
    """Table 2 row 5: "a three layer MLP with normalization and leaky ReLUs" beside the residual.

    Our layout: Linear(12, h) -> LayerNorm -> LeakyReLU -> Linear(h, h) -> LayerNorm ->
    LeakyReLU -> Linear(h, out_dim), concatenated after the 12 raw AUs and zero padded,
    like Res + MLP64 (out_dim 64 by default).
    """

    kind = "res_3mlp"
    display_name = "Res + 3MLP"
    settings = {"hidden_dim": int, "out_dim": int, "negative_slope": float}

    def __init__(self, width: int, hidden_dim: int = 256, out_dim: int = 64, negative_slope: float = 0.2):
        super().__init__(width)
        if not 0 < out_dim <= width - N_AUS:
            raise ValueError(f"res_3mlp out_dim must be in 1..{width - N_AUS}, got {out_dim}")
        self.hidden_dim, self.out_dim, self.negative_slope = int(hidden_dim), int(out_dim), float(negative_slope)
        self.mlp = nn.Sequential(
            nn.Linear(N_AUS, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden_dim, out_dim),
        )

    def config(self):
        return {**super().config(), "hidden_dim": self.hidden_dim, "out_dim": self.out_dim,
                "negative_slope": self.negative_slope}

    def encode(self, aus):
        return torch.cat([aus, self.mlp(aus)], dim=1)


class IndividualMLPEncoder(AUEncoder):
    """Table 2 row 6: "a 1024 dimensional MLP for each individual AU ... and an additional MLP
    to cover the interactions".

    Our layout, kept to one token: each AU i is lifted on its own, ``t_i = y_i a_i + c_i``
    (a_i, c_i in R^width), the lifted AUs are summed, and a LeakyReLU + Linear(width, width)
    models their interactions.
    """

    kind = "individual_mlp"
    display_name = "Individual encoding + MLP"
    settings = {"negative_slope": float}

    def __init__(self, width: int, negative_slope: float = 0.2):
        super().__init__(width)
        self.negative_slope = float(negative_slope)
        self.per_au_weight = nn.Parameter(torch.randn(N_AUS, width) / width**0.5)
        self.per_au_bias = nn.Parameter(torch.zeros(N_AUS, width))
        self.interaction = nn.Linear(width, width)

    def config(self):
        return {**super().config(), "negative_slope": self.negative_slope}

    def encode(self, aus):
        lifted = aus[:, :, None] * self.per_au_weight + self.per_au_bias  # [B, 12, width]
        return self.interaction(F.leaky_relu(lifted.sum(dim=1), self.negative_slope))


ENCODER_CLASSES: dict[str, type[AUEncoder]] = {
    cls.kind: cls for cls in (NoEncoding, MLPEncoder, ResMLPEncoder, Res3MLPEncoder, IndividualMLPEncoder)
}
# Names users type; "res_mlp64" is the paper's default (Res + MLP64).
ENCODER_ALIASES = {"res_mlp64": {"kind": "res_mlp", "hidden_dim": 64}}
DEFAULT_ENCODER = "res_mlp64"
ENCODER_CHOICES = ("res_mlp64", "none", "mlp", "res_mlp", "res_3mlp", "individual_mlp")


def build_encoder(config: dict | str, width: int | None = None) -> AUEncoder:
    """Build an encoder from a config dict (as stored in weight files) or a kind name."""
    if isinstance(config, str):
        config = {"kind": config}
    config = dict(config)
    kind = config.pop("kind", None)
    if kind in ENCODER_ALIASES:
        config = {**ENCODER_ALIASES[kind], **config}
        kind = config.pop("kind")
    if width is not None:
        config.setdefault("width", width)
        if int(config["width"]) != int(width):
            raise ValueError(f"encoder width {config['width']} does not match the requested width {width}")
    if kind not in ENCODER_CLASSES:
        raise WeightFileError(f"unknown AU encoder kind {kind!r}; known: {', '.join(ENCODER_CHOICES)}")
    if "width" not in config:
        raise ValueError("an encoder config needs a 'width' (1024 for SD 2.x, 768 for SD 1.5, 2048 for SDXL)")
    try:
        return ENCODER_CLASSES[kind](**config)
    except TypeError as e:
        raise WeightFileError(f"bad settings for the {kind!r} AU encoder: {config} ({e})") from None


def check_encoder_config(config, where: str = "the AU encoder config") -> dict:
    """A stored encoder config, checked for types, known settings and ranges; returns it with its kind resolved.

    Nothing is built here: a config alone never sizes a module (see ``load_encoder``).
    """
    if not isinstance(config, dict):
        raise WeightFileError(f"{where} must be a JSON object like {{\"kind\": \"res_mlp\", \"width\": 1024, "
                              f"\"hidden_dim\": 64}}, got {json.dumps(config)[:80]}")
    config = dict(config)
    kind = config.pop("kind", None)
    if kind is None:
        raise WeightFileError(f"{where} has no 'kind'; known kinds: {', '.join(ENCODER_CLASSES)}")
    if isinstance(kind, str) and kind in ENCODER_ALIASES:
        config = {**ENCODER_ALIASES[kind], **config}
        kind = config.pop("kind")
    if not isinstance(kind, str) or kind not in ENCODER_CLASSES:
        raise WeightFileError(f"{where}: unknown AU encoder kind {kind!r}; known: {', '.join(ENCODER_CLASSES)}")
    types = {"width": int, **ENCODER_CLASSES[kind].settings}
    unknown = sorted(set(config) - set(types))
    if unknown:
        raise WeightFileError(f"{where}: unknown setting(s) {unknown} for the {kind!r} encoder; allowed: {', '.join(types)}")
    if "width" not in config:
        raise WeightFileError(f"{where}: the {kind!r} encoder needs a 'width' (1024 for SD 2.x, 768 for SD 1.5, 2048 for SDXL)")
    for name, value in config.items():
        if types[name] is int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise WeightFileError(f"{where}: {name!r} must be a whole number, got {value!r}")
            low, high = (N_AUS + 1, MAX_WIDTH) if name == "width" else (1, MAX_HIDDEN)
            if not low <= value <= high:
                raise WeightFileError(f"{where}: {name!r} is {value}, outside {low}..{high}")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not 0 <= value <= 1:
            raise WeightFileError(f"{where}: {name!r} must be a number in 0..1, got {value!r}")
    return {"kind": kind, **config}


def load_encoder(config: dict, state_dict: dict[str, torch.Tensor], where: str = "the AU encoder config") -> AUEncoder:
    """Build an encoder and load its weights strictly; a mismatch is a clear WeightFileError.

    The layout is first built on the meta device (no memory) and compared with the stored
    tensors' shapes; only an encoder exactly as large as its stored tensors is then built.
    """
    config = check_encoder_config(config, where)
    settings = {k: v for k, v in config.items() if k != "kind"}
    try:
        with torch.device("meta"):
            layout = ENCODER_CLASSES[config["kind"]](**settings)
    except ValueError as e:
        raise WeightFileError(f"{where}: {e}") from None
    expected = layout.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise WeightFileError(
            f"{where} ({config}) does not fit the stored AU encoder weights: "
            f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}"
        )
    for key, tensor in state_dict.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise WeightFileError(
                f"{where} ({config}) does not fit the stored AU encoder weights: {key!r} has shape "
                f"{tuple(tensor.shape)}, the config implies {tuple(expected[key].shape)}"
            )
    encoder = ENCODER_CLASSES[config["kind"]](**settings)
    dtypes = {t.dtype for t in state_dict.values()}
    if len(dtypes) == 1:
        # Keep the stored precision so that a file read and written again is bit-identical.
        encoder.to(dtypes.pop())
    encoder.load_state_dict(state_dict)
    return encoder.eval().requires_grad_(False)
