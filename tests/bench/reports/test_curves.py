"""Time-to-accuracy curves: recorded per epoch by a run, drawn by bench report --plot-curves."""
from __future__ import annotations

import json

from bench.cli import main
from bench.reports.curves import run_curves


def test_a_run_records_its_curve_and_report_draws_it(tiny_data, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["run", "--model", "videopose", "--data", str(tiny_data), "--epochs", "3", "--batch-size", "64",
                 "--set", "model_args.channels=16", "--out", str(runs)]) == 0
    (record_path,) = runs.rglob("record.json")
    history = json.loads(record_path.read_text())["training"]["history"]
    seconds, steps = [h["seconds"] for h in history], [h["steps"] for h in history]
    assert len(history) == 3 and all(b > a for a, b in zip(seconds, seconds[1:]))
    assert steps[0] > 0 and steps == [steps[0] * (k + 1) for k in range(3)]   # the same batches every epoch
    (curve,), notes = run_curves(runs)
    assert curve["wb"] == [h["validation_wb"] for h in history] and notes == []
    picture = tmp_path / "curves.png"
    assert main(["report", "--results", str(runs), "--plot-curves", str(picture)]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "(1 runs)" in capsys.readouterr().err


def test_runs_without_a_curve_are_named(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "record.json").write_text(json.dumps({"training": {"history": [{"epoch": 1, "loss": 0.1,
                                                                              "validation_wb": 90.0}]}}))
    curves, notes = run_curves(tmp_path)
    assert curves == [] and len(notes) == 1 and "old/record.json" in notes[0] and "seconds" in notes[0]


def test_debug_log_says_where_each_epochs_time_goes(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    assert main(["run", "--model", "videopose", "--data", str(tiny_data), "--epochs", "2", "--batch-size", "64",
                 "--set", "model_args.channels=16", "--out", str(runs), "--log-level", "debug"]) == 0
    (log,) = runs.rglob("log.txt")
    lines = [line for line in log.read_text().splitlines() if " time: data " in line]
    assert len(lines) == 2 and all(all(f"{phase} " in line for phase in ("forward", "backward", "optimizer",
                                                                          "validation")) for line in lines)
    assert main(["run", "--model", "videopose", "--data", str(tiny_data), "--epochs", "1", "--batch-size", "64",
                 "--set", "model_args.channels=16", "--out", str(tmp_path / "quiet")]) == 0
    (quiet,) = (tmp_path / "quiet").rglob("log.txt")
    assert " time: data " not in quiet.read_text()
