"""The official release (Hugging Face ``Tvaranka/fineface``), read without renaming anything.

Two variants share the key layout:

* SD 2.1 (the paper's model): ``au_encoder.ckpt`` (Res + MLP64 encoder, 1024 wide),
  ``attn_processors.ckpt`` (``<attn2 path>.processor.au_to_{k,v}.weight``, [C, 1024]) and
  ``pytorch_lora_weights.safetensors`` (peft names with a ``unet.`` prefix, rank 32, no alpha);
* SD 1.5 (paired with IP-Adapter FaceID by the official code): ``sd15_au_encoder.ckpt``
  (768 wide, hidden 756, no padding) and ``sd15_attn_processors.ckpt`` ([C, 768]); no LoRA.

The LoRA file stores no alpha. Training used peft's default alpha 8 at rank 32 (scale 0.25), and
the AU adapter was trained together with the LoRA at that scale, so that is what it loads at:
``lora_strength`` 1.0 means "as trained". (The official code loads no LoRA at all under its pinned
diffusers 0.27.2 + peft 0.7.0, and the file at scale 1.0 under diffusers 0.29+: strengths 0 and 4.)
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from ..encoders import load_encoder
from ..errors import WeightFileError
from ..families import FAMILIES, family_for_context_dim
from .lora_layout import describe_lora, layout_problem
from ..files.safe_load import load_pickled_state_dict, load_safetensors, read_safetensors_header
from ..weights import ATTN2_PATH, FineFaceWeights, LoRAWeights


@dataclass(frozen=True)
class OfficialVariant:
    family: str
    encoder_file: str
    processors_file: str
    lora_file: str | None
    encoder_hidden: int  # the official pipeline hard-codes it
    lora_alpha: float | None = None  # the alpha training used; the file stores none


# peft's default LoraConfig.lora_alpha, with which the official weights were trained ("α is set to default").
TRAINED_LORA_ALPHA = 8.0


OFFICIAL_VARIANTS = {
    "sd21": OfficialVariant("sd21", "au_encoder.ckpt", "attn_processors.ckpt", "pytorch_lora_weights.safetensors", 64, TRAINED_LORA_ALPHA),
    "sd15": OfficialVariant("sd15", "sd15_au_encoder.ckpt", "sd15_attn_processors.ckpt", None, 756),
}

RELEASE_NAMES = {"sd21": "SD 2.1", "sd15": "SD 1.5"}

_PROCESSOR_KEY = re.compile(r"^(?P<path>.+\.attn2)\.processor\.(?P<name>au_to_k|au_to_v|to_k_ip|to_v_ip)\.weight$")
_PEFT_KEY = re.compile(r"^(?:unet\.)?(?P<path>.+)\.(?P<ab>lora_A|lora_B)(?:\.[^.]+)?\.weight$")
_PEFT_ALPHA = re.compile(r"^(?:unet\.)?(?P<path>.+)\.alpha$")


def official_variants_in(folder: str) -> list[str]:
    """Variants whose encoder and processor files are both in ``folder``."""
    if not os.path.isdir(folder):
        return []
    return official_variants_among(os.listdir(folder))


def official_variants_among(names) -> list[str]:
    """Variants whose encoder and processor files are both among these file names."""
    names = set(names)
    return [k for k, v in OFFICIAL_VARIANTS.items() if v.encoder_file in names and v.processors_file in names]


def load_official(folder: str, variant: str = "auto") -> FineFaceWeights:
    """Read an official release folder (or a training checkpoint folder with the same files)."""
    if not os.path.isdir(folder):
        raise WeightFileError(f"FineFace release folder not found: {folder}")
    present = official_variants_in(folder)
    if variant == "auto":
        if not present:
            raise WeightFileError(_missing_message(folder))
        if len(present) > 1:
            raise WeightFileError(
                f"{folder} holds both the SD 2.1 and the SD 1.5 release files; choose the variant "
                "('sd21' for SD 2.x checkpoints, 'sd15' for SD 1.5 checkpoints)."
            )
        variant = present[0]
    if variant not in OFFICIAL_VARIANTS:
        raise WeightFileError(f"unknown release variant {variant!r}; expected one of {sorted(OFFICIAL_VARIANTS)}")
    spec = OFFICIAL_VARIANTS[variant]
    if variant not in present:
        raise WeightFileError(_missing_message(folder, spec))

    lora_path = None
    if spec.lora_file is not None:
        lora_path = os.path.join(folder, spec.lora_file)
        if not os.path.exists(lora_path):
            raise WeightFileError(
                f"{folder} has the SD 2.1 adapter files but not {spec.lora_file}; the SD 2.1 release needs all "
                "three files (the LoRA is part of the method)."
            )
    weights = load_release_files(os.path.join(folder, spec.encoder_file), os.path.join(folder, spec.processors_file),
                                 lora_path, expected_family=spec.family)
    weights.source = f"official {weights.family.key} release ({os.path.abspath(folder)})"
    return weights


NO_LORA = "none"
RELEASE_URL = "https://huggingface.co/Tvaranka/fineface"


def load_release_files(encoder_path: str, processors_path: str, lora_path: str | None,
                       expected_family: str | None = None) -> FineFaceWeights:
    """The release's files wherever they are (the front end's model dialog puts each into models/fineface/).

    The adapter's text width says which release it is; the encoder and the LoRA must be that release's.
    """
    processors_name, encoder_name = os.path.basename(processors_path), os.path.basename(encoder_path)
    au_to_v, au_to_k, ignored = parse_processor_state_dict(
        load_pickled_state_dict(processors_path, "AU adapter file"), processors_name,
    )
    context_dims = {int(w.shape[1]) for w in au_to_v.values()}
    if len(context_dims) != 1:
        raise WeightFileError(f"{processors_name}: layers disagree on the text width: {sorted(context_dims)}")
    family = family_for_context_dim(context_dims.pop(), what=f"the adapter in {processors_name}")
    if expected_family is not None and family.key != expected_family:
        raise WeightFileError(
            f"{processors_name} is built for {family}, but that file name belongs to the "
            f"{FAMILIES[expected_family].display_name} release; the files were mixed up or renamed."
        )
    spec = OFFICIAL_VARIANTS[family.key]
    encoder = encoder_from_official(load_pickled_state_dict(encoder_path, "AU encoder file"), family.context_dim, encoder_name)
    if encoder.hidden_dim != spec.encoder_hidden:
        raise WeightFileError(
            f"{encoder_name} has a {encoder.hidden_dim}-wide MLP; the official {RELEASE_NAMES[family.key]} "
            f"encoder has {spec.encoder_hidden} ({spec.encoder_file}). The release files were mixed up: "
            f"{processors_name} is the {RELEASE_NAMES[family.key]} adapter."
        )
    files = [processors_path, encoder_path]
    lora = None
    if spec.lora_file is not None and lora_path is None:
        raise WeightFileError(
            f"the {RELEASE_NAMES[family.key]} release needs its LoRA ({spec.lora_file}, part of the method); choose it "
            "(Apply FineFace Adapter's lora_strength 0 turns it off)."
        )
    if spec.lora_file is None and lora_path is not None:
        raise WeightFileError(f"the {RELEASE_NAMES[family.key]} release has no LoRA; choose '{NO_LORA}' for the LoRA "
                              f"(found {os.path.basename(lora_path)})")
    if lora_path is not None:
        _refuse_other_lora(lora_path, {p: int(w.shape[0]) for p, w in au_to_v.items()}, family.context_dim)
        tensors, _ = load_safetensors(lora_path, "LoRA file")
        lora = parse_peft_lora(tensors, os.path.basename(lora_path), default_alpha=spec.lora_alpha)
        files.append(lora_path)
    return FineFaceWeights(
        family=family, encoder=encoder, au_to_v=au_to_v, au_to_k=au_to_k, lora=lora,
        lambda_au=1.0, source=f"official {family.key} release ({', '.join(os.path.abspath(f) for f in files)})",
        ignored=ignored, files=tuple(files),
    )


def _refuse_other_lora(lora_path: str, attn2_widths: dict[str, int], context_dim: int):
    """The release's LoRA must fit its own adapter: every attention projection of those blocks, at their widths."""
    _, shapes = read_safetensors_header(lora_path, "LoRA file")
    lora = describe_lora(shapes)
    if lora is None:
        _refuse_foreign_lora(shapes, os.path.basename(lora_path))
        return  # no LoRA keys at all: parse_peft_lora says what it found
    problem = layout_problem(shapes, attn2_widths, context_dim)
    if problem:
        raise WeightFileError(
            f"{lora_path} is {lora}, not FineFace's: {problem}. Put the release's own {os.path.basename(lora_path)} "
            "(Hugging Face Tvaranka/fineface) in that folder."
        )


