"""Time-to-accuracy curves: validation WB against wall seconds for several runs on one figure."""
from __future__ import annotations

import json
from pathlib import Path

from bench.io import atomic_path
from bench.reports.tables import ReportError


def run_curves(results: str | Path) -> tuple[list[dict], list[str]]:
    """Every run under ``results`` whose record's history holds the curve (``seconds``, ``steps``,
    ``validation_wb`` per epoch).

    Returns:
        ([{"label", "run_id", "seconds": [...], "steps": [...], "wb": [...]}], notes on runs left out and why).
    """
    results = Path(results)
    if not results.is_dir():
        raise ReportError(f"{results}: no such results folder (pass --results DIR, a folder of run folders)")
    curves, notes = [], []
    for path in sorted(results.rglob("record.json")):
        try:
            record = json.loads(path.read_text())
            history = record["training"]["history"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            notes.append(f"{path}: left out, not a readable record ({type(error).__name__})")
            continue
        points = [h for h in history if isinstance(h.get("validation_wb"), (int, float)) and "seconds" in h]
        if not points:
            notes.append(f"{path}: left out, its history has no validation WB against seconds (a run of "
                         f"--selection last, or recorded before curves were kept)")
            continue
        lifter = f"{record['model']}{' part-based' if record.get('part_based') else ''} N={record['frames']}"
        curves.append({"label": f"{lifter} seed {record['seed']}", "lifter": lifter, "seed": record["seed"],
                       "run_id": record["run_id"], "seconds": [h["seconds"] for h in points],
                       "steps": [h["steps"] for h in points], "wb": [h["validation_wb"] for h in points]})
    return curves, notes


def plot_curves(curves: list[dict], path: str | Path) -> Path:
    """Validation WB (mm) against wall seconds (log scale), one line per run, written atomically as a PNG.

    Each lifter (with its part-based flag and frames) has one colour and each seed one line style, so the seeds of a
    lifter read as one group however many runs there are; the legend sits beside the axes."""
    if not curves:
        raise ReportError("--plot-curves: no run with a validation curve was found")
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt

    lifters = list(dict.fromkeys(curve["lifter"] for curve in curves))
    seeds = sorted({curve["seed"] for curve in curves})
    colours = plt.get_cmap("tab10" if len(lifters) <= 10 else "tab20")
    styles = ("-", "--", ":", "-.")
    figure, axes = plt.subplots(figsize=(10, 5), layout="constrained")
    for curve in curves:
        axes.plot(curve["seconds"], curve["wb"], marker="o", markersize=3, label=curve["label"],
                  color=colours(lifters.index(curve["lifter"]) % colours.N),
                  linestyle=styles[seeds.index(curve["seed"]) % len(styles)])
    axes.set_xscale("log")
    axes.set_xlabel("wall time of training and validation (s, log scale)")
    axes.set_ylabel("validation WB (mm, S7, H1-K1 P-Best)")
    axes.set_title("time to accuracy")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
    return path
