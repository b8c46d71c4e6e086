"""One run: its configuration, its lifter, training, evaluation, checkpoints and record.

Entry points: ``resolve`` (a run's configuration), ``Run`` (train, select, evaluate, record), ``build`` /
``build_from_config`` (the one way to build a lifter), ``load_model`` (a run's trained lifter) and ``evaluate_run``
(``bench eval``).
"""
from bench.runs.checkpoints import load_model
from bench.runs.config import resolve
from bench.runs.evaluation import evaluate_run
from bench.runs.lifters import build, build_from_config
from bench.runs.training import Run

__all__ = ["Run", "build", "build_from_config", "evaluate_run", "load_model", "resolve"]
