"""What training FineFace on SDXL adds to the SD trainer: the second text encoder, the pooled text embedding and
the micro-conditioning time ids, as the diffusers SDXL training examples compute them.

* Text: each encoder's penultimate hidden states, concatenated (768 + 1280 = 2048 wide), and the second encoder's
  projected pooled output (``text_embeds``).
* Time ids, per sample: original size (h, w) of the image as read, the top-left corner (top, left) of the crop in
  the resized image, and the target size (R, R), from the same resize-then-center-crop as the data's pixel transform.
* Caption dropout swaps a caption's text embeddings and pooled embedding for the empty caption's.
The SD families keep their single tensor of text states; ``encode_text`` / ``drop_captions`` handle both.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

# EXIF orientations that swap width and height (90 / 270 degrees, with or without a mirror).
_SWAPPED = {5, 6, 7, 8}


@dataclass
class XLText:
    """SDXL's text conditioning for a batch: [B, 77, 2048] states, [B, pooled] embeddings, [B, 6] time ids."""

    embeds: torch.Tensor
    pooled: torch.Tensor
    time_ids: torch.Tensor | None = None

    def added_cond_kwargs(self) -> dict:
        return {"text_embeds": self.pooled, "time_ids": self.time_ids.to(self.pooled.dtype)}


def is_xl(base) -> bool:
    return getattr(base, "text_encoder_2", None) is not None


def image_size(path: str) -> tuple[int, int]:
    """(height, width) as the data pipeline sees the image (after EXIF rotation), from its header only."""
    with Image.open(path) as im:
        w, h = im.size
        if im.getexif().get(0x0112) in _SWAPPED:
            w, h = h, w
    return h, w


def center_crop_time_ids(original_hw: tuple[int, int], resolution: int) -> torch.Tensor:
    """[6] = original (h, w), crop top-left (top, left), target (R, R) for torchvision's Resize(R) then
    CenterCrop(R) (short side to R, the long one to int(R * long / short); the crop's offset rounded)."""
    h, w = original_hw
    if h <= w:
        new_h, new_w = resolution, int(resolution * w / h)
    else:
        new_h, new_w = int(resolution * h / w), resolution
    top, left = int(round((new_h - resolution) / 2.0)), int(round((new_w - resolution) / 2.0))
    return torch.tensor([h, w, top, left, resolution, resolution], dtype=torch.float32)


class WithTimeIds(torch.utils.data.Dataset):
    """A dataset's items plus ``time_ids`` [6] for SDXL, computed from each record's image file."""

    def __init__(self, dataset, resolution: int):
        self.dataset, self.resolution = dataset, int(resolution)
        self.records, self.report = dataset.records, getattr(dataset, "report", None)
        self._ids: dict[int, torch.Tensor] = {}

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        ids = self._ids.get(i)
        if ids is None:
            ids = self._ids[i] = center_crop_time_ids(image_size(self.records[i].file), self.resolution)
        return {**self.dataset[i], "time_ids": ids}


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def make_collate_xl(collate, tokenizer_2):
    """``collate`` (the SD one: pixels, AUs, first tokenizer's ids) plus the second tokenizer's ids and time ids."""
    def collate_xl(examples):
        batch = collate(examples)
        batch["input_ids_2"] = tokenize(tokenizer_2, [e["caption"] for e in examples])
        batch["time_ids"] = torch.stack([e["time_ids"] for e in examples])
        return batch

    return collate_xl


def encode_xl(text_encoder, text_encoder_2, ids, ids_2) -> XLText:
    """Both encoders' penultimate hidden states, concatenated, and the second one's projected pooled output."""
    one = text_encoder(ids.to(text_encoder.device), output_hidden_states=True)
    two = text_encoder_2(ids_2.to(text_encoder_2.device), output_hidden_states=True)
    embeds = torch.cat([one.hidden_states[-2], two.hidden_states[-2].to(one.hidden_states[-2].device)], dim=-1)
    return XLText(embeds, two.text_embeds.to(embeds.device))


@torch.no_grad()
def encode_text(base, batch, device):
    """The batch's text conditioning: SD's text states, or SDXL's XLText with the batch's time ids."""
    if not is_xl(base):
        return base.text_encoder(batch["input_ids"].to(device), return_dict=False)[0]
    text = encode_xl(base.text_encoder, base.text_encoder_2, batch["input_ids"], batch["input_ids_2"])
    text.time_ids = batch["time_ids"].to(device)
    return text


@torch.no_grad()
def empty_caption(base, device):
    """The empty caption's conditioning (what caption dropout puts in a caption's place)."""
    ids = tokenize(base.tokenizer, [""]).to(device)
    if not is_xl(base):
        return base.text_encoder(ids, return_dict=False)[0]
    return encode_xl(base.text_encoder, base.text_encoder_2, ids, tokenize(base.tokenizer_2, [""]))


def drop_captions(text, drop: torch.Tensor, empty):
    """Replace the text of the samples where ``drop`` is True by the empty caption's (text states and pooled)."""
    if isinstance(text, XLText):
        embeds = torch.where(drop[:, None, None], empty.embeds.to(text.embeds.dtype).expand_as(text.embeds), text.embeds)
        pooled = torch.where(drop[:, None], empty.pooled.to(text.pooled.dtype).expand_as(text.pooled), text.pooled)
        return XLText(embeds, pooled, text.time_ids)
    return torch.where(drop[:, None, None], empty.to(text.dtype).expand_as(text), text)


def move_text(text, device):
    if isinstance(text, XLText):
        return XLText(text.embeds.to(device), text.pooled.to(device), text.time_ids)
    return text.to(device)


def cast_text(text, dtype):
    if isinstance(text, XLText):
        return XLText(text.embeds.to(dtype), text.pooled.to(dtype), text.time_ids)
    return text.to(dtype)


def check_xl_options(args):
    """Options SDXL cannot train with, refused before the first step."""
    from .errors import TrainingError

    if not args.center_crop:
        raise TrainingError("SDXL needs --center_crop: the crop's top-left corner is part of SDXL's conditioning "
                            "(its time ids), and a random crop's is not recorded")


def vae_stays_fp32(base, mixed_precision: str | None, vae_path: str | None) -> bool:
    """SDXL's VAE overflows in float16 (NaN latents): under fp16 mixed precision it stays float32 unless another
    VAE was named (--pretrained_vae_model_name_or_path, e.g. sdxl_architecture.FP16_SAFE_VAE). bf16 does not overflow."""
    return is_xl(base) and mixed_precision == "fp16" and not vae_path


def validation_pipeline(base, unet, scheduler):
    """The diffusers pipeline for validation renders: SDXL's with both encoders, or SD's."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if is_xl(base):
        return StableDiffusionXLPipeline(vae=base.vae, text_encoder=base.text_encoder, text_encoder_2=base.text_encoder_2,
                                         tokenizer=base.tokenizer, tokenizer_2=base.tokenizer_2, unet=unet,
                                         scheduler=scheduler, force_zeros_for_empty_prompt=False)
    return StableDiffusionPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
