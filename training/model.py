"""The frozen base model and FineFace's trainable parts.

Frozen: VAE, text encoder(s) (SDXL: both), UNet (its original weights). Trainable: the AU encoder, ``au_to_k`` /
``au_to_v`` of every cross-attention layer (``fineface_core.reference.AUAttnProcessor``,
initialised from the layer's ``to_k`` / ``to_v``) and, unless ``lora_rank`` is 0, a peft LoRA on
``to_q`` / ``to_k`` / ``to_v`` / ``to_out.0`` of every attention. The same processors and LoRA
setup as the diffusers reference, so trained weights run there (and, exported, in ComfyUI)
unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fineface_core.encoders import AUEncoder, build_encoder
from fineface_core.families import FAMILIES, Family, family_for_context_dim
from fineface_core.reference import ADAPTER_NAME, AUAttnProcessor, add_au_adapter, add_lora

from .sdxl import XLText


@dataclass
class BaseModel:
    tokenizer: object
    text_encoder: nn.Module
    vae: nn.Module
    unet: nn.Module
    noise_scheduler: object
    family: Family
    tokenizer_2: object = None  # SDXL's second tokenizer and text encoder (OpenCLIP bigG, with the pooled projection)
    text_encoder_2: nn.Module | None = None

    def frozen_modules(self) -> list[nn.Module]:
        return [m for m in (self.text_encoder, self.text_encoder_2, self.vae) if m is not None]


# --pretrained_model_name_or_path for the dry run on the real SDXL base architecture, built from its published
# configs (training/sdxl_architecture.py) with random weights: nothing is downloaded.
BUILTIN_SDXL = "builtin:sdxl-base-1.0"


def load_base_model(name_or_path: str, *, family: str = "auto", revision: str | None = None,
                    variant: str | None = None, vae_path: str | None = None) -> BaseModel:
    """Tokenizer(s), text encoder(s), VAE, UNet and a DDPM noise scheduler from a diffusers folder or hub id.
    SDXL (told by its UNet) also loads tokenizer_2 / text_encoder_2; ``vae``: another VAE folder or hub id (SDXL's
    overflows in float16: see training/sdxl_architecture.FP16_SAFE_VAE)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    noise_scheduler = DDPMScheduler.from_pretrained(name_or_path, subfolder="scheduler", revision=revision)
    unet = UNet2DConditionModel.from_pretrained(name_or_path, subfolder="unet", revision=revision, variant=variant)
    fam = check_family(unet, family)
    tokenizer = CLIPTokenizer.from_pretrained(name_or_path, subfolder="tokenizer", revision=revision)
    text_encoder = CLIPTextModel.from_pretrained(name_or_path, subfolder="text_encoder", revision=revision, variant=variant)
    tokenizer_2 = text_encoder_2 = None
    if fam.key == "sdxl":
        tokenizer_2 = CLIPTokenizer.from_pretrained(name_or_path, subfolder="tokenizer_2", revision=revision)
        text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(name_or_path, subfolder="text_encoder_2",
                                                                     revision=revision, variant=variant)
    vae = (AutoencoderKL.from_pretrained(vae_path) if vae_path else
           AutoencoderKL.from_pretrained(name_or_path, subfolder="vae", revision=revision, variant=variant))
    base = BaseModel(tokenizer, text_encoder, vae, unet, noise_scheduler, fam, tokenizer_2, text_encoder_2)
    check_text_width(base)
    for m in (*base.frozen_modules(), unet):
        m.requires_grad_(False)
        if m is not unet:
            m.eval()
    return base


def check_text_width(base: BaseModel):
    widths = [m.config.hidden_size for m in (base.text_encoder, base.text_encoder_2) if m is not None]
    if sum(widths) != base.family.context_dim:
        raise ValueError(f"the text encoder(s) are {' + '.join(map(str, widths))} wide but the UNet expects "
                         f"{base.family.context_dim}")


