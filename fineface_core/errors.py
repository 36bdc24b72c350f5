"""Errors with messages that say what was wrong and what to do."""
import unicodedata

QUOTE_LIMIT = 100
# Characters a message would show as nothing (NUL, zero-width space, BOM...) or as a plain space (no-break space).
_UNSEEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"}


def _shown(c: str) -> str:
    return f"<U+{ord(c):04X}>" if c != " " and unicodedata.category(c) in _UNSEEN else c


def visible(text: str) -> str:
    """``text`` with each invisible character named by its code point: 'AU12<U+200B>'."""
    return "".join(map(_shown, text))


def quoted(text, limit: int = QUOTE_LIMIT) -> str:
    """``'text'`` for a message, cut to about ``limit`` characters as shown: a message never grows with its input
    (a 1 MB spec is named by its start and its length, not repeated); invisible characters by code point."""
    text = text if isinstance(text, str) else repr(text)
    shown, size = [], 0
    for c in text[:limit + 1]:
        piece = _shown(c)
        size += len(piece)
        if size > limit:
            return f"'{''.join(shown)}…' ({len(text):,} characters)"
        shown.append(piece)
    return f"'{''.join(shown)}'"


class FineFaceError(ValueError):
    """Base class: bad input given to FineFace (a spec, a file, a model)."""


class AUSpecError(FineFaceError):
    """An AU specification (name, intensity, preset) that cannot be used."""


class WeightFileError(FineFaceError):
    """A weight file or folder that is missing, unsafe, corrupt, foreign or inconsistent."""


class ModelMismatchError(FineFaceError):
    """FineFace weights that do not fit the diffusion model they are applied to."""
