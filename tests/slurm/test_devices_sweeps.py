"""One run over 2 processes as one job of 2 tasks (executor ``tasks_per_node: 2``, one CPU each): on the one-node
SLURM through submitit, and as submitit's local processes. The tasks meet through gloo, the job writes one record,
and its numbers are the single-process run's (MixSTE without stochastic depth draws no random numbers in training).

The SLURM case skips where ``sbatch`` is missing or SLURM is down, except under ``CI=true`` (``conftest.py``); it
needs both of the node's CPUs at once, so it waits while other jobs hold one.
"""
import json
import os
import subprocess
import sys

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


@pytest.mark.parametrize("cluster", ["slurm", "local"])
def test_a_two_task_job_trains_one_run_and_writes_one_record(cluster, request, tiny_data, tiny_args, tmp_path):
    if cluster == "slurm":
        request.getfixturevalue("slurm")
    spec = {"name": "devices",
            "base": {"model": "mixste", "data": str(tiny_data), "model_args": {**tiny_args["mixste"], "drop_path": 0.0},
                     "train": {"epochs": 2, "batch_size": 5}, "eval": {"batch_size": 4}},
            "runs": [{}],
            "executor": {"cpus_per_task": 1, "tasks_per_node": 2, "mem_gb": 2, "timeout_min": 30}}
    path, out = tmp_path / "devices.yaml", tmp_path / "runs"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    (run,) = load_sweep(path).runs
    assert run.config["devices"] == 2
    result = subprocess.run([sys.executable, "-m", "bench", "sweep", str(path), "--cluster", cluster, "--out",
                             str(out), "--poll", "0.5"], capture_output=True, text=True, timeout=TIMEOUT_S,
                            stdin=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and "1 done" in result.stdout, result.stdout + result.stderr
    folder = out / run.run_id
    assert {p.name for p in folder.iterdir()} == {"config.yaml", "log.txt", "last.pt", "best.pt", "record.json"}
    record = json.loads((folder / "record.json").read_text())
    log = (folder / "log.txt").read_text()
    assert record["training"]["devices"] == 2 and "2 processes" in log and log.count("record written") == 1
    (submission,) = [p.parent for p in bookkeeping_folder(out, "devices").glob("*/jobs.json")]
    job = json.loads((submission / "jobs.json").read_text())["jobs"][run.run_id]
    assert sorted(p.name for p in submission.glob(f"{job}_*_log.err")) == [f"{job}_0_log.err", f"{job}_1_log.err"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = Run(dict(run.config, devices=1), tmp_path / "single")()
    finally:
        torch.set_num_threads(threads)
    assert _flat(record["metrics"]) == pytest.approx(_flat(single["metrics"]), rel=1e-5)
    assert [h["loss"] for h in record["training"]["history"]] == \
        pytest.approx([h["loss"] for h in single["training"]["history"]], rel=1e-6)