def load_base_model_configs(name_or_path: str, *, family: str = "auto", revision: str | None = None) -> BaseModel:
    """The same models built from their config files only, with random weights (for --dry_run:
    counting and estimating need the architecture, not the 5 GB of weights). No tokenizer.
    ``BUILTIN_SDXL``: the real SDXL base architecture from training/sdxl_architecture.py, nothing read or downloaded."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if name_or_path == BUILTIN_SDXL:
        return _builtin_sdxl(family)
    noise_scheduler = DDPMScheduler.from_pretrained(name_or_path, subfolder="scheduler", revision=revision)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(name_or_path, subfolder="unet", revision=revision))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(name_or_path, subfolder="vae", revision=revision))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(name_or_path, subfolder="text_encoder", revision=revision))
    fam = check_family(unet, family)
    for m in (text_encoder, vae, unet):
        m.requires_grad_(False)
    return BaseModel(None, text_encoder.eval(), vae.eval(), unet, noise_scheduler, fam)


def _builtin_sdxl(family: str) -> BaseModel:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from .sdxl_architecture import SDXL_TEXT_ENCODER, SDXL_TEXT_ENCODER_2, SDXL_UNET, SDXL_VAE

    # SDXL base's scheduler: SD's scaled-linear betas, epsilon prediction.
    noise_scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                    num_train_timesteps=1000, prediction_type="epsilon", steps_offset=1)
    # On the meta device: 3.5 billion parameters with shapes and no memory; the dry run counts and traces them.
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SDXL_UNET)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SDXL_TEXT_ENCODER))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TEXT_ENCODER_2))
        vae = AutoencoderKL(**SDXL_VAE)
    fam = check_family(unet, family)
    base = BaseModel(None, text_encoder, vae, unet, noise_scheduler, fam, None, text_encoder_2)
    for m in (*base.frozen_modules(), unet):
        m.requires_grad_(False)
        if m is not unet:
            m.eval()
    return base


def check_family(unet, family: str = "auto") -> Family:
    """The family the UNet is (by its cross_attention_dim); ``family`` other than auto must agree."""
    detected = family_for_context_dim(unet.config.cross_attention_dim, "the base model's UNet")
    if family not in ("auto", None) and FAMILIES[family].key != detected.key:
        raise ValueError(f"--family {family} was asked for, but the base model is {detected}")
    return detected


def encoder_config(kind: str, width: int, hidden_dim: int | None = None) -> dict:
    config = {"kind": kind, "width": width}
    if hidden_dim is not None:
        if kind not in ("res_mlp", "res_mlp64", "res_3mlp"):
            raise ValueError(f"--encoder_hidden_dim applies to res_mlp and res_3mlp, not {kind}")
        config["hidden_dim"] = int(hidden_dim)
    return config


class FineFaceTrainModel(nn.Module):
    """The UNet with FineFace attached plus the AU encoder: one module to hand to ``accelerator.prepare``.

    ``forward`` = one denoiser call with ``cross_attention_kwargs={"au_embedding": encoder(aus),
    "au_scale": lambda_au}`` (the AU token has shape [B, 1, context_dim], as the reference expects).
    """

    def __init__(self, unet: nn.Module, au_encoder: AUEncoder, *, lora_rank: int, lora_alpha: float,
                 lambda_au: float = 1.0):
        super().__init__()
        self.unet = unet
        self.au_encoder = au_encoder
        self.lora_rank = int(lora_rank)
        self.lora_alpha = float(lora_alpha) if lora_rank else None
        self.lambda_au = float(lambda_au)

    def forward(self, noisy_latents, timesteps, encoder_hidden_states, aus):
        """``encoder_hidden_states``: the text states, or for SDXL an ``XLText`` (states, pooled, time ids)."""
        au_embedding = self.au_encoder(aus)
        added = None
        if isinstance(encoder_hidden_states, XLText):
            added = encoder_hidden_states.added_cond_kwargs()
            encoder_hidden_states = encoder_hidden_states.embeds
        return self.unet(noisy_latents, timesteps, encoder_hidden_states, added_cond_kwargs=added,
                         cross_attention_kwargs={"au_embedding": au_embedding, "au_scale": self.lambda_au}).sample

    # -- the trainable parts ----------------------------------------------------------------
    def au_processors(self) -> dict[str, AUAttnProcessor]:
        """{attn2 path: processor} in the UNet's order."""
        return {name[: -len(".processor")]: proc for name, proc in self.unet.attn_processors.items()
                if isinstance(proc, AUAttnProcessor)}

    def trainable_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = {"au_encoder": list(self.au_encoder.parameters()), "au_to_k": [], "au_to_v": [], "lora": []}
        for proc in self.au_processors().values():
            groups["au_to_k"].append(proc.au_to_k.weight)
            groups["au_to_v"].append(proc.au_to_v.weight)
        groups["lora"] = [p for n, p in self.unet.named_parameters() if "lora_" in n]
        return groups

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for ps in self.trainable_groups().values() for p in ps]

    def parameter_counts(self) -> dict[str, int]:
        counts = {k: sum(p.numel() for p in ps) for k, ps in self.trainable_groups().items()}
        trainable = {id(p) for p in self.trainable_parameters()}
        counts["frozen_unet"] = sum(p.numel() for p in self.unet.parameters() if id(p) not in trainable)
        return counts


