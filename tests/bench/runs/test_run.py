"""`bench run` / `bench eval` end to end on the tiny synthetic set: records, resume, seeds, selection, bad input."""
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

import baselines
from bench.cli import main
from bench.runs import config as cfg
from bench.runs import training
from bench.runs.lifters import build_from_config, is_part_based, list_lifters
from bench.runs.training import Run
from bench.skeleton import NUM_JOINTS

RECORD_KEYS = {"run_id", "model", "part_based", "parts", "model_args", "frames", "parameters", "protocol", "seed",
               "data", "code_version", "metrics", "per_action", "training", "baseline", "finished"}


def _config(tiny_data, tiny_args, model, **overrides):
    flags = {"model": model, "data": str(tiny_data), "model_args": tiny_args[model],
             "train": {"epochs": 1, "batch_size": 32}, "eval": {"batch_size": 64}}
    return cfg.resolve(_deep(flags, overrides))


def _deep(base, extra):
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _variants():
    """Every registered lifter, and the part-based version of every vanilla one (pafuse is part-based by itself)."""
    for model in list_lifters():
        if not is_part_based(model):
            yield model, False
        yield model, True


@pytest.mark.parametrize("model, part_based", list(_variants()))
def test_every_lifter_trains_one_epoch_and_writes_a_valid_record(model, part_based, tiny_data, tiny_args, tmp_path):
    generative = baselines.create_lifter(model, joints=NUM_JOINTS, **tiny_args[model]).generative
    pairs = [[1, 1], [2, 2]] if generative else [[1, 1]]
    config = _config(tiny_data, tiny_args, model, part_based=part_based, eval={"hypotheses_steps": pairs})
    record = Run(config, out=tmp_path)()
    assert record["part_based"] == part_based
    folder = tmp_path / record["run_id"]
    assert set(record) == RECORD_KEYS
    assert json.loads((folder / "record.json").read_text()) == record
    assert {p.name for p in folder.iterdir()} == {"config.yaml", "log.txt", "last.pt", "best.pt", "record.json"}
    assert record["parameters"] == sum(p.numel() for p in build_from_config(config).parameters())
    assert list(record["metrics"]) == [f"H{h}-K{k}" for h, k in pairs]
    for estimators in record["metrics"].values():
        assert set(estimators) == {"P-Best", "P-Agg", "J-Best"}
        for values in estimators.values():
            assert {"WB", "PB", "Body", "Face", "Hands"} <= set(values)
            assert all(math.isfinite(v) and 0 < v < 5000 for v in values.values())
    assert record["training"]["epochs_done"] == 1 and record["data"]["splits"]["test"] == ["S8"]
    assert len(record["data"]["fingerprint"]) == 16


def test_resumed_run_ends_with_the_metrics_of_an_uninterrupted_one(tiny_data, tiny_args, tmp_path, monkeypatch,
                                                                   stop_run_after):
    config = _config(tiny_data, tiny_args, "d3dp", train={"epochs": 3},
                     eval={"hypotheses_steps": [[2, 2]]})
    whole = Run(config, out=tmp_path / "whole")()
    with monkeypatch.context() as patch:
        stop_run_after(1, patch)
        with pytest.raises(KeyboardInterrupt):
            Run(config, out=tmp_path / "cut")()
    folder = tmp_path / "cut" / whole["run_id"]
    assert not (folder / "record.json").exists() and (folder / "last.pt").exists()
    resumed = Run(config, out=tmp_path / "cut")()
    assert resumed["metrics"] == whole["metrics"]
    assert [h["loss"] for h in resumed["training"]["history"]] == [h["loss"] for h in whole["training"]["history"]]
    assert "resuming from epoch 1" in (folder / "log.txt").read_text()


def test_same_seed_same_metrics_other_seed_other_metrics(tiny_data, tiny_args, tmp_path):
    config = _config(tiny_data, tiny_args, "mixste")
    first, second = Run(config, out=tmp_path / "a")(), Run(config, out=tmp_path / "b")()
    other = Run(_config(tiny_data, tiny_args, "mixste", seed=1), out=tmp_path / "c")()
    assert first["metrics"] == second["metrics"]
    assert other["metrics"] != first["metrics"] and other["run_id"] != first["run_id"]


