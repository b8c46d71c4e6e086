"""The mean-pose baseline in reports: one "Mean training pose" row per dataset, and marks on the cells not below it.

Records written since baselines exist hold ``baseline`` (:mod:`bench.runs.baseline`): what predicting the average
training pose for every test frame scores under the record's protocol. Runs on the same data (fingerprint) with the
same training subjects hold the same baseline; where they do not, a note says so. A cell of ours is marked with
:data:`bench.runs.summary.NOT_BETTER` when its number is not below the baseline of its data; where runs on one
dataset trained on different subjects (another ``selection``), the highest of their baselines is used, so that a
mark never depends on which one a row's runs had.
"""
from __future__ import annotations

import dataclasses

import pandas as pd

from bench.reports.tables import PaperRow
from bench.runs.baseline import BASELINE_NAME
from bench.runs.summary import NOT_BETTER, not_better

GROUP = "Mean-pose baseline"
"""The row group the mean-pose rows are shown in."""
SPREAD_MM = 0.05
"""Baselines of one dataset and training subjects that differ by more than this (mm) are named in a note."""


def gather_baselines(records: pd.DataFrame, protocol: str, columns) -> pd.DataFrame:
    """The stored baselines of ``protocol`` among the record files that :func:`bench.reports.gather.read_records`
    read (its lines, several per file).

    Returns:
        One line per file holding one: run_id, path, fingerprint, train (the training subjects, joined by ", ") and
        the ``columns`` in mm. Files without a baseline (older records) are skipped.
    """
    lines = []
    for record in records.drop_duplicates("path").itertuples(index=False):
        baseline = record.baseline
        if not isinstance(baseline, dict) or baseline.get("protocol") != protocol:
            continue
        values = baseline.get("metrics") or {}
        if not all(isinstance(values.get(c), (int, float)) for c in columns):
            continue
        lines.append({"run_id": record.run_id, "path": record.path, "fingerprint": record.fingerprint,
                      "train": ", ".join((baseline.get("subjects") or {}).get("train", ())),
                      **{c: float(values[c]) for c in columns}})
    return pd.DataFrame(lines, columns=["run_id", "path", "fingerprint", "train", *columns])


def baseline_rows(baselines: pd.DataFrame, columns, tag_data: bool, row_type):
    """One ``row_type`` (:class:`bench.reports.gather.TableRow`) per (dataset, training subjects): the mean of its
    stored baselines, ``n`` the number of runs holding it."""
    rows = []
    groups = baselines.groupby(["fingerprint", "train"], sort=True)
    several_trains = baselines.groupby("fingerprint")["train"].nunique()
    for (fingerprint, train), group in groups:
        tags = ([f"data {fingerprint[:8]}"] if tag_data else []) + (
            [f"trained on {train}"] if several_trains[fingerprint] > 1 else [])
        label = "Mean training pose" + (f" [{', '.join(tags)}]" if tags else "")
        spec = PaperRow(id=f"mean-pose-{fingerprint}-{train}", label=label, group=GROUP, model="", part_based=False,
                        frames=0, pair=(1, 1), estimator="—", parts="", delta_to=None, paper=None)
        mean = {c: float(group[c].mean()) for c in columns}
        rows.append(row_type(spec, label, mean, None, int(group["run_id"].nunique()), (), fingerprint, None, None))
    return rows


def mark_not_better(rows, baselines: pd.DataFrame, columns) -> tuple:
    """``rows`` with ``not_better`` set to the columns whose mean is not below its data's baseline (the highest one
    where the data has several)."""
    highest = baselines.groupby("fingerprint")[list(columns)].max()
    marked = []
    for row in rows:
        if row.mean is None or row.fingerprint not in highest.index:
            marked.append(row)
            continue
        limit = highest.loc[row.fingerprint]
        columns_marked = frozenset(c for c in columns if pd.notna(row.mean[c]) and not_better(row.mean[c], limit[c]))
        marked.append(dataclasses.replace(row, not_better=columns_marked))
    return tuple(marked)


def baseline_notes(baselines: pd.DataFrame, columns, runs: int) -> list[str]:
    """What the marks and the mean-pose rows mean; which baselines disagree; how many runs hold none."""
    notes = []
    if baselines.empty:
        if runs:
            notes.append(f"No {BASELINE_NAME} baseline: the records were written before baselines were recorded "
                         "(re-evaluate with `bench eval` to add one).")
        return notes
    notes.append(f"Mean training pose: every test frame predicted as the mean root-relative pose of the training "
                 f"subjects, scored under the same protocol; {NOT_BETTER}: a cell of ours not better than it (its "
                 f"data's row), i.e. the model does no better for that part than the average training pose.")
    for (fingerprint, train), group in baselines.groupby(["fingerprint", "train"], sort=True):
        spread = {c: float(group[c].max() - group[c].min()) for c in columns}
        if max(spread.values()) > SPREAD_MM:
            widest = max(spread, key=spread.get)
            notes.append(f"The stored {BASELINE_NAME} baselines on data {fingerprint[:8]} (trained on {train}) "
                         f"differ across runs, by up to {spread[widest]:.1f} mm in {widest}: the row shows their "
                         f"mean; the runs are {', '.join(sorted(set(group['run_id'])))}.")
    missing = runs - baselines["run_id"].nunique()
    if missing > 0:
        notes.append(f"{missing} runs hold no {BASELINE_NAME} baseline (written before baselines were recorded).")
    return notes


def with_mean_pose(rows: tuple, records: pd.DataFrame, protocol: str, columns, tag_data: bool, runs: int,
                   row_type) -> tuple[tuple, list[str]]:
    """A report's rows marked against the stored baselines of ``protocol`` in ``records`` (the lines of
    :func:`bench.reports.gather.read_records`), with the mean-pose rows appended, and the notes about them; ``runs``
    is the number of runs the report read, ``row_type`` its row class."""
    baselines = gather_baselines(records, protocol, columns)
    rows = mark_not_better(rows, baselines, columns) + tuple(baseline_rows(baselines, columns, tag_data, row_type))
    return rows, baseline_notes(baselines, columns, runs)
