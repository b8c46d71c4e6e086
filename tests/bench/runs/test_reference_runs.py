"""bench import-checkpoint / export-checkpoint end to end: a reference-layout file -> run folder -> bench eval under
both protocols -> the reference layout again, tensor for tensor."""
from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main
from bench.data.h3wb_json_write import h3wb_leaderboard_score, write_h3wb_json
from bench.errors import CheckpointError
from bench.runs.evaluation import evaluate_run
from bench.runs.lifters import build
from bench.runs.reference_runs import import_checkpoint, reference_sizes
from bench.runs.reference_weights import export_state_dict, read_reference_checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")
TINY_REFERENCE = {"parts": {"widths": {"body": 32, "face": 16, "hands": 16}, "hands": "joint", "attach": "reference"},
                  "model_args": {"depth": 1, "heads": 8, "weights": "uniform"}}
"""PAFUSE with the reference's design at test sizes (8 heads, as the reference)."""


@pytest.fixture
def reference_file(tmp_path):
    """A small PAFUSE saved in the reference's layout, with random weights."""
    torch.manual_seed(0)
    lifter = build("pafuse", frames=27, **TINY_REFERENCE)
    path = tmp_path / "pafuse_model.bin"
    torch.save(export_state_dict(lifter, epoch=3, lr=1e-4), path)
    return path


def test_sizes_are_read_off_the_file(reference_file):
    sizes = reference_sizes(read_reference_checkpoint(reference_file), "pafuse", "file")
    assert sizes["frames"] == 27 and sizes["model_args"]["depth"] == 1
    assert sizes["parts"]["widths"] == {"body": 32, "face": 16, "hands": 16} and sizes["parts"]["attach"] == "reference"


def test_import_evaluates_under_both_protocols_and_exports_back_identically(reference_file, tiny_data, tmp_path,
                                                                            capsys):
    run = tmp_path / "imported"
    assert main(["import-checkpoint", str(reference_file), "--model", "pafuse", "--out", str(run),
                 "--data", str(tiny_data)]) == 0
    assert {p.name for p in run.iterdir()} == {"config.yaml", "best.pt", "imported.json"}
    assert json.loads((run / "imported.json").read_text())["model"] == "pafuse"
    for protocol in ("h3wb", "pafuse"):
        assert main(["eval", "--run", str(run), "--protocol", protocol, "--hypotheses", "2", "--steps", "1"]) == 0
        (saved,) = (run / "evaluations").glob(f"*-{protocol}-*.json")
        metrics = json.loads(saved.read_text())["metrics"]["H2-K1"]["P-Best"]
        assert all(value > 0 and value == value for value in metrics.values())   # finite, positive mm
    assert "| H2-K1 " in capsys.readouterr().out
    out = tmp_path / "exported.bin"
    assert main(["export-checkpoint", str(run), "--out", str(out)]) == 0
    before, after = read_reference_checkpoint(reference_file), read_reference_checkpoint(out)
    assert list(before) == list(after)
    assert all(before[key].dtype == after[key].dtype and torch.equal(before[key], after[key]) for key in before)


def test_a_file_of_the_other_model_is_a_clear_error(reference_file, tmp_path):
    with pytest.raises(CheckpointError, match=r"pafuse_model.bin: expected pose_estimator.Spatial_pos_embed"):
        import_checkpoint(reference_file, "d3dp", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_export_refuses_a_model_without_the_reference_design(tiny_data, tmp_path):
    run = tmp_path / "roots"
    assert main(["run", "--model", "pafuse", "--data", str(tiny_data), "--epochs", "1", "--out", str(tmp_path),
                 "--set", "model_args.width=16", "model_args.depth=1", "eval.hypotheses_steps=[[1,1]]"]) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.name.startswith("pafuse")]
    assert main(["export-checkpoint", str(run), "--out", str(tmp_path / "x.bin")]) == 2
    assert not (tmp_path / "x.bin").exists()


def test_exported_test_predictions_score_as_bench_eval_printed(reference_file, tiny_data, tmp_path):
    run = import_checkpoint(reference_file, "pafuse", out=tmp_path / "run", data=tiny_data)
    export = tmp_path / "predictions.json"
    result, _ = evaluate_run(run, pairs=[[2, 1]], protocol="h3wb", export_h3wb=export)
    assert result["export_h3wb"] == {"file": str(export), "pair": "H2-K1", "estimator": "P-Agg"}
    write_h3wb_json(tiny_data, tmp_path / "json")
    score = h3wb_leaderboard_score(export, tmp_path / "json" / "2Dto3D_test_3d.json")
    printed = result["metrics"]["H2-K1"]["P-Agg"]
    for metric in ("WB", "Body", "Face", "Hands", "PB"):
        assert score[metric] == pytest.approx(printed[metric], rel=1e-5)
    assert len(json.loads(export.read_text())) == score["samples"]
