"""``python -m nasforge.cli``: the ``nasforge`` command."""

import sys

from nasforge.cli import main

sys.exit(main())
