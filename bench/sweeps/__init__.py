"""Sweeps: a sweep file's runs submitted as one job array (SLURM, local processes or in-process), and their states.

Entry points: ``load_sweep`` (a sweep file expanded into runs), ``Submission`` (submit and follow them) and
``run_states`` (where each run is).
"""
from bench.sweeps.files import load_sweep
from bench.sweeps.jobs import Submission
from bench.sweeps.status import run_states

__all__ = ["Submission", "load_sweep", "run_states"]
