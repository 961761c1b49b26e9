"""Downloads and analyses on a Dask cluster: `--scheduler local:N` (a `distributed.LocalCluster`
of N worker processes started for the run) or `--scheduler tcp://HOST:PORT` (a running cluster).

This is the only module that imports Dask, and it is imported only when a scheduler is asked
for (`clusters.cluster_of`); Dask itself is imported when the cluster is opened, so without it
the run stops at once with one line saying how to install it.

- Downloads run as host-owned partitions (`partition.host_partitions`, the parts `fetch --shard`
  uses): every URL of a host is in one part, and a part's URLs go out in tasks of at most
  URLS_PER_TASK, one after another, so its hosts see one task at a time, kept at `per_host` with
  no coordination between workers; this process holds the jobs of the running tasks only, and
  records outcomes as each task ends (a busy host's 100,000 URLs are 200 tasks, not one that
  reports at the end). A task runs the Fetcher on threads (a worker process is daemonic: it
  cannot start a process pool), keeps each body in the store and returns the outcomes, small
  models, to this process.
- Analyses (one decode: hashes and thumbnails) run as batches of ANALYSIS_BATCH originals.
- This process stays the only writer of the manifest: it records the outcomes of each task as
  the task completes (`as_completed`), under the run's checkpoints, so progress lines, the time
  budget and a killed run behave as they do without a cluster.
- A task whose worker dies is run again by Dask on another worker, so all a task does is
  idempotent: originals and thumbnails are named by their bytes and put only if absent (a lost
  race is success), and a task's outcomes are recorded once, when its result arrives.
- A task is given the settings, not the store: it makes the store again on its worker
  (`store_of`), so a store whose handles cannot travel (an object store's client) works alike.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediatool import __version__
from mediatool.config import Settings, parse_scheduler
from mediatool.errors import FatalError, ImageError, UsageError
from mediatool.fetch import Fetcher
from mediatool.fetch.fetcher import OfflineWatch
from mediatool.imaging import analyze
from mediatool.manifest import Manifest
from mediatool.manifest.plan import JobPlan
from mediatool.models import Analysis, AnalyzeJob, DeclaredSize, FetchJob, FetchOutcome
from mediatool.partition import host_partitions, url_partitions
from mediatool.pipeline.analyzing import AnalysisRecorder
from mediatool.pipeline.common import Say, store_of

if TYPE_CHECKING:
    from distributed import Client, Future, as_completed

PARTS_PER_THREAD = 4  # parts downloading at once per worker thread: the biggest start first
URLS_PER_TASK = 500  # a part's URLs per download task: outcomes come back (are recorded) this often
ANALYSIS_BATCH = 32  # originals per analysis task (a task costs the scheduler ~1.6 ms)
ANALYSIS_PRIORITY = 1  # analyses go before downloads not yet started (downloads: 0)
CONNECT_TIMEOUT = 5.0  # seconds to reach a tcp:// scheduler and find a worker there
NEEDS_DASK = "--scheduler needs Dask: pip install 'mediatool[dask]'"


@contextmanager
def open_cluster(settings: Settings, say: Say) -> Iterator[Cluster]:
    """The cluster of `settings.scheduler`: a LocalCluster started here (and stopped after), or
    a client of the running scheduler. UsageError without Dask, FatalError when unreachable."""
    scheduler = parse_scheduler(settings.scheduler or "")
    _require_dask()
    from distributed import Client

    if scheduler.address:
        with _connect(scheduler.address) as client:
            _check_workers(client, scheduler.address)
            yield Cluster(client, settings, say)
        return
    with (
        local_cluster(scheduler.local_workers) as local,
        Client(local, set_as_default=False) as client,  # type: ignore[no-untyped-call]
    ):
        yield Cluster(client, settings, say)


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise UsageError(NEEDS_DASK) from exc


# What nobody looks at in a LocalCluster started for one run (it has no dashboard): the
# workers' sampling profiler (every 10 ms over every thread: worker CPU, and it holds task
# frames) and the long in-memory logs kept for one (the scheduler runs in this process).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.diagnostics.computations.max-history": 1,
    "distributed.admin.log-length": 100,
    "distributed.admin.low-level-log-length": 100,
    "distributed.admin.system-monitor.log-length": 10,
}


def local_cluster(workers: int) -> Any:
    """N worker processes on loopback, quiet, without a dashboard (the scheduler's own HTTP
    endpoints on a free loopback port, not on 8787), with LOCAL_CLUSTER_CONFIG (the workers
    get the config they start with). Two task threads each, so that a worker analyzes a batch
    while a download task waits on the network."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )


