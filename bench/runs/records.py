"""Run records: the data a run used, its fingerprint and code version, and ``record.json`` itself."""
from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path

from baselines.base import count_parameters
from bench.data import ensure_synthetic
from bench.data.h3wb import dataset_files
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


def source_text(source: Path | tuple[Path, ...]) -> str:
    """The data source as records show it: the path, or the paths joined by ", "."""
    return ", ".join(map(str, source)) if isinstance(source, tuple) else str(source)


@lru_cache(maxsize=8)
def fingerprint(source: Path) -> str:
    """sha256 over the dataset files' names and bytes (first 16 hex digits)."""
    digest = hashlib.sha256()
    for path in dataset_files(source):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


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
                 state: dict) -> dict:
    """Write ``record.json`` atomically and return it."""
    training = {"epochs_done": state["epoch"], "selected_epoch": state["best_epoch"],
                "selected_on": "validation" if "validation" in splits else "last epoch",
                "seconds": round(state["seconds"], 2), "history": state["history"]}
    record = build_record(config, run_id, lifter, source, splits, metrics, training)
    save_text(folder / "record.json", json.dumps(record, indent=2))
    return record


def build_record(config: dict, run_id: str, lifter, source, splits: dict, metrics: dict, training: dict) -> dict:
    """A result as ``record.json`` and ``bench eval``'s evaluations hold it, so that ``bench report`` reads both:
    what ran (model, part options, sizes, data), its metrics per (H, K) pair, and ``training``."""
    return {
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
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
