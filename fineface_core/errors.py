"""Errors with messages that say what was wrong and what to do."""


class FineFaceError(ValueError):
    """Base class: bad input given to FineFace (a spec, a file, a model)."""


class AUSpecError(FineFaceError):
    """An AU specification (name, intensity, preset) that cannot be used."""


class WeightFileError(FineFaceError):
    """A weight file or folder that is missing, unsafe, corrupt, foreign or inconsistent."""


class ModelMismatchError(FineFaceError):
    """FineFace weights that do not fit the diffusion model they are applied to."""
