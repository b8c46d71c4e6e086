"""The paper's Tables 1-3 as data: which of our runs each row stands for, and its published numbers.

The numbers live in ``configs/paper_results.yaml`` (the one transcription of the paper); this module reads and
checks that file and turns each row into the fields a run record is matched on.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
from functools import lru_cache
from pathlib import Path

import yaml

from bench.metrics import ESTIMATORS

PAPER_RESULTS = Path(__file__).resolve().parents[2] / "configs" / "paper_results.yaml"
PART_OPTIONS = ("widths", "hands", "attach", "shift", "split", "loss", "error")
"""The part options that tell one part-based variant from another (the ablations of Tables 2 and 3)."""
PAPER_ESTIMATORS = ESTIMATORS[:2]
"""The estimators of the paper's tables: P-Best and P-Agg."""
_ROW_DEFAULTS = {"part_based": False, "frames": 27, "pair": [1, 1], "estimator": "P-Best", "parts": {},
                 "delta_to": None}
_ROW_KEYS = {"id", "label", "model", "paper", *_ROW_DEFAULTS}


class ReportError(ValueError):
    """Bad input to a report: a malformed record or paper-results file, or an unknown table."""


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """One row of a paper table and the runs it stands for.

    Attributes:
        id: unique within its table, e.g. ``"mixste-27-parts"``.
        label: template with ``{frames}``, ``{pair}``, ``{estimator}`` placeholders.
        group: the row group, e.g. ``"Spatio-temporal"``.
        model: registered lifter name.
        part_based: whether the lifter has the part-based design (pafuse, or a ``--part-based`` run).
        frames: frames per window N.
        pair: (hypotheses H, steps K) of the evaluation.
        estimator: ``"P-Best"`` or ``"P-Agg"``.
        parts: JSON of the full part options a matching run has (``""`` for a vanilla lifter).
        delta_to: id of the row this one is compared with, or None.
        paper: column -> published MPJPE in mm, or None for a row the paper does not have.
        added: a row added for an (H, K) pair the paper does not have (see :func:`expand_pairs`).
    """

    id: str
    label: str
    group: str
    model: str
    part_based: bool
    frames: int
    pair: tuple[int, int]
    estimator: str
    parts: str
    delta_to: str | None
    paper: dict[str, float] | None
    added: bool = False

    def title(self) -> str:
        """The row's label filled in; a row added for a pair the paper lacks always names its pair."""
        hypotheses, steps = self.pair
        pair = f"H = {hypotheses}, K = {steps}"
        text = self.label.format(frames=f"N = {self.frames}", pair=pair, estimator=self.estimator)
        if self.added and "{pair}" not in self.label:
            text += f" ({pair})"
        return text


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables: number, title, caption, columns and rows in the paper's order."""

    number: int
    title: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[PaperRow, ...]


def part_defaults() -> dict:
    """The default part options, read off ``parts.part_based`` so that they cannot drift from the code."""
    from parts import part_based

    signature = inspect.signature(part_based)
    return {name: signature.parameters[name].default for name in PART_OPTIONS}


def parts_key(options: dict | None) -> str:
    """A canonical JSON text of the part options that matter (``""`` for a vanilla lifter)."""
    if options is None:
        return ""
    return json.dumps({name: options.get(name) for name in PART_OPTIONS}, sort_keys=True)


@lru_cache(maxsize=4)
def load_paper_tables(path: Path = PAPER_RESULTS) -> dict[int, PaperTable]:
    """Read and check the paper-results file.

    Returns:
        Table number -> :class:`PaperTable`.
    """
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ReportError(f"{path}: cannot read the paper's results ({error})") from error
    columns = tuple(data.get("columns") or ())
    if not columns:
        raise ReportError(f"{path}: 'columns': expected a list of metric names, found {data.get('columns')!r}")
    return {int(number): _table(path, int(number), spec, columns) for number, spec in data["tables"].items()}


