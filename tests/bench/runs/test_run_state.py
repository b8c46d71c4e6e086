"""Damaged run state: non-finite training, truncated / empty / foreign checkpoints, a missing best.pt, an incomplete
record.json and stale temporary files. Each case checks the exit code, that the message names the file, and that no
record or temporary file is left wrong; ``--restart`` recovers."""
import json
import math

import pytest
import torch

from bench.cli import build_parser, main
from bench.cli.run import flags_to_config
from bench.errors import RunStateError, TrainingError
from bench.runs import config as cfg
from bench.runs import training
from bench.runs.state import read_record
from bench.runs.training import Run

pytestmark = pytest.mark.usefixtures("single_thread")   # tiny models: one thread is faster, and the CPUs are shared


def _argv(tiny_data, tiny_args, out, model="videopose", epochs=2, *extra):
    return ["run", "--model", model, "--data", str(tiny_data), "--epochs", str(epochs), "--batch-size", "32",
            "--set", f"model_args={json.dumps(tiny_args[model])}", "eval.batch_size=64", "--out", str(out), *extra]


def _config(argv):
    return cfg.resolve(flags_to_config(build_parser().parse_args(argv)))


def _folder(argv):
    config = _config(argv)
    return build_parser().parse_args(argv).out / cfg.run_id(config)


def _interrupted(argv, epochs_done, monkeypatch, stop_run_after):
    with monkeypatch.context() as patch:
        stop_run_after(epochs_done, patch)
        with pytest.raises(KeyboardInterrupt):
            main(argv)
    return _folder(argv)


def _temp_files(folder):
    return sorted(path.name for path in folder.glob(".*.tmp"))


def _validation_values(values, monkeypatch):
    """Make the validation WB of epoch e be ``values[e - 1]``."""
    calls = iter(values)
    monkeypatch.setattr(Run, "_validate", lambda self, lifter, validation: next(calls))


# --- 1. non-finite training -----------------------------------------------------------------------------------------

def test_a_huge_learning_rate_stops_in_epoch_1_naming_the_step(tiny_data, tiny_args, tmp_path, capsys):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 2, "--lr", "1e30")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: epoch 1, step " in err and "the training loss is nan (not finite)" in err
    assert "no epoch had finished, so there is no last.pt" in err and "train.lr is 1e+30" in err
    folder = _folder(argv)
    assert {p.name for p in folder.iterdir()} == {"config.yaml", "log.txt"}   # no record, checkpoint, lock or temp
    assert "stopped: epoch 1, step" in (folder / "log.txt").read_text()


def test_a_non_finite_loss_keeps_the_previous_epochs_last_pt(tiny_data, tiny_args, tmp_path, monkeypatch, capsys):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 3)
    folder, where = _folder(argv), {"epoch": None, "step": 0}
    train_epoch, train_step = Run._train_epoch, training.train_step

    def epoch(self, lifter, optimizer, train, index, timer):
        where.update(epoch=index + 1, step=0)
        return train_epoch(self, lifter, optimizer, train, index, timer)

    def step(*args, **kwargs):
        loss = train_step(*args, **kwargs)
        where["step"] += 1
        return torch.full_like(loss, math.inf) if (where["epoch"], where["step"]) == (2, 3) else loss

    monkeypatch.setattr(Run, "_train_epoch", epoch)
    monkeypatch.setattr(training, "train_step", step)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: epoch 2, step 3 of " in err and "the training loss is inf (not finite)" in err
    assert f"{folder / 'last.pt'} keeps epoch 1" in err
    assert not (folder / "record.json").exists() and not _temp_files(folder) and not (folder / "run.lock").exists()
    last = torch.load(folder / "last.pt", weights_only=True)
    assert last["state"]["epoch"] == 1 and torch.load(folder / "best.pt", weights_only=True)["epoch"] == 1


def test_a_non_finite_validation_wb_is_never_selected(tiny_data, tiny_args, tmp_path, monkeypatch):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 3)
    _validation_values([math.nan, 50.0, 60.0], monkeypatch)
    assert main(argv) == 0
    record = json.loads((_folder(argv) / "record.json").read_text())
    assert record["training"]["selected_epoch"] == 2   # before: epoch 1 (nan), and no later epoch could beat it
    assert [entry["validation_wb"] for entry in record["training"]["history"]] == ["nan", 50.0, 60.0]