def _missing_message(folder: str, spec: OfficialVariant | None = None) -> str:
    specs = [spec] if spec else list(OFFICIAL_VARIANTS.values())
    wanted = "; or ".join(
        ", ".join(f for f in (s.encoder_file, s.processors_file, s.lora_file) if f) + f" ({FAMILIES[s.family].display_name})"
        for s in specs
    )
    have = sorted(os.listdir(folder))[:12] if os.path.isdir(folder) else []
    return (
        f"{folder} is not a FineFace release folder: expected {wanted}. Found: {have or 'nothing'}. "
        "Download the files from the Hugging Face repo Tvaranka/fineface."
    )


def parse_processor_state_dict(sd: dict[str, torch.Tensor], name: str = "adapter file"):
    """Split an attn_processors state dict into au_to_v / au_to_k per attn2 path.

    IP-Adapter projections (``to_k_ip`` / ``to_v_ip``) are reported and never applied:
    IP-Adapter nodes load their own.
    """
    au_to_v, au_to_k, ignored, unknown = {}, {}, {}, []
    for key, tensor in sd.items():
        m = _PROCESSOR_KEY.match(key)
        if not m or not ATTN2_PATH.match(m["path"]):
            unknown.append(key)
            continue
        if m["name"] == "au_to_v":
            au_to_v[m["path"]] = tensor
        elif m["name"] == "au_to_k":
            au_to_k[m["path"]] = tensor
        else:
            ignored[key] = "IP-Adapter projection: not applied (IP-Adapter nodes load their own weights)"
    if unknown:
        raise WeightFileError(
            f"{name} is not a FineFace adapter file: {len(unknown)} unexpected keys such as {unknown[:3]}; "
            "expected '<attn2 path>.processor.au_to_v.weight' and '...au_to_k.weight'."
        )
    if not au_to_v:
        raise WeightFileError(f"{name} holds no AU adapter weights (no '...processor.au_to_v.weight' keys)")
    return au_to_v, au_to_k, ignored


