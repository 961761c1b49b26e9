"""`mediatool fetch`: find posts -> discover -> resolve -> fetch (threads) -> store (sha256) ->
analyze: phash + thumbnails (process pool, fed as downloads land) -> group near-duplicates.

A re-run pays only for what changed: unchanged posts are neither read nor parsed (one stat each,
from the walk, against one query of the manifest), no process pool or HTTP client starts when
there is nothing to download or analyze, and grouping is skipped when nothing it reads changed.
The image, HTTP and Markdown libraries are imported only when needed."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tqdm import tqdm

from mediatool.config import Settings
from mediatool.discover import PostFile, find_post_files
from mediatool.errors import PostError
from mediatool.fetch.sniff import CATEGORIES, IMAGE
from mediatool.manifest import Manifest, PostState
from mediatool.manifest.plan import JobPlan
from mediatool.memory import release_free_memory
from mediatool.models import (
    Download,
    FetchFailure,
    FetchJob,
    FetchOutcome,
    NotModified,
    PostScan,
    Reference,
    RefKind,
)
from mediatool.partition import Shard
from mediatool.pipeline.common import (
    CHECKPOINT_EVERY,
    CHECKPOINT_SECONDS,
    Say,
    archive_root_of,
    post_keys_of_files,
    post_sha,
    read_posts,
    scan_fingerprint,
    store_of,
)
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import FailedUrl, FetchSummary
from mediatool.resolve import (
    Rule,
    compile_rules,
    resolve_reference,
    shown_url,
    url_problem,
    wayback_url,
)
from mediatool.store import MediaStore, find_relpath

if TYPE_CHECKING:
    from mediatool.pipeline.analyzing import AnalysisSink
    from mediatool.pipeline.distributing import Cluster

POST_BATCH = 200  # scanned posts recorded per manifest commit
EARLIER_LINES = 20  # failures of earlier runs named one per line; the rest are counted
OUTCOMES_AHEAD = 4  # outcomes per download thread handed over but not yet recorded
PUMP_POLL = 0.2  # seconds between the outcome thread's looks at whether the run stopped
GROUP_PAGE = 20_000  # images grouped at a time (onto those grouped before)


@one_run_per_cache("fetch", makes_cache=True)
def run_fetch(
    paths: Sequence[Path],
    settings: Settings,
    *,
    say: Say,
    progress: bool = False,
    retry_failed: bool = False,
    refresh: bool = False,
    time_budget: float | None = None,
    progress_every: float | None = None,
    refresh_all: bool = False,
    shard: Shard | None = None,
) -> FetchSummary:
    """Find, resolve, download, store, hash, group and thumbnail every image of the posts.

    `refresh` revalidates the stored URLs whose copy is stale by the Cache-Control/Expires
    their server sent (`fetch.policy.is_fresh`; the others are counted as `fresh`),
    `refresh_all` every stored URL. With `time_budget` (seconds), no download starts once that
    much time has passed since the run began: what was fetched is recorded and the summary says
    `resume_needed`. With `shard` (`fetch --shard I/N`, a CI matrix job), every post is scanned
    but only the URLs whose host belongs to that shard (mediatool.partition) are fetched; the
    others stay pending for the shard that owns them, and the failures reported are this
    shard's (`mediatool merge` joins the shards' manifests, docs/shards.md). With
    `progress_every` (seconds; for a stderr that is not a terminal), a plain progress line is
    said that often while downloading."""
    started = time.monotonic()
    deadline = None if time_budget is None else started + time_budget
    store = store_of(settings)
    store.prepare()
    options = _FetchOptions(retry_failed, refresh, refresh_all, deadline, progress, progress_every)
    from mediatool.pipeline.clusters import cluster_of

    with Manifest.open(store.manifest_path) as manifest:
        with cluster_of(settings, say) as cluster:
            fetched = _fetch_posts(paths, settings, manifest, store, cluster, say, options, shard)
        # the cluster (its workers and, for local:N, its scheduler here) is stopped and what
        # fetching held per post and per URL is gone: grouping reuses that memory
        release_free_memory()
        boilerplate = _grouped(manifest, settings, fetched.changed)
        groups, grouped = manifest.group_count()
    _say_earlier_failures(fetched.failed, say)
    counts, failed = fetched.counts, fetched.failed
    return FetchSummary(
        posts=fetched.posts,
        posts_failed=len(fetched.problems),
        references=fetched.references,
        remote_references=fetched.remote_references,
        distinct_urls=fetched.distinct_urls,
        downloaded=counts["downloaded"],
        already_stored=fetched.already_stored,
        not_modified=counts["not_modified"],
        images_analyzed=counts["analyzed"],
        boilerplate_images=boilerplate,
        groups=groups,
        grouped_images=grouped,
        seconds=round(time.monotonic() - started, 3),
        failed=failed,
        problems=tuple(fetched.problems),
        failed_references=sum(f.references for f in failed),
        downloaded_by_kind={
            c: counts[f"downloaded:{c}"] for c in CATEGORIES if counts[f"downloaded:{c}"]
        },
        stored_by_kind=fetched.stored_by_kind,
        resume_needed=counts["not_started"] > 0 and not counts["offline"],
        not_started=counts["not_started"],
        offline=bool(counts["offline"]),
        fresh=fetched.fresh,
        shard=str(shard) if shard else None,
        shard_urls=fetched.shard_urls,
    )


@dataclass(frozen=True, slots=True)
class _FetchOptions:
    """The flags of `run_fetch` that decide what is fetched and how it is shown."""

    retry_failed: bool
    refresh: bool
    refresh_all: bool
    deadline: float | None  # time.monotonic() after which no download starts
    progress: bool
    progress_every: float | None


@dataclass(frozen=True, slots=True)
class _Fetched:
    """What scanning, downloading and analysing gave, in counts: the run's posts, URLs and
    plan stay inside `_fetch_posts` (at 100,000 posts, ~100 MB that grouping then reuses)."""

    posts: int
    problems: list[str]
    references: int
    remote_references: int
    distinct_urls: int
    shard_urls: int
    counts: Counter[str]
    failed: tuple[FailedUrl, ...]
    already_stored: int
    stored_by_kind: dict[str, int]
    fresh: int
    changed: bool  # whether anything grouping reads may have changed


def _fetch_posts(
    paths: Sequence[Path],
    settings: Settings,
    manifest: Manifest,
    store: MediaStore,
    cluster: Cluster | None,
    say: Say,
    options: _FetchOptions,
    shard: Shard | None,
) -> _Fetched:
    """Scan the posts, plan, download and analyze (run_fetch without the grouping)."""
    root = archive_root_of(settings)
    posts, keys, scanned, problems = _scan(paths, root, settings, manifest, say, options)
    references, remote, origins = manifest.reference_totals(keys)
    # a shard fetches only its hosts' URLs; the other shards' stay as they are (pending)
    mine = origins if shard is None else {url for url in origins if shard.holds(url)}
    own = own_copies(mine, manifest)
    wayback = settings.fetch.wayback
    refreshing = options.refresh or options.refresh_all
    plan, stored = manifest.plan_fetch(
        mine - own if own else mine,
        retry_failed=options.retry_failed or wayback,
        refresh=options.refresh,
        file_present=store.has,
        limits=byte_limits(settings),
        retry=svg_refusals_to_retry(settings.images.svg),
        refresh_all=options.refresh_all,
    )
    stored += sorted(own)
    fresh = _fresh_urls(stored, plan.urls) if refreshing else []
    requested = refuse_bad_urls(plan, manifest, root, say)
    refused_now = set(plan.urls) - set(requested.urls) if len(requested) < len(plan) else set()
    jobs: Collection[FetchJob] = with_wayback(requested, manifest) if wayback else requested
    limits = {"too_many_pixels": settings.images.max_pixels}
    with manifest.transaction():
        reopened = manifest.reopen_images(limits, all_errors=options.retry_failed)
    counts: Counter[str] = Counter()
    failed_now: set[str] = set()
    if jobs or reopened or manifest.unanalyzed_images():
        counts, failed_now = _download_and_analyze(
            jobs,
            manifest,
            store,
            settings,
            say,
            options.progress,
            options.deadline,
            options.progress_every,
            cluster,
        )
    failed = _failures(manifest, mine, set(keys), failed_now | refused_now, settings.check.allow)
    failed_urls = {f.url for f in failed}
    still_stored = sum(url not in failed_urls for url in stored)
    kinds = manifest.stored_kinds(mine)
    return _Fetched(
        posts=posts,
        problems=problems,
        references=references,
        remote_references=remote,
        distinct_urls=len(origins),
        shard_urls=len(mine),
        counts=counts,
        failed=failed,
        already_stored=still_stored - counts["downloaded"] - counts["not_modified"]
        if refreshing
        else still_stored,
        stored_by_kind={c: kinds[c] for c in CATEGORIES if c in kinds},
        fresh=len(fresh),
        changed=scanned > 0 or bool(jobs) or reopened > 0 or counts["analyzed"] > 0,
    )


def _scan(
    paths: Sequence[Path],
    root: Path,
    settings: Settings,
    manifest: Manifest,
    say: Say,
    options: _FetchOptions,
) -> tuple[int, list[str], int, list[str]]:
    """Find the posts and scan the changed ones (`_scan_posts`); returns how many posts there
    are, their manifest keys, how many were read and the problem messages. The found files
    (paths, stats: ~40 MB at 100,000 posts) stay here, free before the downloads."""
    found = find_post_files(paths, exclude=[settings.cache_dir], with_stat=True)
    key_of = post_keys_of_files(found, root)
    rules = compile_rules(settings.proxy_rules)
    scanned, problems = _scan_posts(
        found, key_of, manifest, settings, rules, say, options.progress, options.progress_every
    )
    return len(found), list(key_of.values()), scanned, problems


def _fresh_urls(stored: list[str], requested: list[str]) -> list[str]:
    """Under --refresh, the stored URLs not asked again (not among the `requested` origin
    URLs): their copy is still fresh (with a refresh, `fetch.policy.refetch` revalidates every
    other stored URL)."""
    asked = set(requested)
    return [url for url in stored if url not in asked]


def _grouped(manifest: Manifest, settings: Settings, changed: bool) -> int:
    """Group near-duplicates and count posts per image (`group_and_count`), unless nothing
    grouping reads has changed since the last fetch grouped with the same settings; returns
    the boilerplate count."""
    mark: list[object] = [settings.images.phash_threshold, settings.images.boilerplate_posts]
    mark.extend(manifest.grouping_inputs())
    if not changed and manifest.grouping_mark() == mark:
        return manifest.boilerplate_count()
    boilerplate = group_and_count(manifest, settings)
    manifest.set_grouping_mark(mark)
    return boilerplate


def _scan_posts(
    found: Sequence[PostFile],
    key_of: dict[str, str],
    manifest: Manifest,
    settings: Settings,
    rules: Sequence[Rule],
    say: Say,
    progress: bool,
    progress_every: float | None = None,
) -> tuple[int, list[str]]:
    """Discover and resolve the references of every changed post; return how many were read
    and the problem messages.

    Unchanged posts (same size, mtime and settings) are not read; the others are parsed over
    the cores and recorded here, a commit every POST_BATCH posts."""
    problems: list[str] = []
    changed = _changed_posts(found, key_of, manifest, scan_fingerprint(settings), problems, say)
    if not changed:
        return 0, problems
    bar = tqdm(total=len(changed), desc="scan", unit="post", disable=not progress, file=sys.stderr)
    lines = ProgressLines(len(changed), progress_every, say, "scan", "posts")
    with manifest.checkpoints(POST_BATCH, CHECKPOINT_SECONDS) as checkpoint:
        for path, scan in read_posts(list(changed), settings.discover, settings.workers):
            key = key_of[str(path)]
            said = _record_scan(key, changed[path], scan, manifest, rules, say)
            problems.extend(said)
            bar.update()
            lines.update(failed=bool(said))
            checkpoint()
    bar.close()
    return len(changed), problems


def _changed_posts(
    found: Sequence[PostFile],
    key_of: dict[str, str],
    manifest: Manifest,
    fingerprint: str,
    problems: list[str],
    say: Say,
) -> dict[Path, PostState]:
    """The posts whose size, mtime (as the walk stat'ed them) or scan settings differ from what
    the manifest recorded (one query for all of them). An unchanged post's recorded problems
    are said again without reading it."""
    recorded = manifest.recorded_posts(list(key_of.values()))
    changed: dict[Path, PostState] = {}
    for post in found:
        known = recorded.get(key_of[post.name])
        if known is not None and known.same(post.size, post.mtime_ns, fingerprint):
            lines = [_with_path(line, post.name) for line in known.problems]
            for line in lines:
                say(line)
            problems.extend(lines)
            continue
        state = _state_of(post, fingerprint)
        if isinstance(state, str):
            say(state)
            problems.append(state)
        elif known is None or not known.same(state.size, state.mtime_ns, fingerprint):
            changed[post.path] = state
    return changed


POST = "{post}"  # in a recorded problem line: the post's path, as this run names it


def _without_path(line: str, path: Path | str) -> str:
    """A problem line as recorded: its leading post path (as this run named it) as POST."""
    named = f"{path}:"
    return POST + line[len(named) - 1 :] if line.startswith(named) else line


def _with_path(line: str, path: Path | str) -> str:
    """A recorded problem line as said again: POST back to the post's path as named now."""
    return f"{path}{line[len(POST) :]}" if line.startswith(POST) else line


def _state_of(post: PostFile, fingerprint: str) -> PostState | str:
    """The post's state from the walk's stat; one that failed is stat'ed again for its error
    (the problem line), or its state if it can be stat'ed now."""
    if post.size is not None and post.mtime_ns is not None:
        return PostState(post.size, post.mtime_ns, fingerprint)
    try:
        stat = post.path.stat()
    except OSError as exc:
        return f"{post.path}: cannot read post ({exc.strerror}); check the file's permissions."
    return PostState(stat.st_size, stat.st_mtime_ns, fingerprint)


def _record_scan(
    key: str,
    state: PostState,
    scan: PostScan | PostError,
    manifest: Manifest,
    rules: Sequence[Rule],
    say: Say,
) -> list[str]:
    if isinstance(scan, PostError):
        say(scan.message)
        manifest.record_post(key, None, None, scan.message, [])
        manifest.record_post_sha(key, None)
        return [scan.message]
    for problem in scan.problems:
        say(problem)
    resolved = [(ref, _origin_of(ref, manifest, rules)) for ref in scan.references]
    joined = "; ".join(scan.problems) or None
    lines = [_without_path(line, scan.path) for line in scan.problems]
    manifest.record_post(key, state, scan.encoding, joined, resolved, scan.date, lines)
    manifest.record_post_sha(key, post_sha(scan))
    return list(scan.problems)


def _origin_of(ref: Reference, manifest: Manifest, rules: Sequence[Rule]) -> str | None:
    if ref.kind is not RefKind.REMOTE:
        return None
    resolution = resolve_reference(ref, rules)
    manifest.add_resolution(resolution)
    return resolution.origin_url


def _download_and_analyze(
    jobs: Collection[FetchJob],
    manifest: Manifest,
    store: MediaStore,
    settings: Settings,
    say: Say,
    progress: bool,
    deadline: float | None = None,
    progress_every: float | None = None,
    cluster: Cluster | None = None,
) -> tuple[Counter[str], set[str]]:
    """Run downloads and CPU work as one pipeline: each download is analyzed as it lands (on
    this machine, or on the Dask `cluster` of --scheduler). Returns the counts (`not_started`:
    jobs the deadline left) and the origin URLs that failed in this run."""
    counts: Counter[str] = Counter()
    failed: set[str] = set()
    root = archive_root_of(settings)
    bar = tqdm(total=len(jobs), desc="fetch", unit="url", disable=not progress, file=sys.stderr)
    lines = ProgressLines(len(jobs), progress_every, say)
    from mediatool.pipeline.analyzing import analyses_on  # PIL: only when there is work

    events: queue.SimpleQueue[_Event] = queue.SimpleQueue()

    def wake() -> None:
        events.put(_WAKE)

    with analyses_on(cluster, manifest, store, settings, say, wake=wake) as analyses:
        with (
            _downloads(cluster, store, settings) as fetcher,
            manifest.checkpoints(CHECKPOINT_EVERY, CHECKPOINT_SECONDS) as checkpoint,
        ):
            ahead = OUTCOMES_AHEAD * max(settings.fetch.concurrency, 1)
            for outcome in _with_wakes(fetcher.fetch_all(jobs, deadline), events, ahead):
                if isinstance(outcome, _Wake):  # an analysis finished: record it, feed the pool
                    counts["analyzed"] += analyses.collect(block=False)
                    checkpoint()
                    continue
                bar.update()
                _record_outcome(outcome, manifest, analyses, counts, say, root)
                if isinstance(outcome, FetchFailure):
                    failed.add(outcome.origin_url)
                lines.update(failed=isinstance(outcome, FetchFailure))
                counts["analyzed"] += analyses.collect(block=False)
                checkpoint()
            counts["offline"] = fetcher.offline
        for sha, _ in manifest.unanalyzed_images():
            analyses.add(sha)
        counts["analyzed"] += analyses.collect(block=True)
    bar.close()
    counts["not_started"] = len(jobs) - lines.done
    if counts["offline"]:  # the URLs tried stay pending: the next run tries them again
        from mediatool.fetch import OFFLINE_MESSAGE

        say(OFFLINE_MESSAGE)
    elif counts["not_started"]:
        say(
            f"time budget spent: {counts['not_started']} of {len(jobs)} URLs not started; "
            "resume needed: run the same command again to continue"
        )
    return counts, failed | analyses.failed_urls


class _Wake:
    """An analysis finished."""


class _End:
    """No more outcomes."""


class _Raised:
    """What the outcome thread raised, for the caller's thread to raise."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_WAKE, _END = _Wake(), _End()
_Event = FetchOutcome | _Wake | _End | _Raised


def _with_wakes(
    outcomes: Iterator[FetchOutcome], events: queue.SimpleQueue[_Event], ahead: int
) -> Iterator[FetchOutcome | _Wake]:
    """The outcomes, in their order, with a _Wake wherever `events` got one (an analysis
    finished). A thread waits for the outcomes, so the caller's thread, the only one that
    records, waits for both at once: while no download lands (a slow host, a Retry-After) the
    finished analyses are still recorded and the pool fed again. At most `ahead` outcomes are
    handed over before the caller has recorded them (the fetcher's own bound on what waits for
    its caller). Closing the Fetcher ends the thread."""
    room = threading.Semaphore(ahead)
    stopped = threading.Event()

    def pump() -> None:
        try:
            for outcome in outcomes:
                while not room.acquire(timeout=PUMP_POLL):
                    if stopped.is_set():
                        return
                events.put(outcome)
        except BaseException as exc:  # handed to the caller's thread, raised there
            events.put(_Raised(exc))
        events.put(_END)

    thread = threading.Thread(target=pump, name="mediatool-outcomes", daemon=True)
    thread.start()
    try:
        while not isinstance(event := events.get(), _End):
            if isinstance(event, _Raised):
                raise event.error
            yield event
            if not isinstance(event, _Wake):
                room.release()
    finally:
        stopped.set()


def own_copies(origin_urls: set[str], manifest: Manifest) -> set[str]:
    """The URLs that name a file of this store (posts rewritten with an http(s) --base-url, a
    CDN or a bucket's public URL): their original's sha256 is a stored image, so these bytes
    are here already and nothing is fetched."""
    named = {url: hit.sha256 for url in origin_urls if (hit := find_relpath(url))}
    stored = manifest.localizations_of_images(set(named.values()))
    return {url for url, sha in named.items() if sha in stored}


class Downloads(Protocol):
    """What runs a run's downloads: a Fetcher on this machine's threads or the Dask cluster."""

    offline: bool

    def fetch_all(
        self, jobs: Iterable[FetchJob], deadline: float | None = None
    ) -> Iterator[FetchOutcome]: ...


@contextmanager
def _downloads(
    cluster: Cluster | None, store: MediaStore, settings: Settings
) -> Iterator[Downloads]:
    """The Dask cluster's tasks, or a Fetcher on this machine's threads."""
    if cluster is not None:
        yield cluster
        return
    from mediatool.fetch import Fetcher  # httpx: only when there is work

    with Fetcher(settings.fetch, store.temp_dir, store.keep, settings.images.svg) as fetcher:
        yield fetcher


class ProgressLines:
    """Plain progress lines for a log (stderr not a terminal): done/total, rate and failures,
    at most one every `every` seconds (None: none)."""

    def __init__(
        self, total: int, every: float | None, say: Say, stage: str = "fetch", unit: str = "URLs"
    ) -> None:
        self.total, self.every, self.say = total, every, say
        self.stage, self.unit = stage, unit
        self.done = self.failed = 0
        self.started = self.last = time.monotonic()

    def update(self, *, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        now = time.monotonic()
        if self.every is not None and now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            self.say(
                f"{self.stage}: {self.done}/{self.total} {self.unit}, {rate:.1f}/s, "
                f"{self.failed} failed"
            )


download_and_analyze = _download_and_analyze  # for `verify --repair`


def _record_outcome(
    outcome: FetchOutcome,
    manifest: Manifest,
    analyses: AnalysisSink,
    counts: Counter[str],
    say: Say,
    root: Path,
) -> None:
    if isinstance(outcome, Download):  # already in the store: the fetcher was given store.keep
        counts["downloaded"] += 1
        counts[f"downloaded:{outcome.category}"] += 1
        for note in outcome.notes:
            say(f"{outcome.origin_url}: {note}")
        manifest.record_download(outcome, outcome.sha256)
        if not manifest.add_original(outcome.sha256, outcome.relpath, outcome.size):
            return
        if outcome.category == IMAGE:
            analyses.add(outcome.sha256)
        else:  # a media file: a plain asset, nothing to decode
            manifest.record_asset(outcome.sha256, outcome.kind, outcome.category, outcome.size)
    elif isinstance(outcome, NotModified):
        counts["not_modified"] += 1
        manifest.record_not_modified(outcome)
    else:
        if outcome.reason == "bad_url":  # the fix is in a post: name it
            outcome = _naming_post(outcome, manifest, root)
        manifest.record_failure(outcome)
        say(outcome.message)


def _naming_post(failure: FetchFailure, manifest: Manifest, root: Path) -> FetchFailure:
    """The failure with the post and line of a reference to it before its message (the post's
    path: the archive root joined with its manifest key)."""
    where = manifest.first_references([failure.origin_url]).get(failure.origin_url)
    if where is None:
        return failure
    return replace(failure, message=f"{root / where[0]}:{where[1]}: {failure.message}")


def refuse_bad_urls(jobs: JobPlan, manifest: Manifest, root: Path, say: Say) -> JobPlan:
    """Record each URL that cannot be requested as written (`resolve.url_problem`) as failed
    with reason bad_url, in one line naming a post (its path: the archive root joined with its
    manifest key) and line that hold it; return the plan of the others."""
    bad = {url: why for url in jobs.urls if (why := url_problem(url))}
    if not bad:
        return jobs
    where = manifest.first_references(bad)
    with manifest.transaction():
        for url, why in bad.items():
            key, line = where.get(url, ("?", 0))
            post = root / key if key != "?" else key
            message = f"{post}:{line}: bad URL {shown_url(url)}: {why}; fix the URL in the post"
            manifest.record_failure(FetchFailure(url, "bad_url", message))
            say(message)
    return jobs.keeping(lambda url: url not in bad)


def byte_limits(settings: Settings) -> dict[str, int]:
    """fetch.max_bytes now, by the keys failures are recorded under: "too_large" (the category
    was not known yet: the largest limit) and "too_large:video"..."""
    limits = {"too_large": settings.fetch.max_bytes_for(None)}
    for category in CATEGORIES:
        limits[f"too_large:{category}"] = settings.fetch.max_bytes_for(category)
    return limits


def svg_refusals_to_retry(policy: str) -> tuple[str, ...]:
    """unsafe_svg failures that the images.svg policy now in force may judge otherwise, as
    "reason:policy then": refused under "refuse", and under "sanitize" when it is now "keep"."""
    looser = {"refuse": (), "sanitize": ("refuse",), "keep": ("refuse", "sanitize")}
    return tuple(f"unsafe_svg:{then}" for then in looser.get(policy, ()))


def with_wayback(plan: JobPlan, manifest: Manifest) -> list[FetchJob]:
    """The jobs, each with the Internet Archive's copy nearest the earliest referring post's
    date as its last candidate (a list: wayback runs are rare and retry failures only)."""
    dates = manifest.post_dates(plan.urls)
    return [
        replace(
            job,
            candidates=(*job.candidates, wayback_url(job.origin_url, dates.get(job.origin_url))),
        )
        for job in plan
    ]


def group_and_count(
    manifest: Manifest,
    settings: Settings,
    threshold: int | None = None,
    *,
    full: bool = False,
    page: int = GROUP_PAGE,
) -> int:
    """Group near-duplicates, then count posts per canonical; returns the boilerplate count.

    Only the images analyzed since the last grouping are grouped (onto the groups made
    before), unless `full` or the last grouping cannot be extended (dedup.state_after): then
    every image is grouped again. Either way the images are grouped `page` at a time, each page
    onto those grouped before it under the rules and wide radius of the whole set, so a
    grouping holds one page of images and what confirming a pair needs of the others (their
    hashes and aspect ratios, `dedup.StoredHashes`: 32 bytes each, read once and grown a page
    at a time), never every image; both give `dedup.group_images`' groups over all of them."""
    from mediatool.dedup import (  # numpy, imagehash: only when grouping
        GroupingState,
        StoredHashes,
        first_pages_state,
        full_pass_state,
        group_new_images,
        image_counts,
        next_page_state,
        state_after,
    )

    manifest.set_grouping_mark(None)  # a fetch that changed nothing groups again after this
    limit = settings.images.phash_threshold if threshold is None else threshold
    before = None if full else manifest.grouping_state()
    state = None
    if before is not None:
        state = GroupingState(*before)
        new = image_counts(manifest.each_analyzed_image(ungrouped_only=True), page)
        if state_after(state, limit, manifest.grouped_image_count(), *new) is None:
            state = None
    if state is None:  # a full pass: its rules and radius are the whole set's
        whole = full_pass_state(
            limit, *image_counts(manifest.each_analyzed_image(ungrouped_only=False), page)
        )
        state = first_pages_state(whole)
        with manifest.transaction():
            manifest.start_grouping(state)
    stored = StoredHashes.of_columns(*manifest.grouped_columns())  # read once, then grown
    while rows := manifest.ungrouped_rows(limit=page):
        new_page = [info for _, info in rows]
        state = next_page_state(state, new_page)
        regrouping = group_new_images(
            new_page,
            stored,
            state,
            limit,
            stored_names=manifest.grouped_names,
            canonical_infos=manifest.images_by_sha,
            greys=manifest.greys,
        )
        with manifest.transaction():
            manifest.extend_grouping(regrouping.canonical_of, regrouping.renamed, regrouping.state)
        stored = stored.extended(StoredHashes.of_images(rows))
        release_free_memory()  # the page's temporaries: the next page starts from what lives
    return manifest.count_posts_per_image(settings.images.boilerplate_posts)


def _failures(
    manifest: Manifest,
    origins: set[str],
    keys: set[str],
    failed_now: set[str],
    allow: Sequence[str],
) -> tuple[FailedUrl, ...]:
    """Every URL of these posts (`keys`, referring to `origins`) whose download or image
    failed, this run or an earlier one; those whose reason is in `allow` ([check] allow) are
    accepted."""
    statuses = manifest.failed_statuses(origins)
    posts_of = manifest.references_to(list(statuses), keys) if statuses else {}
    return tuple(
        FailedUrl(
            s.origin_url,
            s.reason or "failed",
            _naming_url(s.origin_url, s.message or ""),
            references=len(posts_of[s.origin_url]),
            posts=tuple(sorted(set(posts_of[s.origin_url]))),
            earlier=s.origin_url not in failed_now,
            accepted=(s.reason or "failed") in allow,
        )
        for s in sorted(statuses.values(), key=lambda s: s.origin_url)
        if s.origin_url in posts_of
    )


def _say_earlier_failures(failed: Sequence[FailedUrl], say: Say) -> None:
    """Failures recorded by earlier runs (this run said its own): each still named, up to
    EARLIER_LINES of them."""
    earlier = [f for f in failed if f.earlier and not f.accepted]
    for failure in earlier[:EARLIER_LINES]:
        say(f"still failed ({failure.reason}): {failure.message}")
    if len(earlier) > EARLIER_LINES:
        more = len(earlier) - EARLIER_LINES
        say(f"... and {more} more earlier failures: `fetch --json` or `mediatool report` list all")


def _naming_url(url: str, message: str) -> str:
    """A failure's line, naming its URL: first, unless the message names it already (a bad URL's
    line starts with the post and line that hold it)."""
    if not message:
        return url
    return message if url in message or shown_url(url) in message else f"{url}: {message}"
