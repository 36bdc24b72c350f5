"""Non-finite numbers never reach a file: a NaN/inf loss stops the run, and no checkpoint or export
is written from weights that hold NaN or inf."""
from __future__ import annotations

import torch

from .errors import TrainingError


def weight_tensors(weights) -> dict[str, torch.Tensor]:
    """A FineFaceWeights' tensors under the names they get in the .safetensors file."""
    tensors = {f"encoder.{k}": v for k, v in weights.encoder.state_dict().items()}
    for kind in ("au_to_v", "au_to_k"):
        tensors.update({f"adapter.{p}.{kind}.weight": w for p, w in getattr(weights, kind).items()})
    if weights.lora is not None:
        tensors.update({f"lora.{p}.lora_A.weight": w for p, w in weights.lora.down.items()})
        tensors.update({f"lora.{p}.lora_B.weight": w for p, w in weights.lora.up.items()})
    return tensors


def nonfinite(tensors: dict[str, torch.Tensor]) -> list[tuple[str, int, int]]:
    """(name, non-finite values, values) of each tensor holding NaN or inf."""
    bad = []
    for name, t in tensors.items():
        if t.is_floating_point():
            n = int((~torch.isfinite(t.detach())).sum())
            if n:
                bad.append((name, n, t.numel()))
    return bad


def describe_nonfinite(bad, total: int) -> str:
    name, n, size = bad[0]
    return f"{len(bad)} of {total} tensors hold NaN/inf values (first: {name}, {n} of {size} values)"


def check_weights_finite(weights, target: str) -> None:
    """Raise TrainingError naming the tensor when ``weights`` (FineFaceWeights) holds NaN or inf."""
    tensors = weight_tensors(weights)
    bad = nonfinite(tensors)
    if bad:
        raise TrainingError(f"refusing to write {target}: {describe_nonfinite(bad, len(tensors))}. These weights "
                            "come from a diverged run; export an earlier checkpoint instead")


def advice(args, precision: str | None) -> str:
    """What to try after a divergence; ``precision`` is the run's actual mixed precision (no, fp16, bf16)."""
    tips = [f"a lower --learning_rate (now {args.learning_rate:g})", "a warm-up (--lr_warmup_steps 500)"]
    if not args.max_grad_norm or args.max_grad_norm > 1:
        tips.append(f"gradient clipping (--max_grad_norm 1.0, now {args.max_grad_norm:g})")
    if precision == "fp16":
        tips.append("--mixed_precision bf16 or no (fp16 overflows more easily)")
    elif precision == "bf16":
        tips.append("--mixed_precision no")
    return (f"Try {', '.join(tips)}; check the data with `python -m training.data check DATA_DIR`. Then continue "
            "with --resume_from_checkpoint latest, or start again with --overwrite_output_dir")


def _kept(last_good: str | None) -> str:
    return f"the last good checkpoint is {last_good}" if last_good else "no checkpoint had been saved yet"


def loss_error(step: int, loss: float, args, precision: str | None, last_good: str | None) -> TrainingError:
    return TrainingError(f"the training loss became {loss} at step {step}: training stopped before that step's "
                         f"update and saved nothing more; {_kept(last_good)}. {advice(args, precision)}")


def params_error(model, step: int, args, precision: str | None, last_good: str | None) -> TrainingError | None:
    """A TrainingError when the trainable parameters hold NaN/inf (checked before each save), else None."""
    tensors = {n: p for n, p in model.named_parameters() if p.requires_grad}
    bad = nonfinite(tensors)
    if not bad:
        return None
    return TrainingError(f"at step {step} the trainable weights hold NaN/inf ({describe_nonfinite(bad, len(tensors))}): "
                         f"not saving them; {_kept(last_good)}. {advice(args, precision)}")