def attach_trainable(unet, family: Family, *, encoder: str = "res_mlp64", encoder_hidden_dim: int | None = None,
                     lora_rank: int = 32, lora_alpha: float = 8.0, lambda_au: float = 1.0,
                     seed: int | None = None) -> FineFaceTrainModel:
    """Install the AU adapter (from to_k / to_v, as in the paper) and the LoRA on ``unet`` (fp32, in
    place), build the encoder, and mark exactly FineFace's parameters trainable."""
    if seed is not None:
        torch.manual_seed(seed)  # encoder and LoRA init
    unet.requires_grad_(False)
    add_au_adapter(unet, init_from_unet=True)
    if lora_rank:
        add_lora(unet, lora_rank, lora_alpha, init="gaussian")
    au_encoder = build_encoder(encoder_config(encoder, family.context_dim, encoder_hidden_dim))
    model = FineFaceTrainModel(unet, au_encoder, lora_rank=lora_rank, lora_alpha=lora_alpha, lambda_au=lambda_au)
    model.requires_grad_(False)
    for p in model.trainable_parameters():
        p.requires_grad_(True)
    return model


# -- dry run: parameter counts and memory / compute estimates -------------------------------------

def _nbytes(module: nn.Module, dtype_bytes: int | None = None) -> int:
    return sum(p.numel() * (dtype_bytes or p.element_size()) for p in module.parameters())


@torch.no_grad()
def _random_inputs(unet, batch, size, family, device, dtype):
    latents = torch.randn(batch, unet.config.in_channels, size, size, device=device, dtype=dtype)
    text = torch.randn(batch, 77, family.context_dim, device=device, dtype=dtype)
    if unet.config.addition_embed_type == "text_time":  # SDXL: pooled text and the six size / crop numbers
        pooled = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
        px = size * 8
        ids = torch.tensor([[px, px, 0, 0, px, px]], device=device, dtype=dtype).expand(batch, -1)
        text = XLText(text, torch.randn(batch, pooled, device=device, dtype=dtype), ids)
    return latents, text


