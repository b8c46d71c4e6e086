"""Atomic, reproducible file writing: every file appears whole (temp file + rename) or not at all; and a check that
an output path can be written, made before the work that produces it."""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bench.errors import OutputError

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_npz(path: str | os.PathLike, **arrays) -> Path:
    """Write an ``np.load``-compatible npz atomically and byte-reproducibly.

    ``np.savez`` stamps each member with the current time; here every member gets a fixed timestamp, so the same
    arrays always give the same bytes. Object arrays (e.g. 0-d arrays holding dicts, as in H3WB) are pickled.
    """
    path = Path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=True)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
    return path


def save_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


_PROBE_BYTES = 4096
"""What the write check writes (and removes): one block, so that a full disk fails it."""


def check_writable(path: str | os.PathLike, folder: bool = False) -> Path:
    """Check, before long work, that ``path`` can be written: a file (written atomically beside itself) or, with
    ``folder``, a folder to write files into. Nothing is left behind: missing folders are not created, and the
    block written to find out is removed.

    Raises:
        OutputError: naming ``path`` and the problem: a file where a folder is expected or the other way round, a
            file in the way of a folder to create, or a folder that cannot be written (read-only, no permission,
            disk full).
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{path}: expected a folder to write into, found a file")
    if not folder and path.is_dir():
        raise OutputError(f"{path}: expected a file to write, found a folder")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{path}: cannot be created: {existing} is a file, not a folder")
    try:
        _write_probe(existing)
    except OSError as error:
        raise OutputError(f"{path}: cannot write into {existing} ({error.strerror or error})") from error
    return path


def _write_probe(folder: Path) -> None:
    """Write one block into a new file in ``folder``, flushed to the disk, and remove it."""
    fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
    try:
        os.write(fd, bytes(_PROBE_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(probe)
