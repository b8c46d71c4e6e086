"""The mean-pose baseline: its value on hand-built data, its place in records, the summaries that compare with it."""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.data.h3wb import SPLITS, load_h3wb
from bench.data.windows import TestWindows, WindowSpec
from bench.metrics import TABLE_METRICS
from bench.runs import evaluation
from bench.runs.baseline import mean_pose, mean_pose_baseline, mean_pose_errors
from bench.runs.evaluation import evaluate
from bench.runs.state import read_record
from bench.runs.summary import NOT_BETTER, QUICK_NOTE, result_summary
from bench.skeleton import NUM_JOINTS, PART_ROOTS, PARTS, PELVIS

FINGER = PARTS["left_hand"][-1]   # a left-hand joint that is not the hand's root
assert FINGER != PART_ROOTS["left_hand"]


def _sequence(subject, root_relative, shift=(1.0, 2.0, 3.0)):
    """A sequence of the given root-relative poses (T, 134, 3), moved away from the origin by ``shift``."""
    poses = np.asarray(root_relative, dtype=np.float64) + np.asarray(shift)
    return SimpleNamespace(subject=subject, pose_3d=poses)


def _pose(value):
    pose = np.full((NUM_JOINTS, 3), value, dtype=np.float64)
    pose[PELVIS] = 0.0
    return pose


def test_mean_pose_counts_every_frame_once_and_is_root_relative():
    # two sequences of 1 and 2 frames: the frame mean (1 + 2 + 6) / 3, not the mean of sequence means (1 + 4) / 2
    train = [_sequence("S1", [_pose(1.0)], shift=(5.0, 0.0, 0.0)), _sequence("S5", [_pose(2.0), _pose(6.0)])]
    np.testing.assert_allclose(mean_pose(train), _pose(3.0), atol=1e-12)


def test_mean_pose_errors_equal_a_hand_computation():
    mean = _pose(0.1)
    off = mean.copy()
    off[FINGER, 0] += 0.010   # one left-hand finger joint 10 mm away from the mean pose
    test = [_sequence("S8", [mean, off])]   # frame 1: exactly the mean pose (all errors 0); frame 2: one joint off
    h3wb = mean_pose_errors(mean, test, "h3wb")
    # h3wb: 133 keypoints; the hand aligned at its root: 21 joints; Hands = (L + R) / 2; PB = (Body + Face + Hands) / 3
    expected = {"WB": 10 / 133, "Body": 0.0, "Face": 0.0, "LeftHand": 10 / 21, "RightHand": 0.0, "Hands": 10 / 42,
                "PB": 10 / 42 / 3}
    assert h3wb == pytest.approx({key: value / 2 for key, value in expected.items()}, abs=1e-9)   # over 2 frames
    pafuse = mean_pose_errors(mean, test, "pafuse")
    # pafuse: 134 joints with the pelvis; PB pools the 134 part-aligned joints
    expected.update(WB=10 / 134, PB=10 / 134)
    assert pafuse == pytest.approx({key: value / 2 for key, value in expected.items()}, abs=1e-9)


def test_baseline_entry_names_what_it_measured():
    train = [_sequence("S1", [_pose(1.0)]), _sequence("S5", [_pose(2.0), _pose(3.0)])]
    entry = mean_pose_baseline(train, [_sequence("S8", [_pose(2.0)])], "h3wb")
    assert entry["protocol"] == "h3wb" and entry["name"] == "mean training pose"
    assert entry["subjects"] == {"train": ["S1", "S5"], "test": ["S8"]} and entry["frames"] == {"train": 3, "test": 1}
    assert all(value == pytest.approx(0.0, abs=1e-9) for value in entry["metrics"].values())   # the mean is exact


def _record(metrics, baseline, protocol="h3wb"):
    return {"protocol": protocol, "data": {"splits": {"test": ["S8"]}}, "metrics": metrics,
            **({"baseline": {"protocol": protocol, "metrics": baseline}} if baseline is not None else {})}


def _values(**changes):
    return {"WB": 100.0, "PB": 50.0, "Body": 90.0, "Face": 20.0, "Hands": 30.0, **changes}


