"""What a node shows on itself after a run (web/node_text.js draws it): a node's result with a ``ui`` part.

ComfyUI sends a node's ``ui`` dict to the front end as that node's "executed" message, output node or not."""
from __future__ import annotations

from fineface_core.conditioning import AUVectors


def with_text(result: tuple, *texts: str, aus: AUVectors | None = None) -> dict:
    """``result`` as the node returns it, plus the text lines to show (and the AU vectors it made, which the AU
    Vector nodes its ``aus`` output feeds show as their base)."""
    ui = {"fineface_text": [line for text in texts for line in text.splitlines()]}
    if aus is not None:
        ui["fineface_aus"] = [[round(float(v), 3) for v in row] for row in aus.values]
    return {"ui": ui, "result": result}
