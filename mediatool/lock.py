"""One writing run per cache folder: an OS lock that ends with the process holding it.

`hold_cache(folder, command)` takes an exclusive `flock` on <cache>/lock (made when missing)
and writes who holds it into the file (process id, command, start time, host). The kernel
drops the lock when its process ends, however it ends (kill -9 included), so the lock of a
dead run is simply taken over: nothing needs breaking or deleting by hand.

A second writing run on the same cache exits at once with CacheBusy (exit 3):

    error: cache cache in use by PID 28546 since 2026-12-04 05:21:12 (mediatool fetch); wait
    for it to finish or stop it.

or, with `wait` (Settings.wait_for_lock), says so once and waits until the lock is free.
Commands that only read the cache (scan, rewrite --check and --dry-run, report) take no lock:
the manifest is SQLite in WAL mode, whose readers see the last commit while a writer goes on.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from mediatool.errors import CacheBusy, CacheNotWritable

LOCK_NAME = "lock"
NO_LOCKING = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # file systems without flock


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a cache's lock, as written into the lock file."""

    pid: int
    command: str
    started: float  # seconds since the epoch
    host: str

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"PID {self.pid}{where} since {since} (mediatool {self.command})"


@contextlib.contextmanager
def hold_cache(
    folder: Path, command: str, *, wait: bool = False, say: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold `folder`'s lock within the block (the folder is made when missing). When another
    process holds it: CacheBusy, or with `wait` one line said and a wait for it."""
    fd = _open(folder)
    locked = False
    try:
        locked = _lock(fd, folder, wait, say)
        if locked:
            _write_holder(fd, Holder(os.getpid(), command, time.time(), socket.gethostname()))
        yield
    finally:
        if locked:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # the file names no holder once the lock is free
        os.close(fd)


def _open(folder: Path) -> int:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise CacheNotWritable(
            f"{folder}: cache folder is not writable ({exc.strerror}); "
            "choose another with --cache or fix its permissions."
        ) from exc


def _lock(fd: int, folder: Path, wait: bool, say: Callable[[str], None] | None) -> bool:
    """Take the lock; False when the file system cannot lock at all (then said, and the run
    goes on unguarded)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    except OSError as exc:
        if exc.errno not in NO_LOCKING:
            raise
        if say:
            say(f"{folder}: cannot lock the cache ({exc.strerror}); run one mediatool at a time.")
        return False
    message = f"cache {folder} in use by {_describe_holder(fd)}"
    if not wait:
        raise CacheBusy(f"{message}; wait for it to finish or stop it.")
    if say:
        say(f"{message}; waiting for it to finish.")
    fcntl.flock(fd, fcntl.LOCK_EX)
    return True


def _describe_holder(fd: int) -> str:
    holder = read_holder(fd)
    return holder.describe() if holder else "another mediatool run"


def read_holder(fd: int) -> Holder | None:
    """The holder written in an open lock file; None when it names none (yet)."""
    try:
        return Holder(**json.loads(os.pread(fd, 4096, 0)))
    except (OSError, ValueError, TypeError):
        return None


def _write_holder(fd: int, holder: Holder) -> None:
    """Name the holder in the lock file, for the message a second run gives. Best effort: the
    flock is the lock, so a full disk that refuses these bytes does not stop the run here (its
    first real write names the full disk)."""
    data = json.dumps(asdict(holder)).encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
