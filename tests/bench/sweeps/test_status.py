"""Run states from the run folder itself: an incomplete record.json is never done, a run folder locked by a live
`bench run` is running (and not submitted again) whatever became of its job; `bench sweep --restart` recovers."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.cli import build_parser, main
from bench.cli.run import flags_to_config
from bench.runs import config as cfg
from bench.sweeps.files import bookkeeping_folder, load_sweep
from bench.sweeps.status import JobRef, run_state, save_index

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 300


def _sweep(tmp_path, tiny_data, tiny_args, epochs):
    spec = {"base": {"model": "videopose", "data": str(tiny_data), "model_args": tiny_args["videopose"],
                     "train": {"epochs": epochs, "batch_size": 32}, "eval": {"batch_size": 64}},
            "runs": [{"seed": 0}]}
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    (run,) = load_sweep(path).runs
    return path, run


def _run_argv(tiny_data, tiny_args, out, epochs):
    """The `bench run` command of the sweep's one run."""
    return ["run", "--model", "videopose", "--data", str(tiny_data), "--epochs", str(epochs), "--batch-size", "32",
            "--set", f"model_args={json.dumps(tiny_args['videopose'])}", "eval.batch_size=64", "seed=0",
            "--out", str(out)]


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


@pytest.mark.parametrize("text, problem", [
    ('{"run_id": "r", "metrics": {"H1-K1": {"P-Best": {"WB": 1.0', "not a complete record ("),
    ("{}", "not a complete record: no run_id, model, metrics, training"),
])
def test_an_incomplete_record_is_a_failed_run_named_by_its_file(text, problem, tmp_path):
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "record.json").write_text(text)
    state = run_state(run, None, {})
    assert state.state == "failed" and state.error.startswith(f"{run / 'record.json'}: {problem}")
    assert "--restart" in state.error
    job = JobRef("slurm", "7_1", tmp_path / "sweeps" / "demo" / "s1")
    assert run_state(run, job, {"7_1": "RUNNING"}).state == "running"   # its job may still write it
    ended = run_state(run, job, {})
    assert ended.state == "failed" and str(run / "record.json") in ended.error


def test_a_locked_live_run_is_running_after_its_local_controller_was_killed(tiny_data, tiny_args, tmp_path, capsys):
    epochs = 60
    path, run = _sweep(tmp_path, tiny_data, tiny_args, epochs)
    out = tmp_path / "runs"
    argv = _run_argv(tiny_data, tiny_args, out, epochs)
    assert cfg.run_id(cfg.resolve(flags_to_config(build_parser().parse_args(argv)))) == run.run_id
    # what `bench sweep --cluster local` recorded before its controller process (the job id) was killed
    save_index(bookkeeping_folder(out, "demo") / "20250101-000000-local-abc123", "local", out, path,
               {run.run_id: str(_dead_pid())})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=tmp_path, env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        log, deadline = out / run.run_id / "log.txt", time.monotonic() + TIMEOUT_S
        while not (log.exists() and f"epoch 1/{epochs}" in log.read_text()):
            assert process.poll() is None and time.monotonic() < deadline, "the run did not start training"
            time.sleep(0.05)
        assert main(["status", str(path), "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "| running " in printed and printed.rstrip().endswith("1 running")   # before: failed
        assert main(["sweep", str(path), "--out", str(out), "--cluster", "local", "--dry-run"]) == 0
        assert "nothing to submit: 1 running" in capsys.readouterr().out   # before: would submit 1 of 1 runs
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=TIMEOUT_S)
        assert main(["status", str(path), "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "1 failed" in printed and f"FAILED {run.run_id}" in printed   # its stale lock does not count
    finally:
        process.kill()
        process.wait()


def test_a_sweep_with_restart_recovers_a_truncated_record(tiny_data, tiny_args, tmp_path, capsys, single_thread):
    path, run = _sweep(tmp_path, tiny_data, tiny_args, 1)
    out = tmp_path / "runs"
    sweep = ["sweep", str(path), "--out", str(out), "--cluster", "debug"]
    assert main(sweep) == 0
    record = out / run.run_id / "record.json"
    metrics = json.loads(record.read_text())["metrics"]
    record.write_text(record.read_text()[:300])
    capsys.readouterr()
    assert main(["status", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 failed" in printed and f"{record}: not a complete record (300 bytes, invalid JSON" in printed
    assert main(sweep) == 1
    assert f"{record}: not a complete record" in capsys.readouterr().out
    assert main([*sweep, "--restart"]) == 0
    assert json.loads(record.read_text())["metrics"] == metrics
    assert len(list(record.parent.glob("record.json.damaged-*"))) == 1
