"""``python -m uec_repro.experiments run | list | show``: see :mod:`uec_repro.experiments.cli`."""

import sys

from .cli import main

sys.exit(main())
