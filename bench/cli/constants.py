"""The feature packages' values that the parser shows in its choices and help texts, copied here.

Building the parser must import no torch (``python -m bench --help`` starts in a fraction of a second), but
``bench.metrics`` and ``bench.sweeps.status`` import torch, or packages that do, when they load (``bench lift``'s
choices come from that package's light modules directly). Each value below is a copy of the one named beside it,
and ``tests/bench/cli/test_import_time.py`` checks that every copy equals its source.
"""
from __future__ import annotations

PROTOCOL_NAMES = ("h3wb", "pafuse")
"""``tuple(bench.metrics.PROTOCOLS)``: the metric protocols."""
CLUSTERS = ("slurm", "local", "debug")
"""``bench.sweeps.status.CLUSTERS``: where a sweep runs."""
