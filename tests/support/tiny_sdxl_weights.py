"""FineFace weights for an SDXL-architecture UNet with random values, as ``training.export`` would write them:
a Res + MLP64 encoder 2048 wide, au_to_k / au_to_v for every one of the UNet's cross-attention layers, a LoRA."""
from __future__ import annotations

from fineface_core.weightfiles.official import encoder_from_official, parse_peft_lora, parse_processor_state_dict
from fineface_core.weightfiles.single_file import save_fineface
from fineface_core.weights import FineFaceWeights
from tests.support.official_files import random_official_tensors


def sdxl_weights(unet, seed: int = 0, rank: int = 4, alpha: float = 2.0) -> FineFaceWeights:
    """Weights in the layout of the official SD 2.1 release (hidden 64, a LoRA), sized for ``unet``."""
    encoder_sd, processors_sd, lora_sd = random_official_tensors(unet, "sd21", seed, rank)
    au_to_v, au_to_k, _ = parse_processor_state_dict(processors_sd)
    return FineFaceWeights(family="sdxl", encoder=encoder_from_official(encoder_sd, unet.config.cross_attention_dim),
                           au_to_v=au_to_v, au_to_k=au_to_k, lora=parse_peft_lora(lora_sd, default_alpha=alpha),
                           source="random SDXL test weights")


def write_sdxl_file(path: str, unet, seed: int = 0, rank: int = 4) -> str:
    return save_fineface(sdxl_weights(unet, seed, rank), path)