def test_the_test_subject_is_never_used_to_select_a_checkpoint(tiny_data, tiny_args, tmp_path, monkeypatch):
    seen = []
    original = training.evaluate

    def spy(lifter, windows, *args, **kwargs):
        seen.append(sorted(set(windows.frame_subject)))
        return original(lifter, windows, *args, **kwargs)

    monkeypatch.setattr(training, "evaluate", spy)
    record = Run(_config(tiny_data, tiny_args, "mixste", train={"epochs": 2}), out=tmp_path)()
    assert seen == [["S7"], ["S7"], ["S8"]]  # validation after each epoch, then the final test
    assert record["training"]["selected_on"] == "validation"
    assert record["data"]["splits"] == {"train": ["S1", "S5", "S6"], "validation": ["S7"], "test": ["S8"]}
    selected = record["training"]["selected_epoch"]
    val = [h["validation_wb"] for h in record["training"]["history"]]
    assert val[selected - 1] == min(val)


def test_finished_run_is_not_run_again(tiny_data, tiny_args, tmp_path, monkeypatch):
    config = _config(tiny_data, tiny_args, "mixste")
    record = Run(config, out=tmp_path)()
    monkeypatch.setattr(Run, "_epoch", lambda *a, **k: pytest.fail("a finished run must not train again"))
    assert Run(config, out=tmp_path)() == record


