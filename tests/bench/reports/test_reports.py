"""`bench report` from hand-written records: layout, seeds, protocols, datasets, formats, LaTeX compile, plot."""
import dataclasses
import io
import json
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from matplotlib.container import BarContainer
from PIL import Image

from bench.cli import main
from bench.reports.gather import build_report, gather_records, seed_groups
from bench.reports.render import latex_escape, parts_figure, plot_parts, render
from bench.reports.tables import ReportError, load_paper_tables, part_defaults

COLUMNS = ("WB", "PB", "Body", "Face", "Hands")
FINGERPRINT = "0123456789abcdef"


def _options(**changes):
    """The part options a part-based record stores (as ``parts.part_based`` resolves them)."""
    return {"lifter": "mixste", **part_defaults(), "part_widths": {"body": 12, "face": 8, "hands": 8}, **changes}


def _values(wb, step=0.0):
    """WB, PB, Body, Face, Hands = wb, wb/2, wb+step, wb/4, wb/3 (distinct, easy to check)."""
    return {"WB": wb, "PB": wb / 2, "Body": wb + step, "Face": wb / 4, "Hands": wb / 3, "LeftHand": 1.0,
            "RightHand": 1.0}


def _write(root, model, seed, wb, *, part_based=None, parts=None, frames=27, protocol="h3wb", pairs=((1, 1),),
           fingerprint=FINGERPRINT, name=None, agg_offset=5.0, model_args=None):
    """Write a record.json into its own run folder under ``root``; P-Agg = P-Best + ``agg_offset`` mm. Records say
    ``part_based: true`` for pafuse, which is part-based by itself."""
    part_based = model == "pafuse" if part_based is None else part_based
    run_id = name or f"{model}{'-parts' if part_based else ''}-{frames}f-seed{seed}-{protocol}-{fingerprint[:4]}"
    metrics = {f"H{h}-K{k}": {"P-Best": _values(wb + h), "P-Agg": _values(wb + h + (agg_offset if h > 1 else 0)),
                              "J-Best": _values(wb)} for h, k in pairs}
    record = {"run_id": run_id, "model": model, "part_based": part_based, "parts": parts,
              "model_args": model_args or {"width": 16}, "frames": frames, "parameters": 1000, "protocol": protocol,
              "seed": seed,
              "data": {"source": "/data/h3wb", "fingerprint": fingerprint, "splits": {"test": ["S8"]}},
              "code_version": "test", "metrics": metrics, "per_action": {},
              "training": {"epochs_done": 2, "selected_epoch": 2}, "finished": f"2026-01-01T00:00:0{seed}+00:00"}
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(record))
    return folder


@pytest.fixture
def results(tmp_path):
    """MixSTE N=27 over three seeds (WB 50, 52, 54), its part-based version over two (46, 47), PAFUSE at (1,1)
    and (20,10), a Table 2 ablation, and one run of the pafuse protocol."""
    root = tmp_path / "runs"
    for seed, wb in enumerate((50.0, 52.0, 54.0)):
        _write(root, "mixste", seed, wb)
    for seed, wb in enumerate((46.0, 47.0)):
        _write(root, "mixste", seed, wb, part_based=True, parts=_options())
    _write(root, "pafuse", 0, 40.0, parts=_options(lifter="d3dp"), pairs=((1, 1), (20, 10)))
    _write(root, "pafuse", 0, 90.0, parts=_options(lifter="d3dp", split=False), pairs=((20, 10),),
           name="pafuse-shift-only")
    _write(root, "mixste", 0, 10.0, protocol="pafuse")
    return root


def _row(report, label):
    matches = [row for row in report.rows if row.label == label]
    assert len(matches) == 1, [row.label for row in report.rows]
    return matches[0]


