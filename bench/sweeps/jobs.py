"""Submit a sweep's runs with submitit and follow them: SLURM job arrays, local processes, or in-process (debug).

Each run is one :class:`SweepJob`, a ``submitit.helpers.Checkpointable`` callable holding only the run's resolved
configuration (a plain dict), the folder of run folders and a thread count, never a model. On a time limit or a
preemption, submitit sends USR2, calls ``checkpoint()`` and requeues the job; the requeued job calls
:class:`bench.runs.training.Run` again, which resumes from the run folder's ``last.pt`` (written atomically after every
epoch), so no finished epoch is lost and the record is written once. Each job writes only into its own run folder.

A run over several devices (executor ``tasks_per_node`` and ``nodes``, see ``bench.sweeps.files``) is one job of
that many tasks: submitit starts the job in every task, each task joins the run's process group as the rank SLURM
gives it (``submitit.helpers.TorchDistributedEnvironment``: the first node is the rendezvous), and only rank 0 writes
(``bench.runs.processes``). On USR2 only rank 0 checkpoints and requeues; the requeued job's tasks resume together.

A submission's bookkeeping (submitit's pickles and logs, and ``jobs.json``, written only by the submitting process)
lives in its own time-stamped folder under the sweep's bookkeeping folder, so job ids that a fresh SLURM reuses
never pick up an old result.
"""
from __future__ import annotations

import datetime
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import submitit
from submitit.helpers import DelayedSubmission

from bench.sweeps.files import Sweep, SweepRun, bookkeeping_folder, run_devices, tasks_per_node
from bench.sweeps.status import CLUSTERS, JobRef, RunState, run_state, save_index, slurm_queue

FINAL_STATES = ("done", "failed")
LOCK_WAIT_S = 60.0
"""How long a job waits for its run folder's lock: a requeued job may start while its previous attempt exits."""
STATE_ORDER = ("done", "running", "queued", "failed", "unknown")


class SweepJob(submitit.helpers.Checkpointable):
    """One run of a sweep, as a submitit job.

    Args:
        config: the run's resolved configuration.
        out: the folder of run folders (absolute: jobs may start in another working directory).
        threads: torch CPU threads, the CPUs the job was given (so parallel runs do not oversubscribe the CPUs).
        restart: move the run's damaged files aside and go on (``bench sweep --restart``, as ``bench run``'s).
    """

    def __init__(self, config: dict, out: str, threads: int = 1, restart: bool = False):
        self.config = config
        self.out = out
        self.threads = threads
        self.restart = restart

    def __call__(self) -> str:
        """Run (or resume, or skip if finished) the run, as one of its processes; returns its run id."""
        import torch

        from bench.runs.processes import from_environment
        from bench.runs.training import Run

        torch.set_num_threads(self.threads)
        if self.config["devices"] > 1:   # this task's rank, and the rendezvous on the job's first node
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        processes = from_environment(self.config["devices"])
        try:
            return Run(self.config, self.out, restart=self.restart, lock_wait_s=LOCK_WAIT_S,
                       processes=processes)()["run_id"]
        finally:
            processes.stop()

    def checkpoint(self) -> DelayedSubmission:
        """Requeue a fresh job for the same run: its progress is on disk (``last.pt``), not in this object."""
        print(f"checkpoint: requeuing; the run resumes from its last complete epoch in {self.out}", file=sys.stderr,
              flush=True)
        return DelayedSubmission(SweepJob(self.config, self.out, self.threads, self.restart))


def slurm_parameters(settings: dict, name: str) -> dict:
    """The sbatch parameters (submitit's SLURM names) of a sweep's executor settings."""
    parameters = {
        "job_name": f"bench-{name}",
        "time": int(settings["timeout_min"]),
        "cpus_per_task": int(settings["cpus_per_task"]),
        "mem": f"{int(settings['mem_gb'] * 1024)}MB",
        "array_parallelism": int(settings["array_parallelism"]),
        "signal_delay_s": int(settings["signal_delay_s"]),
        # Requeueing is how a checkpointed job continues: ask for it even where the cluster's default is off.
        "additional_parameters": {"requeue": True},
    }
    if settings["gpus_per_node"]:
        parameters["gpus_per_node"] = int(settings["gpus_per_node"])
    if run_devices(settings) > 1:   # one task per device; a task that fails ends the others
        parameters.update(nodes=int(settings["nodes"]), ntasks_per_node=tasks_per_node(settings),
                          srun_args=["--kill-on-bad-exit=1"])
    if settings["partition"]:
        parameters["partition"] = settings["partition"]
    return parameters


