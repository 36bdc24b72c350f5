"""A complete, tiny StableDiffusionPipeline (tokenizer, text encoder, UNet, VAE, scheduler) built
offline: the tokenizer's vocabulary is written here, every model has random weights."""
from __future__ import annotations

import json
import os
import string

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .tiny_unets import tiny_unet


def tiny_tokenizer(folder: str) -> CLIPTokenizer:
    """A byte-level BPE tokenizer with single characters (and word ends) as its vocabulary."""
    os.makedirs(folder, exist_ok=True)
    chars = string.ascii_lowercase + string.digits + ".,!?'-@+"
    tokens = ["<|startoftext|>", "<|endoftext|>"] + list(chars) + [c + "</w>" for c in chars]
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump({t: i for i, t in enumerate(tokens)}, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
                         model_max_length=77, pad_token="<|endoftext|>")


def tiny_text_encoder(width: int, vocab_size: int, seed: int = 0) -> CLIPTextModel:
    torch.manual_seed(seed)
    config = CLIPTextConfig(vocab_size=vocab_size, hidden_size=width, intermediate_size=64, num_hidden_layers=1,
                            num_attention_heads=8, max_position_embeddings=77, projection_dim=32,
                            bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return CLIPTextModel(config).eval()


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(16, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8,
                         layers_per_block=1, sample_size=64).eval()


def tiny_pipeline(folder: str, family: str = "sd21", seed: int = 0) -> StableDiffusionPipeline:
    tokenizer = tiny_tokenizer(os.path.join(folder, "tokenizer"))
    unet = tiny_unet(family, seed)
    text_encoder = tiny_text_encoder(unet.config.cross_attention_dim, len(tokenizer), seed)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=tiny_vae(seed), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe
