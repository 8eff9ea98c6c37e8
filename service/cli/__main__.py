"""``python -m ahmer.service.cli``: the same as the ``ahmer`` console script."""

import sys

from .main import main

sys.exit(main())
