"""Analysis of stored originals (decode, hashes, thumbnails) in the process pool.

Fed as downloads land, so the CPU works while the network does. At most `in_flight` jobs sit in
the pool at once; the rest wait as sha256 strings (about 100 bytes each), so a fast network over
a million images never piles a million jobs into the pool. Results are recorded on the caller's
thread, the only one that speaks to the manifest (`AnalysisRecorder`, also used by the Dask
cluster's batches: pipeline.distributing); `wake`, when given, is called (from the pool's
thread) as each job finishes, so a caller waiting for something else can come and collect it
and feed the pool again."""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from mediatool.config import ImageSettings, Settings
from mediatool.errors import ImageError
from mediatool.manifest import Manifest
from mediatool.models import Analysis, AnalyzeJob, DeclaredSize
from mediatool.pipeline.common import Say, cpu_pool
from mediatool.store import MediaStore

if TYPE_CHECKING:
    from mediatool.pipeline.distributing import Cluster

JOBS_PER_WORKER = 4  # in the pool at once per worker process: enough to keep each one busy
INLINE_UP_TO = 24  # a run with at most this many images analyzes them here, without workers


class AnalysisSink(Protocol):
    """Where a run sends the stored originals to analyze: `Analyses` (this machine's process
    pool) or the Dask cluster's (pipeline.distributing)."""

    thumbnails_made: set[str]
    failed_urls: set[str]

    def add(self, sha: str) -> None: ...

    def collect(self, *, block: bool) -> int: ...


class AnalysisRecorder:
    """Records finished analyses in the manifest: an image that failed fails every URL that
    delivered it (said one per URL)."""

    def __init__(
        self, manifest: Manifest, settings: Settings, say: Say, *, rewrite_thumbnails: bool
    ) -> None:
        self.manifest = manifest
        self.settings = settings
        self.say = say
        self.rewrite_thumbnails = rewrite_thumbnails
        # relpaths of this run's thumbnails, listed when they are rewritten (`thumbs --rebuild`
        # forgets the others); a fetch lists none (~200 bytes a thumbnail otherwise)
        self.thumbnails_made: set[str] = set()
        self.failed_urls: set[str] = set()  # origin URLs whose image failed in this run
        self._pending: set[str] = set()  # added and not yet recorded
        self.added = 0  # images added in this run

    def first_add(self, sha: str) -> bool:
        """Whether `sha` is to be analyzed now: not added since its last record (a recorded
        one has its analysis or error in the manifest, so the run no longer holds it)."""
        if sha in self._pending:
            return False
        self._pending.add(sha)
        self.added += 1
        return True

    def record(self, sha: str, result: Analysis | ImageError) -> int:
        """Record one analysis, or the error that stopped it; 1 when it succeeded."""
        self._pending.discard(sha)
        if isinstance(result, ImageError):
            limit = self.settings.images.max_pixels if result.reason == "too_many_pixels" else None
            self.manifest.record_image_error(sha, result.reason, result.message, limit)
            for url in self.manifest.urls_of_image(sha):
                self.failed_urls.add(url)
                self.say(f"{url}: {result.message}")
            return 0
        self.manifest.record_analysis(result)
        if self.rewrite_thumbnails:
            self.thumbnails_made.update(thumb.relpath for thumb in result.thumbnails)
        return 1


