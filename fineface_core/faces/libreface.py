"""LibreFace's AU intensity estimator, the one the FineFace paper used: 12 AUs on the 0-5 scale.

LibreFace (github.com/ihp-lab/LibreFace, "AU_Recognition", trained on DISFA) predicts exactly
FineFace's 12 AUs in FineFace's order. Its checkpoints hold a torchvision ResNet-18 without
its last layer (``encoder``) and a head ``classifier`` = Linear(512, 128), ReLU,
BatchNorm1d(128), Dropout, Linear(128, 12), Sigmoid; intensity = clamp(5 * output, 0, 5).
``combined_resnet.pt`` adds ``classifier_2``, a second head for AU detection on BP4D's 12 AUs,
which is loaded (the file is checked whole) and not used. Input: the aligned face (256 px,
see :mod:`.detect`), centre 224 px, ImageNet mean / std.

Files are read with ``torch.load(weights_only=True)``: a pickle that asks for anything but
tensors and plain containers is refused before anything in it runs.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass

import torch
from torch import nn

from ..aus import AU_ORDER, N_AUS
from ..errors import WeightFileError
from ..files.safe_load import require_file

# LibreFace's AU list for this model ([1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26]) is FineFace's AU_ORDER.
LIBREFACE_AUS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26")
assert LIBREFACE_AUS == AU_ORDER

ALIGNED_SIZE, CROP_SIZE = 256, 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_NAMES = ("resnet.pt", "combined_resnet.pt")
EXTENSIONS = (".pt", ".pth", ".safetensors")
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "net")
MAX_INTENSITY = 5.0

WHERE_TO_GET = (
    "Use LibreFace's AU intensity checkpoint: resnet.pt (AU_Recognition, DISFA) or combined_resnet.pt from "
    "github.com/ihp-lab/LibreFace (see docs/copy_expression.md)."
)


def _head(outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 128), nn.ReLU(), nn.BatchNorm1d(128), nn.Dropout(dropout),
                         nn.Linear(128, outputs), nn.Sigmoid())


class LibreFaceAUModel(nn.Module):
    """LibreFace's ResNet-18 AU model; ``detection_head`` adds combined_resnet.pt's ``classifier_2``."""

    def __init__(self, detection_head: bool = False, dropout: float = 0.1):
        super().__init__()
        import torchvision

        trunk = torchvision.models.resnet18(weights=None)  # the checkpoint brings every weight
        self.encoder = nn.Sequential(*list(trunk.children())[:-1])
        self.classifier = _head(N_AUS, dropout)
        if detection_head:
            self.classifier_2 = _head(12, dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, 224, 224] normalised -> the intensity head's sigmoid outputs [N, 12]."""
        return self.classifier(self.encoder(images).flatten(1))


# ------------------------------------------------------------------------------------------
# Reading a checkpoint
# ------------------------------------------------------------------------------------------

