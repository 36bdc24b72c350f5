from fineface_core.errors import WeightFileError
from fineface_core.weightfiles.loading import describe, load_weights
from fineface_core.weightfiles.releases import RELEASES

from .paths import NOTHING, fineface_dirs, weight_entries
from .types import CATEGORY, FINEFACE


def missing_message(weights):
    return (
        f"FineFace weights {weights!r} not found. Put a FineFace .safetensors file or the official release "
        f"folder into {' or '.join(fineface_dirs())} and refresh the page (see the README, 'Weights')."
    )


class FineFaceModelLoader:
    DESCRIPTION = (
        "Loads FineFace weights from models/fineface: a converted FineFace .safetensors file, or a folder "
        "with the official release files ("
        + "; ".join(f"{r.label}: {r.file_list()}" for r in RELEASES.values()) + ")."
    )

    @classmethod
    def INPUT_TYPES(cls):
        labels = sorted(weight_entries()) or [NOTHING]
        return {"required": {"weights": (labels, {"tooltip": "A FineFace file, or an official release folder and its variant (SD 2.1 for SD 2.x checkpoints, SD 1.5 for SD 1.5 checkpoints)."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, weights):
        # Replaces ComfyUI's bare "value not in list" with where the weights go.
        return True if weights in weight_entries() else missing_message(weights)

    RETURN_TYPES = (FINEFACE, "STRING")
    RETURN_NAMES = ("fineface", "info")
    OUTPUT_TOOLTIPS = ("The FineFace model: AU encoder, AU adapter and LoRA.", "What the weights hold (family, layers, LoRA rank).")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, weights):
        entries = weight_entries()
        if weights not in entries:
            raise WeightFileError(missing_message(weights))
        path, variant = entries[weights]
        model = load_weights(path, variant)
        return (model, describe(model))
