"""Non-finite numbers never become a finished result: not from the data, not from the metrics."""
import json
import math
import shutil

import numpy as np
import pytest

from bench.cli import main
from bench.data.h3wb import TEST_FILE, read_tree
from bench.errors import OutputError
from bench.io import save_npz
from bench.runs import config as cfg
from bench.runs import evaluation, training
from bench.runs.lifters import build_from_config
from bench.runs.records import build_record
from bench.runs.training import Run

RUN_FLAGS = ["--model", "videopose", "--epochs", "1", "--batch-size", "32", "--set", "model_args.channels=16",
             "train.stride=8"]


def _config(data, tiny_args):
    return cfg.resolve({"model": "videopose", "data": str(data), "model_args": tiny_args["videopose"],
                        "train": {"epochs": 1, "batch_size": 32, "stride": 8}})


def _metrics(value=40.0, action_value=40.0):
    values = {"WB": 40.0, "PB": 30.0, "Body": value, "Face": 20.0, "Hands": 25.0}
    return {"H1-K1": {"overall": {"P-Best": values, "P-Agg": dict(values, Body=40.0)},
                      "per_action": {"Walking": {"P-Best": dict(values, Body=action_value)}}}}


@pytest.mark.parametrize("metrics, training_info, where", [
    (_metrics(value=float("nan")), {}, "metric Body of estimator P-Best at H1-K1 is nan"),
    (_metrics(value=float("inf")), {}, "metric Body of estimator P-Best at H1-K1 is inf"),
    (_metrics(action_value=float("-inf")), {}, "metric Body of estimator P-Best at H1-K1, action Walking is -inf"),
    (_metrics(), {"history": [{"epoch": 1, "loss": float("nan")}]}, "training.history.0.loss is nan"),
])
def test_build_record_refuses_non_finite_numbers(tiny_data, tiny_args, metrics, training_info, where):
    config = _config(tiny_data, tiny_args)
    lifter = build_from_config(config, meta=True)
    with pytest.raises(OutputError, match=rf"run r1: {where}: a result holding NaN or infinity is not recorded"):
        build_record(config, "r1", lifter, tiny_data, {"test": ["S8"]}, metrics, training_info)
    record = build_record(config, "r1", lifter, tiny_data, {"test": ["S8"]}, _metrics(), {})
    json.dumps(record, allow_nan=False)   # standard JSON


def _data_with(tmp_path, tiny_data, value):
    """A copy of the tiny set whose test file holds ``value`` mm at S8's first take, camera 3d[0, 5, 2]."""
    folder = tmp_path / "data"
    shutil.copytree(tiny_data, folder)
    data, metadata = read_tree(folder / TEST_FILE)
    action = sorted(data["S8"])[0]
    camera = sorted(k for k in data["S8"][action] if k != "frame_id")[0]
    data["S8"][action][camera]["camera_3d"][0, 5, 2] = value
    save_npz(folder / TEST_FILE, data=np.array(data, dtype=object), metadata=np.array(metadata, dtype=object))
    return folder, f"S8/{action}/{camera}/camera_3d[0, 5, 2]"


def test_run_on_data_infinite_in_float32_stops_before_training(tiny_data, tmp_path, capsys, monkeypatch):
    data, where = _data_with(tmp_path, tiny_data, 1e42)
    monkeypatch.setattr(Run, "_epoch", lambda *a, **k: pytest.fail("bad data must stop the run before training"))
    assert main(["run", *RUN_FLAGS, "--data", str(data), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"error: {data / TEST_FILE}: {where}: expected coordinates within 20 m of the camera" in err
    assert "found 1e+42 mm (inf as float32)" in err
    assert not list((tmp_path / "runs").rglob("record.json"))


def _poisoned(original):
    """``evaluate`` whose every metric is NaN."""
    def evaluate(*args, **kwargs):
        results = original(*args, **kwargs)
        for result in results.values():
            for table in (result["overall"], *result["per_action"].values()):
                for values in table.values():
                    values.update({key: float("nan") for key in values})
        return results
    return evaluate


def test_run_whose_metrics_are_nan_writes_no_record(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, "evaluate", _poisoned(training.evaluate))
    # --selection last: no validation, so only the final evaluation on the test subject is poisoned
    assert main(["run", *RUN_FLAGS, "--selection", "last", "--data", str(tiny_data), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "metric WB of estimator P-Best at H1-K1 is nan: a result holding NaN or infinity is not recorded" in err
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "config.yaml", "last.pt", "log.txt"]


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", *RUN_FLAGS, "--data", str(tiny_data), "--out", str(out)]) == 0
    (folder,) = out.iterdir()
    return folder


def test_eval_whose_metrics_are_nan_saves_nothing(finished_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluation, "evaluate", _poisoned(evaluation.evaluate))
    export = tmp_path / "predictions.json"
    assert main(["eval", "--run", str(finished_run), "--protocol", "pafuse", "--export-h3wb", str(export)]) == 2
    err = capsys.readouterr().err
    assert "metric WB of estimator P-Best at H1-K1 is nan" in err and "Traceback" not in err
    assert not (finished_run / "evaluations").exists() and not export.exists()
    record = json.loads((finished_run / "record.json").read_text())
    assert all(math.isfinite(v) for values in record["metrics"]["H1-K1"].values() for v in values.values())