def _markdown_rows(text):
    """Markdown table lines as lists of stripped cells, keyed by the Method cell."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


def test_paper_numbers_are_transcribed_once_with_every_row():
    tables = load_paper_tables()
    assert [len(tables[n].rows) for n in (1, 2, 3)] == [22, 4, 5]
    rows = {row.id: row for row in tables[1].rows}
    assert rows["pafuse-300-best"].paper == {"WB": 41.4, "PB": 15.9, "Body": 36.3, "Face": 5.9, "Hands": 20.5}
    assert rows["videopose-81"].paper["Face"] == 11.8 and rows["mixste-27-parts"].delta_to == "mixste-27"
    ablations = {row.id: json.loads(row.parts) for row in tables[2].rows[1:] + tables[3].rows[1:]}
    assert ablations["shift-only"]["split"] is False and ablations["denoisers-only"]["shift"] is False
    assert ablations["wb-loss"]["loss"] == "wb" and ablations["mse"]["error"] == "mse"
    assert ablations["uniform"]["widths"] == "uniform" and tables[3].rows[3].frames == 81


def test_seeds_are_averaged_with_sample_std_and_counted(results):
    groups = seed_groups(gather_records(results, COLUMNS), COLUMNS)
    vanilla = groups[(groups.model == "mixste") & ~groups.part_based & (groups.protocol == "h3wb")
                     & (groups.estimator == "P-Best")].iloc[0]
    # P-Best WB = wb + H = 51, 53, 55
    assert vanilla["n"] == 3 and vanilla["seeds"] == (0, 1, 2)
    assert vanilla["WB"] == pytest.approx(53.0) and vanilla["WB_std"] == pytest.approx(2.0)
    assert vanilla["Body"] == pytest.approx(53.0) and vanilla["Face"] == pytest.approx(53.0 / 4)
    report = build_report(results, 1)
    parts = _row(report, "MixSTE + part-based (N = 27)")
    assert parts.n == 2 and parts.mean["WB"] == pytest.approx(47.5) and parts.std["WB"] == pytest.approx(0.5 ** 0.5)
    assert parts.delta["WB"] == pytest.approx(47.5 - 53.0)
    assert parts.paper_delta["WB"] == pytest.approx(52.8 - 55.3)


def test_a_run_copied_twice_counts_once(results):
    shutil.copytree(results / "mixste-27f-seed0-h3wb-0123", results / "copy" / "mixste-27f-seed0-h3wb-0123")
    assert _row(build_report(results, 1), "MixSTE (N = 27)").n == 3


def test_markdown_table1_layout_bold_paper_and_missing_cells(results):
    text = render(build_report(results, 1), "markdown")
    assert text.startswith("**Table 1: Comparison with the state of the art on H3WB.**")
    assert "protocol h3wb" in text and f"data {FINGERPRINT} (/data/h3wb)" in text
    header = [c.strip() for c in text.splitlines()[2].strip("|").split("|")]
    assert header == ["Method", "n", *COLUMNS, *(f"{c} (paper)" for c in COLUMNS)]
    rows = _markdown_rows(text)
    labels = list(rows)
    assert labels.index("MixSTE + part-based (N = 27)") == labels.index("MixSTE (N = 27)") + 1
    assert labels.index("*Spatio-temporal*") < labels.index("MixSTE (N = 27)") < labels.index(
        "*Spatio-temporal + diffusion*") < labels.index("PAFUSE (N = 27, H = 20, K = 10, P-Best)")
    assert rows["MixSTE (N = 27)"][:3] == ["3", "53.0 ± 2.0", "26.5 ± 1.0"]
    assert rows["MixSTE (N = 27)"][6:8] == ["*55.3*", "*21.1*"]
    assert rows["MixSTE + part-based (N = 27)"][1] == "47.5 ± 0.7 (−5.5)"
    assert rows["MixSTE + part-based (N = 27)"][6] == "*52.8* (−2.5)"
    # a row without runs is missing, never zero; the paper's numbers are still there
    assert rows["VideoPose (N = 27)"][:6] == ["—"] * 6 and rows["VideoPose (N = 27)"][6] == "*70.1*"
    # the best of our rows is bold: PAFUSE at H=1 (WB 41 mm) in every column, nothing else
    best = rows["PAFUSE (N = 27, H = 1, K = 1)"]
    assert best[1].startswith("**41.0**") and best[5].startswith("**13.7**")
    assert rows["PAFUSE (N = 27, H = 20, K = 10, P-Agg)"][1] == "65.0"
    assert sum(cell.count("**") for cells in rows.values() for cell in cells) == 2 * len(COLUMNS)


def test_latex_table_uses_booktabs_bold_italic_paper_and_escapes(results):
    text = render(build_report(results, 3), "latex")
    assert [line for line in text.splitlines() if line in (r"\toprule", r"\midrule", r"\bottomrule")] == [
        r"\toprule", r"\midrule", r"\bottomrule"]
    body = text.split("\\midrule\n")[1].split("\\bottomrule")[0].splitlines()
    assert len(body) == 1 + 5  # group title + five design-choice rows (no extra (H, K) among the records)
    assert body[0] == r"\multicolumn{12}{l}{\textit{Design choices}} \\"
    assert body[1].startswith(r"PAFUSE (default choices) & 1 & \textbf{60.0} & \textbf{30.0} &")
    assert body[2].startswith(r"Part loss $\rightarrow$ WB loss & --- & --- &")
    assert r"\textit{47.7} (+4.7)" in body[2] and r"\textit{5.2} ($-$0.6)" in body[3]
    assert r"mean $\pm$ std" in text and "protocol h3wb" in text
    assert latex_escape("a_b & 5% → $x#") == r"a\_b \& 5\% $\rightarrow$ \$x\#"


def _tex_engine():
    return next((name for name in ("pdflatex", "tectonic") if shutil.which(name)), None)


@pytest.mark.skipif(_tex_engine() is None, reason="no TeX engine (pdflatex or tectonic) installed")
def test_latex_table_compiles(results, tmp_path):
    _write(results, "mixste", 7, 50.0, parts=_options(attach="reference"), name="odd_name&50%")
    document = tmp_path / "table.tex"
    document.write_text("\\documentclass{article}\n\\usepackage{booktabs,graphicx}\n\\begin{document}\n"
                        + render(build_report(results, 1), "latex") + "\\end{document}\n")
    engine = _tex_engine()
    command = [engine, "-interaction=nonstopmode", "-halt-on-error", document.name] if engine == "pdflatex" \
        else [engine, document.name]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "table.pdf").read_bytes()[:5] == b"%PDF-"


def test_protocols_are_never_mixed(results):
    h3wb = build_report(results, 1)
    assert _row(h3wb, "MixSTE (N = 27)").n == 3
    assert "Evaluations under protocol pafuse are not shown: 1 records of 1 runs (--protocol pafuse)." in h3wb.notes
    assert "not used: runs/mixste-27f-seed0-pafuse-0123/record.json: protocol pafuse, not the requested h3wb" in \
        h3wb.records
    pafuse = build_report(results, 1, protocol="pafuse")
    mixste = _row(pafuse, "MixSTE (N = 27)")
    assert mixste.n == 1 and mixste.mean["WB"] == pytest.approx(11.0)
    assert _row(pafuse, "MixSTE + part-based (N = 27)").mean is None and "protocol pafuse" in pafuse.caption


def test_datasets_are_never_averaged_and_are_named(results):
    _write(results, "mixste", 0, 80.0, fingerprint="fedcba9876543210")
    report = build_report(results, 1)
    ours = _row(report, "MixSTE (N = 27) [data 01234567]"), _row(report, "MixSTE (N = 27) [data fedcba98]")
    assert [row.n for row in ours] == [3, 1] and ours[1].mean["WB"] == pytest.approx(81.0)
    assert "2 datasets" in report.caption
    assert any(note.startswith("[data fedcba98]: data fingerprint fedcba9876543210") for note in report.notes)
    # the part-based row is compared with the vanilla run on its own data
    assert _row(report, "MixSTE + part-based (N = 27) [data 01234567]").delta["WB"] == pytest.approx(47.5 - 53.0)


def test_runs_of_other_settings_get_their_own_rows(results):
    for lr in (1e-3, 1e-4):
        folder = _write(results, "videopose", 0, 60.0 + 1000 * lr, name=f"videopose-lr{lr}")
        (folder / "config.yaml").write_text(yaml.safe_dump({"model": "videopose", "seed": 0, "train": {"lr": lr}}))
    _write(results, "videopose", 0, 70.0, name="videopose-wide", model_args={"width": 32})
    labels = [row.label for row in build_report(results, 1).rows if row.label.startswith("VideoPose (N = 27)")]
    assert len(labels) == 3 and labels[2] == "VideoPose (N = 27) [width=32]"
    assert all(label.startswith("VideoPose (N = 27) [width=16, setting ") for label in labels[:2])
    assert labels[0] != labels[1]


def test_ablations_match_their_rows_and_odd_runs_are_listed(results):
    _write(results, "pafuse", 0, 70.0, parts=_options(lifter="d3dp", attach="reference"), pairs=((20, 10),),
           name="pafuse-attach-reference")
    report = build_report(results, 2)
    assert _row(report, "Only part-frame shift").mean["WB"] == pytest.approx(110.0)
    assert _row(report, "Only part-frame shift").delta is None  # no D3DP baseline run to compare with
    assert _row(report, "PAFUSE (shift and part denoisers)").mean["WB"] == pytest.approx(60.0)
    assert _row(report, "Only part denoisers").mean is None
    assert any(note.startswith("1 runs match no row") and "pafuse-attach-reference" in note for note in report.notes)


def test_pairs_the_paper_lacks_get_rows_of_their_own(results):
    _write(results, "d3dp", 0, 60.0, pairs=((1, 1), (4, 2)))
    report = build_report(results, 1)
    added = [row for row in report.rows if row.spec.pair == (4, 2)]
    assert [row.label for row in added] == ["D3DP (N = 27, H = 4, K = 2, P-Agg)", "PAFUSE (N = 27, H = 4, K = 2, "
                                            "P-Agg)", "D3DP (N = 27, H = 4, K = 2, P-Best)",
                                            "PAFUSE (N = 27, H = 4, K = 2, P-Best)"]
    assert added[2].mean["WB"] == pytest.approx(64.0) and added[0].mean["WB"] == pytest.approx(69.0)
    assert all(row.spec.paper is None for row in added) and added[3].mean is None


def test_bad_record_names_the_file_and_field(tmp_path):
    folder = _write(tmp_path, "mixste", 0, 50.0)
    record = json.loads((folder / "record.json").read_text())
    record["metrics"]["H1-K1"]["P-Best"]["Face"] = "n/a"
    (folder / "record.json").write_text(json.dumps(record))
    with pytest.raises(ReportError, match=r"record\.json: field 'metrics\.H1-K1\.P-Best\.Face': expected a number, "
                                          r"found 'n/a'"):
        build_report(tmp_path, 1)
    assert main(["report", "--results", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize("form", ["markdown", "latex", "csv"])
def test_cli_prints_each_format_or_writes_it(results, tmp_path, capsys, form):
    assert main(["report", "--table", "1", "--format", form, "--results", str(results)]) == 0
    printed = capsys.readouterr().out
    out = tmp_path / f"table.{form}"
    assert main(["report", "--format", form, "--results", str(results), "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert out.read_text() == printed and err[-1] == f"wrote {out}"
    assert len(err) == 1 + 8 and all(line.startswith(("note: used: runs/", "note: not used: runs/"))
                                     for line in err[:-1])   # one note per record file
    if form == "csv":
        frame = pd.read_csv(io.StringIO(printed))
        assert len(frame) == 22 and list(frame.columns[:3]) == ["table", "group", "method"]
        mixste = frame[frame.method == "MixSTE (N = 27)"].iloc[0]
        assert mixste["n"] == 3 and mixste["WB"] == pytest.approx(53.0) and mixste["WB_paper"] == 55.3
        assert pd.isna(frame[frame.method == "VideoPose (N = 27)"].iloc[0]["WB"])  # missing, not zero
    else:
        assert ("\\toprule" in printed) == (form == "latex") and "MixSTE (N = 27)" in printed


def test_plot_writes_a_png_of_vanilla_against_part_based(results, tmp_path, capsys):
    report = build_report(results, 1)
    path = plot_parts(report, tmp_path / "parts.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", "--results", str(results), "--plot", str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "cli.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", "--results", str(results), "--protocol", "pafuse", "--table", "2",
                 "--plot", str(tmp_path / "none.png")]) == 2
    assert not (tmp_path / "none.png").exists()


def _bars(ax):
    """The bar containers of a panel (its error bars are containers too)."""
    return [container for container in ax.containers if isinstance(container, BarContainer)]


def test_plot_groups_bars_by_lifter_with_only_what_is_drawn_in_the_legend(results, tmp_path):
    figure = parts_figure(build_report(results, 1))
    body, face, hands = figure.axes
    labels = ["MixSTE (N = 27)", "D3DP / PAFUSE (N = 27, H = 1, K = 1)",
              "D3DP / PAFUSE (N = 27, H = 20, K = 10, P-Agg)", "D3DP / PAFUSE (N = 27, H = 20, K = 10, P-Best)"]
    assert [tick.get_text() for tick in body.get_yticklabels()] == labels
    # MixSTE: vanilla 53 (3 seeds) beside part-based 47.5 (2 seeds); PAFUSE without D3DP runs: one bar per group
    vanilla, parts = _bars(body)
    assert vanilla.get_label() == "vanilla (ours, mean ± std over seeds)"
    assert parts.get_label() == "part-based (ours, mean ± std over seeds)"
    assert [bar.get_width() for bar in vanilla] == pytest.approx([53.0])
    assert [bar.get_width() for bar in parts] == pytest.approx([47.5, 41.0, 65.0, 60.0])
    centres = [bar.get_y() + bar.get_height() / 2 for bar in [*vanilla, *parts]]
    assert centres == pytest.approx([-0.2, 0.2, 1.0, 2.0, 3.0])
    assert [bar.get_width() for bar in _bars(face)[1]] == pytest.approx([47.5 / 4, 41.0 / 4, 65.0 / 4, 15.0])
    assert [bar.get_width() for bar in _bars(hands)[0]] == pytest.approx([53.0 / 3])
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "vanilla (ours, mean ± std over seeds)", "part-based (ours, mean ± std over seeds)", "paper (published)"]
    assert all(ax.get_xlabel() == "MPJPE (mm)" for ax in figure.axes) and body.get_ylabel() == "lifter"
    # the paper's mark of each drawn bar: MixSTE 49.5 and 45.2 (Body), PAFUSE 37.8, 37.4 and 37.1
    (marks,) = [collection for collection in body.collections if collection.get_label() == "paper (published)"]
    assert sorted(marks.get_offsets()[:, 0]) == pytest.approx([37.1, 37.4, 37.8, 45.2, 49.5])


def test_plot_size_is_bounded_however_many_rows(results, tmp_path):
    report = build_report(results, 1)
    many = dataclasses.replace(report, rows=tuple(dataclasses.replace(row, label=f"{row.label} #{copy}")
                                                  for copy in range(12) for row in report.rows))
    assert len(parts_figure(many).axes[0].get_yticklabels()) == 48
    for shown in (report, many):
        with Image.open(plot_parts(shown, tmp_path / "parts.png")) as picture:
            width, height = picture.size
        assert width <= 1600 and 400 <= height <= 1100


def test_non_finite_metric_is_marked_never_averaged_in_or_printed_silently(results, capsys):
    """A record holding NaN (or an infinity) was written by something else than ``build_record``, which refuses
    them: the report shows it as 'non-finite', names it in a note, and never averages the other seeds without it."""
    path = results / "mixste-27f-seed1-h3wb-0123" / "record.json"
    record = json.loads(path.read_text())
    record["metrics"]["H1-K1"]["P-Best"]["WB"] = float("nan")
    record["metrics"]["H1-K1"]["P-Best"]["Face"] = float("inf")
    path.write_text(json.dumps(record))   # NaN and Infinity, as json.dumps writes them by default
    assert main(["report", "--results", str(results), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    cells = _markdown_rows(text)["MixSTE (N = 27)"]
    assert cells[:5] == ["3", "non-finite", "26.5 ± 1.0", "53.0 ± 2.0", "non-finite"]
    assert "- non-finite: 1 record lines hold a NaN or infinite metric" in text
    assert "mixste-27f-seed1-h3wb-0123 H1-K1 P-Best WB=nan, Face=inf" in text
    # the part-based row is compared with it: its change is not a number either, and nothing non-finite is bold
    assert _markdown_rows(text)["MixSTE + part-based (N = 27)"][1] == "47.5 ± 0.7 (non-finite)"
    assert "**non-finite**" not in text and "nan" not in text.split("- non-finite")[0]
    assert main(["report", "--results", str(results), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    vanilla = table[(table["method"] == "MixSTE (N = 27)")].iloc[0]
    assert vanilla["WB"] == "non-finite" and vanilla["Face"] == "non-finite" and float(vanilla["PB"]) == 26.5
    latex = render(build_report(results, 1), "latex")
    assert "non-finite" in latex and "nan" not in latex.split(r"\bottomrule")[0]
