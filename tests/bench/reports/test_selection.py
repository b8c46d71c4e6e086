"""`bench report` reads every evaluation of a run: record.json and each `bench eval` result, one per run, protocol
and (H, K), and says which record files it used and why it left the others out."""
import io
import json

import pandas as pd
import pytest

from bench.cli import main
from bench.reports.gather import build_report
from bench.reports.selection import RULE
from bench.reports.tables import part_defaults

FINGERPRINT = "0123456789abcdef"


def _metrics(wb, pairs):
    """P-Best = P-Agg = J-Best: WB = wb + H, Body = WB + 1, Face = WB / 4, Hands = WB / 3, PB = WB / 2."""
    values = {f"H{h}-K{k}": {"WB": wb + h, "PB": (wb + h) / 2, "Body": wb + h + 1, "Face": (wb + h) / 4,
                             "Hands": (wb + h) / 3} for h, k in pairs}
    return {pair: dict.fromkeys(("P-Best", "P-Agg", "J-Best"), value) for pair, value in values.items()}


def _record(run_id, model, wb, *, protocol="h3wb", pairs=((1, 1),), finished="2026-01-01T00:00:00+00:00"):
    parts = {"lifter": "d3dp", **part_defaults()} if model == "pafuse" else None
    return {"run_id": run_id, "model": model, "part_based": model == "pafuse", "parts": parts,
            "model_args": {"width": 16}, "frames": 27, "parameters": 1000, "protocol": protocol, "seed": 0,
            "data": {"source": "/data/h3wb", "fingerprint": FINGERPRINT, "splits": {"test": ["S8"]}},
            "code_version": "test", "metrics": _metrics(wb, pairs), "per_action": {}, "training": {},
            "finished": finished}


def _write_run(root, run_id, model, wb, **options):
    """A run folder with the record.json its training wrote."""
    (root / run_id).mkdir(parents=True)
    (root / run_id / "record.json").write_text(json.dumps(_record(run_id, model, wb, **options)))
    return root / run_id


def _write_eval(folder, name, wb, *, checkpoint="best.pt", **options):
    """A `bench eval` result in ``folder/evaluations``, as evaluate_run writes it."""
    record = _record(folder.name, json.loads((folder / "record.json").read_text())["model"], wb, **options)
    record["evaluated"] = {"checkpoint": str(folder / checkpoint), "epoch": 3}
    (folder / "evaluations").mkdir(exist_ok=True)
    (folder / "evaluations" / name).write_text(json.dumps(record))


def _row(report, label):
    (row,) = [row for row in report.rows if row.label == label]
    return row


def test_a_run_evaluated_under_both_protocols_appears_under_each_and_every_record_is_accounted_for(tmp_path):
    run = _write_run(tmp_path / "runs", "mixste-a", "mixste", 50.0)
    _write_eval(run, "best-pafuse-H1-K1.json", 20.0, protocol="pafuse", finished="2026-01-02T00:00:00+00:00")
    h3wb, pafuse = build_report(tmp_path / "runs", 1), build_report(tmp_path / "runs", 1, protocol="pafuse")
    assert _row(h3wb, "MixSTE (N = 27)").mean["WB"] == 51.0 and _row(pafuse, "MixSTE (N = 27)").mean["WB"] == 21.0
    assert pafuse.records == (
        "used: runs/mixste-a/evaluations/best-pafuse-H1-K1.json (run mixste-a, protocol pafuse, checkpoint best.pt) "
        "for H1-K1",
        "not used: runs/mixste-a/record.json: protocol h3wb, not the requested pafuse")
    assert "Evaluations under protocol h3wb are not shown: 1 records of 1 runs (--protocol h3wb)." in pafuse.notes
    assert h3wb.records[0] == ("not used: runs/mixste-a/evaluations/best-pafuse-H1-K1.json: protocol pafuse, not the "
                               "requested h3wb")


def test_the_selected_checkpoint_counts_before_another_then_the_last_finished(tmp_path):
    run = _write_run(tmp_path / "runs", "mixste-a", "mixste", 50.0)
    # a later evaluation of last.pt: record.json (best.pt) still counts
    _write_eval(run, "last-h3wb-H1-K1.json", 70.0, checkpoint="last.pt", finished="2026-01-03T00:00:00+00:00")
    report = build_report(tmp_path / "runs", 1)
    assert _row(report, "MixSTE (N = 27)").mean["WB"] == 51.0
    assert report.records[0] == ("not used: runs/mixste-a/evaluations/last-h3wb-H1-K1.json (run mixste-a, protocol "
                                 "h3wb, checkpoint last.pt): H1-K1 taken from runs/mixste-a/record.json (it evaluates "
                                 "the selected checkpoint best.pt, this one last.pt)")
    assert any(RULE in note and note.startswith("1 records give a run, protocol and (H, K)") for note in report.notes)
    # a later evaluation of best.pt replaces record.json
    _write_eval(run, "best-h3wb-H1-K1.json", 60.0, finished="2026-01-02T00:00:00+00:00")
    report = build_report(tmp_path / "runs", 1)
    assert _row(report, "MixSTE (N = 27)").mean["WB"] == 61.0 and _row(report, "MixSTE (N = 27)").n == 1
    assert report.records[0].startswith("used: runs/mixste-a/evaluations/best-h3wb-H1-K1.json")
    assert report.records[2] == (
        "not used: runs/mixste-a/record.json (run mixste-a, protocol h3wb, checkpoint best.pt): H1-K1 taken from "
        "runs/mixste-a/evaluations/best-h3wb-H1-K1.json (finished later: 2026-01-02T00:00:00+00:00, this one "
        "2026-01-01T00:00:00+00:00)")


