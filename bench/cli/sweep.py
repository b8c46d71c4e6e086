"""``bench sweep`` and ``bench status``: run a sweep file's runs on SLURM (or locally) and show where each run is."""
from __future__ import annotations

from pathlib import Path

from bench.cli.constants import CLUSTERS

SUBMITTABLE = ("not submitted", "failed")
"""States of the runs a sweep submits (again); a queued, running or unknown run is left alone."""


def add_sweep_commands(commands) -> None:
    sweep = commands.add_parser(
        "sweep", help="run a sweep file's runs as one job array (SLURM, local processes or in-process)",
        description="Expand a sweep file (configs/sweeps/*.yaml) into run configurations (the same run ids as "
                    "`bench run` with the same settings), skip runs that have a record or a live job, and submit "
                    "the rest as one submitit job array. Jobs that hit their time limit or are preempted are "
                    "checkpointed and requeued, and resume from their last complete epoch.")
    _add_sweep_arguments(sweep)
    sweep.add_argument("--cluster", choices=CLUSTERS,
                       help="slurm: a SLURM job array (the default where sbatch is on PATH); local: processes on "
                            "this machine, at most executor.array_parallelism at once (the default otherwise); "
                            "debug: in this process, one run after another")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the runs and what would be submitted (for SLURM, the sbatch script); submit "
                            "nothing")
    sweep.add_argument("--no-wait", action="store_true",
                       help="return right after submitting (SLURM only); follow with `bench status`")
    sweep.add_argument("--poll", type=float, default=5.0, help="seconds between progress checks (default 5)")
    sweep.add_argument("--restart", action="store_true",
                       help="as bench run --restart: runs whose files are damaged (e.g. a truncated record.json) move "
                            "them aside and go on from the intact ones, or start over")
    sweep.set_defaults(func=_sweep)

    status = commands.add_parser(
        "status", help="show each run of a sweep: done, running, queued, failed (with its log) or not submitted",
        description="Show the state of every run of a sweep file. Pass the same --preset, --set and --out as to "
                    "`bench sweep`: they decide the run ids.")
    _add_sweep_arguments(status)
    status.set_defaults(func=_status)


def _add_sweep_arguments(parser) -> None:
    parser.add_argument("file", type=Path, help="a sweep file, e.g. configs/sweeps/table1.yaml")
    parser.add_argument("--preset", help="a preset applied to every run, e.g. quick (small CPU runs of a few minutes)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override a configuration key in every run, as in `bench run --set`")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="seeds to cross every run with, in place of the file's seeds (e.g. 0 1 for a mean and "
                             "spread over two seeds)")
    parser.add_argument("--out", type=Path, default=Path("results/runs"),
                        help="folder of run folders (default results/runs); the sweep's bookkeeping goes to "
                             "OUT/../sweeps/NAME")


def _load(args):
    from bench.runs.config import set_overrides
    from bench.sweeps.files import load_sweep, sweeps_folder
    from bench.sweeps.status import latest_jobs, run_states

    sweep = load_sweep(args.file, preset=args.preset, overrides=set_overrides(args.set), seeds=args.seeds)
    refs = latest_jobs(sweeps_folder(args.out), args.out)
    return sweep, run_states([run.run_id for run in sweep.runs], args.out, refs)


def _sweep(args) -> int:
    from bench.sweeps.files import bookkeeping_folder
    from bench.sweeps.jobs import default_cluster, sbatch_script

    cluster = args.cluster or default_cluster()
    if args.no_wait and cluster != "slurm":
        raise ValueError(f"--no-wait needs --cluster slurm: {cluster} runs are started and run by this process")
    sweep, states = _load(args)
    todo = [run for run in sweep.runs if states[run.run_id].state in SUBMITTABLE]
    print(_header(sweep, cluster))
    print(run_table(sweep, states))
    if not todo:
        unknown = any(state.state == "unknown" for state in states.values())
        print(f"nothing to submit: {_summary(states)}"
              + ("; unknown: SLURM could not say whether their jobs still run (is it up?)" if unknown else ""))
        return 0
    if args.dry_run:
        print(f"\nwould submit {len(todo)} of {len(sweep.runs)} runs ({_resources(sweep.executor)}) to {cluster}:")
        if cluster == "slurm":
            folder = bookkeeping_folder(args.out, sweep.name) / "<time stamp>-slurm-<id>"
            print(sbatch_script(sweep.executor, sweep.name, folder, len(todo)))
        return 0
    return _submit_and_follow(args, sweep, todo, cluster)


