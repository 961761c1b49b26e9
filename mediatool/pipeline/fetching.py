"""`mediatool fetch`: find posts -> discover -> resolve -> fetch (threads) -> store (sha256) ->
analyze: phash + thumbnails (process pool, fed as downloads land) -> group near-duplicates."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from mediatool.config import Settings
from mediatool.dedup import group_images
from mediatool.discover import find_posts_resolved
from mediatool.errors import PostError
from mediatool.fetch import Fetcher
from mediatool.fetch.sniff import CATEGORIES, IMAGE
from mediatool.manifest import Manifest, PostState
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
from mediatool.pipeline.analyzing import AnalysisSink, analyses_on, cluster_of
from mediatool.pipeline.common import (
    CHECKPOINT_EVERY,
    CHECKPOINT_SECONDS,
    Say,
    archive_root_of,
    post_keys,
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
from mediatool.store import MediaStore

if TYPE_CHECKING:
    from mediatool.pipeline.distributing import Cluster

POST_BATCH = 200  # scanned posts recorded per manifest commit
EARLIER_LINES = 20  # failures of earlier runs named one per line; the rest are counted


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
) -> FetchSummary:
    """Find, resolve, download, store, hash, group and thumbnail every image of the posts.

    With `time_budget` (seconds), no download starts once that much time has passed since the
    run began: what was fetched is recorded and the summary says `resume_needed`. With
    `progress_every` (seconds; for a stderr that is not a terminal), a plain progress line is
    said that often while downloading."""
    started = time.monotonic()
    deadline = None if time_budget is None else started + time_budget
    store = store_of(settings)
    store.prepare()
    rules = compile_rules(settings.proxy_rules)
    with cluster_of(settings, say) as cluster, Manifest.open(store.manifest_path) as manifest:
        found = find_posts_resolved(paths, exclude=[settings.cache_dir])
        posts = list(found)
        root = archive_root_of(settings)
        key_of = post_keys(found, root)
        problems = _scan_posts(key_of, manifest, settings, rules, say, progress, progress_every)
        keys = list(key_of.values())
        references, remote = manifest.reference_counts(keys)
        posts_of = manifest.references_by_origin(keys)
        origins = set(posts_of)
        wayback = settings.fetch.wayback
        jobs, stored = manifest.fetch_jobs(
            origins,
            retry_failed=retry_failed or wayback,
            refresh=refresh,
            file_present=store.has,
            limits=byte_limits(settings),
            retry=svg_refusals_to_retry(settings.images.svg),
        )
        requested = refuse_bad_urls(jobs, manifest, root, say)
        refused_now = {job.origin_url for job in jobs} - {job.origin_url for job in requested}
        jobs = requested
        if wayback:
            jobs = with_wayback(jobs, manifest)
        limits = {"too_many_pixels": settings.images.max_pixels}
        with manifest.transaction():
            manifest.reopen_images(limits, all_errors=retry_failed)
        counts, failed_now = _download_and_analyze(
            jobs, manifest, store, settings, say, progress, deadline, progress_every, cluster
        )
        boilerplate = group_and_count(manifest, settings)
        groups, grouped = manifest.group_count()
        failed = _failures(manifest, posts_of, failed_now | refused_now, settings.check.allow)
        kinds = manifest.stored_kinds(origins)
        stored_kinds = {c: kinds[c] for c in CATEGORIES if c in kinds}
    _say_earlier_failures(failed, say)
    failed_urls = {f.url for f in failed}
    stored = [url for url in stored if url not in failed_urls]
    return FetchSummary(
        posts=len(posts),
        posts_failed=len(problems),
        references=references,
        remote_references=remote,
        distinct_urls=len(origins),
        downloaded=counts["downloaded"],
        already_stored=len(stored) - counts["downloaded"] - counts["not_modified"]
        if refresh
        else len(stored),
        not_modified=counts["not_modified"],
        images_analyzed=counts["analyzed"],
        boilerplate_images=boilerplate,
        groups=groups,
        grouped_images=grouped,
        seconds=round(time.monotonic() - started, 3),
        failed=failed,
        problems=tuple(problems),
        failed_references=sum(f.references for f in failed),
        downloaded_by_kind={
            c: counts[f"downloaded:{c}"] for c in CATEGORIES if counts[f"downloaded:{c}"]
        },
        stored_by_kind=stored_kinds,
        resume_needed=counts["not_started"] > 0,
        not_started=counts["not_started"],
    )


def _scan_posts(
    key_of: dict[Path, str],
    manifest: Manifest,
    settings: Settings,
    rules: Sequence[Rule],
    say: Say,
    progress: bool,
    progress_every: float | None = None,
) -> list[str]:
    """Discover and resolve the references of every changed post; return problem messages.

    Unchanged posts (same size, mtime and settings) are not read; the others are parsed over
    the cores and recorded here, a commit every POST_BATCH posts."""
    problems: list[str] = []
    changed = _changed_posts(key_of, manifest, scan_fingerprint(settings), problems, say)
    bar = tqdm(total=len(changed), desc="scan", unit="post", disable=not progress, file=sys.stderr)
    lines = ProgressLines(len(changed), progress_every, say, "scan", "posts")
    with manifest.checkpoints(POST_BATCH, CHECKPOINT_SECONDS) as checkpoint:
        for path, scan in read_posts(list(changed), settings.discover, settings.workers):
            key = key_of[path]
            found = _record_scan(key, changed[path], scan, manifest, rules, say)
            problems.extend(found)
            bar.update()
            lines.update(failed=bool(found))
            checkpoint()
    bar.close()
    return problems


def _changed_posts(
    key_of: dict[Path, str], manifest: Manifest, fingerprint: str, problems: list[str], say: Say
) -> dict[Path, PostState]:
    """The posts whose size, mtime or scan settings differ from what the manifest recorded."""
    recorded = manifest.post_states(list(key_of.values()))
    changed: dict[Path, PostState] = {}
    for path, key in key_of.items():
        try:
            stat = path.stat()
        except OSError as exc:
            message = f"{path}: cannot read post ({exc.strerror}); check the file's permissions."
            say(message)
            problems.append(message)
            continue
        state = PostState(stat.st_size, stat.st_mtime_ns, fingerprint)
        if recorded.get(key) != state:
            changed[path] = state
    return changed


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
    manifest.record_post(key, state, scan.encoding, joined, resolved, scan.date)
    manifest.record_post_sha(key, post_sha(scan))
    return list(scan.problems)


def _origin_of(ref: Reference, manifest: Manifest, rules: Sequence[Rule]) -> str | None:
    if ref.kind is not RefKind.REMOTE:
        return None
    resolution = resolve_reference(ref, rules)
    manifest.add_resolution(resolution)
    return resolution.origin_url


def _download_and_analyze(
    jobs: list[FetchJob],
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
    with analyses_on(cluster, manifest, store, settings, say) as analyses:
        with (
            _downloads(cluster, store, settings) as fetch_all,
            manifest.checkpoints(CHECKPOINT_EVERY, CHECKPOINT_SECONDS) as checkpoint,
        ):
            for outcome in fetch_all(jobs, deadline):
                bar.update()
                _record_outcome(outcome, manifest, analyses, counts, say, root)
                if isinstance(outcome, FetchFailure):
                    failed.add(outcome.origin_url)
                lines.update(failed=isinstance(outcome, FetchFailure))
                counts["analyzed"] += analyses.collect(block=False)
                checkpoint()
        for sha, _ in manifest.unanalyzed_images():
            analyses.add(sha)
        counts["analyzed"] += analyses.collect(block=True)
    bar.close()
    counts["not_started"] = len(jobs) - lines.done
    if counts["not_started"]:
        say(
            f"time budget spent: {counts['not_started']} of {len(jobs)} URLs not started; "
            "resume needed: run the same command again to continue"
        )
    return counts, failed | analyses.failed_urls


FetchAll = Callable[[list[FetchJob], float | None], Iterator[FetchOutcome]]


@contextmanager
def _downloads(
    cluster: Cluster | None, store: MediaStore, settings: Settings
) -> Iterator[FetchAll]:
    """fetch_all of the Dask cluster's tasks, or of a Fetcher on this machine's threads."""
    if cluster is not None:
        yield cluster.fetch_all
        return
    with Fetcher(settings.fetch, store.temp_dir, store.keep, settings.images.svg) as fetcher:
        yield fetcher.fetch_all


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
        manifest.record_not_modified(outcome.origin_url)
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


def refuse_bad_urls(
    jobs: list[FetchJob], manifest: Manifest, root: Path, say: Say
) -> list[FetchJob]:
    """Record each URL that cannot be requested as written (`resolve.url_problem`) as failed
    with reason bad_url, in one line naming a post (its path: the archive root joined with its
    manifest key) and line that hold it; return the others."""
    bad = {job.origin_url: why for job in jobs if (why := url_problem(job.origin_url))}
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
    return [job for job in jobs if job.origin_url not in bad]


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


def with_wayback(jobs: list[FetchJob], manifest: Manifest) -> list[FetchJob]:
    """Add the Internet Archive's copy nearest the earliest referring post's date, last."""
    dates = manifest.post_dates(job.origin_url for job in jobs)
    return [
        replace(
            job,
            candidates=(*job.candidates, wayback_url(job.origin_url, dates.get(job.origin_url))),
        )
        for job in jobs
    ]


def group_and_count(manifest: Manifest, settings: Settings, threshold: int | None = None) -> int:
    """Group near-duplicates, then count posts per canonical; returns the boilerplate count."""
    images = manifest.analyzed_images()
    limit = settings.images.phash_threshold if threshold is None else threshold
    canonical_of = group_images(images, limit, greys=manifest.greys)
    with manifest.transaction():
        manifest.set_canonicals(canonical_of)
    return manifest.count_posts_per_image(settings.images.boilerplate_posts)


def _failures(
    manifest: Manifest,
    posts_of: dict[str, list[str]],
    failed_now: set[str],
    allow: Sequence[str],
) -> tuple[FailedUrl, ...]:
    """Every URL of these posts whose download or image failed, this run or an earlier one;
    those whose reason is in `allow` ([check] allow) are accepted."""
    statuses = manifest.url_statuses(posts_of)
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
        if s.status == "failed"
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
