"""What the fetch parts hand each other: a candidate's failure, a received body, and the state
one fetch_all run shares with its workers (stop signal, temp files)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mediatool.fetch.sniff import IMAGE

Keep = Callable[[Path, str, str], str]  # (temp file, sha256, kind) -> relpath; moves the file


@dataclass(frozen=True, slots=True)
class Failed:
    """Why one candidate failed: a reason code (errors.py) and one line saying what happened."""

    reason: str
    detail: str
    retryable: bool = False
    retry_after: float | None = None
    limit: int | None = None  # the limit that refused it (max_bytes for too_large)
    # Whose limit it was: the category for too_large (None: not known yet), the images.svg
    # policy for unsafe_svg. Recorded with the failure, so that a change re-evaluates it.
    limit_kind: str | None = None


@dataclass(frozen=True, slots=True)
class Body:
    """A body received in full (and kept, when the fetcher was given `keep`)."""

    temp_path: Path
    sha256: str
    size: int
    content_type: str | None
    etag: str | None
    last_modified: str | None
    kind: str
    relpath: str = ""
    notes: tuple[str, ...] = ()
    category: str = IMAGE


class Abort(Exception):
    """Raised inside the body's stream: stop, and answer with this failure."""

    def __init__(self, failure: Failed) -> None:
        self.failure = failure


class LiveFiles:
    """Temporary files that belong to the fetcher (not yet handed to the caller)."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        with self._lock:
            self._paths.add(path)

    def discard(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(path)

    def remove_all(self) -> None:
        with self._lock:
            paths, self._paths = self._paths, set()
        for path in paths:
            path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class RunState:
    """What one fetch_all run shares with its workers: its stop signal and its temp files."""

    cancel: threading.Event
    live: LiveFiles
