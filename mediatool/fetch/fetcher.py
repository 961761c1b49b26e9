"""The Fetcher: jobs in, outcomes out in completion order, downloads overlapping the caller's work.

Structure (measured, see bench/bench_fetch.py): `settings.concurrency` worker threads share one
sync `httpx.Client` (one connection pool, keep-alive). The caller's thread reads the jobs lazily
into a bounded look-ahead queue; a worker takes the first queued job whose origin host has fewer
than its `per_host` jobs in progress and whose rate and delay allow a request now (hosts.py:
[fetch.hosts."HOST"] budgets), so a host that must wait holds no worker; every request also
holds one of its host's `per_host` slots. At most 4 x concurrency outcomes are in progress or
waiting for the caller, which bounds the temp files on disk when the caller is slower than the
network.

Offline: while no host has answered, failures to connect are held back from the caller. When
connections failed on enough distinct hosts (hosts.OFFLINE_AFTER_HOSTS) and none answered, no
new job starts; once the jobs under way end without an answer, the run stops: `offline` is set,
the held failures and the jobs not started give no outcome (the caller leaves them pending).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

from mediatool.config import DEFAULT_SVG_POLICY, FetchSettings
from mediatool.fetch.candidate import CandidateFetcher
from mediatool.fetch.client import build_client, is_proxied
from mediatool.fetch.guard import Guard
from mediatool.fetch.hosts import Cancelled, HostTable, host_of, offline_after
from mediatool.fetch.messages import failure_for
from mediatool.fetch.results import Failed, Keep, LiveFiles, RunState
from mediatool.models import Download, FetchFailure, FetchJob, FetchOutcome, NotModified

LOOKAHEAD = 1024  # jobs read ahead of the workers (cheap: URLs only)
JOIN_TIMEOUT = 5.0  # how long closing waits for workers stuck in a read
DEADLINE_POLL = 0.2  # with a deadline, how often waiting threads look at the clock
OFFLINE_MESSAGE = (
    "no host answered: the machine seems offline; nothing was marked failed, "
    "run again when the network is back"
)
NETWORK_REASONS = frozenset({"connect_error", "timeout", "host_down"})  # held while offline


def is_network_failure(outcome: FetchOutcome) -> bool:
    """Whether no candidate of a failed job reached its host (NETWORK_REASONS): the URL's
    failure, or the network's."""
    if not isinstance(outcome, FetchFailure):
        return False
    reasons = {attempt.rpartition(" -> ")[2] for attempt in outcome.attempts} | {outcome.reason}
    return reasons <= NETWORK_REASONS


class OfflineWatch:
    """The run-wide offline verdict over outcomes fetched elsewhere, in tasks that each judge
    only their own hosts (Dask tasks; a task's own Fetcher may have stopped offline and said
    so): the rule of a Fetcher's run, applied to the tasks' outcomes as they arrive.

    Failures to connect are held while no host has answered; the first answer (any outcome
    but such a failure) releases them. When no host answered and they came from at least
    OFFLINE_AFTER_HOSTS hosts, or a task stopped offline, `looks_offline` says to start no
    more tasks; if that still holds at the end, `offline` is set and the held failures give no
    outcome (their URLs stay pending for the next run)."""

    def __init__(self) -> None:
        self.answered = False
        self.offline = False
        self._held: list[FetchOutcome] = []
        self._hosts: set[str] = set()  # hosts of the held failures
        self._task_offline = False

    def passed(self, outcome: FetchOutcome) -> list[FetchOutcome]:
        """What to hand on now that `outcome` arrived (it, the held ones, or nothing)."""
        if self.answered:
            return [outcome]
        if is_network_failure(outcome):
            self._held.append(outcome)
            self._hosts.add(host_of(outcome.origin_url))
            return []
        self.answered = True
        held, self._held = self._held, []
        return [*held, outcome]

    def task_ended(self, offline: bool) -> None:
        """A task's Fetcher ended, offline or not (by its own hosts)."""
        self._task_offline = self._task_offline or offline

    def looks_offline(self) -> bool:
        """Whether no further task should start (more hosts may be to come)."""
        return self._no_answer(all_known=False)

    def finished(self) -> list[FetchOutcome]:
        """The outcomes still held once every task ended: none when offline (a run whose one
        host refused is not offline: its failures are the URLs')."""
        self.offline = self._no_answer(all_known=True)
        held, self._held = ([], []) if self.offline else (self._held, [])
        return held

    def _no_answer(self, all_known: bool) -> bool:
        """No host answered, and a task stopped offline or the held failures' hosts are enough
        (`hosts.offline_after`, the rule a Fetcher's run follows)."""
        hosts = len(self._hosts)
        return not self.answered and (
            self._task_offline or hosts >= offline_after(hosts, all_known)
        )


