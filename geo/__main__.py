"""``python -m geo``: the Grid Atlas command line."""

import sys

from geo.cli.main import main

sys.exit(main())
