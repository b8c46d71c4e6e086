"""Gather run records into the paper's Tables 1-3, our numbers beside the published ones (``bench report``).

Every ``record.json`` under a results folder becomes one line per (run, (H, K) pair, estimator). Runs that differ
only in their seed form a *seed group* (mean, std and count per column); a seed group fills the paper row whose
fields it matches (lifter, part-based design, frames, (H, K), estimator, part options). Runs are never averaged
across protocols, datasets (data fingerprints) or configurations: such groups get rows of their own, labelled by
what differs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from bench.metrics import PROTOCOLS
from bench.reports.mean_pose import with_mean_pose
from bench.reports.selection import checkpoint_name, choose, record_notes, summary_notes
from bench.reports.tables import (
    PAPER_RESULTS,
    PART_OPTIONS,
    PaperRow,
    PaperTable,
    ReportError,
    expand_pairs,
    load_paper_tables,
    parts_key,
)
from bench.runs import config as cfg

_PAIR = re.compile(r"^H(\d+)-K(\d+)$")
_SETTING_EXCLUDES = (*cfg.NOT_IN_RUN_ID, "seed", "model", "part_based", "parts", "frames", "data", "synthetic")
"""Config keys that runs compared with each other may differ in: what the comparison is about, what does not change
results, and where the data came from (its fingerprint, which is kept, says what it is)."""
NONFINITE = "non-finite"
"""What a cell shows instead of a NaN or infinite number (a seed group holding one has no mean)."""
MATCH_KEYS = ["model", "part_based", "frames", "parts", "hypotheses", "steps", "estimator"]
GROUP_KEYS = MATCH_KEYS + ["protocol", "fingerprint", "setting"]


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One of our rows: a paper row filled by one seed group (or by none: every number missing).

    Attributes:
        spec: the paper row.
        label: the text of the Method column.
        mean, std: column -> MPJPE in mm over the seeds (std None with one seed); None when no run matches.
        n: number of seeds.
        delta, paper_delta: column -> change in mm from the compared row (``spec.delta_to``), ours and the paper's.
        bold: the columns where this row is the best of our rows.
    """

    spec: PaperRow
    label: str
    mean: dict[str, float] | None
    std: dict[str, float | None] | None
    n: int
    seeds: tuple[int, ...]
    fingerprint: str | None
    delta: dict[str, float] | None
    paper_delta: dict[str, float] | None
    bold: frozenset = frozenset()
    not_better: frozenset = frozenset()   # the columns not below the mean-pose baseline (bench.reports.mean_pose)


@dataclasses.dataclass(frozen=True)
class Report:
    """A table ready to render: the paper table (number, title), our rows in order, caption and notes."""

    table: PaperTable
    protocol: str
    rows: tuple[TableRow, ...]
    caption: str
    notes: tuple[str, ...]
    records: tuple[str, ...] = ()
    """One line per record file read: used (for which (H, K)) or not, and why (``bench.reports.selection``)."""


PROGRESS_FROM = 200
"""Reading this many record files or more shows a progress bar (a sweep's worth of runs and evaluations)."""


def gather_records(results: str | Path, columns) -> pd.DataFrame:
    """The lines of :func:`read_records` that count: for each run, protocol and (H, K), those of one record
    (``bench.reports.selection.RULE``; a run copied into two folders counts once)."""
    lines = read_records(results, columns)
    return lines[lines["path"] == lines["chosen"]].reset_index(drop=True)


def read_records(results: str | Path, columns) -> pd.DataFrame:
    """Every ``record.json`` and ``bench eval`` evaluation (``evaluations/*.json``) under ``results`` as one line per
    (record file, (H, K), estimator).

    Args:
        results: folder searched recursively (run folders, or folders of run folders).
        columns: the metric names to read, e.g. ``("WB", "PB", "Body", "Face", "Hands")``.

    Returns:
        Columns: run_id, path, seed, source, finished, checkpoint (the evaluated file's name; ``best.pt`` for a
        ``record.json``), model_args (JSON text), baseline (the record's mean-pose ``baseline`` mapping, or None),
        then ``GROUP_KEYS``, then the metric columns in mm, then ``chosen``: the path of the record that counts for
        the line's run, protocol and pair (:func:`bench.reports.selection.choose`).
    """
    results = Path(results)
    if not results.is_dir():
        raise ReportError(f"{results}: no such results folder (pass --results DIR, a folder of run folders)")
    paths = sorted([*results.rglob("record.json"), *results.rglob("evaluations/*.json")])
    shown = tqdm(paths, desc="reading records", unit="file", leave=False, disable=len(paths) < PROGRESS_FROM)
    lines = [line for path in shown for line in _record_lines(path, columns)]
    return choose(pd.DataFrame(lines, columns=["run_id", "path", "seed", "source", "finished", "checkpoint",
                                               "model_args", "baseline", *GROUP_KEYS, *columns]))


