"""Output paths are checked before the work that fills them: a file where a folder is expected, a folder where a
file is expected, a read-only folder, a full disk. Each is exit 2 with one line naming the path, nothing written."""
import errno
import os

import pytest

import bench.data.synthetic
import bench.reports.gather
from bench.cli import main
from bench.runs.training import Run


@pytest.fixture
def no_work(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail("the work started although its output cannot be written")

    monkeypatch.setattr(Run, "__call__", fail)
    monkeypatch.setattr(bench.reports.gather, "build_report", fail)
    monkeypatch.setattr(bench.data.synthetic, "write_synthetic", fail)


def _paths(tmp_path):
    file = tmp_path / "a-file"
    file.write_text("x")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return file, folder


@pytest.mark.parametrize("command, kind", [
    (["run", "--model", "mixste", "--out"], "folder"),
    (["data", "synth", "--out"], "folder"),
    (["report", "--out"], "file"),
    (["report", "--plot"], "file"),
    (["data", "stats", "--plot"], "file"),
])
def test_wrong_kind_of_output_path(command, kind, tmp_path, no_work, cli_fails, files_under):
    file, folder = _paths(tmp_path)
    if kind == "folder":
        cli_fails([*command, str(file)], f"{file}: expected a folder to write into, found a file")
        cli_fails([*command, str(file / "below")], f"{file / 'below'}: cannot be created: {file} is a file")
    else:
        cli_fails([*command, str(folder)], f"{folder}: expected a file to write, found a folder")
    assert files_under(tmp_path) == ["a-file", "a-folder"]


@pytest.mark.parametrize("command, name", [
    (["run", "--model", "mixste", "--out"], "runs"),
    (["data", "synth", "--out"], "synthetic"),
    (["report", "--out"], "table.md"),
    (["report", "--plot"], "parts.png"),
    (["data", "stats", "--plot"], "gaps.png"),
])
def test_read_only_output_folder(command, name, read_only_folder, no_work, cli_fails, files_under):
    target = read_only_folder / name
    cli_fails([*command, str(target)], f"{target}: cannot write into {read_only_folder} (")
    assert files_under(read_only_folder) == []


def test_full_disk_is_found_before_the_work(tmp_path, monkeypatch, no_work, cli_fails, files_under):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    cli_fails(["report", "--out", str(tmp_path / "table.md")],
              f"{tmp_path / 'table.md'}: cannot write into {tmp_path} (No space left on device)")
    assert files_under(tmp_path) == []


def test_a_write_that_fails_late_is_an_error_without_a_traceback(tmp_path, monkeypatch, cli_fails):
    import bench.io

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(bench.io, "save_text", full)   # the disk filled up after the check
    cli_fails(["report", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "table.md")],
              f"error: [Errno 28] No space left on device: '{tmp_path / 'table.md'}'")


def test_a_finished_run_in_a_read_only_folder_is_still_shown(tiny_data, tmp_path, lock_folder, capsys):
    argv = ["run", "--model", "videopose", "--epochs", "1", "--data", str(tiny_data), "--set",
            "model_args.channels=16", "train.stride=8", "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    for folder in sorted((tmp_path / "runs").rglob("*"), reverse=True):
        if folder.is_dir():
            lock_folder(folder)
    lock_folder(tmp_path / "runs")
    capsys.readouterr()
    assert main(argv) == 0   # nothing to write: the record is printed
    assert "record:" in capsys.readouterr().out
