import sys

from .weightfiles.cli import main

sys.exit(main())
