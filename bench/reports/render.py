"""Render a :class:`bench.reports.Report` as LaTeX (booktabs), Markdown (tabulate) or CSV, or plot it.

Ours and the paper's numbers sit side by side in two column groups; the paper's are in italics. A missing run is
"—" (an empty cell in CSV), never a zero; a NaN or infinite number is "non-finite" (in CSV too), never a number
or a blank. Bold marks the best of our rows in each column.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.io import atomic_path
from bench.reports.gather import NONFINITE, Report, TableRow
from bench.runs.summary import NOT_BETTER

MISSING = "—"
MINUS = "−"  # U+2212: a typographic minus for the changes in mm
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "→": r"$\rightarrow$", "±": r"$\pm$", MINUS: "$-$", "—": "---", "Δ": r"$\Delta$"}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters (and the few non-ASCII symbols the tables use) escaped."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _markdown_escape(text: str) -> str:
    """Keep a label's ``|`` from splitting the Markdown row, and ``*``/``_`` from turning into emphasis."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def _number(value: float) -> str:
    return f"{value:.1f}"


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def _change(value: float) -> str:
    if not _finite(value):
        return NONFINITE
    return f"+{value:.1f}" if value >= 0.05 else f"{MINUS}{abs(value):.1f}" if value <= -0.05 else "±0.0"


def _ours(row: TableRow, column: str, bold, escape) -> str:
    """Our cell: mean (bold if best, :data:`NOT_BETTER` if not below the mean-pose baseline), ``± std`` with several
    seeds, ``(change)`` for a compared row."""
    if row.mean is None:
        return escape(MISSING)
    if not _finite(row.mean[column]):
        return escape(NONFINITE)
    number = _number(row.mean[column])
    text = bold(number) if column in row.bold else number
    if row.std is not None and row.std[column] is not None:
        text += escape(f" ± {_number(row.std[column])}")
    if row.delta is not None:
        text += escape(f" ({_change(row.delta[column])})")
    if column in row.not_better:
        text += escape(f" {NOT_BETTER}")
    return text


def _paper(row: TableRow, column: str, italic, escape) -> str:
    """The paper's cell, in italics, with the paper's own change for a compared row."""
    if row.spec.paper is None:
        return escape(MISSING)
    text = italic(_number(row.spec.paper[column]))
    if row.paper_delta is not None:
        text += escape(f" ({_change(row.paper_delta[column])})")
    return text


def _body(report: Report, bold, italic, escape) -> list[tuple[str | None, list[str]]]:
    """(group name at a group's first row else None, cells) per row: Method, n, ours..., paper...

    ``bold`` and ``italic`` wrap a number in the format's markup; ``escape`` makes plain text safe in the format.
    """
    out, previous = [], None
    for row in report.rows:
        group = row.spec.group if row.spec.group != previous else None
        previous = row.spec.group
        cells = [escape(row.label), str(row.n) if row.n else escape(MISSING)]
        cells += [_ours(row, c, bold, escape) for c in report.table.columns]
        cells += [_paper(row, c, italic, escape) for c in report.table.columns]
        out.append((group, cells))
    return out


def to_markdown(report: Report) -> str:
    """A GitHub-flavoured Markdown table with the caption above and the notes below."""
    columns = report.table.columns
    headers = ["Method", "n", *columns, *(f"{c} (paper)" for c in columns)]
    lines = []
    for group, cells in _body(report, bold=lambda t: f"**{t}**", italic=lambda t: f"*{t}*", escape=_markdown_escape):
        if group is not None:
            lines.append([f"*{group}*"] + [""] * (len(headers) - 1))
        lines.append(cells)
    table = tabulate(lines, headers=headers, tablefmt="github", disable_numparse=True,
                     colalign=("left",) + ("right",) * (len(headers) - 1))
    notes = "".join(f"\n- {note}" for note in report.notes)
    return f"**Table {report.table.number}: {report.table.title}.** {report.caption}\n\n{table}\n{notes}\n"


def to_latex(report: Report) -> str:
    """A page-wide ``table*`` float with caption, label and notes; needs ``\\usepackage{booktabs,graphicx}``.

    The tabular is scaled to the text width: ten number columns with std and changes do not fit it otherwise.
    """
    columns = report.table.columns
    width = 2 + 2 * len(columns)
    ours_from, paper_from = 3, 3 + len(columns)
    header = [r"\toprule",
              rf" & & \multicolumn{{{len(columns)}}}{{c}}{{Ours (mean $\pm$ std over $n$ seeds)}} & "
              rf"\multicolumn{{{len(columns)}}}{{c}}{{\textit{{Paper}}}} \\",
              rf"\cmidrule(lr){{{ours_from}-{paper_from - 1}}} \cmidrule(lr){{{paper_from}-{width}}}",
              "Method & $n$ & " + " & ".join(columns * 2) + r" \\", r"\midrule"]
    body = []
    for group, cells in _body(report, bold=lambda t: rf"\textbf{{{t}}}", italic=lambda t: rf"\textit{{{t}}}",
                              escape=latex_escape):
        if group is not None:
            body.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{{latex_escape(group)}}}}} \\")
        body.append(" & ".join(cells) + r" \\")
    notes = "".join(rf"{latex_escape(note)}\par " for note in report.notes)
    return "\n".join([
        f"% pafuse-bench report, Table {report.table.number} (protocol {report.protocol}); needs "
        r"\usepackage{booktabs,graphicx}",
        r"\begin{table*}[t]", r"\centering", r"\setlength{\tabcolsep}{4pt}",
        rf"\caption{{{latex_escape(f'{report.table.title}. {report.caption}')}}}",
        rf"\label{{tab:bench-table{report.table.number}-{report.protocol}}}",
        r"\resizebox{\textwidth}{!}{%",
        r"\begin{tabular}{l r " + "r" * len(columns) + " " + "r" * len(columns) + "}",
        *header, *body, r"\bottomrule", r"\end{tabular}}",
        rf"\par\smallskip{{\raggedright\footnotesize {notes}}}" if notes else "",
        r"\end{table*}", ""])


def to_csv(report: Report) -> str:
    """One line per row: what it stands for, n, seeds, and for every column ours (mean, std, change) and the
    paper's (value, change), numbers unrounded; missing values are empty cells."""
    lines = []
    for row in report.rows:
        spec = row.spec
        line = {"table": report.table.number, "group": spec.group, "method": row.label, "model": spec.model,
                "part_based": spec.part_based, "frames": spec.frames, "hypotheses": spec.pair[0],
                "steps": spec.pair[1], "estimator": spec.estimator, "protocol": report.protocol,
                "fingerprint": row.fingerprint, "n": row.n, "seeds": " ".join(map(str, row.seeds))}
        for column in report.table.columns:
            line[column] = _csv_number(row.mean[column]) if row.mean else None
            line[f"{column}_std"] = row.std[column] if row.std else None
            line[f"{column}_change"] = _csv_number(row.delta[column]) if row.delta else None
            line[f"{column}_paper"] = spec.paper[column] if spec.paper else None
            line[f"{column}_paper_change"] = row.paper_delta[column] if row.paper_delta else None
        lines.append(line)
    return pd.DataFrame(lines).to_csv(index=False, float_format="%.6g")


def _csv_number(value: float) -> float | str:
    """A number as CSV holds it: NaN and infinity are spelled out, never an empty (missing) cell."""
    return value if _finite(value) else NONFINITE


RENDERERS = {"latex": to_latex, "markdown": to_markdown, "csv": to_csv}


def render(report: Report, form: str) -> str:
    """``report`` as text in ``form``: ``"latex"``, ``"markdown"`` or ``"csv"``."""
    if form not in RENDERERS:
        raise ValueError(f"--format: expected one of {sorted(RENDERERS)}, found {form!r}")
    return RENDERERS[form](report)


PLOT_COLUMNS = ("Body", "Face", "Hands")
PLOT_DPI = 120
PLOT_SIZE = (13.0, (4.0, 8.5))
"""The parts plot's width and its least and greatest height in inches: at most 1560 x 1020 pixels at ``PLOT_DPI``,
however many rows."""
_BAR_COLOURS = ("#729fcf", "#f57900")   # reference (vanilla) and compared (part-based) bars
_PAPER_COLOUR = "#a40000"


@dataclasses.dataclass(frozen=True)
class BarGroup:
    """One group of bars of the parts plot: its label and its bars, ``(kind, row)`` for each row that has runs."""

    label: str
    bars: tuple[tuple[str, TableRow], ...]


def compared_pairs(report: Report) -> list[tuple[TableRow, TableRow]]:
    """(reference row, compared row) for every row compared with another, where at least one has runs.

    In Table 1 these are (vanilla, part-based) per lifter; in Tables 2 and 3, (baseline or default, ablation).
    """
    pairs = []
    for row in report.rows:
        references = [r for r in report.rows if r.spec.id == row.spec.delta_to
                      and (row.fingerprint is None or r.fingerprint in (None, row.fingerprint))]
        if references and (row.mean is not None or references[0].mean is not None):
            pairs.append((references[0], row))
    return pairs


def bar_groups(report: Report) -> tuple[list[BarGroup], tuple[str, str], str]:
    """The groups of the parts plot, the two kinds of bar, and what a group stands for: per lifter its vanilla and
    part-based rows (Table 1), or per compared row its reference row and itself (the ablations of Tables 2 and 3,
    vanilla D3DP against part-based variants); a row without runs has no bar."""
    pairs = compared_pairs(report)
    by_lifter = all(not ref.spec.part_based and row.spec.part_based for ref, row in pairs)
    kinds = ("vanilla", "part-based") if by_lifter else ("baseline or default row", "compared row")
    shared = [_lifter_label(ref, row) if by_lifter else None for ref, row in pairs]
    groups = [BarGroup(label or (f"{ref.label} / {row.label}" if by_lifter else row.label),
                       tuple((kind, r) for kind, r in zip(kinds, (ref, row)) if r.mean is not None))
              for label, (ref, row) in zip(shared, pairs)]
    name = "compared row" if not by_lifter else "lifter" if all(shared) else "vanilla / part-based rows"
    return groups, kinds, name


def _lifter_label(vanilla: TableRow, parts: TableRow) -> str | None:
    """What a vanilla row and its part-based row share, e.g. 'MixSTE (N = 27)' or 'D3DP / PAFUSE (N = 27, H = 1,
    K = 1)'; None where their labels differ in more than the lifter (e.g. an ablation, or other settings)."""
    name, _, rest = vanilla.label.partition(" (")
    other, _, other_rest = parts.label.partition(" (")
    other = other.removesuffix(" + part-based")
    if rest != other_rest or not rest.startswith("N = "):
        return None
    return f"{name if other == name else f'{name} / {other}'} ({rest}"


def parts_figure(report: Report):
    """The parts plot as a matplotlib Figure: one panel per column of ``PLOT_COLUMNS``, a group of horizontal bars
    per lifter (or ablation) with the two kinds of bar side by side (one where only one has runs), std error bars,
    and the paper's number of each drawn bar as a mark; the legend, below the panels, lists only what is drawn."""
    from matplotlib.figure import Figure

    groups, kinds, name = bar_groups(report)
    if not groups:
        raise ValueError(f"--plot: no row of Table {report.table.number} that is compared with another has runs "
                         f"under protocol {report.protocol}")
    width, (least, most) = PLOT_SIZE
    fig = Figure(figsize=(width, min(max(2.0 + 0.3 * len(groups), least), most)), dpi=PLOT_DPI, layout="constrained")
    axes = fig.subplots(1, len(PLOT_COLUMNS), sharey=True)
    font = min(9.0, max(5.0, 9.0 * 16 / len(groups)))
    for ax, column in zip(axes, PLOT_COLUMNS):
        _draw_panel(ax, column, groups, kinds, font)
    axes[0].set_yticks(range(len(groups)), [group.label for group in groups], fontsize=font)
    axes[0].set_ylim(len(groups) - 0.5, -0.5)   # the table's order, top to bottom
    axes[0].set_ylabel(name)
    handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    handles = dict(sorted(handles.items(), key=lambda item: item[0].startswith("paper")))   # ours first
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=len(handles), frameon=False,
               fontsize=9)
    fig.suptitle(f"Table {report.table.number}: per-part MPJPE (mm), lower is better; protocol {report.protocol}",
                 fontsize=11)
    return fig


def _draw_panel(ax, column: str, groups: list[BarGroup], kinds: tuple[str, str], font: float) -> None:
    """One column's bars: for each kind, one ``barh`` call (labelled ``kind (ours, mean ± std)``) when it has any
    bar with a finite number, and the paper's numbers of the drawn bars as marks."""
    thickness = 0.4
    drawn = {kind: [] for kind in kinds}   # (position, row)
    for index, group in enumerate(groups):
        rows = [(kind, row) for kind, row in group.bars if _finite(row.mean[column])]
        for slot, (kind, row) in enumerate(rows):
            drawn[kind].append((index + (slot - (len(rows) - 1) / 2) * thickness, row))
    paper = []
    for kind, colour in zip(kinds, _BAR_COLOURS):
        if not drawn[kind]:
            continue
        positions, rows = zip(*drawn[kind])
        errors = [row.std[column] if row.std and row.std[column] is not None else math.nan for row in rows]
        ax.barh(positions, [row.mean[column] for row in rows], thickness, color=colour,
                xerr=None if all(math.isnan(e) for e in errors) else errors,   # no error bar for a single seed
                error_kw={"elinewidth": 1, "capsize": 2}, label=f"{kind} (ours, mean ± std over seeds)")
        paper += [(position, row.spec.paper[column]) for position, row in drawn[kind] if row.spec.paper]
    if paper:
        ax.scatter([value for _, value in paper], [position for position, _ in paper], marker="|", s=120,
                   linewidths=2, color=_PAPER_COLOUR, zorder=3, label="paper (published)")
    ax.set_title(column)
    ax.set_xlabel("MPJPE (mm)")
    ax.set_xlim(left=0)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)


def plot_parts(report: Report, path: str | Path) -> Path:
    """Save :func:`parts_figure` as a PNG (atomically) at ``PLOT_DPI``: at most 1560 x 1020 pixels."""
    fig = parts_figure(report)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=PLOT_DPI)
    return path
