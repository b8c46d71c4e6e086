"""The text that ``bench run`` and ``bench eval`` print for a result: its metrics beside the mean-pose baseline.

One row per (H, K) pair and estimator, then the baseline's row (:mod:`bench.runs.baseline`); every metric that is not
below the baseline's, as displayed (0.1 mm), carries :data:`NOT_BETTER`, and each such metric gets one line under the
table. Under the ``pafuse`` protocol, a line explains why P-Best and P-Agg differ at H = 1 when they do.
"""
from __future__ import annotations

from tabulate import tabulate

from bench.metrics import PROTOCOLS, TABLE_METRICS
from bench.runs.baseline import BASELINE_NAME

NOT_BETTER = "!"
"""The mark of a metric that is not better than the mean-pose baseline's."""
QUICK_NOTE = "quick: a smoke run, not a result"


def _shown(value: float) -> float:
    """A value as the table shows it (0.1 mm), so that marks and notes agree with what is printed."""
    return round(value, 1)


def not_better(value: float, baseline: float) -> bool:
    """Whether ``value`` is not below ``baseline`` as displayed: the model does no better than the mean pose."""
    return _shown(value) >= _shown(baseline)


def _baseline_metrics(baseline: dict | None, protocol: str | None) -> dict[str, float] | None:
    """The baseline's metrics when it was measured under ``protocol`` (a baseline of another protocol is not
    comparable, and is not used)."""
    if not baseline or baseline.get("protocol") != protocol:
        return None
    return baseline.get("metrics")


def summary_table(metrics: dict, baseline: dict[str, float] | None = None) -> str:
    """One row per (H, K) and estimator, WB, PB, Body, Face, Hands in mm; with ``baseline`` (metric -> mm), its row
    last and :data:`NOT_BETTER` after every number not below the baseline's."""
    def cell(key: str, value: float) -> str:
        mark = f" {NOT_BETTER}" if baseline is not None and not_better(value, baseline[key]) else ""
        return f"{value:.1f}{mark}"

    rows = [[pair, estimator] + [cell(key, values[key]) for key in TABLE_METRICS]
            for pair, estimators in metrics.items() for estimator, values in estimators.items()]
    if baseline is not None:
        rows.append(["—", BASELINE_NAME] + [f"{baseline[key]:.1f}" for key in TABLE_METRICS])
    return tabulate(rows, headers=["H-K", "estimator", *TABLE_METRICS], tablefmt="github", disable_numparse=True,
                    colalign=("left", "left") + ("right",) * len(TABLE_METRICS))


def baseline_notes(metrics: dict, baseline: dict[str, float]) -> list[str]:
    """One line per metric (WB, PB or a part) that some (H, K) pair and estimator does not improve on the baseline."""
    notes = []
    for key in TABLE_METRICS:
        where = [f"{pair} ({', '.join(worse)})" for pair, estimators in metrics.items()
                 if (worse := [name for name, values in estimators.items() if not_better(values[key], baseline[key])])]
        if where:
            notes.append(f"{NOT_BETTER} {key} at {', '.join(where)}: not better than predicting the {BASELINE_NAME} "
                         f"({baseline[key]:.1f} mm) for every test frame.")
    return notes


def single_hypothesis_note(metrics: dict, protocol: str | None) -> list[str]:
    """Under ``pafuse``, the reason why P-Best and P-Agg differ at H = 1 (one hypothesis), when they do."""
    if protocol != "pafuse":
        return []
    for pair, estimators in metrics.items():
        if not pair.startswith("H1-") or not {"P-Best", "P-Agg"} <= set(estimators):
            continue
        best, mean = estimators["P-Best"], estimators["P-Agg"]
        differ = [f"{key} {best[key]:.1f} vs {mean[key]:.1f}" for key in TABLE_METRICS
                  if _shown(best[key]) != _shown(mean[key])]
        if differ:
            return [f"{pair}: P-Best and P-Agg differ ({', '.join(differ)} mm) although there is one hypothesis: "
                    "under pafuse, as in the reference code, P-Best measures WB after moving the prediction so that "
                    "its pelvis meets the ground truth's, while P-Agg and J-Best measure it with the pelvis where "
                    "the lifter predicted it (the targets have it at 0), so the predicted pelvis's error moves WB, up "
                    "or down; the parts, each aligned at its own root, agree."]
    return []


def result_summary(record: dict, quick: bool = False) -> str:
    """The metrics of a run record or an evaluation: unit, protocol and test subjects, the table beside the mean-pose
    baseline, the notes on metrics not better than it, and the ``pafuse`` H = 1 note; with ``quick``,
    :data:`QUICK_NOTE` last."""
    protocol = record.get("protocol")
    test = ", ".join((record.get("data") or {}).get("splits", {}).get("test", ())) or "the test subject"
    lines = [f"MPJPE in mm on {test}, lower is better; protocol {protocol} "
             f"({PROTOCOLS.get(protocol, 'unknown protocol')})"]
    baseline = _baseline_metrics(record.get("baseline"), protocol)
    lines.append(summary_table(record["metrics"], baseline))
    if baseline is None:
        stored = record.get("baseline")
        lines.append(f"no {BASELINE_NAME} baseline under protocol {protocol} in this record"
                     + (f" (it holds one under {stored.get('protocol')})" if stored else
                        " (written before baselines were recorded)"))
    else:
        lines += baseline_notes(record["metrics"], baseline)
    lines += single_hypothesis_note(record["metrics"], protocol)
    if quick:
        lines.append(QUICK_NOTE)
    return "\n".join(lines)
