"""One run over several processes (``devices``): shards, rendezvous errors, and on CPU with gloo, end to end through
torchrun: two processes train as one, a killed run resumes exactly, and only the leader writes files."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.data.h3wb import SPLITS, load_h3wb
from bench.data.windows import TrainWindows, WindowSpec, shard
from bench.errors import ConfigError
from bench.runs import config as cfg
from bench.runs.processes import SINGLE, Processes, from_environment
from bench.runs.training import Run

ROOT = Path(__file__).resolve().parents[3]
RANK_WRITES = textwrap.dedent('''
    """Loaded by every Python process of the test (sitecustomize): a process of a run records what it writes."""
    import atexit, json, os, sys

    if "RANK" in os.environ:
        OUT, WRITES = os.environ["RANK_WRITES_OUT"], []

        def _hook(event, args):
            if event == "open":
                path, mode, flags = args
                writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & (
                    os.O_WRONLY | os.O_RDWR | os.O_CREAT))
                paths = [path] if writes else []
            else:
                paths = args[:2] if event in ("os.rename", "os.link") else args[:1] if event in (
                    "os.remove", "os.mkdir") else []
            paths = [os.fsdecode(p) for p in paths if isinstance(p, (str, bytes, os.PathLike))]
            if any(path.startswith(OUT) for path in paths):
                WRITES.append(" ".join([event, *paths]))

        def _report():
            with open(os.path.join(os.environ["RANK_WRITES_REPORT"], f"rank{os.environ['RANK']}.json"), "w") as f:
                json.dump(WRITES, f)

        sys.addaudithook(_hook)
        atexit.register(_report)
''')


def _argv(tiny_data, tiny_args, out, model="mixste", **options):
    model_args = dict(tiny_args[model], **options.pop("model_args", {}))
    argv = ["run", "--model", model, "--data", str(tiny_data), "--epochs", str(options.pop("epochs", 2)),
            "--batch-size", "5", "--set", f"model_args={json.dumps(model_args)}", "eval.batch_size=4",
            "--out", str(out)]
    return argv + [f"--{key}={value}" for key, value in options.items()]


def _config(argv):
    from bench.cli import build_parser
    from bench.cli.run import flags_to_config

    return cfg.resolve(flags_to_config(build_parser().parse_args(argv)))


@pytest.fixture
def multiprocess_env(tmp_path, monkeypatch):
    """The environment the run's processes start in: this checkout first on their path, and (sitecustomize) each
    process of a run reports every file it opened for writing, renamed or removed under ``tmp_path / 'runs'``."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(RANK_WRITES)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hooks), str(ROOT)]))
    monkeypatch.setenv("RANK_WRITES_OUT", str(tmp_path / "runs"))
    monkeypatch.setenv("RANK_WRITES_REPORT", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def _writes(folder, rank):
    return json.loads((folder / f"rank{rank}.json").read_text())


def _flat(tree, prefix=()):
    """{(key, ...): number} of a nested dict of numbers."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flat(value, (*prefix, key)).items()}
    return {prefix: tree}


def _descendants(pid):
    """The process ids below ``pid`` (torchrun starts its workers in sessions of their own)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


# --- shards and rendezvous -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, ranks", [(10, 2), (7, 2), (5, 3), (1, 2), (0, 4), (16, 16)])
def test_shards_of_a_batch_are_contiguous_nearly_equal_and_cover_it_once(rows, ranks):
    slices = [shard(rows, rank, ranks) for rank in range(ranks)]
    assert np.array_equal(np.concatenate([np.arange(rows)[s] for s in slices]), np.arange(rows))
    sizes = [s.stop - s.start for s in slices]
    assert max(sizes) - min(sizes) <= (1 if rows else 0) and sizes == sorted(sizes, reverse=True)
    with pytest.raises(ValueError, match=r"rank should be in \[0, 2\), got 2"):
        shard(rows, 2, 2)


def test_every_step_the_processes_slices_make_the_single_process_batch(tiny_data):
    windows = TrainWindows(load_h3wb(tiny_data, subjects=list(SPLITS["val-train"])), WindowSpec(27), flip=True,
                           seed=3)
    for epoch in (0, 1):
        whole = list(windows.batches(5, epoch=epoch))
        parts = [list(windows.batches(5, epoch=epoch, rank=rank, ranks=2)) for rank in range(2)]
        assert len(whole) == len(parts[0]) == len(parts[1]) == windows.batch_count(5)
        for step, (x2d, y3d) in enumerate(whole):
            assert torch.equal(torch.cat([parts[0][step][0], parts[1][step][0]]), x2d)
            assert torch.equal(torch.cat([parts[0][step][1], parts[1][step][1]]), y3d)
        assert len(parts[1][-1][0]) == 0 < len(whole[-1][0])   # 96 windows: the last batch of 1 leaves rank 1 none


def test_several_devices_need_the_processes_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert from_environment(1) is SINGLE
    with pytest.raises(ConfigError, match="devices is 2, but this process was not started as one of 2 processes "
                                          r"\(no RANK, WORLD_SIZE"):
        from_environment(2)
    monkeypatch.setenv("RANK", "1"), monkeypatch.setenv("WORLD_SIZE", "3"), monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "localhost"), monkeypatch.setenv("MASTER_PORT", "29500")
    with pytest.raises(ConfigError, match="devices is 2, but WORLD_SIZE is 3"):
        from_environment(2)
    assert from_environment(3) == Processes(rank=1, world=3, local_rank=1)
    processes = Processes(1, 3, 1)
    assert processes.device("cuda") == torch.device("cuda", 1) and processes.device("cpu") == torch.device("cpu")


