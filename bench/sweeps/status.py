"""The state of each run of a sweep: done, running, queued, failed or not submitted.

A run is done when its ``record.json`` is complete (it parses and holds every metric; a truncated one is a failed
run, its error naming the file). A run whose folder is locked by a live process of this host is running, whatever
became of the job that started it (e.g. a killed local sweep controller). Otherwise its state comes from the latest
job submitted for it, by any sweep: every ``bench sweep`` call keeps its submitit folder under the sweep's
bookkeeping folder (:func:`bench.sweeps.bookkeeping_folder`) with a ``jobs.json`` (run id -> job id) that only the
submitting process writes. SLURM jobs are looked up with ``squeue``, local jobs by their controller process, and a
job that left the queue without a record has failed: its error comes from submitit's result file, and its log's last
lines with it. A lock taken on another host (a SLURM node) is not checked from here: the queue tells.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from submitit.core.utils import JobPaths, pickle_load

from bench.io import save_text
from bench.runs.locks import lock_holder
from bench.runs.state import read_record

CLUSTERS = ("slurm", "local", "debug")
"""Where a sweep's runs execute: a SLURM job array, processes on this machine, or the sweep's own process."""
INDEX = "jobs.json"
QUEUED_SLURM_STATES = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING"}
"""squeue states of a job that waits to (re)start; any other state in the queue counts as running."""
LOG_LINES = 10


@dataclass(frozen=True)
class JobRef:
    """Where to find one submitted run: its cluster, job id and submitit folder."""

    cluster: str
    job_id: str
    folder: Path


@dataclass
class RunState:
    """A run's state.

    Attributes:
        state: ``done``, ``running``, ``queued``, ``failed``, ``unknown`` or ``not submitted``.
        job: the latest job submitted for the run, if any.
        error: for a failed run, the error (the last line of the job's traceback, or why it has none).
        log_tail: for a failed run, the last lines of the job's log.
    """

    state: str
    job: JobRef | None = None
    error: str = ""
    log_tail: list[str] = field(default_factory=list)


def save_index(folder: Path, cluster: str, out: Path, sweep_file: Path, jobs: dict[str, str]) -> Path:
    """Write (atomically) which job runs which run, for one submission."""
    index = {"cluster": cluster, "out": str(out.resolve()), "sweep_file": str(sweep_file.resolve()),
             "jobs": jobs}
    return save_text(folder / INDEX, json.dumps(index, indent=2))


def latest_jobs(sweeps: Path, out: Path) -> dict[str, JobRef]:
    """Run id -> the latest job submitted for it into ``out``, over every submission of every sweep.

    Sweeps share runs (the same settings give the same run id), so a run submitted by one sweep is seen by all.

    Args:
        sweeps: the folder holding every sweep's bookkeeping folder (``<out>/../sweeps``).
        out: the folder of run folders.
    """
    refs: dict[str, JobRef] = {}
    # Submission folders are named after a sortable time stamp, so later submissions override earlier ones.
    for index_path in sorted(sweeps.glob(f"*/*/{INDEX}"), key=lambda path: path.parent.name):
        index = json.loads(index_path.read_text())
        if index.get("out") != str(out.resolve()):
            continue
        for run_id, job_id in index["jobs"].items():
            refs[run_id] = JobRef(index["cluster"], str(job_id), index_path.parent)
    return refs


def run_states(run_ids: list[str], out: Path, refs: dict[str, JobRef]) -> dict[str, RunState]:
    """The state of each run in ``run_ids`` (one ``squeue`` call for all SLURM jobs)."""
    queue = slurm_queue() if any(ref.cluster == "slurm" for ref in refs.values()) else {}
    return {run_id: run_state(out / run_id, refs.get(run_id), queue) for run_id in run_ids}


def run_state(run_folder: Path, job: JobRef | None, queue: dict[str, str] | None) -> RunState:
    """The state of one run, given the SLURM queue (None when squeue could not be asked)."""
    record, problem = read_record(run_folder / "record.json")
    if record is not None:
        return RunState("done", job)
    holder = lock_holder(run_folder)
    if holder is not None and holder.live:
        return RunState("running", job)
    if job is None:
        return RunState("failed", error=_damaged(problem)) if problem else RunState("not submitted")
    live = _live_state(job, queue)
    if live == "unknown":
        return RunState("unknown", job, error="squeue failed: is SLURM running? (bash slurm/local_cluster.sh status)")
    # The record may have appeared while the queue was asked: check again before calling the run failed.
    if live is None:
        record, problem = read_record(run_folder / "record.json")
        return RunState("done", job) if record is not None else failed_state(job, run_folder, problem)
    return RunState(live, job)


def _damaged(problem: str) -> str:
    return f"{problem}; `bench sweep` or `bench run` with --restart moves it aside and finishes the run"


def failed_state(job: JobRef, run_folder: Path, record_problem: str | None = None) -> RunState:
    """A job that ended without a (complete) record: its error from submitit's result file, or what is wrong with
    the record, and the last lines of its log."""
    paths = JobPaths(job.folder, job.job_id, 0)
    error = "the job ended without a result (killed or cancelled?)"
    if job.cluster == "debug":
        error = "it ran inside a `bench sweep --cluster debug` process that did not finish it; see its output"
    if paths.result_pickle.exists():
        outcome, value = pickle_load(paths.result_pickle)
        lines = [line for line in str(value).splitlines() if line.strip()]
        error = lines[-1].strip() if outcome == "error" and lines else f"the job returned {value!r} without a record"
    elif job.cluster == "slurm":   # no result: ask SLURM why (one sacct call, only when it can tell us something)
        error += f"; SLURM state: {_sacct_state(job.job_id)}"
    if record_problem:
        error = _damaged(record_problem)
    for log in (paths.stderr, run_folder / "log.txt"):
        tail = tail_lines(log)
        if tail:
            return RunState("failed", job, error=error, log_tail=[f"({log})", *tail])
    return RunState("failed", job, error=error)


def slurm_queue() -> dict[str, str] | None:
    """Job id (array tasks as ``123_4``) -> squeue state of this user's jobs; None when squeue fails."""
    try:
        out = subprocess.run(["squeue", "--me", "--noheader", "--array", "--format=%i|%T"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return dict(line.strip().split("|", 1) for line in out.splitlines() if "|" in line)


def tail_lines(path: Path, count: int = LOG_LINES) -> list[str]:
    """The last ``count`` lines of a text file (none if it does not exist)."""
    if not path.exists():
        return []
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 16384))  # logs can be long: the end is enough
        return handle.read().decode(errors="replace").splitlines()[-count:]


def _live_state(job: JobRef, queue: dict[str, str] | None) -> str | None:
    """``queued``/``running`` while the job is alive, None once it has ended, ``unknown`` if that cannot be told."""
    if job.cluster == "slurm":
        if queue is None:
            return "unknown"
        state = queue.get(job.job_id)
        return None if state is None else "queued" if state in QUEUED_SLURM_STATES else "running"
    if job.cluster == "local":
        return "running" if _local_controller_alive(job.job_id) else None
    return None  # debug jobs run inside the sweep process: nothing is left running once it is gone


def _local_controller_alive(pid: str) -> bool:
    """Whether the submitit controller process of a local job (its job id is the pid) still runs."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"submitit.local._local" in command


def _sacct_state(job_id: str) -> str:
    try:
        out = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State",
                              f"--jobs={job_id}"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (sacct failed)"
    states = [line.split("|", 1)[1] for line in out.splitlines() if line.startswith(f"{job_id}|")]
    return states[-1] if states else "unknown (not in sacct)"
