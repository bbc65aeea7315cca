"""``python -m rbcc``: the rbcc command."""

import sys

from .cli import main

sys.exit(main())
