"""One run over 2 processes as one job of 2 tasks (executor ``tasks_per_node: 2``, one CPU each): on the one-node
SLURM through submitit, and as submitit's local processes. The tasks meet through gloo, the job writes one record,
and its numbers are the single-process run's (MixSTE without stochastic depth draws no random numbers in training).
On SLURM, the same job sent USR2 (a time limit or a preemption) after its first epoch is checkpointed by rank 0,
requeued with both tasks, resumes, and still ends with the single-process run's numbers.

The SLURM case skips where ``sbatch`` is missing or SLURM is down, except under ``CI=true`` (``conftest.py``); it
needs both of the node's CPUs at once, so it waits while other jobs hold one.
"""
import json
import os
import subprocess
import sys
import time

import pytest
import torch
import yaml

from bench.runs.training import Run
from bench.sweeps.files import bookkeeping_folder, load_sweep

TIMEOUT_S = 600


def _flat(tree, prefix=()):
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flat(value, (*prefix, key)).items()}
    return {prefix: tree}


def _two_task_sweep(tmp_path, tiny_data, tiny_args, epochs: int):
    """A sweep file of one MixSTE run (no stochastic depth) as one job of 2 one-CPU tasks; its path and the run."""
    spec = {"name": "devices",
            "base": {"model": "mixste", "data": str(tiny_data), "model_args": {**tiny_args["mixste"], "drop_path": 0.0},
                     "train": {"epochs": epochs, "batch_size": 5}, "eval": {"batch_size": 4}},
            "runs": [{}],
            "executor": {"cpus_per_task": 1, "tasks_per_node": 2, "mem_gb": 2, "timeout_min": 30}}
    path = tmp_path / "devices.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    (run,) = load_sweep(path).runs
    assert run.config["devices"] == 2
    return path, run


def _sweep_command(path, cluster: str, out) -> list[str]:
    return [sys.executable, "-m", "bench", "sweep", str(path), "--cluster", cluster, "--out", str(out), "--poll", "0.5"]


def _job(out, run) -> tuple:
    """The submission folder and the job id of ``run`` (the sweep's only submission)."""
    (submission,) = [p.parent for p in bookkeeping_folder(out, "devices").glob("*/jobs.json")]
    return submission, json.loads((submission / "jobs.json").read_text())["jobs"][run.run_id]


def _one_record(out, run) -> dict:
    """The run's record, after checking that the leader alone wrote the run folder and the record once."""
    folder = out / run.run_id
    assert {p.name for p in folder.iterdir()} == {"config.yaml", "log.txt", "last.pt", "best.pt", "record.json"}
    record = json.loads((folder / "record.json").read_text())
    log = (folder / "log.txt").read_text()
    assert record["training"]["devices"] == 2 and "2 processes" in log and log.count("record written") == 1
    return record


def _assert_single_process_numbers(record, config, folder) -> None:
    """``record`` has the numbers of the same run in one process (one thread, as each task), to float tolerance."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = Run(dict(config, devices=1), folder)()
    finally:
        torch.set_num_threads(threads)
    assert _flat(record["metrics"]) == pytest.approx(_flat(single["metrics"]), rel=1e-5)
    assert [h["loss"] for h in record["training"]["history"]] == \
        pytest.approx([h["loss"] for h in single["training"]["history"]], rel=1e-6)


@pytest.mark.parametrize("cluster", ["slurm", "local"])
def test_a_two_task_job_trains_one_run_and_writes_one_record(cluster, request, tiny_data, tiny_args, tmp_path):
    if cluster == "slurm":
        request.getfixturevalue("slurm")
    path, run = _two_task_sweep(tmp_path, tiny_data, tiny_args, epochs=2)
    out = tmp_path / "runs"
    result = subprocess.run(_sweep_command(path, cluster, out), capture_output=True, text=True, timeout=TIMEOUT_S,
                            stdin=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and "1 done" in result.stdout, result.stdout + result.stderr
    record = _one_record(out, run)
    submission, job = _job(out, run)
    assert sorted(p.name for p in submission.glob(f"{job}_*_log.err")) == [f"{job}_0_log.err", f"{job}_1_log.err"]
    _assert_single_process_numbers(record, run.config, tmp_path / "single")


def test_a_two_task_job_sent_usr2_is_requeued_whole_and_resumes_exactly(slurm, tiny_data, tiny_args, tmp_path):
    epochs = 4
    path, run = _two_task_sweep(tmp_path, tiny_data, tiny_args, epochs=epochs)
    out = tmp_path / "runs"
    log = out / run.run_id / "log.txt"
    process = subprocess.Popen(_sweep_command(path, "slurm", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (log.exists() and f"epoch 1/{epochs}" in log.read_text()):
            assert time.monotonic() < deadline and process.poll() is None, "the job never finished its first epoch"
            time.sleep(0.1)
        submission, job = _job(out, run)
        subprocess.run(["scancel", "--signal=USR2", job], check=True)   # to every task, as before a time limit
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0 and "1 done" in stdout, stdout + stderr
    record = _one_record(out, run)
    text = log.read_text()
    assert text.count("resuming from epoch") == 1 and f"epoch {epochs}/{epochs}" in text
    leader, other = ((submission / f"{job}_{rank}_log.err").read_text() for rank in (0, 1))
    assert "checkpoint: requeuing" in leader and "checkpoint: requeuing" not in other   # rank 0 alone requeues
    _assert_single_process_numbers(record, run.config, tmp_path / "single")