def encoder_from_official(sd: dict[str, torch.Tensor], width: int, name: str = "encoder file"):
    """The official AUEncoder: concat(y, W y + b), zero padded when W is narrower than width - 12."""
    if set(sd) != {"au_encoder.weight", "au_encoder.bias"}:
        raise WeightFileError(f"{name} is not a FineFace AU encoder: expected keys au_encoder.weight and au_encoder.bias, found {sorted(sd)[:6]}")
    w = sd["au_encoder.weight"]
    if w.ndim != 2 or w.shape[1] != 12:
        raise WeightFileError(f"{name}: au_encoder.weight has shape {tuple(w.shape)}, expected [hidden, 12]")
    if w.shape[0] + 12 > width:
        raise WeightFileError(f"{name}: encoder output {w.shape[0] + 12} is wider than the text width {width}")
    return load_encoder({"kind": "res_mlp", "width": width, "hidden_dim": int(w.shape[0])}, sd, where=name)


def parse_peft_lora(tensors: dict[str, torch.Tensor], name: str = "LoRA file", default_alpha: float | None = None) -> LoRAWeights:
    """peft-named LoRA (``unet.<module>.lora_A.weight``) -> LoRAWeights.

    Without stored alphas: ``default_alpha`` (the official release passes the alpha it was trained with),
    else alpha = rank (scale 1.0, what diffusers assumes).
    """
    _refuse_foreign_lora(tensors, name)
    down, up, alphas, unknown = {}, {}, {}, []
    for key, tensor in tensors.items():
        m = _PEFT_KEY.match(key)
        if m:
            (down if m["ab"] == "lora_A" else up)[m["path"]] = tensor
            continue
        m = _PEFT_ALPHA.match(key)
        if m:
            alphas[m["path"]] = float(tensor.float().item())
            continue
        unknown.append(key)
    if unknown:
        raise WeightFileError(f"{name}: unexpected keys such as {unknown[:3]} (expected peft 'lora_A' / 'lora_B' weights)")
    if not down:
        raise WeightFileError(f"{name} holds no LoRA weights")
    rank = int(next(iter(down.values())).shape[0])
    if len(set(alphas.values())) > 1:
        raise WeightFileError(f"{name}: layers use different LoRA alphas {sorted(set(alphas.values()))}")
    alpha = next(iter(alphas.values())) if alphas else (default_alpha if default_alpha is not None else float(rank))
    lora = LoRAWeights(down=down, up=up, alpha=alpha)
    lora.validate()
    return lora


def _refuse_foreign_lora(tensors: dict[str, torch.Tensor], name: str):
    keys = list(tensors)
    if any(k.startswith(("lora_unet_", "lora_te", "lora_te1_", "lora_te2_")) for k in keys):
        raise WeightFileError(
            f"{name} is a kohya-style Stable Diffusion LoRA (keys like {keys[0]!r}), not FineFace weights. "
            "Load it with ComfyUI's LoraLoader; FineFace needs its own files."
        )
    if any(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in keys):
        raise WeightFileError(f"{name} is a Stable Diffusion checkpoint, not FineFace weights.")
    if any(k.startswith("text_encoder.") for k in keys):
        raise WeightFileError(f"{name} carries text-encoder LoRA weights; FineFace's LoRA touches the UNet only.")
