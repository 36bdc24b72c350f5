"""Captions (and the paper's "is this a real photo?" check) from a transformers image-to-text model.

The paper captions with BLIP-2 and asks BLIP-2 to filter out what is not a real photo. Any image-to-text model
of transformers loads here (BLIP-2 by default, a local folder or a hub id), on two conditions that keep a
downloaded model from running code: its weights are safetensors (a pickle, ``pytorch_model.bin``, is refused
unread) and its code is transformers' own (a model whose config asks for ``trust_remote_code`` is refused).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

DEFAULT = "Salesforce/blip2-opt-2.7b"
NONE = "none"  # no captioner: every face gets FALLBACK_CAPTION
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Models that answer a question about an image (the prompt continues as "Question: ... Answer:").
QA_TYPES = ("blip-2", "instructblip")
PHOTO_QUESTION = "Question: is this a photo of a real person? Answer:"
DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class CaptionerError(ValueError):
    """A captioner that cannot or must not be loaded; the message says why and what to do."""


def _check_folder(folder: str) -> None:
    config = os.path.join(folder, "config.json")
    if not os.path.isfile(config):
        raise CaptionerError(f"--captioner {folder} has no config.json: give a transformers model folder "
                             "(save_pretrained's output) or a hub id")
    names = os.listdir(folder)
    if not any(n.endswith(".safetensors") for n in names):
        pickles = [n for n in names if n.endswith(PICKLES)]
        found = f" it holds {', '.join(sorted(pickles)[:3])}, a pickle, which can run code when loaded:" if pickles else ""
        raise CaptionerError(f"--captioner {folder} has no .safetensors weights;{found} refused. Convert it to "
                             "safetensors (model.save_pretrained(folder) writes safetensors) or use another model")
    with open(config, encoding="utf-8") as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise CaptionerError(f"{config} is not JSON ({e})") from None
    if isinstance(cfg, dict) and cfg.get("auto_map"):
        raise CaptionerError(f"--captioner {folder} needs its own Python code (config.json has auto_map: "
                             f"{sorted(cfg['auto_map'])[:2]}); running a model's own code is refused. Use a model "
                             "that transformers supports itself, such as BLIP-2")


def _transformers_error(source: str, e: Exception) -> CaptionerError:
    text = str(e)
    if "trust_remote_code" in text or "custom code" in text:
        return CaptionerError(f"--captioner {source} needs its own Python code (trust_remote_code); running a "
                              "model's own code is refused. Use a model that transformers supports itself, such as "
                              "BLIP-2")
    if "safetensors" in text.lower():
        return CaptionerError(f"--captioner {source} has no safetensors weights (only a pickle, which can run code "
                              "when loaded); refused. Use a model published as safetensors")
    return CaptionerError(f"cannot load the captioner {source} ({type(e).__name__}: {text[:300]}). A hub id must be "
                          "in the local cache when offline; or give a local folder")


@dataclass
class Captioner:
    source: str
    model: object
    processor: object
    model_type: str
    dtype: torch.dtype
    max_new_tokens: int = 30
    prompt: str = ""

    @property
    def answers_questions(self) -> bool:
        return self.model_type in QA_TYPES

    def _generate(self, images, text, max_new_tokens: int) -> list[str]:
        kwargs = {"images": images, "return_tensors": "pt"}
        if text:
            kwargs["text"] = [text] * len(images)
        inputs = self.processor(**kwargs)
        device = next(self.model.parameters()).device
        inputs = {k: (v.to(device, self.dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        prompt = inputs.get("input_ids")
        if prompt is not None and out.shape[1] >= prompt.shape[1] and torch.equal(out[:, :prompt.shape[1]], prompt):
            out = out[:, prompt.shape[1]:]  # decoder-only models return the prompt before the answer
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]

    def captions(self, images) -> list[str]:
        """One caption per PIL image (greedy decoding: the same image always gets the same caption)."""
        return self._generate(images, self.prompt, self.max_new_tokens)

    def real_photo(self, images, question: str = PHOTO_QUESTION) -> list[tuple[bool, str]]:
        """(kept, answer) per image: dropped only when the answer starts with "no"."""
        answers = self._generate(images, question, 3)
        return [(not a.lower().lstrip(" .,:").startswith("no"), a) for a in answers]


def check_source(source: str) -> None:
    """Refuse before any work: a local folder without safetensors or with its own code."""
    if source != NONE and (os.path.isdir(source) or source.startswith((".", "/", "~"))):
        if not os.path.isdir(source):
            raise CaptionerError(f"--captioner {source}: no such folder")
        _check_folder(source)


def load_captioner(source: str, device: str = "cpu", mixed_precision: str = "no", max_new_tokens: int = 30,
                   prompt: str = "") -> Captioner | None:
    """The model and its processor, or None for --captioner none."""
    if source == NONE:
        return None
    check_source(source)
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=False)
        if getattr(config, "auto_map", None):
            raise CaptionerError(f"--captioner {source} needs its own Python code (auto_map in its config); "
                                 "refused. Use a model that transformers supports itself, such as BLIP-2")
        processor = transformers.AutoProcessor.from_pretrained(source, trust_remote_code=False)
        dtype = DTYPES[mixed_precision]
        model = transformers.AutoModelForImageTextToText.from_pretrained(
            source, use_safetensors=True, trust_remote_code=False, dtype=dtype)
    except CaptionerError:
        raise
    except (OSError, ValueError, KeyError, ImportError, RuntimeError) as e:
        raise _transformers_error(source, e) from None
    model.eval().to(device)
    return Captioner(source, model, processor, config.model_type, dtype, max_new_tokens, prompt)
