"""Which record counts for each run, protocol and (H, K) pair, and an account of every record file a report read.

A run's numbers come from its ``record.json`` (the evaluation at the end of training) and from every ``bench eval``
of it (``RUN/evaluations/*.json``); each record holds one protocol and one or more (H, K) pairs. A run evaluated
under both protocols appears under each. Where several records give the same run, protocol and pair (another
checkpoint, a repeated evaluation, a copy of the run folder), exactly one counts, by :data:`RULE`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.reports.tables import ReportError

RULE = ("one record counts per run, protocol and (H, K): an evaluation of the checkpoint the run selected "
        "(record.json, or a bench eval of best.pt) before one of any other checkpoint, then the one finished last")
SELECTED = "best.pt"
"""The file of the checkpoint a run selects (the validation-best or last epoch; an imported run's weights)."""
KEYS = ["run_id", "protocol", "hypotheses", "steps"]


def checkpoint_name(path: Path, record: dict) -> str:
    """The file name of the checkpoint a record evaluated: a ``bench eval`` result says it; a ``record.json``
    evaluated the epoch its run selected, saved as :data:`SELECTED`."""
    if path.name == "record.json":
        return SELECTED
    evaluated = record.get("evaluated")
    checkpoint = evaluated.get("checkpoint") if isinstance(evaluated, dict) else None
    if not isinstance(checkpoint, str):
        raise ReportError(f"{path}: field 'evaluated.checkpoint': expected the evaluated checkpoint's path (bench eval "
                          f"writes it), found {checkpoint!r}")
    return Path(checkpoint).name


def choose(lines: pd.DataFrame) -> pd.DataFrame:
    """Mark, on every line, the record that counts for its run, protocol and pair (:data:`RULE`).

    Args:
        lines: one line per (record file ``path``, pair, estimator), with ``KEYS``, ``checkpoint`` (file name) and
            ``finished`` (ISO time).

    Returns:
        ``lines`` with a column ``chosen``: the path of the record that counts for the line's run, protocol and pair.
    """
    if lines.empty:
        return lines.assign(chosen=pd.Series(dtype=str))
    records = lines.drop_duplicates(["path", *KEYS]).assign(selected=lambda f: f["checkpoint"] == SELECTED)
    records = records.sort_values(["selected", "finished", "path"], kind="stable")
    winners = records.groupby(KEYS, sort=False)["path"].last().rename("chosen")
    return lines.join(winners, on=KEYS)


def record_notes(lines: pd.DataFrame, protocol: str, number: int, root: Path) -> list[str]:
    """One line per record file: used (for which pairs) or not, and why.

    Args:
        lines: every line of every record (:func:`choose`'s output) with a column ``tables``: the numbers of the
            tables whose rows the line fills (empty for a line of another protocol).
        protocol: the protocol asked for.
        number: the table shown.
        root: paths are named relative to it.
    """
    notes = []
    for path, record in lines.groupby("path", sort=True):
        name = _name(path, root)
        first = record.iloc[0]
        if first["protocol"] != protocol:
            notes.append(f"not used: {name}: protocol {first['protocol']}, not the requested {protocol}")
            continue
        used, unused = [], []
        for (hypotheses, steps), pair_lines in record.groupby(["hypotheses", "steps"], sort=True):
            pair, line = f"H{hypotheses}-K{steps}", pair_lines.iloc[0]
            tables = set().union(*pair_lines["tables"])
            if line["chosen"] != path:
                unused.append(f"{pair} taken from {_name(line['chosen'], root)} ({_why(lines, line)})")
            elif number in tables:
                used.append(pair)
            else:
                unused.append(f"{pair} fills no row of Table {number}" + _elsewhere(tables))
        what = f"run {first['run_id']}, protocol {protocol}, checkpoint {first['checkpoint']}"
        if not used:
            notes.append(f"not used: {name} ({what}): {'; '.join(unused)}")
        else:
            notes.append(f"used: {name} ({what}) for {', '.join(used)}"
                         + (f"; not for {'; '.join(unused)}" if unused else ""))
    return notes


def summary_notes(lines: pd.DataFrame, protocol: str) -> list[str]:
    """The table's notes on the records left out: other protocols, and records another one of the same run,
    protocol and pair was preferred to."""
    notes = []
    for other, records in lines[lines["protocol"] != protocol].groupby("protocol"):
        notes.append(f"Evaluations under protocol {other} are not shown: {records['path'].nunique()} records of "
                     f"{records['run_id'].nunique()} runs (--protocol {other}).")
    own = lines[lines["protocol"] == protocol]
    passed_over = own.loc[own["path"] != own["chosen"], "path"].nunique()
    if passed_over:
        notes.append(f"{passed_over} records give a run, protocol and (H, K) that another record also gives; {RULE} "
                     "(bench report names each record used and not used on stderr).")
    return notes


def _name(path: str, root: Path) -> str:
    """``path`` relative to ``root`` where it lies below it, else as it is."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _why(lines: pd.DataFrame, line: pd.Series) -> str:
    """Why the record chosen for ``line``'s run, protocol and pair counts instead of ``line``'s."""
    winner = lines[lines["path"] == line["chosen"]].iloc[0]
    if winner["checkpoint"] == SELECTED and line["checkpoint"] != SELECTED:
        return f"it evaluates the selected checkpoint {SELECTED}, this one {line['checkpoint']}"
    if winner["finished"] > line["finished"]:
        return f"finished later: {winner['finished']}, this one {line['finished']}"
    return f"finished at the same time, {line['finished']}; the last path in sorted order counts"


def _elsewhere(tables: set[int]) -> str:
    """Where else a pair's lines fill rows, or what no row has."""
    if tables:
        listed = ", ".join(map(str, sorted(tables)))
        return f" (it fills rows of Table {listed}: --table {sorted(tables)[0]})"
    return " nor of the other tables (another lifter, frame count, part option, estimator or (H, K))"
