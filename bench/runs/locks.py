"""One writer per run folder: an exclusive lock file (``run.lock``) holding the writer's pid, host and start time.

Taking the lock links a complete lock file into place (``os.link`` fails if one exists, on local and network file
systems alike), so nobody ever reads a half-written one. The writer also holds ``flock`` on it for as long as it
runs; the kernel drops that lock when the process ends, however it ends. A lock file left by a killed writer is
stale: on the same host, its pid no longer runs or its ``flock`` is free (the pid was reused), and the next writer
removes it. A lock written on another host cannot be checked from here and counts as held. The lock file goes away
when its writer finishes (or fails); a SIGKILL leaves it, stale.
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError, RunLockedError

LOCK_NAME = "run.lock"
_ATTEMPTS = 20
"""Tries to take a lock in one go: a stale lock removed, or one briefly flocked by a reader, is retried at once."""


@dataclass(frozen=True)
class Holder:
    """Who holds a run folder's lock.

    Attributes:
        live: True when a process of this host holds it; False when it is stale; None when it was taken on another
            host (which cannot be checked from here).
    """

    path: Path
    pid: int | None
    host: str
    started: str
    live: bool | None

    def describe(self) -> str:
        since = f", since {self.started}" if self.started else ""
        return f"pid {self.pid} on host {self.host or '?'}{since}"


def lock_holder(folder: str | os.PathLike) -> Holder | None:
    """The holder of ``folder``'s lock (None without a lock file); reading it changes nothing."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        info = _read(fd)
        if info["host"] and info["host"] != socket.gethostname():
            return Holder(path, info["pid"], info["host"], info["started"], None)
        free = _flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        if free:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return Holder(path, info["pid"], info["host"], info["started"], _pid_alive(info["pid"]) and free is not True)
    finally:
        os.close(fd)


class RunLock:
    """The exclusive lock of a run folder, as a context manager.

    Args:
        folder: the run folder (it must exist).
        wait_s: how long to wait for a live holder to finish before giving up (0: refuse at once).

    Raises:
        RunLockedError: another live process holds the lock (its pid and host are named).
    """

    def __init__(self, folder: str | os.PathLike, wait_s: float = 0.0):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.wait_s = wait_s
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            holder = self._try_acquire()
            if holder is None:
                return
            if time.monotonic() >= deadline:
                raise RunLockedError(_refusal(self.folder, holder))
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def release(self) -> None:
        """Remove the lock file (if it is still ours) and drop the flock."""
        if self._fd is None:
            return
        try:
            if _same_file(self._fd, self.path):
                os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def _try_acquire(self) -> Holder | None:
        holder = None
        for _ in range(_ATTEMPTS):
            if self._link():
                return None
            holder, busy = self._inspect()
            if holder is not None and not busy:
                return holder
            if busy:
                time.sleep(0.05)
        return holder or Holder(self.path, None, "", "", True)   # taken and released by others all along

    def _link(self) -> bool:
        """Link a complete, flocked lock file into place; False if a lock file is there."""
        tmp = self.folder / f".{LOCK_NAME}.{uuid.uuid4().hex[:12]}.new"
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except OSError as error:
            raise ConfigError(f"{self.folder}: cannot write the run folder's lock ({error})") from error
        try:
            os.write(fd, (json.dumps(info) + "\n").encode())
            _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # a new file: nobody else can hold it
            os.link(tmp, self.path)
        except FileExistsError:
            os.close(fd)
            return False
        except OSError as error:
            os.close(fd)
            raise ConfigError(f"{self.folder}: cannot take the run folder's lock ({error})") from error
        finally:
            tmp.unlink(missing_ok=True)
        self._fd = fd
        return True

    def _inspect(self) -> tuple[Holder | None, bool]:
        """(the live holder, False); (None, False) after removing a stale lock; (holder, True) when its flock is
        briefly held by another reader."""
        try:   # opened for writing where allowed: network file systems lend exclusive locks only to writers
            fd = _open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return None, False
        try:
            info = _read(fd)
            holder = Holder(self.path, info["pid"], info["host"], info["started"], True)
            if info["host"] and info["host"] != socket.gethostname():
                return Holder(self.path, info["pid"], info["host"], info["started"], None), False
            free, alive = _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), _pid_alive(info["pid"])
            if free is False:
                return holder, not alive   # a dead holder's flock held: someone else is looking at it too
            if alive and free is None:
                return holder, False       # no flock on this file system: the pid decides
            if _same_file(fd, self.path):  # stale: remove it, unless another process replaced it meanwhile
                os.unlink(self.path)
            return None, False
        finally:
            os.close(fd)


def _refusal(folder: Path, holder: Holder) -> str:
    text = f"{folder}: another process is writing this run (lock {holder.path}: {holder.describe()})"
    if holder.live is None:
        return text + (f"; it was taken on another host, so it cannot be checked from here. If no such process "
                       f"runs on {holder.host} any more, delete {holder.path}")
    return text + "; wait for it to finish or stop it, then run the same command again"


def _read(fd: int) -> dict:
    """The lock file's pid, host and start time; an unreadable one has none of them."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        pid = int(info["pid"])
        return {"pid": pid, "host": str(info.get("host", "")), "started": str(info.get("started", ""))}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return {"pid": None, "host": "", "started": ""}


def _flock(fd: int, operation: int) -> bool | None:
    """True if the flock was taken, False if another open file holds it, None if the file system has none."""
    try:
        fcntl.flock(fd, operation)
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        return None


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process
        return True
    return True


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags)
    except PermissionError:   # another user's lock file: readable, and enough to tell whether it is held
        return os.open(path, os.O_RDONLY)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