def _table_row(text, first_cells):
    (line,) = [line for line in text.splitlines() if line.startswith(first_cells)]
    return [cell.strip() for cell in line.strip("|").split("|")][2:]


def test_summary_marks_only_what_is_not_better_than_the_baseline():
    baseline = _values(Body=80.0, Face=25.0)   # the model: Body 90 (worse), Face 20 (better), the rest equal
    text = result_summary(_record({"H1-K1": {"P-Best": _values(), "P-Agg": _values(Hands=29.9)}}, baseline))
    assert text.splitlines()[0] == ("MPJPE in mm on S8, lower is better; protocol h3wb (the official H3WB "
                                    "leaderboard definitions)")
    assert _table_row(text, "| H1-K1 | P-Best") == [f"100.0 {NOT_BETTER}", f"50.0 {NOT_BETTER}", f"90.0 {NOT_BETTER}",
                                                   "20.0", f"30.0 {NOT_BETTER}"]
    assert _table_row(text, "| H1-K1 | P-Agg")[3:] == ["20.0", "29.9"]
    assert _table_row(text, "| —     | mean training pose") == ["100.0", "50.0", "80.0", "25.0", "30.0"]
    notes = [line for line in text.splitlines() if line.startswith(f"{NOT_BETTER} ")]
    assert [note.split()[1] for note in notes] == ["WB", "PB", "Body", "Hands"]   # one line per part, not Face
    assert notes[2] == (f"{NOT_BETTER} Body at H1-K1 (P-Best, P-Agg): not better than predicting the mean training "
                        "pose (80.0 mm) for every test frame.")
    assert notes[3].startswith(f"{NOT_BETTER} Hands at H1-K1 (P-Best):")
    assert QUICK_NOTE not in text and QUICK_NOTE in result_summary(_record({}, baseline), quick=True)


def test_summary_of_an_old_record_without_a_baseline():
    text = result_summary(_record({"H1-K1": {"P-Best": _values()}}, None))
    assert "mean training pose" not in _table_row(text, "| H1-K1 | P-Best") and NOT_BETTER not in text
    assert "no mean training pose baseline under protocol h3wb in this record (written before baselines were " \
           "recorded)" in text


@pytest.mark.parametrize("protocol, agg_wb, explained", [("pafuse", 165.2, True), ("pafuse", 162.0, False),
                                                         ("h3wb", 165.2, False)])
def test_pafuse_single_hypothesis_note(protocol, agg_wb, explained):
    metrics = {"H1-K1": {"P-Best": _values(WB=162.0), "P-Agg": _values(WB=agg_wb)},
               "H4-K2": {"P-Best": _values(WB=150.0), "P-Agg": _values(WB=155.0)}}
    text = result_summary(_record(metrics, None, protocol))
    lines = [line for line in text.splitlines() if "although there is one hypothesis" in line]
    assert len(lines) == int(explained)
    if explained:
        assert lines[0].startswith("H1-K1: P-Best and P-Agg differ (WB 162.0 vs 165.2 mm)")
        assert "pelvis" in lines[0] and "the parts, each aligned at its own root, agree" in lines[0]


class Zeros(torch.nn.Module):
    """A lifter that predicts every joint at the pelvis: far worse than the mean training pose."""

    generative, seq2seq, frames, receptive_field = False, True, 9, 1

    def predict(self, x2d, hypotheses, steps, flip_permutation=None):
        return x2d.new_zeros(x2d.shape[0], 1, x2d.shape[1], x2d.shape[2], 3)

    def target_frames(self, y3d):
        return y3d


def test_a_lifter_predicting_zeros_is_marked_worse_than_the_mean_pose(tiny_data):
    train, test = load_h3wb(tiny_data, SPLITS["val-train"]), load_h3wb(tiny_data, SPLITS["test"])
    lifter = Zeros()
    metrics = {pair: result["overall"] for pair, result in
               evaluate(lifter, TestWindows(test, WindowSpec.for_lifter(lifter)), [(1, 1)]).items()}
    baseline = mean_pose_baseline(train, test, "h3wb")
    assert all(metrics["H1-K1"]["P-Best"][key] > baseline["metrics"][key] for key in ("WB", "Body"))
    text = result_summary({"protocol": "h3wb", "metrics": metrics, "baseline": baseline})
    assert _table_row(text, "| H1-K1 | P-Best")[0].endswith(f" {NOT_BETTER}")
    assert any(line.startswith(f"{NOT_BETTER} Body at H1-K1 (P-Best, P-Agg, J-Best):") for line in text.splitlines())


