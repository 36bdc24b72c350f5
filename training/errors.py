"""The error a training command reports as one message, without a traceback."""


class TrainingError(Exception):
    """A problem the user can fix (an option, the data, the output folder, a diverging run):
    ``python -m training.train`` / ``training.export`` print ``error: <message>`` and exit 1."""
