"""``python -m uec_repro.experiments run | list | show``: see :func:`uec_repro.experiments.main`."""

import sys

from . import main

sys.exit(main())