@pytest.fixture(scope="module")
def quick_run(tiny_data, tmp_path_factory):
    """A tiny one-epoch VideoPose run of the quick preset, through the command line; (folder, printed text)."""
    out = tmp_path_factory.mktemp("runs")
    argv = ["run", "--model", "videopose", "--preset", "quick", "--epochs", "1", "--batch-size", "32", "--data",
            str(tiny_data), "--set", "model_args.channels=16", "train.stride=8", "--out", str(out)]
    assert main(argv) == 0
    (folder,) = out.iterdir()
    return folder, argv


def test_run_records_the_baseline_and_prints_it(quick_run, tiny_data, capsys):
    folder, argv = quick_run
    record, problem = read_record(folder / "record.json")
    assert problem is None
    baseline = record["baseline"]
    expected = mean_pose_baseline(load_h3wb(tiny_data, SPLITS["val-train"]), load_h3wb(tiny_data, SPLITS["test"]),
                                  "h3wb")
    assert baseline == json.loads(json.dumps(expected))   # written and read back unchanged
    assert baseline["subjects"] == {"train": ["S1", "S5", "S6"], "test": ["S8"]}
    assert main(argv) == 0   # finished: shown again, from the record read back
    out = capsys.readouterr().out
    assert "MPJPE in mm on S8, lower is better; protocol h3wb" in out and QUICK_NOTE in out
    assert _table_row(out, "| —     | mean training pose") == [f"{baseline['metrics'][k]:.1f}" for k in TABLE_METRICS]


def test_eval_says_what_it_evaluates_and_reuses_the_record_baseline(quick_run, capsys, monkeypatch):
    folder, _ = quick_run
    record = json.loads((folder / "record.json").read_text())
    monkeypatch.setattr(evaluation, "load_h3wb", _only_test(evaluation.load_h3wb))
    assert main(["eval", "--run", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (f"evaluating run {folder}, checkpoint {folder / 'best.pt'} (epoch 1), protocol h3wb, (H, K) pairs "
            "(H = 1, K = 1) (a deterministic lifter: one hypothesis)") in out
    saved = json.loads((folder / "evaluations" / "best-h3wb-H1-K1.json").read_text())
    assert saved["baseline"] == record["baseline"]
    assert "| —     | mean training pose" in out and QUICK_NOTE not in out


def _only_test(load):
    """``load_h3wb`` that refuses to read the training subjects: the record's baseline must be reused."""
    def guarded(source, subjects, **kwargs):
        assert list(subjects) == list(SPLITS["test"]), f"read {subjects} although the record holds the baseline"
        return load(source, subjects, **kwargs)
    return guarded


def test_an_old_record_without_a_baseline_still_loads_and_reports(quick_run, tmp_path, capsys):
    folder = tmp_path / "runs" / quick_run[0].name
    shutil.copytree(quick_run[0], folder)
    shutil.rmtree(folder / "evaluations", ignore_errors=True)
    record = json.loads((folder / "record.json").read_text())
    del record["baseline"]
    (folder / "record.json").write_text(json.dumps(record))
    assert read_record(folder / "record.json")[1] is None
    assert main(["report", "--results", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "| VideoPose (N = 27) " in out and "| Mean training pose" not in out and f" {NOT_BETTER} |" not in out
    assert "- No mean training pose baseline: the records were written before baselines were recorded" in out
    assert main(["eval", "--run", str(folder)]) == 0   # no baseline in the record: computed again
    saved = json.loads((folder / "evaluations" / "best-h3wb-H1-K1.json").read_text())
    assert saved["baseline"]["metrics"] == pytest.approx(json.loads(
        (quick_run[0] / "record.json").read_text())["baseline"]["metrics"])
