"""Shared fixtures: tiny model sizes for every registered lifter, and a tiny synthetic dataset."""
import pytest
import torch

TINY_MODEL_ARGS = {
    "videopose": {"channels": 16, "dropout": 0.0},
    "poseformer": {"joint_width": 2, "depth": 1, "heads": 1},
    "mixste": {"width": 16, "depth": 1, "heads": 1},
    "d3dp": {"width": 16, "depth": 1, "heads": 1},
    "pafuse": {"width": 16, "depth": 1},   # balanced part widths from width 16: 16 / 8 / 8 (body / face / hands)
}
"""Architecture overrides that make each registered lifter small enough for CPU tests (one attention head: at
134 joints the spatial attention maps, not the widths, dominate the cost on CPU)."""


@pytest.fixture(scope="session")
def tiny_args():
    return TINY_MODEL_ARGS


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A folder with the tiny synthetic set (2 actions per subject) in H3WB's layout."""
    from bench.data.synthetic import write_synthetic

    folder = tmp_path_factory.mktemp("tiny-h3wb")
    write_synthetic(folder, size="tiny", seed=0)
    return folder


@pytest.fixture
def single_thread():
    """Run a test on one CPU thread: tiny models are faster that way, and CI machines are often shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



def _can_write(folder) -> bool:
    try:
        (folder / ".probe").write_text("x")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@pytest.fixture
def lock_folder():
    """A function that makes an existing folder read-only: mode 0555, or for root (whom modes do not stop) the
    immutable attribute where ``chattr`` can set it; it skips the test where neither works. Unlocked afterwards."""
    import shutil
    import subprocess

    locked = []

    def lock(folder):
        folder.chmod(0o555)
        immutable = False
        if _can_write(folder) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        locked.append((folder, immutable))
        if _can_write(folder):
            pytest.skip("no way to make a read-only folder here")
        return folder

    yield lock
    for folder, immutable in reversed(locked):
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


@pytest.fixture
def read_only_folder(tmp_path, lock_folder):
    """An empty folder that cannot be written (see ``lock_folder``)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    return lock_folder(folder)


@pytest.fixture
def blocked(tmp_path):
    """Paths that cannot be written as asked, beside a ``blocker``: ``blocked("folder")`` is a folder where a file
    is expected, ``blocked("file")`` a file where a folder is, ``blocked("under_a_file", name)`` lies under a file.
    Returns (path, blocker)."""
    def make(kind: str, name: str = "out.json"):
        blocker = tmp_path / "blocker"
        if kind == "folder":
            blocker.mkdir()
            return blocker, blocker
        blocker.write_text("a file")
        return (blocker if kind == "file" else blocker / name), blocker

    return make


def _stop_run_after(epochs: int, monkeypatch) -> None:
    """Make ``Run`` stop, as if killed, once ``epochs`` epochs are complete (and saved)."""
    from bench.runs.training import Run

    original = Run._epoch

    def epoch(self, *args, **kwargs):
        state = original(self, *args, **kwargs)
        if state["epoch"] == epochs:
            raise KeyboardInterrupt("simulated kill")
        return state

    monkeypatch.setattr(Run, "_epoch", epoch)


@pytest.fixture
def stop_run_after():
    """``stop_run_after(epochs, monkeypatch)``: see :func:`_stop_run_after` (a patch scoped by the caller)."""
    return _stop_run_after


def _files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def files_under():
    """``files_under(folder)``: every path below ``folder``, relative and sorted (to see that nothing was written)."""
    return _files_under


@pytest.fixture
def cli_fails(capsys):
    """``cli_fails(argv, message)``: ``python -m bench ARGV`` exits 2 with one error line holding ``message``, no
    traceback and no result table."""
    from bench.cli import main

    def check(argv, message):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("error: ") and message in captured.err, captured.err
        assert "Traceback" not in captured.err and "|" not in captured.out

    return check
