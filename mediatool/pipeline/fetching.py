"""`mediatool fetch`: find posts -> discover -> resolve -> fetch (threads) -> store (sha256) ->
analyze: phash + thumbnails (process pool, fed as downloads land) -> group near-duplicates."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from mediatool.config import Settings
from mediatool.dedup import group_images
from mediatool.discover import find_posts
from mediatool.errors import PostError
from mediatool.fetch import Fetcher
from mediatool.manifest import Manifest, PostState
from mediatool.models import (
    Download,
    FetchJob,
    FetchOutcome,
    NotModified,
    PostScan,
    Reference,
    RefKind,
)
from mediatool.pipeline.analyzing import Analyses
from mediatool.pipeline.common import (
    CHECKPOINT_EVERY,
    CHECKPOINT_SECONDS,
    Say,
    cpu_pool,
    post_key,
    read_posts,
    scan_fingerprint,
)
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import FailedUrl, FetchSummary
from mediatool.resolve import Rule, compile_rules, resolve, wayback_url
from mediatool.store import Store

POST_BATCH = 200  # scanned posts recorded per manifest commit


@one_run_per_cache("fetch", makes_cache=True)
def run_fetch(
    paths: Sequence[Path],
    settings: Settings,
    *,
    say: Say,
    progress: bool = False,
    retry_failed: bool = False,
    refresh: bool = False,
) -> FetchSummary:
    """Find, resolve, download, store, hash, group and thumbnail every image of the posts."""
    started = time.monotonic()
    store = Store(settings.cache_dir)
    store.prepare()
    rules = compile_rules(settings.proxy_rules)
    with Manifest.open(store.manifest_path) as manifest:
        posts = find_posts(paths, exclude=[settings.cache_dir])
        key_of = {path: post_key(path) for path in posts}
        problems = _scan_posts(key_of, manifest, settings, rules, say, progress)
        keys = list(key_of.values())
        references, remote = manifest.reference_counts(keys)
        origins = manifest.origin_urls_of(keys)
        wayback = settings.fetch.wayback
        jobs, stored = manifest.fetch_jobs(
            origins, retry_failed=retry_failed or wayback, refresh=refresh, file_present=store.has
        )
        if wayback:
            jobs = with_wayback(jobs, manifest)
        counts = _download_and_analyze(jobs, manifest, store, settings, say, progress)
        boilerplate = group_and_count(manifest, settings)
        groups, grouped = manifest.group_count()
        failed = _failures(manifest, origins)
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
    )


def _scan_posts(
    key_of: dict[Path, str],
    manifest: Manifest,
    settings: Settings,
    rules: Sequence[Rule],
    say: Say,
    progress: bool,
) -> list[str]:
    """Discover and resolve the references of every changed post; return problem messages.

    Unchanged posts (same size, mtime and settings) are not read; the others are parsed over
    the cores and recorded here, a commit every POST_BATCH posts."""
    problems: list[str] = []
    changed = _changed_posts(key_of, manifest, scan_fingerprint(settings), problems, say)
    bar = tqdm(total=len(changed), desc="scan", unit="post", disable=not progress, file=sys.stderr)
    with manifest.checkpoints(POST_BATCH, CHECKPOINT_SECONDS) as checkpoint:
        for path, scan in read_posts(list(changed), settings.discover, settings.workers):
            key = key_of[path]
            problems.extend(_record_scan(key, changed[path], scan, manifest, rules, say))
            bar.update()
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
        return [scan.message]
    for problem in scan.problems:
        say(problem)
    resolved = [(ref, _origin_of(ref, manifest, rules)) for ref in scan.references]
    joined = "; ".join(scan.problems) or None
    manifest.record_post(key, state, scan.encoding, joined, resolved, scan.date)
    return list(scan.problems)


def _origin_of(ref: Reference, manifest: Manifest, rules: Sequence[Rule]) -> str | None:
    if ref.kind is not RefKind.REMOTE:
        return None
    resolution = resolve(ref.source_url, rules)
    manifest.add_resolution(resolution)
    return resolution.origin_url


def _download_and_analyze(
    jobs: list[FetchJob],
    manifest: Manifest,
    store: Store,
    settings: Settings,
    say: Say,
    progress: bool,
) -> Counter[str]:
    """Run downloads and CPU work as one pipeline: each download is analyzed as it lands."""
    counts: Counter[str] = Counter()
    bar = tqdm(total=len(jobs), desc="fetch", unit="url", disable=not progress, file=sys.stderr)
    with cpu_pool(settings.workers) as pool:
        analyses = Analyses(pool, manifest, store, settings, say)
        with (
            Fetcher(settings.fetch, store.temp_dir, store.keep) as fetcher,
            manifest.checkpoints(CHECKPOINT_EVERY, CHECKPOINT_SECONDS) as checkpoint,
        ):
            for outcome in fetcher.fetch_all(jobs):
                bar.update()
                _record_outcome(outcome, manifest, analyses, counts, say)
                counts["analyzed"] += analyses.collect(block=False)
                checkpoint()
        for sha, _ in manifest.unanalyzed_images():
            analyses.add(sha)
        counts["analyzed"] += analyses.collect(block=True)
    bar.close()
    return counts


def _record_outcome(
    outcome: FetchOutcome, manifest: Manifest, analyses: Analyses, counts: Counter[str], say: Say
) -> None:
    if isinstance(outcome, Download):  # already in the store: the fetcher was given store.keep
        counts["downloaded"] += 1
        manifest.record_download(outcome, outcome.sha256)
        if manifest.add_original(outcome.sha256, outcome.relpath, outcome.size):
            analyses.add(outcome.sha256)
    elif isinstance(outcome, NotModified):
        counts["not_modified"] += 1
        manifest.record_not_modified(outcome.origin_url)
    else:
        manifest.record_failure(outcome)
        say(outcome.message)


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
    canonical_of = group_images(images, limit)
    with manifest.transaction():
        manifest.set_canonicals(canonical_of)
    return manifest.count_posts_per_image(settings.images.boilerplate_posts)


def _failures(manifest: Manifest, origins: Iterable[str]) -> tuple[FailedUrl, ...]:
    statuses = manifest.url_statuses(origins)
    return tuple(
        FailedUrl(s.origin_url, s.reason or "failed", s.message or "")
        for s in sorted(statuses.values(), key=lambda s: s.origin_url)
        if s.status == "failed"
    )
