"""Write once, rename into place: no reader ever sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".mediatool-"
TEMP_SUFFIX = ".part"


@contextlib.contextmanager
def temp_file_in(folder: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """An open temporary file in `folder` (same file system as its final place); deleted on error.

    The caller renames it into place with `publish` before the block ends, or it is removed.
    `folder` is created when missing (the common case, it exists, costs no extra system call:
    the fetcher opens one temporary file per download)."""
    try:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, path
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def publish(
    temp_path: Path,
    final_path: Path,
    *,
    keep_mode_of: Path | None = None,
    known_folders: set[Path] | None = None,
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
    """Write `data` to `path` through a temporary file in the same folder, keeping its mode."""
    with temp_file_in(path.parent) as (handle, temp_path):
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    publish(temp_path, path, keep_mode_of=path)


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temporary files a killed run left behind below `folder`; return how many."""
    removed = 0
    if not folder.exists():
        return 0
    for stale in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed
