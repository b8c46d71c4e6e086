"""Render a :class:`bench.reports.Report` as LaTeX (booktabs), Markdown (tabulate) or CSV, or plot it.

Ours and the paper's numbers sit side by side in two column groups; the paper's are in italics. A missing run is
"—" (an empty cell in CSV), never a zero; a NaN or infinite number is "non-finite" (in CSV too), never a number
or a blank. Bold marks the best of our rows in each column.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.io import atomic_path
from bench.reports.gather import NONFINITE, Report, TableRow

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
    """Our cell: mean (bold if best), ``± std`` with several seeds, ``(change)`` for a compared row."""
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


def plot_parts(report: Report, path: str | Path) -> Path:
    """A bar chart of Body, Face and Hands errors, each compared row beside its reference row, with std error bars
    and the paper's numbers as markers; written atomically as a PNG.

    Args:
        report: the report; its compared rows (``delta_to``) give the bars.
        path: the PNG file.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt
    import numpy as np

    pairs = compared_pairs(report)
    if not pairs:
        raise ValueError(f"--plot: no row of Table {report.table.number} that is compared with another has runs "
                         f"under protocol {report.protocol}")
    vanilla_vs_parts = all(not ref.spec.part_based and row.spec.part_based for ref, row in pairs)
    names = ("vanilla", "part-based") if vanilla_vs_parts else ("reference row", "compared row")
    ticks = [ref.label if vanilla_vs_parts else row.label for ref, row in pairs]
    x = np.arange(len(pairs))
    fig, axes = plt.subplots(1, len(PLOT_COLUMNS), figsize=(4 + 1.2 * len(pairs) * len(PLOT_COLUMNS), 4.5),
                             squeeze=False)
    for ax, column in zip(axes[0], PLOT_COLUMNS):
        for side, (name, offset) in enumerate(zip(names, (-0.2, 0.2))):
            rows = [pair[side] for pair in pairs]
            heights = [row.mean[column] if row.mean else np.nan for row in rows]
            errors = [row.std[column] if row.std and row.std[column] is not None else np.nan for row in rows]
            ax.bar(x + offset, heights, 0.4, yerr=errors, capsize=3, label=f"{name} (ours)")
            paper = [row.spec.paper[column] if row.spec.paper else np.nan for row in rows]
            ax.scatter(x + offset, paper, marker="_", s=300, color="crimson", zorder=3,
                       label="paper" if side == 0 else None)
        ax.set_title(column)
        ax.set_xticks(x, ticks, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("MPJPE (mm)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Table {report.table.number}: per-part errors (protocol {report.protocol})")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path
