"""``python -m geo``: the Grid Atlas command line."""

import sys

from .cli import main

sys.exit(main())