def test_devices_is_how_a_run_executes_not_which_run_it_is(tiny_data, tiny_args, tmp_path):
    one = _config(_argv(tiny_data, tiny_args, tmp_path))
    two = _config(_argv(tiny_data, tiny_args, tmp_path, devices=2))
    assert two["devices"] == 2 and cfg.run_id(one) == cfg.run_id(two)
    with pytest.raises(ConfigError, match="devices is 2, but the run was given 1 processes"):
        Run(two, out=tmp_path)
    with pytest.raises(ConfigError, match="device must be 'cuda' or 'cpu', found 'cuda:1'"):
        cfg.resolve({"model": "mixste", "devices": 2, "device": "cuda:1"}, runs_here=False)
    with pytest.raises(ConfigError, match="devices: expected an integer >= 1, found 0"):
        cfg.resolve({"model": "mixste", "devices": 0})


# --- end to end on CPU (gloo), through torchrun ----------------------------------------------------------------------

def test_two_processes_train_as_one_and_only_the_leader_writes(tiny_data, tiny_args, multiprocess_env, capsys):
    """MixSTE without stochastic depth draws no random numbers in training: two processes, each with half of every
    batch of 5 (3 and 2 windows; the epoch's last batch of 1 leaves rank 1 none), give the single process's record."""
    folder = multiprocess_env
    argv = _argv(tiny_data, tiny_args, folder / "runs", model_args={"drop_path": 0.0})
    single = Run(_config(argv), out=folder / "single")()
    assert main([*argv, "--devices", "2"]) == 0
    record = json.loads((folder / "runs" / single["run_id"] / "record.json").read_text())
    assert record["training"]["devices"] == 2 and single["training"]["devices"] == 1
    assert _flat(record["metrics"]) == pytest.approx(_flat(single["metrics"]), rel=1e-5)
    for ours, theirs in zip(record["training"]["history"], single["training"]["history"], strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-6)
        assert ours["validation_wb"] == pytest.approx(theirs["validation_wb"], rel=1e-5)
        assert ours["steps"] == theirs["steps"]
    run_folder = folder / "runs" / single["run_id"]
    assert {p.name for p in run_folder.iterdir()} == {"config.yaml", "log.txt", "last.pt", "best.pt", "record.json"}
    assert _writes(folder, 1) == []
    assert {Path(line.split()[-1]).name for line in _writes(folder, 0)} >= {"log.txt", "record.json", "run.lock"}
    log = (run_folder / "log.txt").read_text()
    assert "96 training windows, 2 processes" in log and "rank 1" not in log
    last = torch.load(run_folder / "last.pt", weights_only=True)
    (other,) = last["rng_other_ranks"]   # rank 1's generators, seeded apart from the leader's
    assert not torch.equal(last["rng"]["torch"], other["torch"])


def test_two_processes_train_a_diffusion_lifter_as_one(tiny_data, tiny_args, multiprocess_env):
    """D3DP draws a diffusion step and noise per window: every process draws them for the whole batch from a
    generator seeded by (seed, step) and keeps its own rows, so two processes give the single process's record.
    Evaluated at H = K = 2 only (the recipe's H = 300 would take minutes)."""
    folder = multiprocess_env
    argv = _argv(tiny_data, tiny_args, folder / "runs", model="d3dp", model_args={"drop_path": 0.0}, hypotheses=2,
                 steps=2)
    single = Run(_config(argv), out=folder / "single")()
    assert main([*argv, "--devices", "2"]) == 0
    record = json.loads((folder / "runs" / single["run_id"] / "record.json").read_text())
    assert _flat(record["metrics"]) == pytest.approx(_flat(single["metrics"]), rel=1e-5)
    assert [h["loss"] for h in record["training"]["history"]] == \
        pytest.approx([h["loss"] for h in single["training"]["history"]], rel=1e-6)


def _kill_mid_epoch(argv, folder, epoch, errors):
    """Start the run over 2 processes and SIGKILL all of them in the epoch after ``epoch`` (once the log says
    ``epoch`` is done)."""
    with open(errors, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "bench", *argv, "--devices", "2"],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    log, deadline = folder / "log.txt", time.monotonic() + 300
    while not (log.exists() and f"epoch {epoch}/" in log.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, errors.read_text()[-3000:]
        time.sleep(0.1)
    time.sleep(0.5)
    for pid in [*_descendants(process.pid), process.pid]:   # the workers first, mid-epoch
        os.kill(pid, signal.SIGKILL)
    process.wait()


def test_a_killed_two_process_run_resumes_as_if_never_stopped(tiny_data, tiny_args, multiprocess_env):
    """With stochastic depth each process draws its own random numbers: resuming restores every rank's generators."""
    folder = multiprocess_env
    argv = _argv(tiny_data, tiny_args, folder / "runs", epochs=3, model_args={"depth": 2, "drop_path": 0.5})
    whole_argv = [*argv[:-1], str(folder / "whole")]
    assert main([*whole_argv, "--devices", "2"]) == 0
    run_id = cfg.run_id(_config(argv))
    whole = json.loads((folder / "whole" / run_id / "record.json").read_text())
    cut = folder / "runs" / run_id
    _kill_mid_epoch(argv, cut, 1, folder / "killed.err")
    assert not (cut / "record.json").exists() and torch.load(cut / "last.pt", weights_only=True)["state"]["epoch"] < 3
    assert main([*argv, "--devices", "2"]) == 0
    resumed = json.loads((cut / "record.json").read_text())
    assert resumed["metrics"] == whole["metrics"]
    assert [(h["loss"], h["validation_wb"]) for h in resumed["training"]["history"]] == \
        [(h["loss"], h["validation_wb"]) for h in whole["training"]["history"]]
    assert "resuming from epoch" in (cut / "log.txt").read_text()
