"""``bench report``: the paper's Tables 1-3 with our runs beside the published numbers."""
from __future__ import annotations

from pathlib import Path

from bench.cli.constants import PROTOCOL_NAMES


def add_report_command(commands) -> None:
    report = commands.add_parser(
        "report", help="Table 1, 2 or 3 of the paper with our runs beside the published numbers",
        description="Gather every record.json and bench eval result (RUN/evaluations/*.json) under --results, take "
                    "one record per run, protocol and (H, K) (an evaluation of the selected checkpoint best.pt "
                    "before one of another checkpoint, then the one finished last; stderr names every record used "
                    "and not used, and why), average the runs that differ only in their seed "
                    "(mean ± std, n), match them to the rows of the paper's table (lifter, part-based design, "
                    "frames, H/K, estimator, part options) and print the table with the paper's numbers beside "
                    "ours. Runs of another protocol or dataset are never averaged in.")
    report.add_argument("--table", type=int, choices=(1, 2, 3), default=1,
                        help="1: state of the art; 2: component ablation; 3: design choices (default 1)")
    report.add_argument("--format", dest="form", choices=("latex", "markdown", "csv"), default="markdown",
                        help="latex (booktabs table*), markdown (default) or csv (unrounded numbers)")
    report.add_argument("--results", type=Path, default=Path("results/runs"),
                        help="folder searched recursively for record.json and evaluations/*.json (default "
                             "results/runs)")
    report.add_argument("--protocol", choices=PROTOCOL_NAMES, default="h3wb",
                        help="only runs evaluated under this metric protocol (default h3wb)")
    report.add_argument("--out", type=Path, help="write the table to this file (atomically) instead of printing it")
    report.add_argument("--plot", type=Path, metavar="FILE.png",
                        help="also save a bar chart of Body/Face/Hands errors, vanilla vs part-based per lifter")
    report.add_argument("--plot-curves", type=Path, metavar="FILE.png",
                        help="also save the time-to-accuracy curves of every run under --results: validation WB "
                             "against wall seconds (log scale), one line per run")
    report.set_defaults(func=_report)


def _report(args) -> int:
    import sys

    from bench.io import check_writable, save_text
    from bench.reports.gather import build_report
    from bench.reports.render import plot_parts, render

    for path in (args.out, args.plot, args.plot_curves):
        if path is not None:
            check_writable(path)
    report = build_report(args.results, number=args.table, protocol=args.protocol)
    text = render(report, args.form)
    for line in report.records:   # which record files gave the numbers, and why the others did not
        print(f"note: {line}", file=sys.stderr)
    if args.out is None:
        print(text, end="")
    else:
        print(f"wrote {save_text(args.out, text)}", file=sys.stderr)  # stdout carries only the table
    if args.plot is not None:
        print(f"wrote {plot_parts(report, args.plot)}", file=sys.stderr)
    if args.plot_curves is not None:
        _curves(args.results, args.plot_curves)
    return 0


def _curves(results: Path, path: Path) -> None:
    import sys

    from bench.reports.curves import plot_curves, run_curves

    curves, notes = run_curves(results)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {plot_curves(curves, path)} ({len(curves)} runs)", file=sys.stderr)