def _table(path: Path, number: int, spec: dict, columns: tuple[str, ...]) -> PaperTable:
    rows = tuple(_row(path, f"tables.{number}.groups.{g}.rows.{r}", group["name"], row, columns)
                 for g, group in enumerate(spec["groups"]) for r, row in enumerate(group["rows"]))
    ids = [row.id for row in rows]
    for row in rows:
        if ids.count(row.id) > 1 or (row.delta_to is not None and row.delta_to not in ids):
            raise ReportError(f"{path}: table {number}, row {row.id!r}: ids must be unique and delta_to must name "
                              f"a row of the same table, found delta_to={row.delta_to!r}")
    return PaperTable(number, spec["title"], " ".join(spec["caption"].split()), columns, rows)


def _row(path: Path, where: str, group: str, spec: dict, columns: tuple[str, ...]) -> PaperRow:
    unknown = set(spec) - _ROW_KEYS
    if unknown:
        raise ReportError(f"{path}: {where}: unknown keys {sorted(unknown)}; valid keys: {sorted(_ROW_KEYS)}")
    spec = {**_ROW_DEFAULTS, **spec}
    paper = spec["paper"]
    if not isinstance(paper, list) or len(paper) != len(columns):
        raise ReportError(f"{path}: {where}.paper: expected {len(columns)} numbers ({', '.join(columns)}), "
                          f"found {paper!r}")
    if spec["estimator"] not in PAPER_ESTIMATORS:
        raise ReportError(f"{path}: {where}.estimator: expected one of {PAPER_ESTIMATORS}, found {spec['estimator']!r}")
    unknown_parts = set(spec["parts"]) - set(PART_OPTIONS)
    if unknown_parts or (spec["parts"] and not spec["part_based"]):
        raise ReportError(f"{path}: {where}.parts: expected options of a part_based row among {PART_OPTIONS}, "
                          f"found {spec['parts']!r} (part_based: {spec['part_based']})")
    parts = parts_key({**part_defaults(), **spec["parts"]}) if spec["part_based"] else ""
    return PaperRow(id=spec["id"], label=spec["label"], group=group, model=spec["model"],
                    part_based=bool(spec["part_based"]), frames=int(spec["frames"]),
                    pair=(int(spec["pair"][0]), int(spec["pair"][1])), estimator=spec["estimator"], parts=parts,
                    delta_to=spec["delta_to"], paper=dict(zip(columns, map(float, paper))))


def expand_pairs(table: PaperTable, found_pairs) -> PaperTable:
    """Add rows for the (H, K) pairs our runs were evaluated at but the paper was not (e.g. a quick preset's).

    Only groups of generative lifters (those with a multi-hypothesis pair) get extra pairs. In such a group, an extra
    pair of several hypotheses copies the rows at the group's first multi-hypothesis pair; an extra pair of one
    hypothesis (H = 1, K > 1) copies the group's rows at (1, 1), where it has some. Each copy (no paper numbers) is
    appended at the end of the group, compared with the copy of the row its template is compared with.

    Args:
        table: the paper's table.
        found_pairs: callable (row) -> set of (H, K) pairs that runs matching the row in everything but the pair
            were evaluated at.
    """
    rows = []
    for group in dict.fromkeys(row.group for row in table.rows):
        members = [row for row in table.rows if row.group == group]
        rows += members
        multi = [row.pair for row in members if row.pair[0] > 1]
        if not multi:
            continue
        several = [row for row in members if row.pair == multi[0]]
        single = [row for row in members if row.pair == (1, 1)]
        extra = set().union(*(found_pairs(row) for row in several + single)) - {row.pair for row in members}
        for pair in sorted(p for p in extra if p[0] > 1 or single):
            templates = several if pair[0] > 1 else single
            copies = {row.id: f"{row.id}@H{pair[0]}-K{pair[1]}" for row in templates}
            rows += [dataclasses.replace(row, id=copies[row.id], pair=pair, paper=None, added=True,
                                         delta_to=copies.get(row.delta_to, row.delta_to)) for row in templates]
    return dataclasses.replace(table, rows=tuple(rows))
