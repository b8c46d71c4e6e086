"""The harness's error classes, importable by every package without reaching into another one.

Each is a ``ValueError``: the command line prints its message and exits with status 2, without a traceback.
"""
from __future__ import annotations


class DataError(ValueError):
    """Bad input data: names the file, the place inside it, what was expected and what was found."""

    def __init__(self, file, where: str, expected: str, found: str):
        super().__init__(f"{file}: {where}: expected {expected}, found {found}")


class ConfigError(ValueError):
    """A configuration problem, reported before any work starts."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model it is loaded into."""


class OutputError(ValueError):
    """An output that cannot be written as asked: a path that is not a writable file or folder, checked before the
    work that produces it, or a result holding a non-finite number (NaN or infinity), which is never recorded."""


class RunStateError(ValueError):
    """A run folder whose files cannot be used as they are (an incomplete record, a missing selected checkpoint):
    names the file, what is wrong and the way out (``bench run --restart``)."""


class RunLockedError(ValueError):
    """A run folder that another process is writing: names the lock file and the pid and host holding it."""


class TrainingError(ValueError):
    """Training that cannot go on, e.g. a non-finite loss: names the epoch and step."""
