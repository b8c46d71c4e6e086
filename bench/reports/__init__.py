"""Reports: the paper's Tables 1-3 with our runs beside the published numbers, as text and pictures.

Entry points: ``build_report`` (records gathered and matched to a table's rows), ``render`` (Markdown, LaTeX or CSV)
and ``plot_parts`` (a bar chart of the part errors).
"""
from bench.reports.gather import build_report
from bench.reports.render import plot_parts, render

__all__ = ["build_report", "plot_parts", "render"]