def _record_lines(path: Path, columns) -> list[dict]:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: not a readable JSON record ({error})") from error
    fields = {name: _field(path, record, name, kind) for name, kind in
              (("run_id", str), ("model", str), ("frames", int), ("protocol", str), ("seed", int),
               ("metrics", dict), ("data", dict))}
    parts = record.get("parts")
    base = {**{k: fields[k] for k in ("run_id", "model", "frames", "protocol", "seed")},
            "path": str(path), "finished": str(record.get("finished", "")),
            "part_based": _field(path, record, "part_based", bool),
            "parts": parts_key(parts), "fingerprint": _field(path, fields["data"], "fingerprint", str, "data."),
            "source": str(fields["data"].get("source", "")), "setting": _setting(path, record),
            "checkpoint": checkpoint_name(path, record),
            "model_args": json.dumps(_shared_args(record), sort_keys=True),
            "baseline": record["baseline"] if isinstance(record.get("baseline"), dict) else None}
    lines = []
    for pair, estimators in fields["metrics"].items():
        match = _PAIR.match(pair)
        if not match or not isinstance(estimators, dict):
            raise ReportError(f"{path}: metrics.{pair}: expected keys like 'H20-K10' mapping estimators to "
                              f"metrics, found {pair!r}: {type(estimators).__name__}")
        for estimator, values in estimators.items():
            where = f"metrics.{pair}.{estimator}."
            numbers = {c: float(_field(path, values, c, (int, float), where)) for c in columns}
            lines.append({**base, "hypotheses": int(match[1]), "steps": int(match[2]), "estimator": estimator,
                          **numbers})
    return lines


