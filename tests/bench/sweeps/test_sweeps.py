"""Sweep files without a cluster: expansion, run ids, errors, skipping finished runs, the sbatch script, states."""
import json
import os
import pickle
import re
from pathlib import Path

import cloudpickle
import pytest
import yaml
from submitit.core.utils import JobPaths

from bench.cli import build_parser, main
from bench.cli.run import flags_to_config
from bench.runs import config as cfg
from bench.sweeps.files import EXECUTOR_DEFAULTS, SweepError, load_sweep
from bench.sweeps.jobs import SweepJob, sbatch_script
from bench.sweeps.status import JobRef, run_state

SBATCH_RECORD = Path(__file__).parent / "sweep_sbatch_record.txt"
KEPT = {"run_id": "kept", "model": "mixste", "training": {},
        "metrics": {"H1-K1": {e: dict.fromkeys(("WB", "PB", "Body", "Face", "Hands"), 1.0)
                              for e in ("P-Best", "P-Agg", "J-Best")}}}
"""A complete record (every metric of every estimator): only such a record counts as a finished run."""


def _write(folder: Path, spec: dict, name: str = "demo.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _tiny_spec(tiny_data, tiny_args, **extra) -> dict:
    spec = {"base": {"data": str(tiny_data), "model_args": tiny_args["mixste"], "train": {"epochs": 1}},
            "runs": [{"model": "mixste"}]}
    return {**spec, **extra}


def test_grid_product_explicit_runs_and_seeds_expand_in_order(tmp_path, tiny_args):
    spec = {"base": {"model": "mixste", "model_args": tiny_args["mixste"]},
            "grid": {"part_based": [False, True], "frames": [27, 81]},
            "runs": [{"train": {"epochs": 2}}],
            "seeds": [0, 1]}
    sweep = load_sweep(_write(tmp_path, spec))
    labels = [run.label for run in sweep.runs]
    assert len(labels) == 2 * 2 * 2 + 2 and len({run.run_id for run in sweep.runs}) == 10
    assert labels[:3] == ["grid part_based=false frames=27 seed=0", "grid part_based=false frames=27 seed=1",
                          "grid part_based=false frames=81 seed=0"]
    assert labels[-2:] == ["runs[0] seed=0", "runs[0] seed=1"]
    assert [(r.config["part_based"], r.config["frames"], r.config["seed"]) for r in sweep.runs[:8]] == [
        (p, n, s) for p in (False, True) for n in (27, 81) for s in (0, 1)]
    assert [r.config["train"]["epochs"] for r in sweep.runs] == [160] * 8 + [2, 2]  # mixste's recipe
    assert sweep.runs[-1].changes == "train.epochs=2" and sweep.name == "demo"


def test_every_run_id_is_bench_runs_for_the_same_settings(tmp_path, tiny_args):
    spec = {"base": {"model_args": tiny_args["mixste"]},
            "grid": {"part_based": [False, True], "frames": [27, 81]},
            "runs": [{"seed": 3, "train": {"epochs": 2}}]}
    spec["base"]["model"] = "mixste"
    sweep = load_sweep(_write(tmp_path, spec), preset="quick")
    assert len(sweep.runs) == 5 and len({run.run_id for run in sweep.runs}) == 5
    for run in sweep.runs:
        config = run.config
        argv = ["--model", "mixste", "--frames", str(config["frames"]), "--preset", "quick",
                "--set", f"model_args={json.dumps(tiny_args['mixste'])}", f"seed={config['seed']}",
                f"train.epochs={config['train']['epochs']}"] + (["--part-based"] if config["part_based"] else [])
        args = build_parser().parse_args(["run", *argv])
        expected = cfg.resolve(flags_to_config(args), preset_name="quick")
        assert run.run_id == cfg.run_id(expected) and run.config == expected
    assert sweep.runs[-1].config["train"]["epochs"] == 2 and sweep.runs[0].config["train"]["epochs"] == 8


def test_dotted_grid_keys_and_hypotheses_as_a_grid_axis(tmp_path, tiny_args):
    spec = {"base": {"model": "pafuse", "model_args": tiny_args["pafuse"]},
            "grid": [{"parts.shift": [True, False]},
                     {"eval.hypotheses_steps": [[[1, 1]], [[2, 2], [3, 1]]], "parts.loss": ["wb"]}]}
    sweep = load_sweep(_write(tmp_path, spec))
    assert [run.config["parts"]["shift"] for run in sweep.runs] == [True, False, None, None]
    assert [run.config["eval"]["hypotheses_steps"] for run in sweep.runs[2:]] == [[[1, 1]], [[2, 2], [3, 1]]]
    assert sweep.runs[1].changes == "parts.shift=false" and sweep.runs[3].changes == "parts.loss=wb"
    assert sweep.runs[2].label.startswith("grid[1] eval.hypotheses_steps=[[1, 1]]")


def test_device_follows_the_executor_gpus_unless_set(tmp_path, tiny_args):
    spec = {"base": {"model": "mixste", "model_args": tiny_args["mixste"]}, "runs": [{}, {"device": "cpu", "seed": 1}],
            "executor": {"gpus_per_node": 1}, "preset_executor": {"quick": {"gpus_per_node": 0, "mem_gb": 2}}}
    path = _write(tmp_path, spec)
    gpu, cpu = load_sweep(path), load_sweep(path, preset="quick")
    assert [run.config["device"] for run in gpu.runs] == ["cuda", "cpu"]
    assert [run.config["device"] for run in cpu.runs] == ["cpu", "cpu"]
    assert gpu.runs[0].run_id == load_sweep(path, overrides={"device": "cpu"}).runs[0].run_id  # not in the run id
    assert cpu.executor == {**EXECUTOR_DEFAULTS, "gpus_per_node": 0, "mem_gb": 2}


@pytest.mark.parametrize("spec, message", [
    ({"runs": [{"model": "mixste"}], "grids": {}}, "demo.yaml: unknown keys ['grids']; a sweep file has name"),
    ({"runs": [{"model": "mixste"}, {"model": "mixste", "train": {"epoch": 2}}]},
     "demo.yaml: runs[1]: train: unknown key 'epoch'; valid keys: amsgrad"),
    ({"grid": {"model": ["mixste"], "frames": []}}, "demo.yaml: grid: frames must be a non-empty list of values"),
    ({"base": {"model": "mixste"}, "runs": [{}, {"seed": 0}]},
     "runs[1] and runs[0] are the same run (mixste-27f-seed0-"),
    ({"runs": [{"model": "mixste"}], "executor": {"gpus": 1}},
     "demo.yaml: executor: unknown keys ['gpus']; valid keys: partition, gpus_per_node"),
    ({"runs": [{"model": "mixste", "seed": 2}], "seeds": [0, 1]},
     "runs[0] sets seed, and seeds crosses every run with [0, 1]: keep one"),
    ({"runs": [{"model": "nope"}]}, "demo.yaml: runs[0]: unknown model 'nope'; registered lifters: d3dp"),
    ({"base": {"model": "mixste"}}, "demo.yaml: no runs: give a grid, a list of runs, or both"),
])
def test_bad_sweep_files_name_the_file_and_entry(spec, message, tmp_path):
    with pytest.raises(SweepError) as error:
        load_sweep(_write(tmp_path, spec))
    assert message in str(error.value)


def test_sweep_skips_finished_runs_and_reports_a_failed_one_while_the_rest_goes_on(tmp_path, tiny_data, tiny_args,
                                                                                   capsys):
    spec = _tiny_spec(tiny_data, tiny_args)
    spec["runs"] = [{"model": "mixste", "seed": 0}, {"model": "mixste", "seed": 1},
                    {"model": "mixste", "seed": 2, "data": str(tmp_path / "missing")}]
    path, out = _write(tmp_path, spec), tmp_path / "runs"
    finished, fresh, broken = load_sweep(path).runs
    (out / finished.run_id).mkdir(parents=True)
    (out / finished.run_id / "record.json").write_text(json.dumps(KEPT))

    assert main(["sweep", str(path), "--cluster", "debug", "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"| {finished.run_id} " in printed and "| done " in printed and "would submit 2 of 3 runs" in printed
    assert not (tmp_path / "sweeps").exists()

    assert main(["sweep", str(path), "--cluster", "debug", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert json.loads((out / finished.run_id / "record.json").read_text()) == KEPT
    assert json.loads((out / fresh.run_id / "record.json").read_text())["run_id"] == fresh.run_id
    assert f"FAILED {broken.run_id} (job DEBUG_" in printed and "missing" in printed
    assert "1 of 2 submitted runs done, 1 failed" in printed

    assert main(["status", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 done, 1 failed" in printed and f"FAILED {broken.run_id}" in printed


def test_sbatch_script_matches_the_recorded_one():
    """Like submitit's own sbatch test: when a change is intended, regenerate the record with
    ``BENCH_RECORD_SBATCH=1 python -m pytest tests/bench/test_sweeps.py``."""
    settings = {**EXECUTOR_DEFAULTS, "partition": "gpu", "gpus_per_node": 1, "cpus_per_task": 8, "mem_gb": 32,
                "timeout_min": 720, "array_parallelism": 2, "signal_delay_s": 120}
    text = sbatch_script(settings, "table1", Path("/results/sweeps/table1/SUBMISSION"), tasks=3, python="python")
    if os.environ.get("BENCH_RECORD_SBATCH") == "1":
        SBATCH_RECORD.write_text(text)
    recorded = SBATCH_RECORD.read_text()
    assert text.splitlines() == recorded.splitlines(), \
        f"sbatch script changed; regenerate {SBATCH_RECORD} with BENCH_RECORD_SBATCH=1 if intended"
    for line in ("#SBATCH --array=0-2%2", "#SBATCH --requeue", "#SBATCH --signal=USR2@120", "#SBATCH --time=720",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32768MB",
                 "#SBATCH --partition=gpu", "#SBATCH --job-name=bench-table1"):
        assert line in text.splitlines()
    single = sbatch_script(settings, "table1", Path("/results/sweeps/table1/SUBMISSION"), tasks=1, python="python")
    assert "--array" not in single and "#SBATCH --output=/results/sweeps/table1/SUBMISSION/%j_0_log.out" in single


def test_checkpoint_requeues_a_fresh_job_for_the_same_run():
    job = SweepJob({"model": "mixste", "seed": 4}, "/runs", threads=2)
    delayed = job.checkpoint()
    assert delayed.function is not job and isinstance(delayed.function, SweepJob)
    assert (delayed.function.config, delayed.function.out, delayed.function.threads) == (job.config, "/runs", 2)
    assert delayed.args == () and delayed.kwargs == {}
    restored = pickle.loads(cloudpickle.dumps(delayed))  # what submitit writes over the job's submitted pickle
    assert vars(restored.function) == vars(job)


def _result(folder: Path, job_id: str, outcome: str, value) -> None:
    paths = JobPaths(folder, job_id, 0)
    folder.mkdir(parents=True, exist_ok=True)
    paths.result_pickle.write_bytes(cloudpickle.dumps((outcome, value)))
    paths.stderr.write_text("".join(f"line {i}\n" for i in range(30)))


def test_run_state_from_record_queue_and_result_file(tmp_path):
    run, folder = tmp_path / "runs" / "r", tmp_path / "sweeps" / "demo" / "s1"
    job = JobRef("slurm", "7_1", folder)
    assert run_state(run, None, {}).state == "not submitted"
    assert run_state(run, job, {"7_1": "PENDING"}).state == "queued"
    assert run_state(run, job, {"7_1": "REQUEUED"}).state == "queued"
    assert run_state(run, job, {"7_1": "RUNNING"}).state == "running"
    assert run_state(run, job, None).state == "unknown"
    _result(folder, "7_1", "error", "Traceback (most recent call last):\n  ...\nValueError: boom\n")
    failed = run_state(run, job, {})
    assert (failed.state, failed.error) == ("failed", "ValueError: boom")
    assert failed.log_tail[1:] == [f"line {i}" for i in range(20, 30)]
    local = JobRef("local", "999999999", folder)  # no such process
    _result(folder, "999999999", "error", "RuntimeError: gone")
    assert run_state(run, local, {}).error == "RuntimeError: gone"
    run.mkdir(parents=True)
    (run / "record.json").write_text(json.dumps(KEPT))
    assert run_state(run, job, {"7_1": "RUNNING"}).state == "done"


def test_seeds_flag_replaces_the_file_seeds_for_sweep_and_status(tmp_path, tiny_data, tiny_args, capsys):
    spec = _tiny_spec(tiny_data, tiny_args)
    spec["runs"], spec["seeds"] = [{"model": "mixste"}], [0]
    path, out = _write(tmp_path, spec), tmp_path / "runs"
    runs = load_sweep(path, seeds=[3, 4]).runs
    assert [run.config["seed"] for run in runs] == [3, 4] and len({run.run_id for run in runs}) == 2
    assert main(["sweep", str(path), "--cluster", "debug", "--out", str(out), "--seeds", "3", "4", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert all(f"| {run.run_id} " in printed for run in runs) and "would submit 2 of 2 runs" in printed
    assert main(["status", str(path), "--out", str(out), "--seeds", "3", "4"]) == 0
    printed = capsys.readouterr().out
    assert all(f"| {run.run_id} " in printed for run in runs)


def test_executor_tasks_make_one_run_over_several_devices(tmp_path, tiny_args):
    spec = {"base": {"model": "mixste", "model_args": tiny_args["mixste"]}, "runs": [{}],
            "executor": {"gpus_per_node": 4, "nodes": 2}, "preset_executor": {"quick": {"gpus_per_node": 0,
                                                                                        "tasks_per_node": 2}}}
    path = _write(tmp_path, spec)
    gpus, cpus = load_sweep(path), load_sweep(path, preset="quick")
    assert (gpus.runs[0].config["devices"], gpus.runs[0].config["device"]) == (8, "cuda")   # 2 nodes x 4 GPUs
    assert (cpus.runs[0].config["devices"], cpus.runs[0].config["device"]) == (4, "cpu")    # 2 nodes x 2 tasks
    assert gpus.runs[0].run_id == load_sweep(path, overrides={"device": "cpu", "devices": 8}).runs[0].run_id
    script = sbatch_script(gpus.executor, "demo", Path("/sweeps/demo/SUBMISSION"), tasks=1, python="python")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4"):
        assert line in script.splitlines()
    assert "srun --unbuffered --output /sweeps/demo/SUBMISSION/%j_%t_log.out --error " \
           "/sweeps/demo/SUBMISSION/%j_%t_log.err --kill-on-bad-exit=1 python" in script
    one = sbatch_script(EXECUTOR_DEFAULTS, "demo", Path("/sweeps/demo/SUBMISSION"), tasks=1, python="python")
    assert "--kill-on-bad-exit" not in one and "--ntasks-per-node" not in one   # one task: as before


@pytest.mark.parametrize("executor, run, message", [
    ({"gpus_per_node": 2, "tasks_per_node": 1}, {},
     "executor: each process of a run takes one GPU, so tasks_per_node must be gpus_per_node (2) or null, got 1"),
    ({"tasks_per_node": 2}, {"devices": 3},
     "runs[0]: devices is 3, but the executor gives each run 2 processes (nodes 1 x tasks_per_node 2)"),
    ({"tasks_per_node": 0}, {}, "executor.tasks_per_node must be a number >= 1, got 0"),
])
def test_devices_and_executor_tasks_must_agree(executor, run, message, tmp_path):
    spec = {"base": {"model": "mixste"}, "runs": [run], "executor": executor}
    with pytest.raises(SweepError, match=re.escape(message)):
        load_sweep(_write(tmp_path, spec))


def test_a_run_over_several_devices_needs_a_cluster_of_processes(tmp_path):
    from bench.sweeps.jobs import make_executor

    with pytest.raises(ValueError, match="cluster debug runs in this process: executor.nodes must be 1 and "
                                         "tasks_per_node 1, got 1 x 2"):
        make_executor("debug", tmp_path, {**EXECUTOR_DEFAULTS, "tasks_per_node": 2}, "demo")
    with pytest.raises(ValueError, match="cluster local runs on this machine: executor.nodes must be 1, got 2 x 1"):
        make_executor("local", tmp_path, {**EXECUTOR_DEFAULTS, "nodes": 2}, "demo")
