import math
from collections import Counter

from fineface_core.conditioning import check_embedding_matches
from fineface_core.errors import FineFaceError
from fineface_core.regional import check_mask, is_constant

from .attn2_patch import AUBranch, install
from .comfy_model import check_fits
from .lora_patch import add_lora
from .masked_branch import MaskedAUBranch
from .node_errors import node_label
from .types import AU_EMBEDDING, CATEGORY, FINEFACE


def model_sampling(model):
    get = getattr(model, "get_model_object", None)
    return get("model_sampling") if get else model.model.model_sampling


class FineFaceApplyAdapter:
    DESCRIPTION = (
        "Patches a clone of MODEL with FineFace: the AU adapter in every cross-attention layer (chained with "
        "IP-Adapter and other attn2 patches) and the LoRA as weight patches. The input model is not changed."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "An SD 2.x model for the SD 2.1 weights, an SD 1.5 model for the SD 1.5 weights, an SDXL model for weights trained for SDXL."}),
            "fineface": (FINEFACE, {"tooltip": "From FineFace Model Loader."}),
            "au_embedding": (AU_EMBEDDING, {"tooltip": "From AU Encoder, made with the same FineFace model."}),
            "weight": ("FLOAT", {"default": 1.0, "min": -3.0, "max": 3.0, "step": 0.05, "tooltip": "lambda_AU: strength of the AU attention (1.0 as trained; 0 turns the AU branch off)."}),
            "lora_strength": ("FLOAT", {"default": 1.0, "min": -4.0, "max": 4.0, "step": 0.05, "tooltip": (
                "Strength of the FineFace LoRA; 1.0 = as trained (the official SD 2.1 release: alpha 8 / rank 32, scale "
                "0.25; a file made by training/ keeps its own alpha); 0 = no LoRA. To reproduce the official code: 0 "
                "under its pinned diffusers 0.27.2 + peft 0.7.0 (they load no LoRA), 4.0 under diffusers 0.29 or newer "
                "(they load it at scale 1.0). The SD 1.5 release has no LoRA. A model patched already (a second Apply "
                "for other AUs in another start/end window) keeps its LoRA: give the same strength, or 0.")}),
            "start_at": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001, "tooltip": "Fraction of the sampling schedule where the AU branch starts acting (the LoRA, merged into the weights, acts throughout)."}),
            "end_at": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001, "tooltip": "Fraction of the schedule where the AU branch stops acting."}),
        }, "optional": {
            "mask": ("MASK", {"tooltip": (
                "Where these AUs act (regional expressions: one Apply per face, each with its mask): 1 = full weight, "
                "0 = no change, in between scaled. One mask for every image or one per image, of the image's aspect "
                "ratio. The LoRA stays global. An all-zero mask turns the AU branch off; overlapping masks add.")}),
        }, "hidden": {"unique_id": "UNIQUE_ID"}}  # names this node in a mask error raised while sampling

    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("A patched clone of the model; connect it to the sampler.",)
    FUNCTION = "apply"
    CATEGORY = CATEGORY

    def apply(self, model, fineface, au_embedding, weight=1.0, lora_strength=1.0, start_at=0.0, end_at=1.0, mask=None,
              unique_id=None):
        for name, value in (("weight", weight), ("lora_strength", lora_strength), ("start_at", start_at), ("end_at", end_at)):
            if not math.isfinite(value):
                raise FineFaceError(f"{name} must be a finite number, got {value}")
        if not 0.0 <= start_at <= end_at <= 1.0:
            raise FineFaceError(f"need 0 <= start_at <= end_at <= 1, got start_at={start_at}, end_at={end_at}")
        layers = check_fits(model, fineface)
        check_embedding_matches(fineface, au_embedding)

        if mask is not None:
            mask = check_mask(mask)
            # A batch of masks is checked against the latent batch when sampling, so only a single one is
            # short-cut. Multiplying by ones is exact, so an all-one mask needs no shortcut of its own.
            if mask.shape[0] == 1 and is_constant(mask, 0.0):
                weight = 0.0  # nowhere: the AU branch is off (documented; the LoRA stays)

        patched = model.clone()
        if weight != 0:
            sampling = model_sampling(patched)
            sigma_start, sigma_end = sampling.percent_to_sigma(start_at), sampling.percent_to_sigma(end_at)
            cond = fineface.au_values(au_embedding.cond, weight)
            uncond = fineface.au_values(au_embedding.uncond, weight)
            per_block = Counter(layer.key[:2] for layer in layers.values())  # SDXL: up to 10 transformers a block
            for path, layer in layers.items():
                branch = AUBranch(cond[path], uncond[path])
                if mask is not None:
                    branch = MaskedAUBranch(branch, mask, node_label(type(self), unique_id))
                install(patched, layer.key, branch, sigma_start, sigma_end, shared_block=per_block[layer.key[:2]] > 1)
        if fineface.lora is not None and lora_strength != 0:
            add_lora(patched, fineface.lora, lora_strength)
        return (patched,)
