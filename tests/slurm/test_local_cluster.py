"""slurm/local_cluster.sh against the running one-node SLURM: start is a no-op, status shows the node, stop ends only
the daemons the script recorded. (Starting and stopping the cluster itself is what .ci/run does around the tests.)"""
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "slurm" / "local_cluster.sh"


def _script(*args, env=None):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env=env)


def _slurmctld_pid() -> str:
    return Path("/run/slurmctld.pid").read_text().strip()


def test_script_is_valid_bash_with_strict_mode():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    assert "set -euo pipefail" in SCRIPT.read_text().splitlines()


@pytest.mark.parametrize("args", [[], ["restart"]])
def test_unknown_command_prints_usage(args):
    result = _script(*args)
    assert result.returncode == 2 and "usage: bash slurm/local_cluster.sh start|stop|status" in result.stderr


def test_start_when_running_changes_nothing(slurm):
    before = _slurmctld_pid()
    result = _script("start")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout and "nothing to do" in result.stdout
    assert _slurmctld_pid() == before


def test_status_shows_the_idle_node_and_the_queue(slurm):
    result = _script("status")
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and lines[0].split()[:5] == ["PARTITION", "AVAIL", "TIMELIMIT", "NODES", "STATE"]
    assert lines[1].startswith("debug*") and lines[1].split()[4] in ("idle", "mix", "alloc")
    assert any(line.split()[:3] == ["JOBID", "PARTITION", "NAME"] for line in lines)


def test_stop_without_records_stops_nothing(slurm, tmp_path):
    env = {**os.environ, "LOCAL_CLUSTER_STATE": str(tmp_path)}
    before = _slurmctld_pid()
    result = _script("stop", env=env)
    assert result.returncode == 0 and "nothing to stop" in result.stdout
    assert _slurmctld_pid() == before and "is UP" in subprocess.run(["scontrol", "ping"], capture_output=True,
                                                                     text=True).stdout


def test_start_after_a_crash_forgets_the_dead_jobs(slurm):
    """The daemons die with a job running (a machine restored from a snapshot looks the same). A start brings the
    node back idle with an empty queue instead of waiting on a job whose processes are gone."""
    submitted = subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 600"],
                               capture_output=True, text=True, check=True)
    job = submitted.stdout.strip()
    subprocess.run(["pkill", "-KILL", "-x", "slurmctld"], check=True)
    subprocess.run(["pkill", "-KILL", "-x", "slurmd"], check=True)
    result = _script("start")
    assert result.returncode == 0, result.stderr
    assert "slurmctld started" in result.stdout and "idle: local SLURM ready" in result.stdout
    queue = subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True, check=True).stdout
    assert job not in queue.split()
    state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, check=True).stdout.strip()
    assert state == "idle"