class _Closed:
    """Put in a closed run's results: wakes a caller blocked in another thread."""


_CLOSED = _Closed()


class Fetcher:
    """Owns the httpx client and the workers; use as a context manager."""

    def __init__(
        self,
        settings: FetchSettings,
        temp_dir: Path,
        keep: Keep | None = None,
        svg_policy: str = DEFAULT_SVG_POLICY,
        failures: Mapping[str, int] | None = None,
    ) -> None:
        """`keep(temp_path, sha256, kind) -> relpath`, when given, moves each finished body to its
        final place on the worker thread that fetched it (the store's `keep`): the caller's
        thread then only records what arrived, and moving files overlaps the downloads.
        `svg_policy` (images.svg: sanitize, refuse, keep) is applied to SVGs that could run
        script or load resources (images.svg). `failures`: the connection failures in a row an
        earlier Fetcher of the same work ended with (its `failures_in_a_row`), counted on from
        here: a host it found down is given up at once."""
        self.settings = settings
        self.temp_dir = temp_dir
        self._client = build_client(settings)
        self._hosts = HostTable(settings)
        self._hosts.continue_failures(failures or {})
        guard = Guard(settings.allow_private, lambda url: is_proxied(self._client, url))
        self._candidates = CandidateFetcher(
            self._client, settings, temp_dir, guard, self._hosts, keep, svg_policy
        )
        self._candidates.partials.prune()
        self._runs: set[_Run] = set()
        self._closed = False
        self.offline = False  # a run stopped because no host answered (see the docstring)

    def fetch_all(
        self, jobs: Iterable[FetchJob], deadline: float | None = None
    ) -> Iterator[FetchOutcome]:
        """Outcomes in completion order; one per job; never raises for one bad URL. With a
        `deadline` (time.monotonic()), no job starts after it: the downloads under way finish,
        the jobs not started give no outcome."""
        if self._closed:
            raise RuntimeError("Fetcher is closed")
        run = _Run(self, max(self.settings.concurrency, 1), deadline)
        self._runs.add(run)
        try:
            yield from run.outcomes(iter(jobs))
        finally:
            run.close()
            self._runs.discard(run)
            self.offline = self.offline or run.offline

    def failures_in_a_row(self) -> dict[str, int]:
        """Per host whose last requests failed to connect, how many in a row (for the next
        Fetcher of the same work: `failures`)."""
        return self._hosts.failures_in_a_row()

    def fetch_job(self, job: FetchJob, run: RunState) -> FetchOutcome:
        """Try the job's candidates in order; the first success wins."""
        failures: list[tuple[str, Failed]] = []
        for candidate in job.candidates or (job.origin_url,):
            result = self._candidates.fetch(job, candidate, run)
            if not isinstance(result, Failed):
                return result
            failures.append((candidate, result))
        return failure_for(job, failures)

    def close(self) -> None:
        self._closed = True
        for run in list(self._runs):
            run.close()
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Run:
    """One fetch_all call: its queue, its workers, its results."""

    def __init__(self, fetcher: Fetcher, workers: int, deadline: float | None = None) -> None:
        self.fetcher = fetcher
        self.deadline = deadline
        self._wait = None if deadline is None else DEADLINE_POLL
        self.hosts = fetcher._hosts
        self.max_unyielded = workers * 4
        self.offline = False
        self.cancel = threading.Event()
        self.state = RunState(self.cancel, LiveFiles())
        self._cond = threading.Condition()
        self._pending: dict[str, deque[FetchJob]] = {}  # by origin host, in order of arrival
        self._assigned: Counter[str] = Counter()
        self._busy = 0  # jobs a worker has taken and not finished
        self._seen: set[str] = set()  # every origin host read so far
        self._held: list[FetchFailure] = []  # failures to connect while no host answered
        self._unyielded = 0  # jobs in progress + outcomes waiting for the caller
        self._no_more_jobs = False
        self._results: queue.Queue[FetchOutcome | BaseException | _Closed] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"mediatool-fetch-{i}", daemon=True)
            for i in range(workers)
        ]
        self._started = False

    def outcomes(self, jobs: Iterator[FetchJob]) -> Iterator[FetchOutcome]:
        outstanding = 0
        exhausted = False
        while True:
            if self._past_deadline() or self._gone_offline():
                exhausted = True
                outstanding -= self._drop_pending()
            if not exhausted:
                room = LOOKAHEAD - (outstanding - len(self._held))
                added, exhausted = self._read_ahead(jobs, room)
                outstanding += added
            if self.hosts.answered_any:
                outstanding -= len(self._held)
                yield from self._release_held()
            if outstanding == len(self._held):  # every job ended (the held ones wait)
                break
            try:
                item = self._results.get(timeout=self._wait)
            except queue.Empty:  # only with a deadline: time to look at it again
                continue
            if isinstance(item, _Closed):
                return  # closed from another thread (Fetcher.close)
            with self._cond:
                self._unyielded -= 1
                self._cond.notify_all()
            if isinstance(item, BaseException):
                raise item
            if self._hold(item):
                continue
            outstanding -= 1
            if isinstance(item, Download):
                self.state.live.discard(item.temp_path)  # the caller owns it now
            yield item
        if not self.offline:  # not the network: they are failures like any other
            yield from self._release_held()

    def _hold(self, item: FetchOutcome) -> bool:
        """Keep a failure to connect while no host has answered: it may be the network's
        (not in a run of one host, which is never called offline)."""
        if not isinstance(item, FetchFailure) or self.hosts.answered_any:
            return False
        if self._no_more_jobs and len(self._seen) < 2:
            return False
        if not is_network_failure(item):
            return False
        self._held.append(item)
        return True

    def _release_held(self) -> Iterator[FetchOutcome]:
        held, self._held = self._held, []
        yield from held

    def _gone_offline(self) -> bool:
        """No host answered, connections failed on enough hosts and no job is under way: the
        machine is offline (the held failures are then dropped, not reported)."""
        if not self.offline and self.hosts.offline():
            with self._cond:
                self.offline = self._busy == 0
        return self.offline

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _drop_pending(self) -> int:
        """Forget the jobs no worker started; return how many."""
        with self._cond:
            dropped = sum(len(queued) for queued in self._pending.values())
            self._pending.clear()
            self._no_more_jobs = True
            self._cond.notify_all()
        return dropped

    def _read_ahead(self, jobs: Iterator[FetchJob], room: int) -> tuple[int, bool]:
        batch: list[FetchJob] = []
        exhausted = False
        for _ in range(room):
            job = next(jobs, None)
            if job is None:
                exhausted = True
                break
            batch.append(job)
        with self._cond:
            for job in batch:
                host = host_of(job.candidates[0] if job.candidates else job.origin_url)
                self._pending.setdefault(host, deque()).append(job)
                self._seen.add(host)
            self._no_more_jobs = exhausted
            self._cond.notify_all()
        self.hosts.expect_hosts(len(self._seen), all_known=exhausted)
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()
        return len(batch), exhausted

    def _take(self) -> tuple[FetchJob, str] | None:
        with self._cond:
            while not self.cancel.is_set():
                if self._past_deadline():
                    return None
                wait = self._wait
                if self._unyielded < self.max_unyielded and not self.hosts.offline():
                    host, ready_at = self._ready_host()
                    if host is not None:
                        return self._assign(host), host
                    if ready_at is not None:  # a host waits for its rate or delay
                        until = max(ready_at - time.monotonic(), 0.001)
                        wait = until if wait is None else min(wait, until)
                if self._no_more_jobs and not self._pending:
                    return None
                self._cond.wait(wait)
            return None

    def _ready_host(self) -> tuple[str | None, float | None]:
        """The first queued host with a free slot whose rate and delay allow a request now;
        else (None, the soonest time one will), (None, None) when none has a free slot."""
        now = time.monotonic()
        soonest: float | None = None
        for host in self._pending:
            if self._assigned[host] >= self.hosts.per_host(host):
                continue
            ready_at = self.hosts.ready_at(host)
            if ready_at <= now:
                return host, None
            soonest = ready_at if soonest is None else min(soonest, ready_at)
        return None, soonest

    def _assign(self, host: str) -> FetchJob:
        queued = self._pending[host]
        job = queued.popleft()
        if not queued:
            del self._pending[host]
        self._assigned[host] += 1
        self._busy += 1
        self._unyielded += 1
        return job

    def _work(self) -> None:
        while (taken := self._take()) is not None:
            job, host = taken
            try:
                outcome: FetchOutcome | BaseException = self.fetcher.fetch_job(job, self.state)
            except Cancelled:
                return
            except Exception as exc:  # a bug: hand it to the caller's thread
                outcome = exc
            finally:
                with self._cond:
                    self._assigned[host] -= 1
                    self._busy -= 1
                    self._cond.notify_all()
            self._results.put(outcome)

    def close(self) -> None:
        """Stop the workers, then delete every temp file the caller was not handed."""
        self.cancel.set()
        with self._cond:
            self._pending.clear()
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(JOIN_TIMEOUT)
        while True:
            try:
                item = self._results.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Download) and not item.relpath:
                self.state.live.discard(item.temp_path)
                item.temp_path.unlink(missing_ok=True)
        self.state.live.remove_all()
        self._results.put(_CLOSED)


__all__ = ["Download", "FetchFailure", "Fetcher", "NotModified"]
