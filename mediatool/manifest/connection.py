"""Opening the manifest: migrations, transactions, checkpoints, read-only caches and
damaged files (every SQLite error becomes one fatal line naming the file).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self
from urllib.parse import quote

from mediatool.errors import CacheNotWritable, FatalError, ManifestDamaged, ManifestTooNew, NoSpace
from mediatool.manifest.schema import MIGRATIONS, SCHEMA_VERSION


class ManifestBase:
    """A connection to manifest.sqlite: opening, migrating, transactions."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    @classmethod
    @contextmanager
    def open(cls, path: Path, *, read_only_ok: bool = False) -> Iterator[Self]:
        """The manifest at `path`, created or migrated as needed.

        A cache folder (or manifest) that cannot be written is CacheNotWritable, unless
        `read_only_ok` (the command writes nothing): then the manifest is opened read-only and
        immutable. Any SQLite error while it is open becomes one fatal line naming the file:
        ManifestDamaged (not a database, truncated, corrupt), NoSpace (disk full), or
        CacheNotWritable."""
        problem = _not_writable(path)
        read_only = problem is not None and read_only_ok and path.is_file()
        if problem is not None and not read_only:
            raise CacheNotWritable(
                f"{path.parent}: cache folder is not writable ({problem}); "
                "choose another with --cache or fix its permissions."
            )
        try:
            connection = _connect(path, read_only)
        except sqlite3.Error as exc:
            raise _fatal(path, exc) from exc
        try:
            manifest = cls(connection)
            if not read_only:
                manifest._configure()
            manifest._migrate(path, read_only)
            yield manifest
        except sqlite3.Error as exc:
            raise _fatal(path, exc) from exc
        finally:
            connection.close()

    def _configure(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")

    def _migrate(self, path: Path, read_only: bool = False) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ManifestTooNew(
                f"{path}: written by a newer mediatool (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade mediatool or use another --cache."
            )
        if read_only and version < SCHEMA_VERSION:
            raise CacheNotWritable(
                f"{path}: written by an older mediatool and read-only here; make the cache "
                "folder writable and run the command again (the manifest is upgraded once)."
            )
        for number in range(version, SCHEMA_VERSION):
            step = MIGRATIONS[number]
            if not isinstance(step, str):
                with self.transaction():  # the step and its version number commit together
                    step(self.db, path)
                    self.db.execute(f"PRAGMA user_version={number + 1}")
                continue
            # One script: the migration and its version number commit together or not at all.
            self.db.executescript(f"BEGIN;\n{step}\nPRAGMA user_version={number + 1};\nCOMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        self.db.execute("COMMIT")

    def _rollback(self) -> None:
        # SQLite may have rolled back already (a full disk, an I/O error).
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    @contextmanager
    def checkpoints(self, every: int, seconds: float) -> Iterator[Callable[[], None]]:
        """One long transaction committed at the checkpoints the caller marks, at most every
        `every` marks or `seconds`: many small writes without a commit each. A mark must fall
        where the manifest is consistent; on an error the writes since the last commit are
        rolled back (a killed run loses at most that much, and the next run redoes it)."""
        marks = 0
        since = time.monotonic()
        self.db.execute("BEGIN")

        def checkpoint() -> None:
            nonlocal marks, since
            marks += 1
            if marks >= every or time.monotonic() - since >= seconds:
                self.db.execute("COMMIT")
                self.db.execute("BEGIN")
                marks, since = 0, time.monotonic()

        try:
            yield checkpoint
        except BaseException:
            self._rollback()
            raise
        self.db.execute("COMMIT")


# -- opening: read-only caches and damaged files ---------------------------------------------

_DAMAGED = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}
_FULL = {"SQLITE_FULL"}
_NOT_WRITABLE = {"SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"}


def _not_writable(path: Path) -> str | None:
    """Why the manifest at `path` or its folder (where SQLite makes its -wal and -shm files)
    cannot be written, or None. A missing folder is left to SQLite's own error."""
    for target in (path.parent, path):
        if target.exists() and not os.access(target, os.W_OK):
            flags = os.statvfs(target).f_flag
            return os.strerror(errno.EROFS if flags & os.ST_RDONLY else errno.EACCES)
    return None


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(path, isolation_level=None)
    wal = path.with_name(path.name + "-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        # Everything is in the main file: immutable needs no -shm file, none can be made here.
        uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    # Commits of a run that was killed are still in the -wal file: reading them needs the -shm
    # file (SQLite reads a read-only one); immutable would silently skip them.
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        connection.close()
        raise CacheNotWritable(
            f"{path}: holds changes of an interrupted run that cannot be read in a read-only "
            "folder; make the cache folder writable and run the command again."
        ) from exc
    return connection


def _disk_full(folder: Path) -> bool:
    """True when the file system of `folder` has no block left (SQLite then reports some
    writes, e.g. of its -shm file, as an I/O error rather than SQLITE_FULL)."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _fatal(path: Path, exc: sqlite3.Error) -> FatalError:
    """The one-line error for a SQLite error on the manifest at `path`."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    base = name.split("_", 2)[:2]
    code = "_".join(base)
    if code in _DAMAGED:
        return ManifestDamaged(
            f"{path}: the manifest is damaged ({exc}); move it aside (e.g. to {path.name}.bad) "
            "and run `mediatool fetch` again to rebuild it (its undo records stay in the "
            "moved file)."
        )
    if code in _FULL or (code == "SQLITE_IOERR" and _disk_full(path.parent)):
        return NoSpace(f"{path}: cannot write ({exc}); free some space and run again.")
    if code in _NOT_WRITABLE:
        return CacheNotWritable(
            f"{path}: cannot write the manifest ({exc}); choose another --cache or fix its "
            "permissions."
        )
    return FatalError(f"{path}: the manifest cannot be used ({exc}); run the command again.")
