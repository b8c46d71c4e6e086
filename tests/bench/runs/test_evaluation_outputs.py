"""``bench eval`` checks where its result goes before evaluating: nothing is computed to be lost."""
import shutil

import pytest
import torch

from bench.cli import main
from bench.runs import evaluation


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    argv = ["run", "--model", "videopose", "--epochs", "1", "--batch-size", "32", "--data", str(tiny_data),
            "--set", "model_args.channels=16", "train.stride=8", "--out", str(out)]
    assert main(argv) == 0
    (folder,) = out.iterdir()
    return folder


@pytest.fixture
def no_evaluation(monkeypatch):
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: pytest.fail("evaluated although the result cannot "
                                                                          "be saved"))


def test_evaluations_is_a_file(finished_run, tmp_path, no_evaluation, cli_fails):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "evaluations").write_text("not a folder")
    cli_fails(["eval", "--run", str(run)], f"{run / 'evaluations'}: expected a folder to write into, found a file")
    assert (run / "evaluations").read_text() == "not a folder"


def test_read_only_run_folder(finished_run, tmp_path, lock_folder, no_evaluation, cli_fails, files_under):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    lock_folder(run)
    before = files_under(run)
    cli_fails(["eval", "--run", str(run)], f"{run / 'evaluations'}: cannot write into {run} (")
    assert files_under(run) == before


@pytest.mark.parametrize("case, message", [
    ("folder", "{export}: expected a file to write, found a folder"),
    ("under_a_file", "{export}: cannot be created: {blocker} is a file, not a folder"),
])
def test_export_path_that_cannot_be_written(finished_run, no_evaluation, blocked, case, message, cli_fails,
                                            files_under):
    export, blocker = blocked(case, "predictions.json")
    before = files_under(finished_run)
    cli_fails(["eval", "--run", str(finished_run), "--export-h3wb", str(export)],
              message.format(export=export, blocker=blocker))
    assert files_under(finished_run) == before


def test_eval_on_cuda_without_a_gpu(finished_run, monkeypatch, no_evaluation, cli_fails):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cli_fails(["eval", "--run", str(finished_run), "--device", "cuda"],
              "device: 'cuda' asks for a GPU, but torch.cuda.is_available() is false")