def test_a_record_can_count_for_some_pairs_only_and_single_hypothesis_pairs_get_rows(tmp_path):
    run = _write_run(tmp_path / "runs", "pafuse-a", "pafuse", 40.0, pairs=((1, 1), (20, 10)))
    _write_eval(run, "best-h3wb-H20-K10_H1-K4.json", 30.0, pairs=((20, 10), (1, 4)),
                finished="2026-01-02T00:00:00+00:00")
    report = build_report(tmp_path / "runs", 1)
    assert _row(report, "PAFUSE (N = 27, H = 1, K = 1)").mean["WB"] == 41.0
    assert _row(report, "PAFUSE (N = 27, H = 20, K = 10, P-Best)").mean["WB"] == 50.0
    assert _row(report, "PAFUSE (N = 27, H = 1, K = 4)").mean["WB"] == 31.0
    assert _row(report, "D3DP (N = 27, H = 1, K = 4)").mean is None
    assert report.records == (
        "used: runs/pafuse-a/evaluations/best-h3wb-H20-K10_H1-K4.json (run pafuse-a, protocol h3wb, checkpoint "
        "best.pt) for H1-K4, H20-K10",
        "used: runs/pafuse-a/record.json (run pafuse-a, protocol h3wb, checkpoint best.pt) for H1-K1; not for H20-K10 "
        "taken from runs/pafuse-a/evaluations/best-h3wb-H20-K10_H1-K4.json (finished later: 2026-01-02T00:00:00+00:00, "
        "this one 2026-01-01T00:00:00+00:00)")


def test_a_bench_eval_result_without_its_checkpoint_is_a_clear_error(tmp_path):
    run = _write_run(tmp_path / "runs", "mixste-a", "mixste", 50.0)
    _write_eval(run, "best-h3wb-H1-K1.json", 60.0)
    path = run / "evaluations" / "best-h3wb-H1-K1.json"
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "evaluated"}))
    with pytest.raises(ValueError, match=r"best-h3wb-H1-K1\.json: field 'evaluated\.checkpoint': expected"):
        build_report(tmp_path / "runs", 1)


def test_a_trained_run_evaluated_with_bench_eval_under_pafuse_is_reported(tiny_data, tmp_path, capsys,
                                                                           single_thread):
    runs = tmp_path / "runs"
    assert main(["run", "--model", "videopose", "--data", str(tiny_data), "--epochs", "1", "--batch-size", "64",
                 "--set", "model_args.channels=16", "--out", str(runs)]) == 0
    (folder,) = runs.iterdir()
    assert main(["eval", "--run", str(folder), "--protocol", "pafuse"]) == 0
    evaluation = json.loads((folder / "evaluations" / "best-pafuse-H1-K1.json").read_text())
    capsys.readouterr()
    picture = tmp_path / "parts.png"
    assert main(["report", "--results", str(runs), "--protocol", "pafuse", "--format", "csv",
                 "--plot", str(picture)]) == 0
    out, err = capsys.readouterr()
    row = pd.read_csv(io.StringIO(out)).set_index("method").loc["VideoPose (N = 27)"]
    assert row["protocol"] == "pafuse" and row["n"] == 1
    for column in ("WB", "PB", "Body", "Face", "Hands"):
        assert row[column] == pytest.approx(evaluation["metrics"]["H1-K1"]["P-Best"][column], rel=1e-5)
    assert (f"note: used: runs/{folder.name}/evaluations/best-pafuse-H1-K1.json (run {folder.name}, protocol "
            "pafuse, checkpoint best.pt) for H1-K1\n") in err
    assert f"note: not used: runs/{folder.name}/record.json: protocol h3wb, not the requested pafuse\n" in err
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reading_many_record_files_shows_progress(tmp_path, monkeypatch, capsys):
    from bench.reports import gather

    for number in range(3):
        _write_run(tmp_path / "runs", f"mixste-{number}", "mixste", 50.0 + number)
    monkeypatch.setattr(gather, "PROGRESS_FROM", 3)
    build_report(tmp_path / "runs", 1)
    assert "reading records" in capsys.readouterr().err
    monkeypatch.setattr(gather, "PROGRESS_FROM", 4)
    build_report(tmp_path / "runs", 1)
    assert "reading records" not in capsys.readouterr().err
