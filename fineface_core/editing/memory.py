"""How many targets one regeneration can take on a device, from the recorded inversion's bytes and the
device's free memory, so that "too many targets" is refused with the number that fits, before sampling.

A replay of N targets from one inversion holds the record once (its drawn latents and step means are
broadcast to the batch, not copied) and per target a few working latents: the latent being stepped, the
model's denoised, the step mean, the change and the output. The model's own activations are the caller's
to add (ComfyUI splits cond/uncond batches to fit, so one call's worth is enough there).
"""
from __future__ import annotations

from ..errors import FineFaceError
from .record import InversionRecord, size_text

WORKING_LATENTS = 6  # x, denoised, step mean, change, masked change, output: per target, each one latent


def bytes_per_target(record: InversionRecord) -> int:
    """Working memory of one more target in a replay of ``record``."""
    return WORKING_LATENTS * record.drawn[0, 0].numel() * record.drawn.element_size()


def targets_that_fit(record: InversionRecord, free_bytes: int, fixed_bytes: int = 0, record_moves: bool = False) -> int:
    """How many targets a replay of ``record`` can take with ``free_bytes`` free on its device. ``fixed_bytes``:
    what the replay needs whatever the batch (one model call's activations); ``record_moves``: the record is not on
    that device yet, so its copy counts too."""
    left = int(free_bytes) - int(fixed_bytes) - (record.nbytes if record_moves else 0)
    return max(0, left // bytes_per_target(record))


def check_targets_fit(record: InversionRecord, targets: int, free_bytes: int, device, who: str, *,
                      fixed_bytes: int = 0, record_moves: bool = False):
    """Refuse a regeneration of ``targets`` latents that would not fit in ``free_bytes`` on ``device``."""
    fit = targets_that_fit(record, free_bytes, fixed_bytes, record_moves)
    if targets <= fit:
        return
    need = targets * bytes_per_target(record) + fixed_bytes + (record.nbytes if record_moves else 0)
    raise FineFaceError(
        f"{who}: {targets} targets need about {size_text(need)} on {device} (the inversion {size_text(record.nbytes)}"
        f"{' to copy there' if record_moves else ''}, {size_text(bytes_per_target(record))} per target"
        f"{', one model call ' + size_text(fixed_bytes) if fixed_bytes else ''}), but {size_text(max(0, int(free_bytes)))} "
        f"is free: {fit} target(s) fit. Regenerate the targets in batches of at most {fit} from the same inversion "
        "(AU Vector with fewer lines), or free memory (fewer steps, a smaller latent, a lighter model)."
    )
