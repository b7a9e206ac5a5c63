"""UEC-RL replication on TRL (see README.md). Importing the package turns off dependency messages that say
nothing to its users (:mod:`uec_repro.quiet`; ``UEC_REPRO_VERBOSE=1`` keeps them)."""

from .quiet import install as _install_quiet

_install_quiet()
