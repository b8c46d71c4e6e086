"""A run folder's files as state: is the record complete, which files are damaged, what to move aside.

``record.json`` counts as a finished run only when it parses and holds every metric (:func:`read_record`); a
truncated one is reported with its file, never taken as done. Damaged files are never deleted: ``--restart`` moves
them aside as ``NAME.damaged-<time>`` (:func:`move_aside`). Temporary files of an earlier, killed attempt
(``.NAME.*.tmp``, see ``bench.io.atomic_path``) are removed when the run starts again (:func:`remove_stale_temp_files`).

Checkpoints hold only tensors, numbers, strings and plain containers (they load with ``weights_only=True``), random
number generator states included: :func:`plain_rng_state` and :func:`restore_rng_state` convert them.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from bench.errors import CheckpointError
from bench.metrics import ESTIMATORS, TABLE_METRICS
from bench.runs.checkpoints import check_weights, read_checkpoint

RESTART_HINT = ("the same `bench run` command with --restart moves the damaged files aside (NAME.damaged-<time>) and "
                "goes on from the intact ones, or starts the run over")
LAST_ENTRIES = ("model", "optimizer", "rng", "state")
"""What a run's ``last.pt`` holds, besides the run id and model name that identify it."""
RECORD_FIELDS = ("run_id", "model", "metrics", "training")
"""Top-level entries every record has, besides complete metrics."""


def read_record(path: Path, pairs: list[str] | None = None) -> tuple[dict | None, str | None]:
    """``(record, None)`` for a complete record, ``(None, problem)`` for an incomplete one, ``(None, None)`` for
    none. A complete record parses as JSON and holds, for each (H, K) pair (at least ``pairs``, when given), every
    estimator's WB, PB, Body, Face and Hands as numbers."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as error:
        return None, f"{path}: cannot be read ({error})"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        size = f"{len(text.encode()):,} bytes" if text.strip() else "empty"
        return None, f"{path}: not a complete record ({size}, invalid JSON: {error})"
    problem = _record_content_problem(record, pairs)
    return (None, f"{path}: not a complete record: {problem}") if problem else (record, None)


def _record_content_problem(record, pairs: list[str] | None) -> str | None:
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    missing = [field for field in RECORD_FIELDS if field not in record]
    if missing:
        return f"no {', '.join(missing)}"
    metrics = record["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        return "no metrics"
    absent = [pair for pair in pairs or () if pair not in metrics]
    if absent:
        return f"no metrics for {', '.join(absent)} (has {', '.join(map(str, metrics))})"
    for pair, estimators in metrics.items():
        for estimator in ESTIMATORS:
            values = estimators.get(estimator) if isinstance(estimators, dict) else None
            if not isinstance(values, dict):
                return f"metrics {pair}: no {estimator}"
            lacking = [name for name in TABLE_METRICS if not _is_number(values.get(name))]
            if lacking:
                return f"metrics {pair} {estimator}: no {', '.join(lacking)}"
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def move_aside(path: Path, label: str = "damaged") -> Path:
    """Rename ``path`` to ``NAME.<label>-<time>`` beside it (never over another file) and return the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, count = path.with_name(f"{path.name}.{label}-{stamp}"), 1
    while target.exists():
        count += 1
        target = path.with_name(f"{path.name}.{label}-{stamp}-{count}")
    os.replace(path, target)
    return target


def remove_stale_temp_files(folder: Path) -> list[tuple[Path, int]]:
    """Remove the temporary files (``.NAME.*.tmp``) that a killed attempt left in ``folder``; returns each with its
    size. Only the run's own writer may call this (it holds the run folder's lock)."""
    removed = []
    for path in sorted(folder.glob(".*.tmp")):
        try:
            size = path.stat().st_size
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        removed.append((path, size))
    return removed


def plain_rng_state() -> dict:
    """Python's, NumPy's and torch's random states as tensors, numbers, strings and lists only."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {"python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                        "gauss_next": gauss},
             "numpy": {"bit_generator": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                       "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Set the random states of :func:`plain_rng_state` (or the tuples older checkpoints held)."""
    python, numpy_state = state["python"], state["numpy"]
    if isinstance(python, dict):
        python = (python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss_next"])
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["bit_generator"], np.asarray(numpy_state["keys"], dtype=np.uint32),
                       numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    random.setstate(python)
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Damaged(Exception):
    """Run files that a run cannot go on from: the error to raise (``kind``), and the damaged files."""

    def __init__(self, kind: type[ValueError], message: str, files: list[Path]):
        super().__init__(message)
        self.kind, self.files = kind, files


def fresh_state() -> dict:
    """The training state of a run that has not trained yet."""
    return {"epoch": 0, "best": None, "best_epoch": None, "history": [], "seconds": 0.0}


def load_last(path: Path, lifter, optimizer: torch.optim.Optimizer, run_id: str, model_name: str,
              trust: bool = False, rank: int = 0) -> tuple[dict, int]:
    """Load a run's ``last.pt`` into ``lifter``, ``optimizer`` and the random generators of process ``rank`` (of a
    run over several devices: ``rng`` holds the leader's states, ``rng_other_ranks`` those of ranks 1, 2, ...).

    Returns:
        The training state, and how many processes' random states the file holds (a run resumed on more processes
        than it was saved by finds none for the new ones: their generators are left as they are).

    Raises:
        CheckpointError: naming the file: unreadable, refused (see ``read_checkpoint``), not a ``last.pt``, another
            run's (both run ids and model names), weights, optimizer or generator states that do not fit.
    """
    device = next(lifter.parameters()).device
    checkpoint = read_checkpoint(path, device, trust)
    if not isinstance(checkpoint, dict) or not set(LAST_ENTRIES) <= set(checkpoint):
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{path}: not a run's last.pt: expected entries {', '.join(LAST_ENTRIES)}, found "
                              f"{found}")
    saved = checkpoint.get("run_id")
    if saved is not None and saved != run_id:
        raise CheckpointError(f"{path}: a checkpoint of run {saved} ({checkpoint.get('model_name', '?')}), not of "
                              f"this run {run_id} ({model_name})")
    state = checkpoint["state"]
    if not isinstance(state, dict) or not set(fresh_state()) <= set(state) or not isinstance(state["epoch"], int):
        raise CheckpointError(f"{path}: its training state lacks entries of {sorted(fresh_state())}")
    weights = check_weights(lifter, checkpoint, path, model_name)
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: its optimizer state does not fit this run's optimizer ({error})") from error
    try:
        rng_states = [checkpoint["rng"], *checkpoint.get("rng_other_ranks", [])]
        if rank < len(rng_states):
            restore_rng_state(rng_states[rank])
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as error:
        raise CheckpointError(f"{path}: its random generator states cannot be restored "
                              f"({type(error).__name__}: {error})") from error
    lifter.load_state_dict(weights)
    return state, len(rng_states)


def read_best(path: Path, lifter, epoch: int, model_name: str, trust: bool = False) -> dict:
    """The weights in ``path`` (``best.pt``), checked to be the selected ``epoch`` of ``lifter``'s run.

    Raises:
        CheckpointError: naming what keeps the file from being that: missing, unreadable, another model's, or
            another epoch's.
    """
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    checkpoint = read_checkpoint(path, next(lifter.parameters()).device, trust)
    weights = check_weights(lifter, checkpoint, path, model_name)
    if checkpoint.get("epoch") != epoch:
        raise CheckpointError(f"{path}: holds epoch {checkpoint.get('epoch')}, but last.pt selected epoch {epoch}")
    return weights