def _read(path: str):
    require_file(path, "LibreFace AU model", WHERE_TO_GET)  # also names a Git LFS pointer or a saved web page
    if path.lower().endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise WeightFileError(f"{path} is not a readable .safetensors file ({str(e)[:200]}); it may be "
                                  "truncated. Download it again.") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refused a global: the file wants to build objects or call functions (run code)
        wanted = re.search(r"Unsupported (?:global|class):? (?:GLOBAL )?(\S+)", str(e))
        if wanted:
            raise WeightFileError(
                f"refused to load {path}: it is a pickle that asks for more than tensors to load (it wants "
                f"{wanted.group(1)}), and loading it could run code. Nothing from it was executed. {WHERE_TO_GET}") from None
        raise WeightFileError(f"cannot read {path} as a torch checkpoint ({str(e)[:200]}); it may be truncated "
                              "or not a checkpoint. Download it again.") from None
    except (EOFError, RuntimeError, OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise WeightFileError(f"cannot read {path} as a torch checkpoint ({type(e).__name__}: {str(e)[:200]}); "
                              "it may be truncated or not a checkpoint. Download it again.") from None


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def state_dict_of(obj, path: str) -> dict[str, torch.Tensor]:
    """The {name: tensor} dict in a checkpoint: plain, or under "model" / "state_dict" (LibreFace saves
    ``{"model": state_dict}``); a DataParallel "module." prefix is removed."""
    if not _is_state_dict(obj) and isinstance(obj, dict):
        inner = [obj[k] for k in WRAPPER_KEYS if _is_state_dict(obj.get(k))]
        obj = inner[0] if inner else obj
    if not _is_state_dict(obj):
        found = f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else type(obj).__name__
        raise WeightFileError(f"{path} holds no state dict (names -> tensors), found {found}. {WHERE_TO_GET}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _foreign_reason(keys: set[str], shapes: dict[str, tuple]) -> str:
    if any("rbr_" in k or k.startswith("encoder.stem") for k in keys):
        return "it is a RepVGG model (LibreFace's repvgg.pt); only the ResNet-18 files are supported"
    if {"conv1.weight", "fc.weight"} <= keys:
        return "it is a plain ResNet (an ImageNet classifier), not LibreFace's AU model"
    head = shapes.get("classifier.4.weight")
    if head is not None and head[0] != N_AUS:
        return (f"its head has {head[0]} outputs, not the 12 AU intensities (LibreFace's facial expression "
                "model has 8)")
    if not any(k.startswith("encoder.") for k in keys) or not any(k.startswith("classifier.") for k in keys):
        sample = ", ".join(sorted(keys)[:4])
        return f"it has no encoder.* / classifier.* weights (its first names: {sample})"
    return ""


def check_state_dict(sd: dict[str, torch.Tensor], path: str) -> bool:
    """Refuses anything but LibreFace's ResNet-18 AU model; True when it carries the detection head."""
    keys = set(sd)
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    reason = _foreign_reason(keys, shapes)
    if reason:
        raise WeightFileError(f"{path} is not LibreFace's AU intensity model: {reason}. {WHERE_TO_GET}")
    detection = any(k.startswith("classifier_2.") for k in keys)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in LibreFaceAUModel(detection).state_dict().items()}
    missing = sorted(set(expected) - keys)
    extra = sorted(keys - set(expected))
    wrong = sorted(k for k in set(expected) & keys if expected[k] != shapes[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} weights missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if extra:
        problems.append(f"{len(extra)} unexpected ({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''})")
    if wrong:
        problems.append("shapes differ: " + ", ".join(f"{k} {list(shapes[k])} (expected {list(expected[k])})"
                                                       for k in wrong[:3]))
    if problems:
        raise WeightFileError(f"{path} does not match LibreFace's ResNet-18 AU model: {'; '.join(problems)}. "
                              f"{WHERE_TO_GET}")
    for k, v in sd.items():
        if v.is_floating_point() and not torch.isfinite(v.sum()):  # a NaN or inf anywhere makes the sum one
            raise WeightFileError(f"{path} holds NaN or infinite values (in {k}): the file is damaged. Download it again.")
    return detection


@dataclass
class AUEstimator:
    """A loaded LibreFace AU model, ready for :func:`estimate`."""

    model: LibreFaceAUModel
    path: str
    has_detection_head: bool

    @property
    def description(self) -> str:
        head = " (combined checkpoint: its AU detection head is not used)" if self.has_detection_head else ""
        return f"LibreFace ResNet-18 AU intensities, {os.path.basename(self.path)}{head}"


def load_estimator(path: str, device: torch.device | str = "cpu") -> AUEstimator:
    sd = state_dict_of(_read(path), path)
    detection = check_state_dict(sd, path)
    with torch.device("meta"):  # no random initialisation: every weight comes from the file
        model = LibreFaceAUModel(detection)
    model.load_state_dict(sd, strict=True, assign=True)
    # channels-last: oneDNN's convolutions run about twice as fast on a CPU in that layout (measured here)
    model.float().eval().to(device, memory_format=torch.channels_last)
    return AUEstimator(model=model, path=path, has_detection_head=detection)


# ------------------------------------------------------------------------------------------
# Estimating
# ------------------------------------------------------------------------------------------

def normalise(crops: torch.Tensor) -> torch.Tensor:
    """Face crops [N, 224, 224, 3] in 0..1 -> the network's input [N, 3, 224, 224] (ImageNet mean / std),
    channels-last in memory (which is how the crops already lie)."""
    if crops.ndim != 4 or tuple(crops.shape[1:]) != (CROP_SIZE, CROP_SIZE, 3):
        raise ValueError(f"face crops must be [N, {CROP_SIZE}, {CROP_SIZE}, 3], got {list(crops.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=crops.device)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=crops.device)
    return ((crops.float() - mean) / std).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def estimate(estimator: AUEstimator, crops: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """AU intensities [N, 12] (0..5, FineFace's AU order) of face crops [N, 224, 224, 3] in 0..1."""
    model = estimator.model
    device = next(model.parameters()).device
    out = []
    for start in range(0, crops.shape[0], batch_size):
        x = normalise(crops[start:start + batch_size].to(device))
        out.append(model(x).float().cpu())
    values = torch.cat(out)
    bad = int((~torch.isfinite(values)).any(1).sum())
    if bad:
        # Finite weights can still compute NaN (a negative batch-norm variance, values that overflow); clamped it
        # would stay NaN and be refused later as if the AUs were mistyped.
        raise WeightFileError(f"{estimator.path} computes NaN AU intensities (for {bad} of {len(values)} faces): its "
                              f"weights are damaged. Download it again. {WHERE_TO_GET}")
    return torch.clamp(values * MAX_INTENSITY, 0.0, MAX_INTENSITY)
