"""Errors with messages that say what was wrong and what to do."""

QUOTE_LIMIT = 100


def quoted(text, limit: int = QUOTE_LIMIT) -> str:
    """``'text'`` for a message, cut to about ``limit`` characters: a message never grows with its input
    (a 1 MB spec is named by its start and its length, not repeated)."""
    text = text if isinstance(text, str) else repr(text)
    if len(text) <= limit:
        return f"'{text}'"
    return f"'{text[:limit]}…' ({len(text):,} characters)"


class FineFaceError(ValueError):
    """Base class: bad input given to FineFace (a spec, a file, a model)."""


class AUSpecError(FineFaceError):
    """An AU specification (name, intensity, preset) that cannot be used."""


class WeightFileError(FineFaceError):
    """A weight file or folder that is missing, unsafe, corrupt, foreign or inconsistent."""


class ModelMismatchError(FineFaceError):
    """FineFace weights that do not fit the diffusion model they are applied to."""
