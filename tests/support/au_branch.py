"""What the reference's AU branch adds to one cross-attention layer (tests/test_reference.py,
tests/test_sdxl_reference.py): the input of ``to_out`` with the branch at ``au_scale`` minus with it off."""
from __future__ import annotations

import torch


def au_branch_before_to_out(attn, hidden_states, context, au_embedding, au_scale: float) -> torch.Tensor:
    """``attn``'s processor called twice on the same inputs; the difference of what reached ``to_out``."""
    seen = []
    hook = attn.to_out[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            attn.processor(attn, hidden_states, context, au_embedding=au_embedding, au_scale=au_scale)
            attn.processor(attn, hidden_states, context, au_embedding=au_embedding, au_scale=0.0)
    finally:
        hook.remove()
    return seen[0] - seen[1]
