"""Per-host state for one Fetcher: each host's budget ([fetch.hosts."HOST"]: requests at once,
requests per second, delay between starts, extra headers), the requests in flight, when the next
request may start, whether a host is down, and whether any host answered at all (offline).

A budget key matches its host and the host's subdomains ("wp.com" matches "i0.wp.com"); a key
with `:port` matches that port only. For each setting the most specific user key that sets it
wins, then the most specific built-in one (config.DEFAULT_HOST_BUDGETS), then [fetch].

Rate and delay are kept by reserving start times: `ready_at(host)` says when the next request
to a host may start, so the scheduler (fetcher._Run) hands a worker only jobs whose host is
ready, and `slot()` waits out the rest of a reservation holding only its own host's slot.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from mediatool.config import DEFAULT_HOST_BUDGETS, DEFAULT_PER_HOST, FetchSettings, HostBudget

# Connection failures (refused, no route, no DNS answer) on this many distinct hosts while no
# host has answered at all: the machine is offline. A run with fewer hosts needs all of them to
# fail, and at least 2: one dead host alone says nothing about the network.
OFFLINE_AFTER_HOSTS = 3
OFFLINE_POLL = 0.1  # how often a retry's backoff looks whether the machine went offline

T = TypeVar("T")


class Cancelled(Exception):
    """The run was closed; the worker drops what it was doing."""


def host_of(url: str) -> str:
    """The key hosts are counted by: `host[:port]`, lower-case."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2].lower()
    except ValueError:
        return ""


@dataclass(frozen=True, slots=True)
class Budget:
    """What one host is asked at most, all settings merged."""

    per_host: int
    rate: float | None = None  # requests per second; None: no limit
    delay: float = 0.0  # seconds between the starts of two requests
    headers: Mapping[str, str] | None = None

    @property
    def burst(self) -> float:
        """The token bucket's size: one second of requests, at least one."""
        return max(1.0, self.rate or 1.0)


def split_host(key: str) -> tuple[str, int | None]:
    """`host[:port]` -> (host, port); `[::1]:8080` -> ("::1", 8080)."""
    if key.startswith("["):
        host, _, port = key[1:].partition("]")
        port = port.removeprefix(":")
    elif key.count(":") == 1:
        host, _, port = key.partition(":")
    else:
        host, port = key, ""
    return host, int(port) if port.isdigit() else None


def matching_keys(key: str, table: Mapping[str, T]) -> list[T]:
    """The entries of `table` whose key matches the host key `host[:port]`, most specific
    first: host:port, host, then each parent domain (not for an IP address)."""
    from mediatool.fetch.guard import literal_address  # httpx: not for `--shard` planning

    host, port = split_host(key)
    names = [host]
    if literal_address(host) is None:
        parts = host.split(".")
        names += [".".join(parts[i:]) for i in range(1, len(parts))]
    found: list[T] = []
    for name in names:
        for candidate in ([f"{name}:{port}"] if port is not None else []) + [name]:
            if candidate in table:
                found.append(table[candidate])
    return found


def budget_of(settings: FetchSettings, key: str) -> Budget:
    """The budget of the host key `host[:port]` (see the module docstring). The built-in CDN
    budgets apply only while fetch.per_host is not below its default: a user who asked for
    fewer requests at once everywhere gets that on the CDNs too."""
    layers: list[HostBudget] = matching_keys(key, settings.hosts)
    if settings.per_host >= DEFAULT_PER_HOST:
        layers += matching_keys(key, DEFAULT_HOST_BUDGETS)
    headers: dict[str, str] = {}
    for layer in reversed(layers):  # the least specific first: the more specific win
        headers.update(layer.headers)
    per_host = next((b.per_host for b in layers if b.per_host is not None), settings.per_host)
    rate = next((b.requests_per_second for b in layers if b.requests_per_second), None)
    delay = next((b.delay for b in layers if b.delay is not None), 0.0)
    return Budget(max(per_host, 1), rate, delay, headers)


@dataclass(slots=True)
class _Gate:
    """One host's start times: a token bucket (`tokens` at time `refilled`) and the last start."""

    tokens: float
    refilled: float
    last_start: float | None = None

    def ready_at(self, budget: Budget) -> float:
        """The earliest time the next request may start (may be in the past)."""
        ready = float("-inf")
        if budget.delay and self.last_start is not None:
            ready = self.last_start + budget.delay
        if budget.rate:
            ready = max(ready, self.refilled + max(0.0, 1.0 - self.tokens) / budget.rate)
        return ready

    def reserve(self, budget: Budget, now: float) -> float:
        """Take the next start time (now or later) and return it."""
        start = max(now, self.ready_at(budget))
        if budget.rate:
            grown = self.tokens + (start - self.refilled) * budget.rate
            self.tokens = min(budget.burst, grown) - 1.0
            self.refilled = start
        self.last_start = start
        return start