def measure_activations(model: FineFaceTrainModel, family: Family, latent_size: int, batch: int = 1,
                        gradient_checkpointing: bool = False, dtype=torch.float32) -> tuple[int, int, float]:
    """(bytes autograd keeps for backward, bytes of the largest checkpointable block, forward FLOPs)
    for one training forward at ``latent_size``.

    Counts the tensors autograd saves (``saved_tensors_hooks``; inside checkpointed blocks
    checkpointing's own hooks take over, so only what stays saved is counted), with
    memory-efficient attention preferred, so the count is what backward needs, not what a kernel
    allocates. The largest block (a ResNet or transformer block, what diffusers checkpoints) is
    what checkpointing recomputes at once in backward."""
    from diffusers.models.resnet import ResnetBlock2D
    from diffusers.models.transformers.transformer_2d import Transformer2DModel
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.unet.parameters()).device
    latents, text = _random_inputs(model.unet, batch, latent_size, family, device, dtype)
    aus = torch.rand(batch, 12, device=device) * 5
    t = torch.full((batch,), 500, device=device, dtype=torch.long)
    seen: dict = {}
    per_block: dict[int, int] = {}
    current: list[int] = []

    def pack(x):
        if isinstance(x, torch.Tensor) and not isinstance(x, nn.Parameter):
            key, size = _storage_key(x)
            if key not in seen and current:
                per_block[current[-1]] = per_block.get(current[-1], 0) + size
            seen[key] = max(seen.get(key, 0), size)
        return x

    handles = []
    for m in model.unet.modules():
        if isinstance(m, (ResnetBlock2D, Transformer2DModel)):
            handles.append(m.register_forward_pre_hook(lambda mod, args: current.append(id(mod)) and None))
            handles.append(m.register_forward_hook(lambda mod, args, out: current.pop() and None))
    was_training = model.unet.training
    if gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    model.unet.train()
    try:
        with _efficient_attention(), torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            with FlopCounterMode(display=False) as counter:
                out = model(latents, t, text, aus)
        flops = float(counter.get_total_flops())
        del out
    finally:
        for h in handles:
            h.remove()
        if gradient_checkpointing:
            model.unet.disable_gradient_checkpointing()
        model.unet.train(was_training)
    frozen = {_storage_key(p)[0] for p in model.parameters()}
    kept = sum(v for k, v in seen.items() if k not in frozen)
    _META_STORAGES.clear()
    return kept, max(per_block.values(), default=0), flops


_META_STORAGES: list = []  # kept alive while measuring, so that their ids stay theirs


def _storage_key(x: torch.Tensor):
    """(key, bytes) of the storage under ``x``: views of one storage count once. Meta tensors (the dry run of a
    model too large to build, such as SDXL) have no addresses; their storage objects stand in."""
    try:
        storage = x.untyped_storage()
    except (RuntimeError, NotImplementedError):
        return id(x), x.numel() * x.element_size()
    if x.device.type == "meta":
        _META_STORAGES.append(storage)
        return ("meta", id(storage)), storage.nbytes()
    return storage.data_ptr(), storage.nbytes()


def _efficient_attention():
    from contextlib import nullcontext

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
    except Exception:  # pragma: no cover - old torch
        return nullcontext()


@torch.no_grad()
def measure_inference_flops(module_call) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        module_call()
    return float(counter.get_total_flops())