def _submit_and_follow(args, sweep, todo: list, cluster: str) -> int:
    from bench.sweeps.jobs import Submission, prepare_data

    prepare_data(todo)
    try:
        submission = Submission(sweep, todo, cluster, args.out, restart=args.restart)
        submission.start()
    except (OSError, RuntimeError) as error:  # submitit wraps sbatch failures in RuntimeError subclasses
        raise ValueError(f"submitting to {cluster} failed: {error}\nIs SLURM running? Start the local one with "
                         f"`bash slurm/local_cluster.sh start`, or pass --cluster local") from error
    print(f"\n{_submitted(submission)}; bookkeeping: {submission.folder}")
    follow = f"python -m bench status {_same_flags(args)}"
    if args.no_wait:
        print(f"follow with: {follow}")
        return 0
    try:
        final = submission.follow(poll_s=args.poll)
    except KeyboardInterrupt:
        fate = "the SLURM jobs go on" if cluster == "slurm" else "runs started here stop too; rerun to resume them"
        print(f"\nstopped waiting: {fate}. Follow with: {follow}")
        return 130
    failed = [run_id for run_id, state in final.items() if state.state != "done"]
    print(f"sweep {sweep.name}: {len(final) - len(failed)} of {len(final)} submitted runs done"
          + (f", {len(failed)} failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _status(args) -> int:
    from bench.sweeps.jobs import failure_text

    sweep, states = _load(args)
    print(_header(sweep, None))
    print(run_table(sweep, states, jobs=True))
    print(_summary(states))
    for run in sweep.runs:
        if states[run.run_id].state == "failed":
            print(failure_text(run.run_id, states[run.run_id]))
    return 0


def run_table(sweep, states: dict, jobs: bool = False) -> str:
    """One row per run: run id, model, part-based, frames, H/K pairs, seed, other settings and state."""
    from tabulate import tabulate

    headers = ["run id", "model", "part-based", "frames", "H/K", "seed", "changes", "state"] + (["job"] * jobs)
    rows = []
    for run in sweep.runs:
        config, state = run.config, states[run.run_id]
        pairs = " ".join(f"{h}/{k}" for h, k in config["eval"]["hypotheses_steps"])
        row = [run.run_id, config["model"], "yes" if config["part_based"] else "no", config["frames"], pairs,
               config["seed"], run.changes or "-", state.state]
        rows.append(row + ([state.job.job_id if state.job else "-"] if jobs else []))
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _submitted(submission) -> str:
    count, total = len(submission.jobs), len(submission.states)
    if submission.cluster == "slurm":
        array = sorted({job.job_id.split("_")[0] for job in submission.jobs.values()})
        return f"submitted {count} runs as SLURM job array {', '.join(array)}"
    if submission.cluster == "local":
        return f"started {count} of {total} runs as local processes (the rest start as these finish)"
    return f"running {total} runs in this process, one after another"


def _header(sweep, cluster: str | None) -> str:
    preset = f", preset {sweep.preset}" if sweep.preset else ""
    where = f", cluster {cluster}" if cluster else ""
    return f"sweep {sweep.name} ({sweep.path}): {len(sweep.runs)} runs{preset}{where}"


def _resources(settings: dict) -> str:
    gpus = f"{settings['gpus_per_node']} GPU, " if settings["gpus_per_node"] else ""
    partition = f", partition {settings['partition']}" if settings["partition"] else ""
    return (f"each {gpus}{settings['cpus_per_task']} CPU, {settings['mem_gb']} GB, {settings['timeout_min']} min "
            f"per attempt; at most {settings['array_parallelism']} at once{partition}")


def _summary(states: dict) -> str:
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state.state] = counts.get(state.state, 0) + 1
    return ", ".join(f"{count} {name}" for name, count in counts.items())


def _same_flags(args) -> str:
    flags = [str(args.file), f"--out {args.out}"] + ([f"--preset {args.preset}"] if args.preset else [])
    flags += [f"--seeds {' '.join(map(str, args.seeds))}"] if args.seeds else []
    return " ".join(flags + ([f"--set {' '.join(args.set)}"] if args.set else []))