def test_no_finite_validation_wb_at_all_writes_no_record(tiny_data, tiny_args, tmp_path, monkeypatch, capsys):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 2)
    _validation_values([math.nan, math.inf], monkeypatch)
    assert main(argv) == 2
    assert "no epoch had a finite validation WB (nan, inf)" in capsys.readouterr().err
    folder = _folder(argv)
    assert not (folder / "record.json").exists() and not (folder / "best.pt").exists()


# --- 2. damaged run state -------------------------------------------------------------------------------------------

def _damage(path, how: str):
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:213])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_text("model: not a checkpoint\n")


@pytest.mark.parametrize("how, problem", [
    ("truncated", "not a readable checkpoint (213 bytes: truncated, or not written by torch.save"),
    ("empty", "an empty file (0 bytes), not a checkpoint"),
    ("foreign", "not a readable checkpoint (24 bytes: truncated, or not written by torch.save"),
])
def test_a_damaged_last_pt_is_named_and_restart_starts_over(how, problem, tiny_data, tiny_args, tmp_path,
                                                            monkeypatch, capsys, stop_run_after):
    argv = _argv(tiny_data, tiny_args, tmp_path / "runs", "videopose", 2)
    folder = _interrupted(argv, 1, monkeypatch, stop_run_after)
    _damage(folder / "last.pt", how)
    for _ in range(2):   # the same command explains the same way every time
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: {folder / 'last.pt'}: {problem}" in err and "with --restart moves the damaged" in err
        assert not (folder / "record.json").exists() and not (folder / "run.lock").exists()
    assert main([*argv, "--restart"]) == 0
    (damaged,) = folder.glob("last.pt.damaged-*")
    assert damaged.stat().st_size == {"truncated": 213, "empty": 0, "foreign": 24}[how]
    assert len(list(folder.glob("best.pt.old-*"))) == 1 and "starting the run over from epoch 0" in \
        (folder / "log.txt").read_text()
    record, problem_now = read_record(folder / "record.json")
    assert problem_now is None and record["training"]["epochs_done"] == 2
    if how == "truncated":   # started over: exactly the metrics of a run that was never damaged
        fresh = _argv(tiny_data, tiny_args, tmp_path / "fresh", "videopose", 2)
        assert main(fresh) == 0
        assert json.loads((_folder(fresh) / "record.json").read_text())["metrics"] == record["metrics"]


def test_a_checkpoint_of_another_model_is_refused_with_both_names(tiny_data, tiny_args, tmp_path, monkeypatch,
                                                                   capsys, stop_run_after):
    mixste = _argv(tiny_data, tiny_args, tmp_path, "mixste", 1)
    assert main(mixste) == 0
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 2)
    folder = _interrupted(argv, 1, monkeypatch, stop_run_after)
    (folder / "last.pt").write_bytes((_folder(mixste) / "last.pt").read_bytes())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'last.pt'}: a checkpoint of run {_folder(mixste).name} (mixste), not of this run " \
           f"{folder.name} (videopose)" in err
    # bench eval of a run folder holding another model's best.pt names both models too
    (folder / "best.pt").write_bytes((_folder(mixste) / "best.pt").read_bytes())
    assert main(["eval", "--run", str(folder)]) == 2
    assert f"{folder / 'best.pt'}: a checkpoint of mixste, not of videopose" in capsys.readouterr().err
    assert main([*argv, "--restart"]) == 0
    assert len(list(folder.glob("last.pt.damaged-*"))) == 1 and (folder / "record.json").exists()


def test_a_missing_best_pt_is_rebuilt_from_a_last_pt_of_the_selected_epoch(tiny_data, tiny_args, tmp_path, capsys):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 2, "--selection", "last")
    assert main(argv) == 0
    folder = _folder(argv)
    before = json.loads((folder / "record.json").read_text())
    (folder / "best.pt").unlink()
    (folder / "record.json").unlink()   # as if killed between last.pt and best.pt in the last epoch
    capsys.readouterr()
    assert main(argv) == 0
    log = (folder / "log.txt").read_text()
    assert f"{folder / 'best.pt'}: missing" in log and "best.pt rebuilt from last.pt, which holds the selected " \
                                                        "epoch 2" in log
    assert json.loads((folder / "record.json").read_text())["metrics"] == before["metrics"]


