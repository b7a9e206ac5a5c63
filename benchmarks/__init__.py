"""Benchmarks of the package against stock TRL and of UEC-RL's step cost; ``python -m benchmarks.run`` (or
``make bench`` / ``make bench-quick``) runs them all and writes ``benchmarks/results/``."""
