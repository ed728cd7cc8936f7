"""``python -m fssim``."""

import sys

from fssim.cli import main

sys.exit(main())
