"""``python -m orbitfl``: the same command as ``orbitfl``."""

import sys

from orbitfl.cli import main

sys.exit(main())
