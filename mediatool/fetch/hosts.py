"""Per-host state for one Fetcher: how many requests are in flight, and whether it is down."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit


class Cancelled(Exception):
    """The run was closed; the worker drops what it was doing."""


def host_of(url: str) -> str:
    """The key hosts are counted by: `host[:port]`, lower-case."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2].lower()
    except ValueError:
        return ""


class HostTable:
    def __init__(self, per_host: int, down_after: int) -> None:
        self.per_host = max(per_host, 1)
        self.down_after = max(down_after, 1)
        self._cond = threading.Condition()
        self._active: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._down: set[str] = set()

    @contextlib.contextmanager
    def slot(self, host: str, cancel: threading.Event) -> Iterator[None]:
        """Hold one of the host's `per_host` request slots."""
        with self._cond:
            while self._active[host] >= self.per_host:
                if cancel.is_set():
                    raise Cancelled
                self._cond.wait(0.2)
            self._active[host] += 1
        try:
            yield
        finally:
            with self._cond:
                self._active[host] -= 1
                self._cond.notify_all()

    def connection_failed(self, host: str) -> None:
        with self._cond:
            self._failures[host] += 1
            if self._failures[host] >= self.down_after:
                self._down.add(host)

    def answered(self, host: str) -> None:
        with self._cond:
            self._failures[host] = 0

    def is_down(self, host: str) -> bool:
        with self._cond:
            return host in self._down
