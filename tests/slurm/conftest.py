"""The one-node SLURM the tests submit to (started by `bash slurm/local_cluster.sh start`, as .ci/run does)."""
import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def slurm():
    """Skip when there is no running SLURM here, except under CI=true, where that is a failure."""
    problem = None
    if shutil.which("sbatch") is None:
        problem = "sbatch is not on PATH"
    elif "is UP" not in subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout:
        problem = "slurmctld does not answer `scontrol ping`"
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {problem}: .ci/run must start the local SLURM (bash slurm/local_cluster.sh start)")
    if problem:
        pytest.skip(f"{problem}: start a one-node SLURM with `bash slurm/local_cluster.sh start`")
