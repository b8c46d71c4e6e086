"""The feature packages' values that the parser shows in its choices and help texts, copied here.

Building the parser must import no torch (``python -m bench --help`` starts in a fraction of a second), but
``bench.metrics``, ``bench.lift`` and ``bench.sweeps`` import torch, or packages that do, when they load. Each value
below is a copy of the one named beside it, and ``tests/bench/cli/test_import_time.py`` checks that every copy
equals its source.
"""
from __future__ import annotations

PROTOCOL_NAMES = ("h3wb", "pafuse")
"""``tuple(bench.metrics.PROTOCOLS)``: the metric protocols."""
CLUSTERS = ("slurm", "local", "debug")
"""``bench.sweeps.status.CLUSTERS``: where a sweep runs."""
AGGREGATES = ("mean", "best-2d")
"""``bench.lift.aggregation.AGGREGATES``: how ``bench lift`` makes one pose of H hypotheses."""
DEFAULT_THRESHOLD = 0.3
"""``bench.lift.formats.base.DEFAULT_THRESHOLD``: keypoints scored below it are missing."""
MAX_MISSED = 5
"""``bench.lift.tracking.MAX_MISSED``: frames a person may go undetected and stay the same clip."""
