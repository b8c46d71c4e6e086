"""The mean-pose baseline in `bench report`: one row per dataset, marks on the cells not below it, and notes."""
import json

import pytest

from bench.reports.gather import build_report
from bench.reports.render import render
from bench.runs.summary import NOT_BETTER

BASELINE = {"WB": 60.0, "PB": 30.0, "Body": 50.0, "Face": 10.0, "Hands": 20.0}


def _write(root, name, seed, values, baseline=BASELINE, fingerprint="0123456789abcdef", protocol="h3wb"):
    """A MixSTE N = 27 record at H = K = 1 whose every estimator has ``values``, with ``baseline`` (None: none)."""
    record = {"run_id": name, "model": "mixste", "part_based": False, "parts": None, "model_args": {"width": 16},
              "frames": 27, "parameters": 1000, "protocol": protocol, "seed": seed,
              "data": {"source": "/data/h3wb", "fingerprint": fingerprint, "splits": {"test": ["S8"]}},
              "code_version": "test", "metrics": {"H1-K1": {e: values for e in ("P-Best", "P-Agg", "J-Best")}},
              "per_action": {}, "training": {"epochs_done": 1, "selected_epoch": 1},
              "finished": f"2026-01-01T00:00:0{seed}+00:00"}
    if baseline is not None:
        record["baseline"] = {"name": "mean training pose", "protocol": protocol,
                              "subjects": {"train": ["S1", "S5", "S6"], "test": ["S8"]}, "metrics": baseline}
    (root / name).mkdir(parents=True)
    (root / name / "record.json").write_text(json.dumps(record))


def _rows(report):
    return {row.label: row for row in report.rows}


def test_mean_pose_row_and_marks(tmp_path):
    # two seeds: Body 55 and 57 (mean 56, worse than 50), Face 8 (better than 10), WB 60 (equal: not better)
    _write(tmp_path, "a", 0, {**BASELINE, "Body": 55.0, "Face": 8.0})
    _write(tmp_path, "b", 1, {**BASELINE, "Body": 57.0, "Face": 8.0})
    report = build_report(tmp_path, 1)
    rows = _rows(report)
    ours, mean_pose = rows["MixSTE (N = 27)"], rows["Mean training pose"]
    assert ours.n == 2 and ours.not_better == {"WB", "PB", "Body", "Hands"}
    assert mean_pose.n == 2 and mean_pose.mean == BASELINE and mean_pose.spec.group == "Mean-pose baseline"
    assert mean_pose.not_better == frozenset() and "Mean training pose" not in {r.label for r in report.rows
                                                                                 if r.bold}
    assert any(note.startswith("Mean training pose: every test frame predicted as the mean") for note in report.notes)
    cells = [line for line in render(report, "markdown").splitlines() if line.startswith("| MixSTE (N = 27) ")][0]
    assert f"**56.0** ± 1.4 {NOT_BETTER} |" in cells and "| **8.0** ± 0.0 |" in cells


def test_baselines_that_differ_and_runs_without_one_are_named(tmp_path):
    _write(tmp_path, "a", 0, {**BASELINE, "Face": 8.0})
    _write(tmp_path, "b", 1, {**BASELINE, "Face": 8.0}, baseline={**BASELINE, "Face": 12.0})
    _write(tmp_path, "c", 2, {**BASELINE, "Face": 8.0}, baseline=None)
    report = build_report(tmp_path, 1)
    assert _rows(report)["Mean training pose"].mean["Face"] == pytest.approx(11.0)
    assert any("differ across runs, by up to 2.0 mm in Face" in note and "a, b" in note for note in report.notes)
    assert "1 runs hold no mean training pose baseline (written before baselines were recorded)." in report.notes
    # marks use the highest baseline of the data (12.0): Face 8.0 is better than either
    assert "Face" not in _rows(report)["MixSTE (N = 27)"].not_better


def test_each_dataset_and_protocol_has_its_own_mean_pose_row(tmp_path):
    _write(tmp_path, "a", 0, BASELINE)
    _write(tmp_path, "b", 0, BASELINE, baseline={**BASELINE, "WB": 70.0}, fingerprint="fedcba9876543210")
    _write(tmp_path, "c", 0, BASELINE, baseline={**BASELINE, "WB": 99.0}, protocol="pafuse")
    rows = _rows(build_report(tmp_path, 1))
    assert rows["Mean training pose [data 01234567]"].mean["WB"] == 60.0
    assert rows["Mean training pose [data fedcba98]"].mean["WB"] == 70.0
    assert "WB" not in rows["MixSTE (N = 27) [data fedcba98]"].not_better   # 60 < its data's 70
    assert "WB" in rows["MixSTE (N = 27) [data 01234567]"].not_better        # 60 = its data's 60
    assert _rows(build_report(tmp_path, 1, protocol="pafuse"))["Mean training pose"].mean["WB"] == 99.0