def make_executor(cluster: str, folder: Path, settings: dict, name: str) -> submitit.AutoExecutor:
    """A submitit executor for ``cluster`` with the sweep's settings; jobs use this Python (``sys.executable``)."""
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}, got {cluster!r}")
    timeouts = int(settings["max_num_timeout"])
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster, slurm_max_num_timeout=timeouts,
                                     local_max_num_timeout=timeouts)
    if cluster == "slurm":
        executor.update_parameters(**{f"slurm_{key}": value for key, value in slurm_parameters(settings, name).items()})
    else:
        if int(settings["nodes"]) > 1 or cluster == "debug" and run_devices(settings) > 1:
            raise ValueError(f"cluster {cluster} runs {'on this machine' if cluster == 'local' else 'in this process'}"
                             f": executor.nodes must be 1{'' if cluster == 'local' else ' and tasks_per_node 1'}, got "
                             f"{settings['nodes']} x {tasks_per_node(settings)} (use --cluster slurm)")
        executor.update_parameters(name=f"bench-{name}", timeout_min=int(settings["timeout_min"]),
                                   gpus_per_node=int(settings["gpus_per_node"]),
                                   tasks_per_node=tasks_per_node(settings))
    return executor


def sbatch_script(settings: dict, name: str, folder: Path, tasks: int, python: str = sys.executable) -> str:
    """The sbatch script submitit writes for ``tasks`` runs (shown by ``--dry-run``; nothing is submitted).

    Args:
        settings: the sweep's executor settings.
        name: the sweep's name (the job name is ``bench-<name>``).
        folder: the submission's submitit folder.
        tasks: how many runs: a job array of that size, or a plain job for one run.
        python: the interpreter the jobs run (this one by default, as submitit does).
    """
    # submitit has no public way to render the script without a SLURM install; this is the function it uses.
    from submitit.slurm.slurm import _make_sbatch_string

    command = " ".join([python, "-u -m submitit.core._submit", shlex.quote(str(folder))])
    array = tasks if tasks > 1 else None  # submitit submits a single run as a plain job, not an array of one
    return _make_sbatch_string(command=command, folder=folder, map_count=array, **slurm_parameters(settings, name))


def default_cluster() -> str:
    """``slurm`` where ``sbatch`` is on PATH, else ``local``."""
    import shutil

    return "slurm" if shutil.which("sbatch") else "local"


def prepare_data(runs: list[SweepRun]) -> None:
    """Generate the synthetic sets the runs use once, here, rather than in every array task at once."""
    from bench.runs.records import data_source

    for config in {(run.config["synthetic"]["size"], run.config["synthetic"]["seed"]): run.config
                   for run in runs if not run.config["data"]}.values():
        data_source(config)


