"""``bench perf``: what each lifter costs, measured, and each fast path against its plain counterpart.

Entry points: ``PerfSettings`` (what to measure and how), ``measure_lifter`` (one lifter's row), ``compare_lifter``
(its fast paths) and the ``session`` module (one ``bench perf`` call: settings from presets and ``--set``, report).
"""
from bench.perf.compare import compare_lifter
from bench.perf.measure import PerfSettings, measure_lifter

__all__ = ["PerfSettings", "compare_lifter", "measure_lifter"]
