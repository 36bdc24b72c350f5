"""``python -m fineface_core.evaluate``: the paper's evaluation for your weights (fineface_core.evaluation)."""
import sys

from .evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