class Submission:
    """The jobs of one ``bench sweep`` call.

    SLURM gets every run at once as one job array (``array_parallelism`` caps how many run together). submitit's
    local executor has no such cap, so local runs are started as slots free up, while :meth:`follow` waits. Debug
    runs execute in this process, one after another, while :meth:`follow` waits.

    Args:
        sweep: the expanded sweep.
        runs: the runs to submit (e.g. those without a record).
        cluster: ``slurm``, ``local`` or ``debug``.
        out: the folder of run folders.
        restart: jobs move their runs' damaged files aside and go on (see :class:`SweepJob`).
    """

    def __init__(self, sweep: Sweep, runs: list[SweepRun], cluster: str, out: Path, restart: bool = False):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.folder = bookkeeping_folder(out, sweep.name) / f"{stamp}-{cluster}-{uuid.uuid4().hex[:6]}"
        self.sweep, self.cluster, self.out, self.restart = sweep, cluster, out.resolve(), restart
        self.executor = make_executor(cluster, self.folder, sweep.executor, sweep.name)
        self.waiting = list(runs)
        self.jobs: dict[str, submitit.Job] = {}
        self.states: dict[str, RunState] = {run.run_id: RunState("queued") for run in runs}

    @property
    def slots(self) -> int:
        return int(self.sweep.executor["array_parallelism"])

    def start(self) -> None:
        """Submit the runs (for local runs: as many as there are slots) and record their job ids."""
        first = self.waiting if self.cluster != "local" else self.waiting[:self.slots]
        self._submit(first)

    def follow(self, report: Callable[[str], None] = print, poll_s: float = 2.0) -> dict[str, RunState]:
        """Wait for every run, reporting progress and each failure as it happens; returns the final states."""
        progress = _Progress(report)
        while True:
            progress.show(self.states)
            if all(state.state in FINAL_STATES for state in self.states.values()):
                return self.states
            if self.cluster == "debug":
                self._run_next_in_process(progress)
            else:
                time.sleep(poll_s)
                self._poll()

    def _submit(self, runs: list[SweepRun]) -> None:
        if not runs:
            return
        threads = int(self.sweep.executor["cpus_per_task"])
        # One batch is one submission: a single sbatch call (a job array) on SLURM.
        with self.executor.batch():
            jobs = [self.executor.submit(SweepJob(run.config, str(self.out), threads, self.restart)) for run in runs]
        for run, job in zip(runs, jobs):
            self.jobs[run.run_id] = job
        self.waiting = [run for run in self.waiting if run.run_id not in self.jobs]
        save_index(self.folder, self.cluster, self.out, self.sweep.path,
                   {run_id: job.job_id for run_id, job in self.jobs.items()})

    def _poll(self) -> None:
        queue = slurm_queue() if self.cluster == "slurm" else {}
        for run_id, job in self.jobs.items():
            if self.states[run_id].state not in FINAL_STATES:
                self.states[run_id] = run_state(self.out / run_id, self._ref(job), queue)
        if self.cluster == "local":
            busy = sum(self.states[run_id].state in ("running", "queued") for run_id in self.jobs)
            self._submit(self.waiting[:max(0, self.slots - busy)])

    def _run_next_in_process(self, progress: _Progress) -> None:
        run_id = next(r for r, s in self.states.items() if s.state not in FINAL_STATES)
        self.states[run_id] = RunState("running")
        progress.show(self.states)
        error = self.jobs[run_id].exception()  # runs the job here; a failure is returned, not raised
        if error is None:
            self.states[run_id] = RunState("done", self._ref(self.jobs[run_id]))
        else:
            lines = [line for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
            self.states[run_id] = RunState("failed", self._ref(self.jobs[run_id]),
                                           error=f"{type(error).__name__}: {lines[-1]}")

    def _ref(self, job: submitit.Job) -> JobRef:
        return JobRef(self.cluster, job.job_id, self.folder)


class _Progress:
    """Prints the count of runs in each state when it changes, and each failure once."""

    def __init__(self, report: Callable[[str], None]):
        self.report, self.started, self.last, self.failed = report, time.monotonic(), None, set()

    def show(self, states: dict[str, RunState]) -> None:
        counts = {name: sum(s.state == name for s in states.values()) for name in STATE_ORDER}
        counts = {name: count for name, count in counts.items() if count}
        if counts != self.last:
            self.report(f"[{_clock(time.monotonic() - self.started)}] "
                        + ", ".join(f"{count} {name}" for name, count in counts.items()))
            self.last = counts
        for run_id, state in states.items():
            if state.state == "failed" and run_id not in self.failed:
                self.report(failure_text(run_id, state))
                self.failed.add(run_id)


def failure_text(run_id: str, state: RunState) -> str:
    """A failed run, its job, its error and the last lines of its log, for the terminal."""
    job = f" (job {state.job.job_id} on {state.job.cluster})" if state.job else ""
    lines = [f"FAILED {run_id}{job}: {state.error}"] + [f"    {line}" for line in state.log_tail]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