class Analyses(AnalysisRecorder):
    def __init__(
        self,
        pool: ProcessPoolExecutor,
        manifest: Manifest,
        store: MediaStore,
        settings: Settings,
        say: Say,
        *,
        rewrite_thumbnails: bool = False,
        wake: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(manifest, settings, say, rewrite_thumbnails=rewrite_thumbnails)
        self.pool = pool
        self.wake = wake
        self.store = store
        self.in_flight = max(1, settings.workers) * JOBS_PER_WORKER
        self._backlog: deque[str] = deque()
        self._running: dict[Future[Analysis], str] = {}
        self._originals: dict[str, str] = {}  # sha256 -> relpath, of the jobs made
        self._finished: queue.SimpleQueue[Future[Analysis]] = queue.SimpleQueue()

    def add(self, sha: str) -> None:
        """Analyze the stored original `sha` (once, however often it is added before its
        analysis is recorded)."""
        if not self.first_add(sha):
            return
        self._backlog.append(sha)
        # The pool's workers start at its first job (~1.5 s with forkserver): a run with few
        # images never starts them (collect analyzes those here), a larger one feeds them all.
        if self.added > INLINE_UP_TO:
            self._feed()

    def collect(self, *, block: bool) -> int:
        """Record finished analyses; with `block`, wait for all. Returns how many succeeded."""
        succeeded = 0
        if block and self.added <= INLINE_UP_TO:
            while self._backlog:
                sha = self._backlog.popleft()
                succeeded += self._record(self._analyze_here(sha), sha)
        while self._running:
            try:
                future = self._finished.get(block=block)
            except queue.Empty:
                break
            succeeded += self._record(future, self._running.pop(future))
            self._feed()
        return succeeded

    def _feed(self) -> None:
        while self._backlog and len(self._running) < self.in_flight:
            sha = self._backlog.popleft()
            future = self.pool.submit(_analyze, self._job(sha), self.settings.images)
            self._running[future] = sha
            future.add_done_callback(self._done)

    def _done(self, future: Future[Analysis]) -> None:
        """On the pool's thread: queue the finished job for `collect`, and say so."""
        self._finished.put_nowait(future)
        if self.wake is not None:
            self.wake()

    def _analyze_here(self, sha: str) -> Future[Analysis]:
        """analyze in this process, its result or ImageError in a finished Future."""
        done: Future[Analysis] = Future()
        try:
            done.set_result(_analyze(self._job(sha), self.settings.images))
        except ImageError as exc:
            done.set_exception(exc)
        return done

    def _job(self, sha: str) -> AnalyzeJob:
        relpath = self.manifest.relpath_of_image(sha)
        declared = tuple(DeclaredSize(w, h, "post") for w, h in self.manifest.declared_sizes(sha))
        self._originals[sha] = relpath
        path = self.store.local_copy(relpath)  # an object store fetches it to a local file
        return AnalyzeJob(sha, path, self.store.root, declared, self.rewrite_thumbnails)

    def _record(self, future: Future[Analysis], sha: str) -> int:
        try:
            result: Analysis | ImageError = future.result()
        except ImageError as exc:
            result = exc
        if isinstance(result, Analysis):  # an object store takes the thumbnails made locally
            thumbnails = [thumb.relpath for thumb in result.thumbnails]
            self.store.put_thumbnails(thumbnails, replace=self.rewrite_thumbnails)
        self.store.release(self._originals.pop(sha))
        return self.record(sha, result)


@contextmanager
def analyses_on(
    cluster: Cluster | None,
    manifest: Manifest,
    store: MediaStore,
    settings: Settings,
    say: Say,
    *,
    rewrite_thumbnails: bool = False,
    wake: Callable[[], None] | None = None,
) -> Iterator[AnalysisSink]:
    """Where the run's analyses go: the Dask cluster's tasks, or this machine's process pool
    (`wake`: see Analyses)."""
    if cluster is not None:
        yield cluster.analyses(manifest, say, rewrite_thumbnails=rewrite_thumbnails)
        return
    with cpu_pool(settings.workers) as pool:
        yield Analyses(
            pool, manifest, store, settings, say, rewrite_thumbnails=rewrite_thumbnails, wake=wake
        )


def _analyze(job: AnalyzeJob, settings: ImageSettings) -> Analysis:
    """imaging.analyze, imported when first needed (PIL, numpy: not for a run with no images)."""
    from mediatool.imaging import analyze

    return analyze(job, settings)