def _connect(address: str) -> Client:
    """A client of the scheduler at `address` that has at least one worker."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise FatalError(
            f"{address}: no Dask scheduler answered within {CONNECT_TIMEOUT:g} s; start one "
            f"(`dask scheduler`, and `dask worker {address}` on each machine) or fix --scheduler"
        ) from exc
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError as exc:
        client.close()  # type: ignore[no-untyped-call]
        raise FatalError(
            f"{address}: the Dask scheduler has no workers; start some with "
            f"`dask worker {address}` on machines that see the cache folder"
        ) from exc
    return client


def worker_version() -> str:
    """On a worker: the mediatool it runs (its import fails where mediatool is missing)."""
    return __version__


def _check_workers(client: Client, address: str) -> None:
    """Every worker of the cluster runs this version of mediatool; a FatalError otherwise."""
    try:
        versions: dict[str, str] = client.run(worker_version)
    except Exception as exc:  # what a worker raised, e.g. ModuleNotFoundError: mediatool
        raise FatalError(
            f"{address}: a Dask worker cannot run mediatool ({type(exc).__name__}: {exc}); "
            f"install mediatool {__version__} with pip install 'mediatool[dask]' on every worker"
        ) from exc
    other = {worker: version for worker, version in versions.items() if version != __version__}
    if other:
        worker, version = sorted(other.items())[0]
        raise FatalError(
            f"{address}: the Dask worker {worker} runs mediatool {version}, this is "
            f"{__version__} ({len(other)} of {len(versions)} workers differ); install the same "
            "version on every worker"
        )


def portable(settings: Settings) -> Settings:
    """The settings a task gets: every local path absolute (a worker's current folder is not
    this one's). A cache that is no local folder (an object store) stays as it is."""
    cache_dir = settings.cache_dir
    if not cache_dir.is_absolute() and cache_dir.exists():
        cache_dir = cache_dir.absolute()
    state_dir = settings.state_dir.absolute() if settings.state_dir is not None else None
    cookies = settings.fetch.cookies_file
    fetch = replace(settings.fetch, cookies_file=str(Path(cookies).absolute()) if cookies else None)
    return replace(settings, cache_dir=cache_dir, state_dir=state_dir, fetch=fetch)


class Cluster:
    """A connected Dask client and what the run's tasks need: downloads and analyses."""

    def __init__(self, client: Client, settings: Settings, say: Say) -> None:
        self.client = client
        self.settings = portable(settings)
        self.say = say
        self.threads = max(1, sum(client.nthreads().values()))  # type: ignore[no-untyped-call]
        self.offline = False  # the last fetch_all found no host answering (OfflineWatch)

    def part_count(self, jobs: int) -> int:
        """How many download parts to ask host_partitions for."""
        return max(PARTS_PER_THREAD * self.threads, math.ceil(jobs / URLS_PER_TASK))

    def fetch_all(
        self, jobs: Iterable[FetchJob], deadline: float | None = None
    ) -> Iterator[FetchOutcome]:
        """Like Fetcher.fetch_all, over the cluster: the outcomes of each task as it completes.
        With a `deadline` (time.monotonic() here), no download starts after it on any worker.
        At most PARTS_PER_THREAD parts per thread download at once, each one task at a time
        (its next URLS_PER_TASK URLs once the last task ended), the next part as one finishes;
        a plan's tasks are made (their FetchJobs read) as they are submitted."""
        parts, jobs_of = self._parts(jobs)
        until = None if deadline is None else time.time() + (deadline - time.monotonic())
        waiting = (_Part(_tasks_of(part)) for part in parts)
        running: dict[Future[Any], tuple[list[Any], _Part]] = {}
        watch = OfflineWatch()  # no task starts once no host answered on enough of them
        finished = _as_completed(self.client, [])

        def submit(part: _Part) -> bool:
            """Submit the part's next task; False when it has none left or the deadline passed
            (a task would start nothing: its URLs stay pending)."""
            if deadline is not None and time.monotonic() >= deadline:
                return False
            items = next(part.tasks, None)
            if items is None:
                return False
            task_jobs = jobs_of(items)
            future = self.client.submit(
                fetch_part, self.settings, task_jobs, until, part.failures, pure=False
            )
            running[future] = items, part
            finished.add(future)  # type: ignore[no-untyped-call]
            return True

        def start_parts() -> None:
            room = PARTS_PER_THREAD * self.threads - len(running)
            for part in itertools.islice(waiting, max(0, room)):
                submit(part)

        start_parts()
        for future in finished:
            items, part = running.pop(future)
            first = items[0] if isinstance(items[0], str) else items[0].origin_url
            result = self.result_of(future, f"{len(items)} URLs (a task of the part of {first})")
            if result is not None:  # a lost task leaves the part's failures as they were
                outcomes, offline, part.failures = result
            else:
                outcomes, offline = [], False
            watch.task_ended(offline)
            if not watch.looks_offline():
                submit(part)
                start_parts()
            for outcome in outcomes:
                yield from watch.passed(outcome)
        yield from watch.finished()
        self.offline = watch.offline

    def _parts(
        self, jobs: Iterable[FetchJob]
    ) -> tuple[list[list[Any]], Callable[[list[Any]], list[FetchJob]]]:
        """The host-owned parts of the jobs and how to make a part's jobs: a plan's parts are
        its URLs (`partition.url_partitions`), their FetchJobs read as each part is submitted;
        other jobs are split as they are (`partition.host_partitions`)."""
        if isinstance(jobs, JobPlan):
            return url_partitions(jobs.urls, self.part_count(len(jobs))), jobs.jobs_of
        listed = list(jobs)
        return host_partitions(listed, self.part_count(len(listed))), list

    def analyses(
        self, manifest: Manifest, say: Say, *, rewrite_thumbnails: bool = False
    ) -> ClusterAnalyses:
        return ClusterAnalyses(self, manifest, say, rewrite_thumbnails=rewrite_thumbnails)

    def result_of(self, future: Future[Any], what: str) -> Any:
        """A task's result; None (said in one line) when it was lost with its workers."""
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            self.say(
                f"{what} left undone: the Dask task holding them lost its worker too often "
                f"({exc}); run the same command again to continue"
            )
            return None
        finally:
            future.release()  # type: ignore[no-untyped-call]


@dataclass(slots=True)
class _Part:
    """A host-owned part being downloaded: its tasks still to run, and the connection failures
    in a row its last task ended with, per host (the next task's Fetcher counts on from them:
    a dead host is given up once a part, as one Fetcher over the whole part would)."""

    tasks: Iterator[list[Any]]
    failures: dict[str, int] = field(default_factory=dict)


def _tasks_of(part: list[Any]) -> Iterator[list[Any]]:
    """A part's items in tasks of at most URLS_PER_TASK, in its order (hosts taking turns)."""
    for start in range(0, len(part), URLS_PER_TASK):
        yield part[start : start + URLS_PER_TASK]


def _as_completed(client: Client, futures: list[Future[Any]]) -> as_completed:
    """The futures as they finish, more added with `update` (the client is not the default
    one: its loop is named)."""
    from distributed import as_completed

    return as_completed(futures, loop=client.loop)  # type: ignore[no-untyped-call]


def fetch_part(
    settings: Settings, jobs: list[FetchJob], until: float | None, failures: dict[str, int]
) -> tuple[list[FetchOutcome], bool, dict[str, int]]:
    """One task: download a task's worth of a host-owned part, each body kept in the store (put
    if absent); return the outcomes, whether its Fetcher stopped offline (no host of the part
    answered) and its connection failures in a row per host (`failures`: those the part's last
    task ended with, counted on from). `until` is a time.time() after which no download starts."""
    store = store_of(settings)
    deadline = None if until is None else time.monotonic() + (until - time.time())
    svg = settings.images.svg
    with Fetcher(settings.fetch, store.temp_dir, store.keep, svg, failures) as fetcher:
        outcomes = list(fetcher.fetch_all(jobs, deadline))
        return outcomes, fetcher.offline, fetcher.failures_in_a_row()


@dataclass(frozen=True, slots=True)
class StoredImage:
    """One original to analyze, as a task gets it: where it is in the store, not on a disk."""

    sha256: str
    relpath: str
    declared: tuple[DeclaredSize, ...]


def analyze_batch(
    settings: Settings, images: list[StoredImage], rewrite_thumbnails: bool
) -> list[tuple[str, Analysis | ImageError]]:
    """One task: analyze a batch of stored originals (thumbnails written into the store)."""
    store = store_of(settings)
    results: list[tuple[str, Analysis | ImageError]] = []
    for image in images:
        path = store.local_copy(image.relpath)  # an object store fetches it to a local file
        job = AnalyzeJob(image.sha256, path, store.root, image.declared, rewrite_thumbnails)
        try:
            analysis = analyze(job, settings.images)
            thumbnails = [thumb.relpath for thumb in analysis.thumbnails]
            store.put_thumbnails(thumbnails, replace=rewrite_thumbnails)
            results.append((image.sha256, analysis))
        except ImageError as exc:
            results.append((image.sha256, exc))
        finally:
            store.release(image.relpath)
    return results


class ClusterAnalyses(AnalysisRecorder):
    """An AnalysisSink on the cluster: originals go out in batches, results are recorded here."""

    def __init__(
        self, cluster: Cluster, manifest: Manifest, say: Say, *, rewrite_thumbnails: bool
    ) -> None:
        super().__init__(manifest, cluster.settings, say, rewrite_thumbnails=rewrite_thumbnails)
        self.cluster = cluster
        self._batch: list[StoredImage] = []
        self._running: dict[Future[Any], int] = {}

    def add(self, sha: str) -> None:
        """Analyze the stored original `sha` (once, however often it is added before its
        analysis is recorded)."""
        if not self.first_add(sha):
            return
        declared = tuple(DeclaredSize(w, h, "post") for w, h in self.manifest.declared_sizes(sha))
        self._batch.append(StoredImage(sha, self.manifest.relpath_of_image(sha), declared))
        if len(self._batch) >= ANALYSIS_BATCH:
            self._submit()

    def collect(self, *, block: bool) -> int:
        """Record finished batches; with `block`, send the last one and wait for all. Returns
        how many analyses succeeded."""
        if block:
            self._submit()
            finished = list(_as_completed(self.cluster.client, list(self._running)))
        else:
            finished = [future for future in self._running if future.done()]  # type: ignore[no-untyped-call]
        return sum(self._record_batch(future) for future in finished)

    def _submit(self) -> None:
        if not self._batch:
            return
        future = self.cluster.client.submit(
            analyze_batch,
            self.cluster.settings,
            self._batch,
            self.rewrite_thumbnails,
            pure=False,
            priority=ANALYSIS_PRIORITY,
        )
        self._running[future] = len(self._batch)
        self._batch = []

    def _record_batch(self, future: Future[Any]) -> int:
        count = self._running.pop(future)
        results = self.cluster.result_of(future, f"{count} images")
        return sum(self.record(sha, result) for sha, result in results or ())