def _fit(sizes, values, target):
    """Fit v = a + b * size^2 through the measurements (activations grow with the pixel count)."""
    xs = [s * s for s in sizes]
    if len(xs) == 1:
        return values[0] * target * target / xs[0]
    n = len(xs)
    mx, my = sum(xs) / n, sum(values) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, values)) / max(sum((x - mx) ** 2 for x in xs), 1e-12)
    a = my - b * mx
    return max(a + b * target * target, 0.0)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def estimate(model: FineFaceTrainModel, base: BaseModel, args, num_processes: int = 1) -> dict:
    """Parameter counts and a rough per-device memory / compute estimate for ``args``."""
    counts = model.parameter_counts()
    trainable = sum(v for k, v in counts.items() if k != "frozen_unet")
    wbytes = {"fp16": 2, "bf16": 2}.get(args.mixed_precision or "no", 4)
    frozen = {
        "unet (frozen)": counts["frozen_unet"] * wbytes,
        "text encoder (frozen)": _nbytes(base.text_encoder, wbytes),
        "vae (frozen)": _nbytes(base.vae, 4 if _vae_stays_fp32(base, args) else wbytes),
    }
    if base.text_encoder_2 is not None:
        frozen["text encoder 2 (frozen)"] = _nbytes(base.text_encoder_2, wbytes)
    train_w = trainable * 4  # trainable weights stay fp32 under mixed precision
    grads = trainable * 4
    adam = trainable * 8  # exp_avg + exp_avg_sq, fp32

    latent_target = args.resolution // 8
    sizes = [int(s) for s in str(args.dry_run_latent_sizes).split(",") if s.strip()]
    full, kept, block, fwd_flops = [], [], [], []
    dtype = next(model.unet.parameters()).dtype
    for s in sizes:
        a, blk, f = measure_activations(model, base.family, s, batch=1, gradient_checkpointing=False, dtype=dtype)
        full.append(a)
        block.append(blk)
        fwd_flops.append(f)
        if args.gradient_checkpointing:
            kept.append(measure_activations(model, base.family, s, batch=1, gradient_checkpointing=True, dtype=dtype)[0])
    half = 0.5 if (dtype == torch.float32 and wbytes == 2) else 1.0  # measured in fp32; autocast halves most
    full_per_sample = _fit(sizes, full, latent_target) * half
    if args.gradient_checkpointing:
        # Kept block inputs for the whole batch + one block's activations recomputed at a time.
        per_sample_act = _fit(sizes, kept, latent_target) * half
        activations = per_sample_act * args.train_batch_size + _fit(sizes, block, latent_target) * half * args.train_batch_size
        activations = min(activations, full_per_sample * args.train_batch_size)
    else:
        per_sample_act = full_per_sample
        activations = per_sample_act * args.train_batch_size
    unet_fwd = _fit(sizes, fwd_flops, latent_target)

    device = next(base.vae.parameters()).device
    px = torch.zeros(1, 3, 64, 64, device=device, dtype=next(base.vae.parameters()).dtype)
    vae_fwd = measure_inference_flops(lambda: base.vae.encode(px)) * (args.resolution / 64) ** 2
    ids = torch.zeros(1, 77, dtype=torch.long, device=device)
    text_fwd = sum(measure_inference_flops(lambda m=m: m(ids)) for m in base.frozen_modules() if m is not base.vae)
    # Backward through a frozen network computes input gradients (~1x forward) plus the small
    # trainable weight gradients; checkpointing recomputes the forward once more.
    unet_train = unet_fwd * (3.0 if args.gradient_checkpointing else 2.0)
    per_sample_flops = unet_train + vae_fwd + text_fwd

    total = sum(frozen.values()) + train_w + grads + adam + activations
    fixed = total - activations
    per_sample = activations / args.train_batch_size
    return {
        "total_at_batch": {b: fixed + per_sample * b for b in (1, 4, 16)},
        "counts": counts, "trainable": trainable, "frozen_bytes": frozen, "trainable_bytes": train_w,
        "grad_bytes": grads, "adam_bytes": adam, "activation_bytes": activations,
        "activation_per_sample": per_sample_act, "activation_no_checkpointing": full_per_sample * args.train_batch_size,
        "total_bytes": total, "flops_per_sample": per_sample_flops,
        "unet_forward_flops": unet_fwd, "vae_encode_flops": vae_fwd, "text_flops": text_fwd,
        "weight_bytes_each": wbytes, "num_processes": num_processes,
    }


def _vae_stays_fp32(base: BaseModel, args) -> bool:
    from .sdxl import vae_stays_fp32

    return vae_stays_fp32(base, args.mixed_precision, getattr(args, "pretrained_vae_model_name_or_path", None))


# The paper's training data: DISFA (~90k frames) + AffectNet (~90k images); one H100-class GPU sustains roughly
# 40 % of its 989 dense bf16 TFLOP/s on a UNet training step.
PAPER_IMAGES = 180_000
H100_SUSTAINED_TFLOPS = 400


