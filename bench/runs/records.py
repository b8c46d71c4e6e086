"""Run records: the data a run used, its fingerprint and code version, and ``record.json`` itself."""
from __future__ import annotations

import datetime
import json
import math
import subprocess
from functools import lru_cache
from pathlib import Path

from baselines.base import count_parameters
from bench.data import ensure_synthetic
from bench.data.fingerprint import fingerprint_files
from bench.data.h3wb import SPLITS, dataset_files
from bench.errors import OutputError
from bench.io import save_text


def data_source(config: dict) -> Path | tuple[Path, ...]:
    """The data of a run: ``config['data']`` (a folder or file, or a list of files), or the synthetic set
    (generated on first use)."""
    data = config["data"]
    if isinstance(data, (list, tuple)):
        return tuple(Path(item) for item in data)
    if data:
        return Path(data)
    synthetic = config["synthetic"]
    return ensure_synthetic(size=synthetic["size"], seed=synthetic["seed"])


def run_splits(selection: str) -> dict[str, tuple[str, ...]]:
    """Train / validation / test subjects of a run's ``selection``: the test subject never selects a checkpoint."""
    if selection == "val":
        return {"train": SPLITS["val-train"], "validation": SPLITS["val"], "test": SPLITS["test"]}
    return {"train": SPLITS["train"], "test": SPLITS["test"]}


def source_text(source: Path | tuple[Path, ...]) -> str:
    """The data source as records show it: the path, or the paths joined by ", "."""
    return ", ".join(map(str, source)) if isinstance(source, tuple) else str(source)


@lru_cache(maxsize=8)
def fingerprint(source: Path | tuple[Path, ...]) -> str:
    """The data's fingerprint (16 hex digits): a hash of the arrays its files hold, the same on every machine for
    the same data (see :mod:`bench.data.fingerprint`)."""
    return fingerprint_files(dataset_files(source))


def code_version() -> str:
    """``git describe`` of the checkout, with '-dirty' when it has uncommitted changes; the package version else."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pafuse-bench")
        except PackageNotFoundError:
            return "unknown"


def write_record(folder: Path, config: dict, run_id: str, lifter, source: Path, splits: dict, metrics: dict,
                 state: dict, baseline: dict | None = None) -> dict:
    """Write ``record.json`` atomically and return it.

    An epoch whose validation WB was not finite (never selected) shows it as text in the history, ``"nan"`` or
    ``"inf"``: said, and standard JSON.
    """
    history = [dict(entry, validation_wb=_said(entry.get("validation_wb"))) for entry in state["history"]]
    training = {"epochs_done": state["epoch"], "devices": config["devices"], "selected_epoch": state["best_epoch"],
                "selected_on": "validation" if "validation" in splits else "last epoch",
                "seconds": round(state["seconds"], 2), "history": history}
    record = build_record(config, run_id, lifter, source, splits, metrics, training, baseline)
    save_text(folder / "record.json", json.dumps(record, indent=2, allow_nan=False))
    return record


def build_record(config: dict, run_id: str, lifter, source, splits: dict, metrics: dict, training: dict,
                 baseline: dict | None = None) -> dict:
    """A result as ``record.json`` and ``bench eval``'s evaluations hold it, so that ``bench report`` reads both:
    what ran (model, part options, sizes, data), its metrics per (H, K) pair, ``training``, and when given the
    mean-pose ``baseline`` (:mod:`bench.runs.baseline`) under the same protocol.

    Raises:
        OutputError: a metric (or any other number) that is NaN or infinite, named by (H, K) pair, estimator and
            metric: such a result is never recorded.
    """
    record = {
        "run_id": run_id,
        "model": config["model"],
        "part_based": config["part_based"],
        "parts": getattr(lifter, "options", None),  # the resolved part options of a part-based lifter
        "model_args": config["model_args"],
        "frames": config["frames"],
        "parameters": count_parameters(lifter),
        "protocol": config["eval"]["protocol"],
        "seed": config["seed"],
        "data": {"source": source_text(source), "fingerprint": fingerprint(source),
                 "splits": {name: list(subjects) for name, subjects in splits.items()}},
        "code_version": code_version(),
        "metrics": {pair: result["overall"] for pair, result in metrics.items()},
        "per_action": {pair: result["per_action"] for pair, result in metrics.items()},
        "training": training,
        **({"baseline": baseline} if baseline is not None else {}),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    check_finite(record)
    return record


def _said(value):
    """A non-finite float as its text (``"nan"``, ``"inf"``), anything else as it is."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def check_finite(record: dict) -> None:
    """Refuse a record that holds a NaN or an infinity anywhere, naming where (for a metric: its (H, K) pair,
    estimator and metric, and the action of a per-action one)."""
    found = _first_nonfinite(record, ())
    if found is None:
        return
    place, value = found
    if place[0] == "metrics" and len(place) == 4:
        what = f"metric {place[3]} of estimator {place[2]} at {place[1]}"
    elif place[0] == "per_action" and len(place) == 5:
        what = f"metric {place[4]} of estimator {place[3]} at {place[1]}, action {place[2]}"
    else:
        what = ".".join(map(str, place))
    raise OutputError(f"run {record.get('run_id')}: {what} is {value}: a result holding NaN or infinity is not "
                      "recorded (the model's predictions or the data hold non-finite numbers)")


def _first_nonfinite(tree, place: tuple):
    """(place, value) of the first float in ``tree`` (dicts and lists) that is NaN or infinite, else None."""
    if isinstance(tree, float):
        return None if math.isfinite(tree) else (place, tree)
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else ()
    for key, value in items:
        found = _first_nonfinite(value, (*place, key))
        if found is not None:
            return found
    return None
