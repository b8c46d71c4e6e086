"""``check_writable``: an output path that cannot be written is one clear error before any work, with nothing left
behind."""
import errno
import os

import pytest

from bench.errors import OutputError
from bench.io import check_writable


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_writable_paths_pass_and_nothing_is_created(tmp_path):
    (tmp_path / "existing").mkdir()
    for path, folder in ((tmp_path / "existing", True), (tmp_path / "new" / "deeper", True),
                         (tmp_path / "existing" / "table.md", False), (tmp_path / "new" / "out.json", False)):
        assert check_writable(path, folder=folder) == path
    assert _listing(tmp_path) == ["existing"]   # no folder created, no probe file left


@pytest.mark.parametrize("case, folder, message", [
    ("file_for_folder", True, "expected a folder to write into, found a file"),
    ("folder_for_file", False, "expected a file to write, found a folder"),
    ("file_in_the_way", True, "cannot be created: {blocker} is a file, not a folder"),
    ("file_in_the_way", False, "cannot be created: {blocker} is a file, not a folder"),
])
def test_wrong_kind_of_path_is_an_error(blocked, case, folder, message):
    kind = {"folder_for_file": "folder", "file_for_folder": "file", "file_in_the_way": "under_a_file"}[case]
    path, blocker = blocked(kind, "runs/out.json")
    with pytest.raises(OutputError) as info:
        check_writable(path, folder=folder)
    assert str(info.value) == f"{path}: " + message.format(blocker=blocker)


def test_read_only_folder_is_an_error(read_only_folder):
    for path, folder in ((read_only_folder / "evaluations", True), (read_only_folder / "table.md", False)):
        with pytest.raises(OutputError, match=rf"^{path}: cannot write into {read_only_folder} \("):
            check_writable(path, folder=folder)
    assert _listing(read_only_folder) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_full_disk_or_read_only_file_system_is_an_error_and_leaves_no_probe(tmp_path, monkeypatch, code):
    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)   # where a full disk shows at the latest
    with pytest.raises(OutputError, match=rf"{tmp_path}: cannot write into {tmp_path} \({os.strerror(code)}\)"):
        check_writable(tmp_path, folder=True)
    assert _listing(tmp_path) == []