def offline_after(hosts: int, all_known: bool) -> int:
    """On how many distinct hosts connections must fail, none answering, to call the machine
    offline, in a run of `hosts` hosts so far (all of them when `all_known`): OFFLINE_AFTER_HOSTS,
    or with fewer hosts in all, every one of them, and at least 2 (one host down is not the
    network)."""
    limit = min(OFFLINE_AFTER_HOSTS, hosts) if all_known else OFFLINE_AFTER_HOSTS
    return max(2, limit)


class HostTable:
    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self.down_after = max(settings.host_down_after, 1)
        self._cond = threading.Condition()
        self._budgets: dict[str, Budget] = {}
        self._gates: dict[str, _Gate] = {}
        self._active: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._down: set[str] = set()
        self._unreachable: set[str] = set()  # hosts that failed at connect
        self._answered = False  # some host answered (or at least accepted a connection)
        self._offline_after = OFFLINE_AFTER_HOSTS

    # -- budgets -------------------------------------------------------------------------------
    def budget(self, host: str) -> Budget:
        with self._cond:
            return self._budget(host)

    def _budget(self, host: str) -> Budget:
        budget = self._budgets.get(host)
        if budget is None:
            budget = self._budgets[host] = budget_of(self.settings, host)
        return budget

    def per_host(self, host: str) -> int:
        return self.budget(host).per_host

    def ready_at(self, host: str) -> float:
        """When the next request to `host` may start (time.monotonic(); the past: now)."""
        with self._cond:
            gate = self._gates.get(host)
            return float("-inf") if gate is None else gate.ready_at(self._budget(host))

    def _reserve(self, host: str) -> float:
        budget = self._budget(host)
        now = time.monotonic()
        if budget.rate is None and not budget.delay:
            return now
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _Gate(tokens=budget.burst, refilled=now)
        return gate.reserve(budget, now)

    @contextlib.contextmanager
    def slot(self, host: str, cancel: threading.Event) -> Iterator[None]:
        """Hold one of the host's `per_host` request slots, from the start its rate and delay
        allow (waiting for it holds this host's slot only)."""
        with self._cond:
            while self._active[host] >= self._budget(host).per_host:
                if cancel.is_set():
                    raise Cancelled
                self._cond.wait(0.2)
            self._active[host] += 1
            start = self._reserve(host)
        try:
            wait = start - time.monotonic()
            if wait > 0 and cancel.wait(wait):
                raise Cancelled
            yield
        finally:
            with self._cond:
                self._active[host] -= 1
                self._cond.notify_all()

    # -- hosts down, machine offline -----------------------------------------------------------
    def connection_failed(self, host: str, *, connected: bool = False) -> None:
        """A request to `host` failed without an answer; `connected`: after the connection was
        made (a read timeout, a closed connection), which proves the network works."""
        with self._cond:
            self._failures[host] += 1
            if self._failures[host] >= self.down_after:
                self._down.add(host)
            if connected:
                self._answered = True
            else:
                self._unreachable.add(host)

    def answered(self, host: str) -> None:
        with self._cond:
            self._failures[host] = 0
            self._answered = True

    def reached(self) -> None:
        """Some host was reached, though it did not answer well (a TLS failure)."""
        with self._cond:
            self._answered = True

    def is_down(self, host: str) -> bool:
        with self._cond:
            return host in self._down

    def failures_in_a_row(self) -> dict[str, int]:
        """The hosts whose last requests failed to connect: how many in a row (a host down has
        at least host_down_after)."""
        with self._cond:
            return {host: count for host, count in self._failures.items() if count}

    def continue_failures(self, failures: Mapping[str, int]) -> None:
        """Count on from the failures in a row an earlier Fetcher of the same work saw
        (`failures_in_a_row`): a host with host_down_after of them is down at once."""
        with self._cond:
            for host, count in failures.items():
                self._failures[host] += count
                if self._failures[host] >= self.down_after:
                    self._down.add(host)

    def expect_hosts(self, count: int, all_known: bool) -> None:
        """The run has `count` distinct hosts so far (all of them when `all_known`)."""
        with self._cond:
            self._offline_after = offline_after(count, all_known)

    @property
    def answered_any(self) -> bool:
        with self._cond:
            return self._answered

    def offline(self) -> bool:
        """No host answered and connections failed on enough distinct hosts."""
        with self._cond:
            return not self._answered and len(self._unreachable) >= self._offline_after

    def wait_unless_offline(self, seconds: float, cancel: threading.Event) -> bool:
        """Sleep `seconds` (a retry's backoff); False as soon as the machine looks offline."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if cancel.wait(min(left, OFFLINE_POLL)):
                raise Cancelled
            if self.offline():
                return False
        return True
