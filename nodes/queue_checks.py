"""VALIDATE_INPUTS' answer: ComfyUI asks it when a prompt is queued, and the front end marks the node with a
returned string before anything runs."""
from __future__ import annotations

from fineface_core.errors import FineFaceError


def queue_answer(check, *args, **kwargs) -> bool | str:
    """True when ``check`` accepts the values, else its FineFaceError's message (what is wrong and what to do)."""
    try:
        check(*args, **kwargs)
    except FineFaceError as err:
        return str(err)
    return True


def text_answer(parse, text) -> bool | str:
    """The same for a text widget; linked text has no value yet and is checked when the node runs."""
    return queue_answer(parse, text) if isinstance(text, str) else True
