"""ComfyUI's own check of a queued prompt's node (``execution.validate_inputs``), on every tree the suite runs."""
from __future__ import annotations

import inspect

from workflows.executor import wait


def validate_node(prompt: dict, node_id: str) -> tuple:
    """What ComfyUI answers for one node of ``prompt`` when it is queued: (ok, errors, node id). Newer trees take the
    prompt's id first and answer through a coroutine."""
    import execution

    first = ("test",) if "prompt_id" in inspect.signature(execution.validate_inputs).parameters else ()
    return wait(execution.validate_inputs(*first, prompt, node_id, {}))
