"""Sweeps on a real cluster: the one-node SLURM of slurm/local_cluster.sh, and submitit's local processes.

On each cluster, a 2-task array of tiny runs completes with both records, although one of its runs is interrupted
after its first epoch, in one of two ways:

* ``usr2``: the signal SLURM sends before a time limit or a preemption (SLURM: ``scancel --signal=USR2``; local: USR2
  to the job's process). submitit checkpoints the job and requeues it.
* ``requeue`` (SLURM only): an operator's ``scontrol requeue``. SLURM kills the job (SIGTERM, then SIGKILL after
  ``KillWait``) and starts the same array task again.

Either way the run resumes from its last complete epoch and ends with the metrics of the same run computed
uninterrupted. Submitting the sweep again then submits nothing.

The SLURM tests skip where ``sbatch`` is missing or SLURM is down, except under ``CI=true``, where they fail
(``tests/slurm/conftest.py``).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from bench.cli import main
from bench.runs.training import Run
from bench.sweeps.files import bookkeeping_folder, load_sweep
from bench.sweeps.jobs import sbatch_script

EPOCHS = {"usr2": 3, "requeue": 12}
"""Enough epochs that a run is still training when the test interrupts it after the first; after ``scontrol
requeue`` a job trains on until SIGKILL (``KillWait``, 5 s in slurm/slurm.conf.in), so that run must last longer."""
TIMEOUT_S = 240


def _sweep_file(folder: Path, tiny_data, tiny_args, seeds: list[int], epochs: int) -> Path:
    spec = {"name": "tiny",
            "base": {"model": "mixste", "data": str(tiny_data), "model_args": tiny_args["mixste"],
                     "train": {"epochs": epochs, "batch_size": 32}, "eval": {"batch_size": 64}},
            "seeds": seeds, "runs": [{}],
            "executor": {"cpus_per_task": 1, "mem_gb": 2, "timeout_min": 30, "array_parallelism": 2}}
    path = folder / f"tiny-{len(seeds)}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _command(path: Path, cluster: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "bench", "sweep", str(path), "--cluster", cluster, "--out", str(out), "--poll",
            "0.5"]


def _submissions(out: Path) -> list[Path]:
    return sorted(path.parent for path in bookkeeping_folder(out, "tiny").glob("*/jobs.json"))


def _wait_for(predicate, what: str, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _interrupt(cluster: str, how: str, job_id: str) -> None:
    """``usr2``: what SLURM does before a time limit or a preemption; ``requeue``: ``scontrol requeue``."""
    if how == "requeue":
        subprocess.run(["scontrol", "requeue", job_id], check=True)
        return
    if cluster == "slurm":
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
        return
    # A local job's id is its controller's pid; the job's Python process is the controller's child.
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == int(job_id)]
    assert len(children) == 1, f"expected one task process under controller {job_id}, found {children}"
    os.kill(children[0], signal.SIGUSR2)


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@pytest.fixture(scope="module", params=[("slurm", "usr2"), ("slurm", "requeue"), ("local", "usr2")],
                ids=["slurm-usr2", "slurm-requeue", "local-usr2"])
def sweep(request, tiny_data, tiny_args, tmp_path_factory):
    """A 2-task sweep (seeds 0 and 1) on the cluster, its seed-0 run interrupted after its first epoch.

    Also computes the seed-0 run uninterrupted, in this process, while the interrupted one is requeued.
    """
    cluster, how = request.param
    if cluster == "slurm":
        request.getfixturevalue("slurm")  # skips, or fails under CI=true, without a running SLURM
    folder = tmp_path_factory.mktemp(f"sweep-{cluster}-{how}")
    epochs = EPOCHS[how]
    path, out = _sweep_file(folder, tiny_data, tiny_args, [0, 1], epochs), folder / "runs"
    expanded = load_sweep(path)
    first = expanded.runs[0]
    log = out / first.run_id / "log.txt"
    start = time.monotonic()
    process = subprocess.Popen(_command(path, cluster, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    try:
        _wait_for(lambda: log.exists() and f"epoch 1/{epochs}" in log.read_text(), "the first epoch")
        (submission,) = _submissions(out)
        _interrupt(cluster, how, json.loads((submission / "jobs.json").read_text())["jobs"][first.run_id])
        interrupted = time.monotonic() - start
        reference = _uninterrupted(first.config, folder / "reference")
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        process.kill()
    print(f"{cluster}, {how}: 2-task sweep in {time.monotonic() - start:.1f} s "
          f"(interrupted after {interrupted:.1f} s)")
    return SimpleNamespace(cluster=cluster, how=how, epochs=epochs, path=path, out=out, sweep=expanded,
                           submission=submission, returncode=process.returncode, stdout=stdout, stderr=stderr,
                           reference=reference)


def _uninterrupted(config: dict, out: Path) -> dict:
    """The run computed in one go, with the thread count the jobs use (1), so the numbers compare exactly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return Run(config, out)()
    finally:
        torch.set_num_threads(threads)


def test_two_task_array_completes_with_both_records(sweep):
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    for run in sweep.sweep.runs:
        record = json.loads((sweep.out / run.run_id / "record.json").read_text())
        assert record["run_id"] == run.run_id and record["training"]["epochs_done"] == sweep.epochs
    jobs = json.loads((sweep.submission / "jobs.json").read_text())["jobs"]
    assert list(jobs) == [run.run_id for run in sweep.sweep.runs]
    assert "] 2 done" in sweep.stdout and "failed" not in sweep.stdout
    if sweep.cluster == "slurm":
        array_id = jobs[sweep.sweep.runs[0].run_id].split("_")[0]
        assert list(jobs.values()) == [f"{array_id}_0", f"{array_id}_1"]
        # The script that --dry-run shows is the one submitted.
        (script,) = sweep.submission.glob("*_submission.sh")
        expected = sbatch_script(sweep.sweep.executor, "tiny", sweep.submission, tasks=2)
        assert script.read_text().splitlines() == expected.splitlines()


def test_interrupted_run_resumed_from_its_checkpoint_and_ends_like_an_uninterrupted_one(sweep):
    run_id = sweep.sweep.runs[0].run_id
    log = (sweep.out / run_id / "log.txt").read_text()
    assert "resuming from epoch" in log and f"epoch {sweep.epochs}/{sweep.epochs}" in log
    assert log.count("record written") == 1
    job_id = json.loads((sweep.submission / "jobs.json").read_text())["jobs"][run_id]
    job_log = (sweep.submission / f"{job_id}_0_log.err").read_text()
    if sweep.how == "usr2":
        assert "checkpoint: requeuing" in job_log     # submitit's checkpoint, then its own requeue
    else:
        assert "checkpoint: requeuing" not in job_log and job_log.count("resuming from epoch") == 1
    resumed = json.loads((sweep.out / run_id / "record.json").read_text())
    assert resumed["metrics"] == sweep.reference["metrics"]
    assert [h["loss"] for h in resumed["training"]["history"]] == \
        [h["loss"] for h in sweep.reference["training"]["history"]]


def test_resubmitting_a_finished_sweep_submits_nothing(sweep, capsys):
    assert main(["sweep", str(sweep.path), "--cluster", sweep.cluster, "--out", str(sweep.out)]) == 0
    assert "nothing to submit: 2 done" in capsys.readouterr().out
    assert _submissions(sweep.out) == [sweep.submission]
