"""The official releases (see ``releases`` for their files), read without renaming anything.

Both share the key layout: the encoder file holds ``au_encoder.weight`` / ``au_encoder.bias``, the adapter file
``<attn2 path>.processor.au_to_{k,v}.weight``, the LoRA file (where there is one) peft names.
"""
from __future__ import annotations

import os
import re
import torch

from ..encoders import load_encoder
from ..errors import WeightFileError
from ..families import FAMILIES, family_for_context_dim
from .foreign import foreign_file_message
from .lora_layout import describe_lora, layout_problem
from .releases import NO_LORA, NO_RELEASE, RELEASES, Release
from ..files.safe_load import load_pickled_state_dict, load_safetensors, read_safetensors_header
from ..weights import ATTN2_PATH, FineFaceWeights, LoRAWeights


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
    return [k for k, v in RELEASES.items() if v.encoder_file in names and v.processors_file in names]


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
                f"{folder} holds both the {' and the '.join(RELEASES[k].label for k in present)} release files; "
                "choose the variant (" + ", ".join(f"'{k}' for {RELEASES[k].family.display_name} checkpoints"
                                                   for k in present) + ")."
            )
        variant = present[0]
    if variant in NO_RELEASE:
        raise WeightFileError(f"{folder}: {NO_RELEASE[variant]}.")
    if variant not in RELEASES:
        raise WeightFileError(f"unknown release variant {variant!r}; expected one of {sorted(RELEASES)}")
    spec = RELEASES[variant]
    if variant not in present:
        raise WeightFileError(_missing_message(folder, spec))

    lora_path = None
    if spec.lora_file is not None:
        lora_path = os.path.join(folder, spec.lora_file)
        if not os.path.exists(lora_path):
            raise WeightFileError(
                f"{folder} has the {spec.label} adapter files but not {spec.lora_file}; the {spec.label} release "
                f"needs all {_COUNT[len(spec.files)]} files (the LoRA is part of the method)."
            )
    weights = load_release_files(os.path.join(folder, spec.encoder_file), os.path.join(folder, spec.processors_file),
                                 lora_path, expected_family=spec.family_key)
    weights.source = f"official {weights.family.key} release ({os.path.abspath(folder)})"
    return weights


_COUNT = {2: "two", 3: "three"}


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
    if family.key in NO_RELEASE:
        raise WeightFileError(f"{processors_name} is an adapter for {family}, but {NO_RELEASE[family.key]}.")
    spec = RELEASES[family.key]
    encoder = encoder_from_official(load_pickled_state_dict(encoder_path, "AU encoder file"), family.context_dim, encoder_name)
    if encoder.hidden_dim != spec.encoder_hidden:
        raise WeightFileError(
            f"{encoder_name} has a {encoder.hidden_dim}-wide MLP; the official {spec.label} "
            f"encoder has {spec.encoder_hidden} ({spec.encoder_file}). The release files were mixed up: "
            f"{processors_name} is the {spec.label} adapter."
        )
    files = [processors_path, encoder_path]
    lora = None
    if spec.lora_file is not None and lora_path is None:
        raise WeightFileError(
            f"the {spec.label} release needs its LoRA ({spec.lora_file}, part of the method); choose it "
            "(Apply FineFace Adapter's lora_strength 0 turns it off)."
        )
    if spec.lora_file is None and lora_path is not None:
        raise WeightFileError(f"the {spec.label} release has no LoRA; choose '{NO_LORA}' for the LoRA "
                              f"(found {os.path.basename(lora_path)})")
    if lora_path is not None:
        _refuse_other_lora(lora_path, {p: int(w.shape[0]) for p, w in au_to_v.items()}, family.context_dim, spec)
        tensors, _ = load_safetensors(lora_path, "LoRA file")
        lora = parse_peft_lora(tensors, os.path.basename(lora_path), default_alpha=spec.lora_alpha)
        files.append(lora_path)
    return FineFaceWeights(
        family=family, encoder=encoder, au_to_v=au_to_v, au_to_k=au_to_k, lora=lora,
        lambda_au=1.0, source=f"official {family.key} release ({', '.join(os.path.abspath(f) for f in files)})",
        ignored=ignored, files=tuple(files),
    )


def _refuse_other_lora(lora_path: str, attn2_widths: dict[str, int], context_dim: int, spec: Release):
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
            f"({spec.where}) in that folder."
        )


def _missing_message(folder: str, spec: Release | None = None) -> str:
    specs = [spec] if spec else list(RELEASES.values())
    wanted = "; or ".join(f"{s.file_list()} ({s.family.display_name})" for s in specs)
    have = sorted(os.listdir(folder))[:12] if os.path.isdir(folder) else []
    return (
        f"{folder} is not a FineFace release folder: expected {wanted}. Found: {have or 'nothing'}. "
        f"Download the files from {' or '.join(dict.fromkeys(s.where for s in specs))}."
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


def _refuse_foreign_lora(tensors, name: str):
    message = foreign_file_message(name, tensors)
    if message:
        raise WeightFileError(message)