def test_a_missing_best_pt_of_an_earlier_epoch_is_explained_and_restart_trains_again(tiny_data, tiny_args, tmp_path,
                                                                                     monkeypatch, capsys):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 2)
    _validation_values([40.0, 50.0] * 2, monkeypatch)   # epoch 1 is selected, twice
    assert main(argv) == 0
    folder = _folder(argv)
    (folder / "best.pt").unlink()
    (folder / "record.json").unlink()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {folder / 'best.pt'}: missing; epoch 1 was selected and only best.pt held its weights (last.pt " \
           "holds epoch 2)" in err and "--restart" in err
    assert not (folder / "record.json").exists()
    assert main([*argv, "--restart"]) == 0
    assert len(list(folder.glob("last.pt.old-*"))) == 1
    assert json.loads((folder / "record.json").read_text())["training"]["selected_epoch"] == 1


def test_a_stale_best_pt_of_the_selected_last_epoch_is_replaced(tiny_data, tiny_args, tmp_path):
    config = _config(_argv(tiny_data, tiny_args, tmp_path, "videopose", 2, "--selection", "last"))
    Run(config, out=tmp_path)()
    folder = tmp_path / cfg.run_id(config)
    best = torch.load(folder / "best.pt", weights_only=True)
    torch.save(dict(best, epoch=1), folder / "best.pt")
    (folder / "record.json").unlink()
    Run(config, out=tmp_path)()
    assert "holds epoch 1, but last.pt selected epoch 2: moved aside" in (folder / "log.txt").read_text()
    assert torch.load(folder / "best.pt", weights_only=True)["epoch"] == 2


@pytest.mark.parametrize("damage, problem, parses", [
    (lambda text: text[:len(text) // 2], "not a complete record (", False),
    (lambda text: "", "not a complete record (empty, invalid JSON", False),
    (lambda text: text.replace('"Hands"', '"Hand"', 1), "not a complete record: metrics H1-K1 P-Best: no Hands", True),
])
def test_an_incomplete_record_is_not_done_and_restart_rewrites_it_without_training(damage, problem, parses, tiny_data,
                                                                                   tiny_args, tmp_path, capsys):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 2)
    assert main(argv) == 0
    folder = _folder(argv)
    record_path = folder / "record.json"
    before = json.loads(record_path.read_text())
    record_path.write_text(damage(record_path.read_text()))
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {record_path}: {problem}" in err and "--restart" in err
    assert main(["run", "--resume", *argv[1:]]) == 2
    if not parses:   # bench eval reads the record's training too
        capsys.readouterr()
        assert main(["eval", "--run", str(folder)]) == 2
        assert f"error: {record_path}: not valid JSON" in capsys.readouterr().err
    assert main([*argv, "--restart"]) == 0
    assert json.loads(record_path.read_text())["metrics"] == before["metrics"]
    log = (folder / "log.txt").read_text()
    assert "resuming from epoch 2" in log and log.count("epoch 1/2") == 1   # evaluated again, not trained again
    assert len(list(folder.glob("record.json.damaged-*"))) == 1


def test_run_on_an_incomplete_record_raises_run_state_error(tiny_data, tiny_args, tmp_path):
    config = _config(_argv(tiny_data, tiny_args, tmp_path, "videopose", 1))
    folder = tmp_path / cfg.run_id(config)
    folder.mkdir()
    (folder / "record.json").write_text('{"run_id": "x", "metr')
    with pytest.raises(RunStateError, match="record.json: not a complete record"):
        Run(config, out=tmp_path)()


# --- 4. stale temporary files ---------------------------------------------------------------------------------------

def test_a_run_start_removes_temporary_files_a_killed_attempt_left(tiny_data, tiny_args, tmp_path, monkeypatch,
                                                                   stop_run_after):
    argv = _argv(tiny_data, tiny_args, tmp_path, "videopose", 2)
    folder = _interrupted(argv, 1, monkeypatch, stop_run_after)
    (folder / ".last.pt.k1ll3d_a.tmp").write_bytes(b"\0" * 213_000)   # a half-written last.pt
    (folder / ".record.json.x9y8z7.tmp").write_text('{"run_id"')
    assert main(argv) == 0
    assert not _temp_files(folder)
    log = (folder / "log.txt").read_text()
    assert "removed .last.pt.k1ll3d_a.tmp (213,000 bytes), a temporary file an earlier attempt left" in log
    assert read_record(folder / "record.json")[1] is None


def test_training_errors_are_value_errors_for_the_command_line():
    assert issubclass(TrainingError, ValueError) and issubclass(RunStateError, ValueError)