def _field(path: Path, mapping, name: str, kind, where: str = ""):
    value = mapping.get(name) if isinstance(mapping, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = kind.__name__ if isinstance(kind, type) else "a number"
        raise ReportError(f"{path}: field '{where}{name}': expected {expected}, found {value!r}")
    return value


def _setting(path: Path, record: dict) -> str:
    """A digest of what a run and the run it is compared with must share (data, training, shared sizes).

    From the run folder's ``config.yaml`` when there is one (it holds the training recipe, which the record does
    not); otherwise from the record's data fingerprint, epochs and architecture arguments.
    """
    model_args = _shared_args(record)
    run_folder = path.parent.parent if path.parent.name == "evaluations" else path.parent
    config_path = run_folder / "config.yaml"
    if config_path.exists():
        config = cfg.load_yaml(config_path)
        config = {k: v for k, v in config.items() if k not in _SETTING_EXCLUDES}
        config["model_args"] = model_args
        config["eval"] = {k: v for k, v in (config.get("eval") or {}).items() if k != "hypotheses_steps"}
    else:
        config = {"epochs": (record.get("training") or {}).get("epochs_done"), "model_args": model_args}
    config["fingerprint"] = record["data"].get("fingerprint")
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _shared_args(record: dict) -> dict:
    """The architecture arguments a part-based run shares with its vanilla counterpart (part options left out)."""
    return {k: v for k, v in (record.get("model_args") or {}).items() if k not in PART_OPTIONS}


def seed_groups(lines: pd.DataFrame, columns) -> pd.DataFrame:
    """Mean, std (sample, ddof 1; NaN for one seed) and count of each metric over the seeds of each group; the mean
    of a column where some seed is NaN or infinite is NaN (pandas would skip a NaN and average the others).

    Returns:
        One line per group: ``GROUP_KEYS``, ``n``, ``seeds`` (sorted tuple), ``runs`` (tuple of run ids),
        ``model_args`` (JSON text) and ``<column>`` / ``<column>_std`` for every metric column.
    """
    grouped = lines.groupby(GROUP_KEYS, sort=False, dropna=False)
    stats = grouped[list(columns)].agg(["mean", "std"])
    stats.columns = [c if s == "mean" else f"{c}_std" for c, s in stats.columns]
    broken = grouped[list(columns)].agg(lambda s: not np.isfinite(s.to_numpy(float)).all())
    for column in columns:
        stats.loc[broken[column], [column, f"{column}_std"]] = float("nan")
    extra = grouped.agg(n=("seed", "size"), seeds=("seed", lambda s: tuple(sorted(s))),
                        runs=("run_id", lambda s: tuple(sorted(s))), model_args=("model_args", "first"))
    return stats.join(extra).reset_index()


def _matches(groups: pd.DataFrame, row: PaperRow, pair: bool = True) -> pd.Series:
    wanted = {"model": row.model, "part_based": row.part_based, "frames": row.frames, "parts": row.parts,
              "estimator": row.estimator}
    if pair:
        wanted.update(hypotheses=row.pair[0], steps=row.pair[1])
    mask = pd.Series(True, index=groups.index)
    for key, value in wanted.items():
        mask &= groups[key] == value
    return mask


def _tables_filled(lines: pd.DataFrame, counted: pd.Index, tables: dict[int, PaperTable]) -> pd.Series:
    """For every line, the numbers of the tables with a row it fills (none for a line that does not count)."""
    filled = {n: pd.Series(False, index=lines.index) for n in tables}
    for n, table in tables.items():
        for row in table.rows:
            filled[n] |= _matches(lines, row)
    return pd.Series([tuple(n for n in tables if index in counted and filled[n][index]) for index in lines.index],
                     index=lines.index, dtype=object)


def _pairs_of(groups: pd.DataFrame):
    def found(row: PaperRow) -> set[tuple[int, int]]:
        hits = groups[_matches(groups, row, pair=False)]
        return set(zip(hits["hypotheses"].astype(int), hits["steps"].astype(int)))
    return found


def build_report(results: str | Path, number: int = 1, protocol: str = "h3wb",
                 paper_results: Path | None = None) -> Report:
    """Lay out paper table ``number`` with our runs under ``results`` (one protocol) beside the paper's numbers.

    Args:
        results: folder of run folders (searched recursively for ``record.json`` and ``evaluations/*.json``).
        number: 1, 2 or 3.
        protocol: ``"h3wb"`` or ``"pafuse"``; records of the other protocol are left out (counted in a note and
            named in ``records``).
        paper_results: the paper-results YAML (default ``configs/paper_results.yaml``).
    """
    tables = load_paper_tables(Path(paper_results) if paper_results is not None else PAPER_RESULTS)
    if number not in tables:
        raise ReportError(f"--table: expected one of {sorted(tables)}, found {number}")
    if protocol not in PROTOCOLS:
        raise ReportError(f"--protocol: expected one of {sorted(PROTOCOLS)}, found {protocol!r}")
    columns = tables[number].columns
    everything = read_records(results, columns)
    lines = everything[(everything["protocol"] == protocol) & (everything["path"] == everything["chosen"])]
    groups = seed_groups(lines, columns)
    expanded = {n: expand_pairs(t, _pairs_of(groups)) for n, t in tables.items()}
    table = expanded[number]
    sources = lines.groupby("fingerprint")["source"].agg(lambda s: sorted(set(s))).to_dict()
    rows = _bold(_table_rows(table, groups, tag_data=len(sources) > 1), columns)
    rows, mean_pose_notes = with_mean_pose(rows, everything, protocol, columns, len(sources) > 1,
                                           lines["run_id"].nunique(), TableRow)
    everything = everything.assign(tables=_tables_filled(everything, lines.index, expanded))
    shown = set(everything.loc[everything["tables"].map(bool), "run_id"])
    notes = [*_row_notes(rows), *_nonfinite_notes(lines, columns), *_data_notes(lines, sources), *mean_pose_notes,
             *summary_notes(everything, protocol), *_unmatched_notes(sorted(set(lines["run_id"]) - shown))]
    records = record_notes(everything, protocol, number, Path(results).parent)
    return Report(table, protocol, rows, _caption(table, protocol, sources), tuple(notes), tuple(records))


def _caption(table: PaperTable, protocol: str, sources: dict[str, list[str]]) -> str:
    if not sources:
        data = "but no runs were found"
    elif len(sources) == 1:
        ((fingerprint, paths),) = sources.items()
        data = f"on data {fingerprint} ({', '.join(map(_describe_source, paths))})"
    else:
        data = f"on {len(sources)} datasets, never averaged together (see the notes)"
    paper = "the reference code's metric definitions"
    if protocol != "pafuse":
        paper += " (which protocol pafuse reproduces; h3wb's differ, e.g. it aligns Face at the body nose)"
    return (f"{table.caption} MPJPE in mm, lower is better. Ours: mean "
            f"± std over n seeds, protocol {protocol} ({PROTOCOLS[protocol]}), {data}. Paper (in italics): the "
            f"published numbers, on the H3WB test set (S8) with {paper}.")


def _describe_source(source: str) -> str:
    """A data folder in words: the synthetic set when it is one of the generated cache folders."""
    from bench.data import cache_dir

    path = Path(source)
    if path.parent == cache_dir() and path.name.startswith("synthetic-"):
        return f"the synthetic set {path.name}"
    return source


def _row_notes(rows: tuple[TableRow, ...]) -> list[str]:
    notes = []
    if any(row.mean is None for row in rows):
        notes.append("—: no finished run for this row yet.")
    if any(row.spec.delta_to for row in rows):
        notes.append("(+x.x / −x.x): change in mm from the row this one is compared with (the vanilla lifter, or "
                     "the baseline or default row); negative is better.")
    if any("setting " in row.label for row in rows):
        notes.append("[setting ...]: runs of one row that differ in more than the seed and their architecture "
                     "arguments (e.g. the training recipe), shown apart.")
    return notes


def _nonfinite_notes(lines: pd.DataFrame, columns) -> list[str]:
    """A note naming the records that hold a NaN or infinite metric, which the table shows as ``NONFINITE``."""
    values = lines[list(columns)].to_numpy(float)
    bad = ~np.isfinite(values)
    if not bad.any():
        return []
    places = [f"{line.run_id} H{line.hypotheses}-K{line.steps} {line.estimator} "
              + ", ".join(f"{c}={v}" for c, v, b in zip(columns, values[i], bad[i]) if b)
              for i, line in enumerate(lines.itertuples()) if bad[i].any()]
    listed = "; ".join(places[:5]) + (f"; and {len(places) - 5} more" if len(places) > 5 else "")
    return [f"{NONFINITE}: {len(places)} record lines hold a NaN or infinite metric, shown as '{NONFINITE}' (never "
            f"averaged with the other seeds, never bold): {listed}."]


def _data_notes(lines: pd.DataFrame, sources: dict[str, list[str]]) -> list[str]:
    if len(sources) < 2:
        return []
    counts = lines.groupby("fingerprint")["run_id"].nunique()
    return [f"[data {fingerprint[:8]}]: data fingerprint {fingerprint}, {', '.join(map(_describe_source, paths))}, "
            f"{counts[fingerprint]} runs." for fingerprint, paths in sources.items()]


def _unmatched_notes(unmatched: list[str]) -> list[str]:
    if not unmatched:
        return []
    listed = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
    return [f"{len(unmatched)} runs match no row of the paper's tables (another lifter, frame count or part option): "
            f"{listed}."]


def _table_rows(table: PaperTable, groups: pd.DataFrame, tag_data: bool) -> tuple[TableRow, ...]:
    """Our rows in the paper's order; a paper row matched by several seed groups gets one row per group."""
    matched = {row.id: groups[_matches(groups, row)] for row in table.rows}
    specs = {row.id: row for row in table.rows}
    rows = []
    for row in table.rows:
        hits = matched[row.id]
        if hits.empty:
            rows.append(TableRow(row, row.title(), None, None, 0, (), None, None, _delta(row, specs), None))
            continue
        for _, group in hits.iterrows():
            label = row.title() + _suffix(group, hits, tag_data)
            mean = {c: float(group[c]) for c in table.columns}
            std = {c: None if pd.isna(group[f"{c}_std"]) else float(group[f"{c}_std"]) for c in table.columns}
            reference = matched.get(row.delta_to)
            delta = None
            if reference is not None:
                same = reference[reference["setting"] == group["setting"]]
                if len(same) == 1:
                    delta = {c: mean[c] - float(same.iloc[0][c]) for c in table.columns}
            rows.append(TableRow(row, label, mean, std, int(group["n"]), tuple(group["seeds"]),
                                 group["fingerprint"], delta, _delta(row, specs)))
    return tuple(rows)


def _delta(row: PaperRow, specs: dict[str, PaperRow]) -> dict[str, float] | None:
    reference = specs.get(row.delta_to)
    if row.paper is None or reference is None or reference.paper is None:
        return None
    return {c: row.paper[c] - reference.paper[c] for c in row.paper}


def _suffix(group: pd.Series, hits: pd.DataFrame, tag_data: bool) -> str:
    """What tells this seed group apart: its data (when the table mixes datasets), and when its row has other seed
    groups on the same data, the architecture arguments that differ, plus a digest of its setting where those
    arguments alone do not tell it apart (e.g. another learning rate)."""
    tags = [f"data {group['fingerprint'][:8]}"] if tag_data else []
    same_data = hits[hits["fingerprint"] == group["fingerprint"]]
    if len(same_data) > 1:
        args = [json.loads(text) for text in same_data["model_args"]]
        differing = sorted(k for k in set().union(*args) if len({json.dumps(a.get(k)) for a in args}) > 1)
        own = json.loads(group["model_args"])
        tags += [f"{k}={own.get(k)}" for k in differing]
        if sum(all(a.get(k) == own.get(k) for k in differing) for a in args) > 1:
            tags.append(f"setting {group['setting'][:6]}")
    return f" [{', '.join(tags)}]" if tags else ""


def _bold(rows: tuple[TableRow, ...], columns) -> tuple[TableRow, ...]:
    """Mark the best (lowest, as displayed to 0.1 mm) of our rows in every column."""
    best = {}
    for column in columns:
        values = [round(row.mean[column], 1) for row in rows if row.mean is not None
                  and math.isfinite(row.mean[column])]
        best[column] = min(values) if values else None
    return tuple(dataclasses.replace(row, bold=frozenset(
        c for c in columns if row.mean is not None and math.isfinite(row.mean[c])
        and round(row.mean[c], 1) == best[c])) for row in rows)
