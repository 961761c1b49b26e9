"""Write once, rename into place: no reader ever sees a half-written file."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from mediatool.processes import process_alive

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

TEMP_PREFIX = ".mediatool-"
TEMP_SUFFIX = ".part"


_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
_pid = os.getpid()
_serial = itertools.count()


def _after_fork() -> None:
    global _pid, _serial
    _pid, _serial = os.getpid(), itertools.count()


os.register_at_fork(after_in_child=_after_fork)


class _WholeWriter(io.FileIO):
    """An unbuffered file whose write() writes every byte (a raw write may write fewer)."""

    def write(self, data: ReadableBuffer) -> int:
        # The views are released on the way out, not when this frame goes: a frame may outlive
        # the call (a sampling profiler, such as a Dask worker's, holds threads' frames), and a
        # view left alive keeps the caller's bytearray from being resized (BufferError).
        with memoryview(data) as whole, whole.cast("B") as view:
            done = 0
            while done < len(view):
                written = super().write(view[done:])
                if written is None:  # only a non-blocking file answers so; these never are
                    raise BlockingIOError(f"{self.name}: the file would block")
                done += written
            return done


def _create_temp(folder: Path) -> tuple[int, Path]:
    """A new file in `folder`, opened exclusively (O_EXCL: never an existing one), mode 0600.

    Named by process id and a counter, not by random letters: fewer system calls per file
    than `tempfile.mkstemp`, which matters when the fetcher makes one per download."""
    while True:
        path = folder / f"{TEMP_PREFIX}{_pid}-{next(_serial)}{TEMP_SUFFIX}"
        try:
            return os.open(path, _OPEN_FLAGS, 0o600), path
        except FileExistsError:  # a left-over of a killed run with the same process id
            continue


@contextlib.contextmanager
def temp_file_in(folder: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """An open temporary file in `folder` (same file system as its final place); deleted on error.

    Only an error inside the block removes it. After the block the file is the caller's: it
    renames it into place with `publish` (at once, or later, as the fetcher does) or unlinks it.
    A killed run leaves its temporary files behind: `Store.prepare` (every fetch) clears those
    in cache/tmp with `remove_stale_temp_files`; those `atomic_write_bytes` made beside a post,
    a thumbnail or the report stay there (named `.mediatool-<pid>-<n>.part`).
    `folder` is created when missing (the common case, it exists, costs no extra system call).
    Writes go straight to the file (no buffer): callers write whole blocks."""
    try:
        fd, path = _create_temp(folder)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = _create_temp(folder)
    try:
        with _WholeWriter(fd, "wb") as handle:
            yield handle, path
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a write on a full disk: name the file in the message
        raise


class FolderMemory(Protocol):
    """Folders known to exist (a set of Paths will do; `store.ShardFolders` is smaller)."""

    def __contains__(self, folder: object) -> bool: ...

    def add(self, folder: Path) -> None: ...


def publish(
    temp_path: Path,
    final_path: Path,
    *,
    keep_mode_of: Path | None = None,
    known_folders: FolderMemory | None = None,
) -> None:
    """Rename a finished temporary file onto its final name (atomic on POSIX).

    `known_folders` (the caller's, shared between calls) remembers the folders made, so a
    store that publishes thousands of files asks for each shard folder once; a folder removed
    meanwhile is made again."""
    folder = final_path.parent
    if known_folders is None or folder not in known_folders:
        folder.mkdir(parents=True, exist_ok=True)
        if known_folders is not None:
            known_folders.add(folder)
    if keep_mode_of is not None and keep_mode_of.exists():
        os.chmod(temp_path, keep_mode_of.stat().st_mode & 0o7777)
    else:
        os.chmod(temp_path, 0o644)
    try:
        os.replace(temp_path, final_path)
    except FileNotFoundError:
        if not temp_path.exists():
            raise
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(temp_path, final_path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, keeping its mode.

    A symlink stays a link: the bytes go to the file it points at (through a temporary file
    in that file's folder). The temporary file is removed when any step fails."""
    target = write_target(path)
    with temp_file_in(target.parent) as (handle, temp_path):
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        publish(temp_path, target, keep_mode_of=target)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def write_target(path: Path) -> Path:
    """The file a write to `path` should replace: `path`, or the file its symlinks lead to."""
    return path.resolve() if path.is_symlink() else path


def remove_stale_temp_files(folder: Path, *, below: bool = True) -> int:
    """Delete the temporary files that killed runs left in `folder` (and `below` it); return
    how many. Only files whose writing process is gone: one of a live process (another run's
    download in flight) stays. A name without a process id counts as left behind."""
    if not folder.exists():
        return 0
    pattern = f"{TEMP_PREFIX}*{TEMP_SUFFIX}"
    removed = 0
    for temp in folder.rglob(pattern) if below else folder.glob(pattern):
        owner = temp_owner(temp)
        if owner is None or not process_alive(owner):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_stale_temp_files_beside(paths: Iterable[Path]) -> int:
    """`remove_stale_temp_files` in the folder of each path (not below): e.g. the .part files
    a killed `rewrite` left beside the posts it was writing."""
    folders = {path.parent for path in paths}
    return sum(remove_stale_temp_files(folder, below=False) for folder in folders)


def temp_owner(path: Path) -> int | None:
    """The id of the process that made a temporary file (its name: .mediatool-PID-N.part)."""
    middle = path.name.removeprefix(TEMP_PREFIX).removesuffix(TEMP_SUFFIX)
    pid, _, serial = middle.partition("-")
    return int(pid) if pid.isdigit() and serial.isdigit() else None