def format_estimate(est: dict, args) -> str:
    c = est["counts"]
    rows = [(f"AU encoder ({args.encoder})", c["au_encoder"]), ("AU adapter au_to_k", c["au_to_k"]),
            ("AU adapter au_to_v", c["au_to_v"]),
            (f"LoRA (rank {args.lora_rank}, alpha {args.lora_alpha:g})" if args.lora_rank else "LoRA (off)", c["lora"]),
            ("total trainable", est["trainable"]), ("frozen UNet (not trained)", c["frozen_unet"])]
    lines = ["FineFace trainable parameters:"] + [f"  {k + ':':34}{v:>14,}" for k, v in rows] + [
        "",
        f"Memory per device, batch {args.train_batch_size} at {args.resolution}px, mixed precision "
        f"{args.mixed_precision or 'no'}, gradient checkpointing {'on' if args.gradient_checkpointing else 'off'} "
        "(estimated, not measured on a GPU):",
    ]
    for k, v in est["frozen_bytes"].items():
        lines.append(f"  {k + ':':34}{gib(v):>12}")
    lines += [
        f"  {'trainable weights (fp32):':34}{gib(est['trainable_bytes']):>12}",
        f"  {'gradients (fp32):':34}{gib(est['grad_bytes']):>12}",
        f"  {'AdamW states (fp32):':34}{gib(est['adam_bytes']):>12}",
        f"  {'activations (rough):':34}{gib(est['activation_bytes']):>12}   "
        f"({gib(est['activation_per_sample'])} kept per sample, extrapolated from latent sizes {args.dry_run_latent_sizes})",
        *([f"  {'(without checkpointing:':34}{gib(est['activation_no_checkpointing']):>12})"]
          if args.gradient_checkpointing else []),
        f"  {'total (rough):':34}{gib(est['total_bytes']):>12}   + CUDA context / allocator slack (~1-3 GiB)",
        "",
        "Compute per training sample (estimated, not measured on a GPU):",
        f"  UNet forward {est['unet_forward_flops'] / 1e12:.3f} TFLOP, VAE encode {est['vae_encode_flops'] / 1e12:.3f} TFLOP, "
        f"text encoder {est['text_flops'] / 1e12:.4f} TFLOP; training step ~{est['flops_per_sample'] / 1e12:.3f} TFLOP/sample",
    ]
    lines.insert(lines.index("Compute per training sample (estimated, not measured on a GPU):") - 1,
                 "  total at batch 1 / 4 / 16:        " + " / ".join(gib(v) for v in est["total_at_batch"].values()))
    for tf in (50, 150, 300):
        ips = tf * 1e12 / max(est["flops_per_sample"], 1.0)
        lines.append(f"  at {tf:>3} TFLOP/s sustained: ~{ips:6.1f} images/s per device, "
                     f"~{ips * est['num_processes']:.1f} images/s on {est['num_processes']} device(s); "
                     f"{args.max_train_steps} steps of {args.train_batch_size * args.gradient_accumulation_steps * est['num_processes']} "
                     f"images ~{args.max_train_steps * args.train_batch_size * args.gradient_accumulation_steps / ips / 3600:.1f} h")
    ips = H100_SUSTAINED_TFLOPS * 1e12 / max(est["flops_per_sample"], 1.0)
    steps_images = args.max_train_steps * args.train_batch_size * args.gradient_accumulation_steps
    lines.append(f"  the paper's data ({PAPER_IMAGES:,} images, DISFA + AffectNet) on one H100-class GPU at "
                 f"~{H100_SUSTAINED_TFLOPS} TFLOP/s: ~{PAPER_IMAGES / ips / 3600:.1f} GPU-hours per epoch; "
                 f"{args.max_train_steps} steps ({steps_images:,} images) ~{steps_images / ips / 3600:.1f} GPU-hours")
    return "\n".join(lines)


def count_check(model: FineFaceTrainModel) -> dict[str, int]:
    """Independent count of the trainable parameters, by ``requires_grad`` (what the optimizer gets)."""
    return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total": sum(p.numel() for p in model.parameters())}


__all__ = ["BaseModel", "FineFaceTrainModel", "attach_trainable", "load_base_model", "check_family",
           "estimate", "format_estimate", "count_check", "ADAPTER_NAME"]