def test_cli_run_then_eval_with_another_protocol(tiny_data, tmp_path, capsys):
    argv = ["run", "--model", "d3dp", "--data", str(tiny_data), "--epochs", "1", "--batch-size", "16",
            "--hypotheses", "1", "2", "--steps", "1", "2", "--set", "model_args.width=16", "model_args.depth=1",
            "eval.batch_size=32", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| H2-K2 | P-Best" in out and "record:" in out
    (folder,) = tmp_path.iterdir()
    assert main(["eval", "--run", str(folder), "--protocol", "pafuse", "--hypotheses", "3", "--steps", "1"]) == 0
    saved = json.loads((folder / "evaluations" / "best-pafuse-H3-K1.json").read_text())
    assert saved["protocol"] == "pafuse" and set(saved["metrics"]) == {"H3-K1"}
    assert saved["evaluated"]["checkpoint"].endswith("best.pt") and saved["training"]["epochs_done"] == 1
    capsys.readouterr()
    assert main(["report", "--results", str(tmp_path), "--protocol", "pafuse", "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    ours = table[(table["model"] == "d3dp") & (table["hypotheses"] == 3)]
    assert len(ours) > 0 and (ours["n"] == 1).all() and (ours["WB"] > 0).all()   # bench eval's result is reported
    assert main(["run", "--resume", *argv[1:]]) == 0  # finished: the record is printed, nothing retrained


@pytest.mark.parametrize("argv, message", [
    (["run", "--model", "nope"], "unknown model 'nope'; registered lifters: d3dp"),
    (["run", "--model", "mixste", "--set", "train.nope=1"], "train: unknown key 'nope'; valid keys: amsgrad"),
    (["run", "--model", "mixste", "--hypotheses", "20", "--steps", "10"], "'mixste' is deterministic"),
    (["run", "--model", "videopose", "--frames", "50"], "VideoPose supports frames in [27, 81, 243]"),
    (["run", "--model", "mixste", "--set", "model_args.nope=3"], "does not accept these options ['nope']"),
    (["run", "--model", "mixste", "--preset", "nope"], "unknown preset 'nope'; presets: medium, paper, quick"),
    (["run", "--model", "poseformer", "--set", "train.stride=0"], "train.stride: expected null or an integer >= 1"),
    (["run", "--model", "d3dp", "--hypotheses", "2", "--steps", "1", "5"],
     "--hypotheses and --steps are given as pairs of the same length"),
    (["run", "--model", "pafuse", "--preset", "quick", "--hypotheses", "4"],
     "found --hypotheses 4 and no --steps. Evaluating a finished run at new (H, K) pairs is bench eval's job, e.g. "
     "python -m bench eval --run "),
    (["run", "--model", "d3dp", "--steps", "10", "5"], "found no --hypotheses and --steps 10 5"),
])
def test_bad_run_options_fail_before_any_work(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_unwritable_output_folder_is_a_clear_error(tiny_data, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["run", "--model", "mixste", "--data", str(tiny_data), "--out", str(blocker / "runs")]
    assert main(argv) == 2
    assert f"{blocker / 'runs'}: cannot be created: {blocker} is a file, not a folder" in capsys.readouterr().err


def test_mismatched_checkpoint_is_refused_with_the_differing_keys(tiny_data, tiny_args, tmp_path, capsys):
    mixste = Run(_config(tiny_data, tiny_args, "mixste"), out=tmp_path)()
    d3dp_config = _config(tiny_data, tiny_args, "d3dp")
    d3dp_folder = tmp_path / cfg.run_id(d3dp_config)
    d3dp_folder.mkdir()
    (d3dp_folder / "config.yaml").write_text(cfg.dump(d3dp_config))
    foreign = tmp_path / mixste["run_id"] / "best.pt"
    assert main(["eval", "--run", str(d3dp_folder), "--checkpoint", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "does not match the model: missing keys [diffusion." in err and "unexpected keys [" in err
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(foreign.read_bytes()[:100])
    assert main(["eval", "--run", str(d3dp_folder), "--checkpoint", str(truncated)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_quick_preset_resolves_for_every_lifter():
    for model in baselines.list_lifters():
        config = cfg.resolve({"model": model}, preset_name="quick")
        assert config["train"]["epochs"] <= 10 and config["frames"] == 27
        pairs = config["eval"]["hypotheses_steps"]
        assert pairs == [[1, 1]] or baselines.create_lifter(model, joints=NUM_JOINTS, **config["model_args"]).generative
    assert np.isclose(cfg.resolve({"model": "d3dp"})["train"]["lr"], 6e-5)  # the reference recipe by default


def test_quick_preset_strides_poseformer_and_the_seq2seq_lifters():
    """Overlapping windows for the seq2seq lifters, every 9th frame for PoseFormer; VideoPose keeps one per frame."""
    strides = {model: cfg.resolve({"model": model}, preset_name="quick")["train"]["stride"]
               for model in baselines.list_lifters()}
    assert strides == {model: None if model == "videopose" else 9 for model in strides}
    assert cfg.resolve({"model": "poseformer"})["train"]["stride"] is None   # not outside the preset
    pafuse = cfg.resolve({"model": "pafuse"}, preset_name="quick")["train"]
    assert (pafuse["schedule"], pafuse["warmup_steps"], pafuse["batch_size"]) == ("cosine", 50, 4)


def test_train_stride_sets_the_number_of_training_windows(tiny_data, tiny_args, tmp_path):
    """A single-frame lifter anchors a window on every frame, or on every ``stride``-th with train.stride."""
    counts = []
    for stride in (None, 4):
        config = _config(tiny_data, tiny_args, "videopose", train={"stride": stride})
        record = Run(config, out=tmp_path)()
        log = (tmp_path / record["run_id"] / "log.txt").read_text()
        counts.append(int(log.split(" training windows")[0].rsplit(" ", 1)[1]))
    assert counts[1] < counts[0] / 3.5 and counts[1] > counts[0] / 4.5


@pytest.mark.parametrize("option", [{"bf16": True}, {"compile": "aot_eager"}])
def test_gpu_paths_run_on_cpu(option, tiny_data, tiny_args, tmp_path):
    """bf16 autocast and torch.compile (a cheap backend here; inductor on GPUs) train and evaluate on CPU."""
    plain = Run(_config(tiny_data, tiny_args, "pafuse", eval={"hypotheses_steps": [[2, 2]]}), out=tmp_path / "a")()
    other = Run(_config(tiny_data, tiny_args, "pafuse", eval={"hypotheses_steps": [[2, 2]]}, **option),
                out=tmp_path / "b")()
    wb, wb_plain = other["metrics"]["H2-K2"]["P-Best"]["WB"], plain["metrics"]["H2-K2"]["P-Best"]["WB"]
    tolerance = 0.05 if "bf16" in option else 1e-3  # relative: bf16 rounds activations to 8 mantissa bits
    assert abs(wb - wb_plain) <= tolerance * wb_plain
