"""One writer per run folder: the lock file, stale locks, and real `bench run` processes started together or killed."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from bench.cli import build_parser, main
from bench.cli.run import flags_to_config
from bench.errors import RunLockedError
from bench.runs import config as cfg
from bench.runs.locks import LOCK_NAME, RunLock, lock_holder

ROOT = Path(__file__).resolve().parents[3]
HOST = socket.gethostname()
TIMEOUT_S = 300


def _argv(tiny_data, tiny_args, out, epochs):
    return ["run", "--model", "videopose", "--data", str(tiny_data), "--epochs", str(epochs), "--batch-size", "32",
            "--set", f"model_args={json.dumps(tiny_args['videopose'])}", "eval.batch_size=64", "--out", str(out)]


def _folder(argv) -> Path:
    args = build_parser().parse_args(argv)
    return args.out / cfg.run_id(cfg.resolve(flags_to_config(args)))


def bench_process(argv, cwd) -> subprocess.Popen:
    """``python -m bench ARGV`` in a process of its own, on one thread (as the tests run in-process)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def wait_for_log(process: subprocess.Popen, log: Path, text: str, timeout_s: float = TIMEOUT_S) -> None:
    """Wait until ``log`` holds ``text`` while ``process`` runs."""
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and text in log.read_text()):
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the process ended (status {process.returncode}) before {text!r}:\n{out}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {text!r} in {log} after {timeout_s} s")
        time.sleep(0.02)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def _write_lock(folder: Path, pid: int, host: str = HOST) -> Path:
    path = folder / LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "host": host, "started": "2025-01-01T00:00:00+00:00"}))
    return path


def test_the_lock_is_exclusive_names_its_holder_and_goes_away(tmp_path):
    with RunLock(tmp_path):
        info = json.loads((tmp_path / LOCK_NAME).read_text())
        assert (info["pid"], info["host"]) == (os.getpid(), HOST)
        holder = lock_holder(tmp_path)
        assert holder.live is True and holder.pid == os.getpid()
        expected = f"{tmp_path}: another process is writing this run (lock {tmp_path / LOCK_NAME}: pid {os.getpid()} " \
                   f"on host {HOST}, since "
        with pytest.raises(RunLockedError, match=re.escape(expected)):
            RunLock(tmp_path).acquire()
    assert list(tmp_path.iterdir()) == [] and lock_holder(tmp_path) is None


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    _write_lock(tmp_path, _dead_pid())
    assert lock_holder(tmp_path).live is False
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_whose_pid_now_belongs_to_another_process_is_stale(tmp_path):
    _write_lock(tmp_path, os.getppid())   # alive, but it holds no flock on the file: the writer is gone
    assert lock_holder(tmp_path).live is False
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_lock_taken_on_another_host_is_kept_and_explained(tmp_path):
    path = _write_lock(tmp_path, 4242, host="node-elsewhere")
    assert lock_holder(tmp_path).live is None
    with pytest.raises(RunLockedError) as error:
        RunLock(tmp_path).acquire()
    assert "pid 4242 on host node-elsewhere" in str(error.value) and "taken on another host" in str(error.value)
    assert f"delete {path}" in str(error.value) and path.exists()


def test_a_writer_may_wait_for_the_lock(tmp_path):
    first = RunLock(tmp_path)
    first.acquire()
    threading.Timer(0.5, first.release).start()
    start = time.monotonic()
    with RunLock(tmp_path, wait_s=30):
        assert 0.3 < time.monotonic() - start < 30
    assert not (tmp_path / LOCK_NAME).exists()


def test_two_identical_runs_started_together_one_trains_the_other_refuses(tiny_data, tiny_args, tmp_path):
    argv = _argv(tiny_data, tiny_args, tmp_path / "runs", epochs=20)[1:]
    processes = [bench_process(["run", *argv], tmp_path) for _ in range(2)]
    outputs = [process.communicate(timeout=TIMEOUT_S) for process in processes]
    codes = [process.returncode for process in processes]
    assert sorted(codes) == [0, 2], outputs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    folder = _folder(["run", *argv])
    err = outputs[loser][1]
    assert f"error: {folder}: another process is writing this run (lock {folder / LOCK_NAME}: pid " \
           f"{processes[winner].pid} on host {HOST}" in err
    log = (folder / "log.txt").read_text()
    assert log.count("training windows") == 1 and log.count("epoch 20/20") == 1 and log.count("record written") == 1
    assert not (folder / LOCK_NAME).exists() and not list(folder.glob(".*.tmp"))


def test_a_killed_run_leaves_a_stale_lock_and_resumes_exactly(tiny_data, tiny_args, tmp_path, single_thread):
    epochs = 12
    argv = _argv(tiny_data, tiny_args, tmp_path / "runs", epochs)
    folder = _folder(argv)
    process = bench_process(argv, tmp_path)
    wait_for_log(process, folder / "log.txt", f"epoch 2/{epochs}")
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == -signal.SIGKILL
    holder = lock_holder(folder)
    assert holder.pid == process.pid and holder.live is False   # left behind, and recognised as stale
    assert not (folder / "record.json").exists()
    done = torch.load(folder / "last.pt", weights_only=True)["state"]["epoch"]
    assert 2 <= done < epochs
    assert main(argv) == 0
    log = (folder / "log.txt").read_text()
    assert f"resuming from epoch {done}" in log and log.count("record written") == 1
    assert not (folder / LOCK_NAME).exists() and not list(folder.glob(".*.tmp"))
    whole = _argv(tiny_data, tiny_args, tmp_path / "whole", epochs)
    assert main(whole) == 0
    resumed, reference = (json.loads((_folder(a) / "record.json").read_text()) for a in (argv, whole))
    assert resumed["metrics"] == reference["metrics"]
    assert [h["loss"] for h in resumed["training"]["history"]] == \
        [h["loss"] for h in reference["training"]["history"]]
