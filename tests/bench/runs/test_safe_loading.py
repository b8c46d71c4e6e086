"""Loading a checkpoint never runs code: what runs save reads back with weights_only=True, a crafted file is refused
by `bench run`, `bench eval` and `bench lift` (and its code never runs), --trust-checkpoint loads an older file."""
import ast
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cli import build_parser, main
from bench.cli.run import flags_to_config
from bench.runs import config as cfg
from bench.runs.checkpoints import read_checkpoint
from bench.runs.state import plain_rng_state, restore_rng_state

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("single_thread")


class WritesAFile:
    """Unpickled without weights_only, this object runs ``exec``, which writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def _argv(tiny_data, tiny_args, out, epochs=2, *extra):
    return ["run", "--model", "videopose", "--data", str(tiny_data), "--epochs", str(epochs), "--batch-size", "32",
            "--set", f"model_args={json.dumps(tiny_args['videopose'])}", "eval.batch_size=64", "--out", str(out),
            *extra]


def _folder(argv) -> Path:
    args = build_parser().parse_args(argv)
    return args.out / cfg.run_id(cfg.resolve(flags_to_config(args)))


def _craft(path: Path, marker: Path, state: dict) -> None:
    torch.save({"model": state, "epoch": 1, "extra": WritesAFile(marker)}, path)


@pytest.fixture
def finished(tiny_data, tiny_args, tmp_path):
    argv = _argv(tiny_data, tiny_args, tmp_path / "runs", 1)
    assert main(argv) == 0
    return _folder(argv)


def test_the_crafted_file_would_run_code_without_weights_only(tmp_path):
    marker = tmp_path / "marker"
    _craft(tmp_path / "evil.pt", marker, {})
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.read_text() == "code ran"   # so the refusals below are what keeps it from running


def _stopped_after_one_epoch(argv, folder, monkeypatch, stop_run_after) -> dict:
    """Run ``argv`` until its first epoch is saved, stop it there as a kill would, and return its last.pt."""
    with monkeypatch.context() as patch:
        stop_run_after(1, patch)
        with pytest.raises(KeyboardInterrupt):
            main(argv)
    return torch.load(folder / "last.pt", weights_only=True)


def test_bench_run_refuses_a_crafted_last_pt_and_runs_none_of_its_code(tiny_data, tiny_args, tmp_path, monkeypatch,
                                                                        capsys, stop_run_after):
    argv = _argv(tiny_data, tiny_args, tmp_path / "runs", 2)
    folder = _folder(argv)
    last = _stopped_after_one_epoch(argv, folder, monkeypatch, stop_run_after)
    marker = tmp_path / "marker"
    _craft(folder / "last.pt", marker, last["model"])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {folder / 'last.pt'}: refused: loading it needs exec, not only tensors, numbers and plain " \
           "containers; pass --trust-checkpoint" in err
    assert not marker.exists() and not (folder / "record.json").exists()


@pytest.mark.parametrize("command", ["eval", "lift"])
def test_eval_and_lift_refuse_a_crafted_best_pt_and_run_none_of_its_code(command, finished, tmp_path, capsys):
    marker = tmp_path / "marker"
    _craft(finished / "best.pt", marker, torch.load(finished / "best.pt", weights_only=True)["model"])
    keypoints = tmp_path / "keypoints.npy"
    np.save(keypoints, np.random.default_rng(0).uniform(100, 900, size=(5, 133, 2)))
    argv = {"eval": ["eval", "--run", str(finished)],
            "lift": ["lift", str(keypoints), "--run", str(finished), "--image-size", "1000", "1000", "--render",
                     "none", "--out", str(tmp_path / "lifted")]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {finished / 'best.pt'}: refused: loading it needs exec" in err and "--trust-checkpoint" in err
    assert not marker.exists() and not (finished / "evaluations").exists() and not (tmp_path / "lifted").exists()


def test_trust_checkpoint_loads_a_file_that_needs_more(finished, tmp_path, capsys):
    best = torch.load(finished / "best.pt", weights_only=True)
    torch.save(dict(best, note=np.arange(3)), finished / "best.pt")   # a NumPy array: refused by weights_only
    assert main(["eval", "--run", str(finished)]) == 2
    assert "refused: loading it needs numpy." in capsys.readouterr().err
    assert main(["eval", "--run", str(finished), "--trust-checkpoint"]) == 0


def test_a_last_pt_of_the_older_format_resumes_exactly_when_trusted(tiny_data, tiny_args, tmp_path, monkeypatch,
                                                                     capsys, stop_run_after):
    argv = _argv(tiny_data, tiny_args, tmp_path / "runs", 2)
    folder = _folder(argv)
    last = _stopped_after_one_epoch(argv, folder, monkeypatch, stop_run_after)
    # as earlier versions saved it: NumPy's state as its tuple with an array, Python's as its tuple
    restore_rng_state(last["rng"])
    older = dict(last, rng={"python": random.getstate(), "numpy": np.random.get_state(), "torch": last["rng"]["torch"]})
    torch.save(older, folder / "last.pt")
    assert main(argv) == 2
    assert f"{folder / 'last.pt'}: refused: loading it needs numpy." in capsys.readouterr().err
    assert main([*argv, "--trust-checkpoint"]) == 0
    whole = _argv(tiny_data, tiny_args, tmp_path / "whole", 2)
    assert main(whole) == 0
    resumed, reference = (json.loads((_folder(a) / "record.json").read_text()) for a in (argv, whole))
    assert resumed["metrics"] == reference["metrics"]


def test_what_a_run_saves_reads_back_with_weights_only(finished):
    last = read_checkpoint(finished / "last.pt")
    best = read_checkpoint(finished / "best.pt")
    assert set(last) == {"model", "optimizer", "rng", "state", "run_id", "model_name"} and best["epoch"] == 1
    assert last["run_id"] == best["run_id"] == finished.name and last["model_name"] == "videopose"


def test_plain_rng_states_restore_every_generator_exactly():
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    random.gauss(0, 1)
    np.random.standard_normal()   # both now hold a cached Gaussian in their state
    buffer = io.BytesIO()
    torch.save(plain_rng_state(), buffer)
    buffer.seek(0)
    draws = (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    restore_rng_state(torch.load(buffer, weights_only=True))
    assert (random.random(), random.gauss(0, 1), np.random.standard_normal(3).tolist(), torch.rand(3).tolist()) == draws


def test_every_torch_load_of_the_package_passes_weights_only_and_never_false():
    calls = []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                keyword = next((k.value for k in node.keywords if k.arg == "weights_only"), None)
                calls.append((path.relative_to(ROOT).as_posix(), ast.unparse(keyword) if keyword else None))
    assert sorted(calls) == [("bench/runs/checkpoints.py", "not trust"), ("bench/runs/reference_weights.py", "True")]
