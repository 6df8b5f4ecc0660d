"""``python -m mlembed`` = the ``mlembed`` command."""

import sys

from mlembed.cli import main

sys.exit(main())
