"""One function per command: wires the stages, owns the client, the manifest and progress.

fetch:   find posts -> discover references -> resolve proxies -> fetch (threads) ->
         store (sha256) -> analyze: phash + thumbnails (process pool, fed as downloads land) ->
         group near-duplicates -> summary
rewrite: find posts -> discover -> look up the manifest -> plan splices -> write atomically
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

from tqdm import tqdm

from mediatool import __version__
from mediatool.config import Settings
from mediatool.dedup import group_images
from mediatool.discover import find_posts, read_post
from mediatool.errors import ImageError, PostError, UsageError
from mediatool.fetch import Fetcher
from mediatool.files import atomic_write_bytes
from mediatool.imaging import analyze
from mediatool.manifest import Localization, Manifest, PostState
from mediatool.models import (
    AnalyzeJob,
    DeclaredSize,
    Download,
    FetchFailure,
    FetchJob,
    NotModified,
    PostScan,
    Reference,
    RefKind,
    Span,
)
from mediatool.resolve import Rule, compile_rules, resolve
from mediatool.rewrite import Edit, apply_edits, plan_edits, unified_diff
from mediatool.store import Store, sniff_extension

Say = Callable[[str], None]
THUMBNAIL_CONTEXTS = ("frontmatter:thumbnail",)
POST_BATCH = 200


@dataclass(frozen=True, slots=True)
class FailedUrl:
    url: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class FetchSummary:
    posts: int
    posts_failed: int
    references: int
    remote_references: int
    distinct_urls: int
    downloaded: int
    already_stored: int
    not_modified: int
    images_analyzed: int
    groups: int
    grouped_images: int
    seconds: float
    failed: tuple[FailedUrl, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LeftRemote:
    post: str
    line: int
    source_url: str
    origin_url: str
    reason: str


@dataclass(frozen=True, slots=True)
class RewriteSummary:
    posts: int
    posts_changed: int
    references: int
    references_rewritten: int
    references_left_remote: int
    seconds: float
    dry_run: bool
    left_remote: tuple[LeftRemote, ...] = ()
    problems: tuple[str, ...] = ()
    diffs: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not self.left_remote and not self.problems

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("diffs")
        return data


# -- fetch ----------------------------------------------------------------------------------


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
        problems = _scan_posts(posts, manifest, settings, rules, say, progress)
        keys = [_post_key(p) for p in posts]
        references, remote = manifest.reference_counts(keys)
        origins = manifest.origin_urls_of(keys)
        jobs, stored = manifest.fetch_jobs(origins, retry_failed=retry_failed, refresh=refresh)
        counts = _download_and_analyze(jobs, manifest, store, settings, say, progress)
        _group(manifest, settings)
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
        groups=groups,
        grouped_images=grouped,
        seconds=round(time.monotonic() - started, 3),
        failed=failed,
        problems=tuple(problems),
    )


def _scan_posts(
    posts: Sequence[Path],
    manifest: Manifest,
    settings: Settings,
    rules: Sequence[Rule],
    say: Say,
    progress: bool,
) -> list[str]:
    """Discover and resolve the references of every changed post; return problem messages."""
    fingerprint = _scan_fingerprint(settings)
    problems: list[str] = []
    bar = tqdm(total=len(posts), desc="scan", unit="post", disable=not progress, file=sys.stderr)
    for batch in _batches(posts, POST_BATCH):
        with manifest.transaction():
            for path in batch:
                problems.extend(_scan_one(path, manifest, settings, rules, fingerprint, say))
                bar.update()
    bar.close()
    return problems


def _scan_one(
    path: Path,
    manifest: Manifest,
    settings: Settings,
    rules: Sequence[Rule],
    fingerprint: str,
    say: Say,
) -> list[str]:
    key = _post_key(path)
    try:
        stat = path.stat()
        state = PostState(stat.st_size, stat.st_mtime_ns, fingerprint)
        if manifest.post_state(key) == state:
            return []
        scan = read_post(path, settings.discover)
    except PostError as exc:
        say(exc.message)
        manifest.record_post(key, None, None, exc.message, [])
        return [exc.message]
    except OSError as exc:
        message = f"{path}: cannot read post ({exc.strerror}); check the file's permissions."
        say(message)
        return [message]
    for problem in scan.problems:
        say(problem)
    resolved = [(ref, _origin_of(ref, manifest, rules)) for ref in scan.references]
    joined = "; ".join(scan.problems) or None
    manifest.record_post(key, state, scan.encoding, joined, resolved)
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
    with _cpu_pool(settings.workers) as pool:
        pending: dict[Future[object], str] = {}
        with Fetcher(settings.fetch, store.temp_dir) as fetcher:
            for outcome in fetcher.fetch_all(jobs):
                bar.update()
                if isinstance(outcome, Download):
                    counts["downloaded"] += 1
                    sha = _store_download(outcome, manifest, store)
                    if sha is not None and sha not in pending.values():
                        pending[_submit(pool, sha, manifest, store, settings)] = sha
                elif isinstance(outcome, NotModified):
                    counts["not_modified"] += 1
                    manifest.record_not_modified(outcome.origin_url)
                else:
                    _record_failure(outcome, manifest, say)
                counts["analyzed"] += _collect(pending, manifest, say, block=False)
        for sha, _ in manifest.unanalyzed_images():
            if sha not in pending.values():
                pending[_submit(pool, sha, manifest, store, settings)] = sha
        counts["analyzed"] += _collect(pending, manifest, say, block=True)
    bar.close()
    return counts


def _store_download(download: Download, manifest: Manifest, store: Store) -> str | None:
    """Move a download into the store; return its sha256 when it still needs analysis."""
    with download.temp_path.open("rb") as handle:
        ext = sniff_extension(handle.read(4096))
    relpath = store.put_original(download.temp_path, download.sha256, ext)
    manifest.record_download(download, download.sha256)
    needs_analysis = manifest.add_original(download.sha256, relpath, download.size)
    return download.sha256 if needs_analysis else None


def _record_failure(failure: FetchFailure, manifest: Manifest, say: Say) -> None:
    manifest.record_failure(failure)
    say(failure.message)


def _submit(
    pool: ProcessPoolExecutor, sha: str, manifest: Manifest, store: Store, settings: Settings
) -> Future[object]:
    relpath = _relpath_of(manifest, sha)
    declared = tuple(DeclaredSize(w, h, "post") for w, h in manifest.declared_sizes(sha))
    job = AnalyzeJob(sha, store.path(relpath), store.root, declared)
    return pool.submit(analyze, job, settings.images)


def _relpath_of(manifest: Manifest, sha: str) -> str:
    row = manifest.db.execute("SELECT relpath FROM images WHERE sha256=?", (sha,)).fetchone()
    return str(row[0])


def _collect(
    pending: dict[Future[object], str], manifest: Manifest, say: Say, *, block: bool
) -> int:
    """Record finished analyses; with `block`, wait for all. Returns how many succeeded."""
    done_count = 0
    while pending:
        done, _ = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        if not done:
            break
        for future in done:
            sha = pending.pop(future)
            done_count += _record_analysis(future, sha, manifest, say)
    return done_count


def _record_analysis(future: Future[object], sha: str, manifest: Manifest, say: Say) -> int:
    try:
        analysis = future.result()
    except ImageError as exc:
        manifest.record_image_error(sha, exc.reason, exc.message)
        for url in manifest.fail_urls_of_image(sha, exc.reason, exc.message):
            say(f"{url}: {exc.message}")
        return 0
    manifest.record_analysis(analysis)  # type: ignore[arg-type]
    return 1


def _group(manifest: Manifest, settings: Settings) -> None:
    images = manifest.analyzed_images()
    canonical_of = group_images(images, settings.images.phash_threshold)
    with manifest.transaction():
        manifest.set_canonicals(canonical_of)


def _failures(manifest: Manifest, origins: Iterable[str]) -> tuple[FailedUrl, ...]:
    statuses = manifest.url_statuses(origins)
    return tuple(
        FailedUrl(s.origin_url, s.reason or "failed", s.message or "")
        for s in sorted(statuses.values(), key=lambda s: s.origin_url)
        if s.status == "failed"
    )


@contextmanager
def _cpu_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    # forkserver: the fetcher's threads are running when workers start; fork would copy locks.
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- rewrite --------------------------------------------------------------------------------


def run_rewrite(
    paths: Sequence[Path],
    settings: Settings,
    *,
    say: Say,
    base_url: str | None = None,
    dry_run: bool = False,
    progress: bool = False,
) -> RewriteSummary:
    """Point every fetched reference at its local copy; change no other byte."""
    started = time.monotonic()
    store = Store(settings.cache_dir)
    if not store.manifest_path.is_file():
        raise UsageError(
            f"{store.manifest_path}: no manifest; run `mediatool fetch` first "
            "or point --cache at the folder fetch used."
        )
    rules = compile_rules(settings.proxy_rules)
    totals: Counter[str] = Counter()
    left: list[LeftRemote] = []
    problems: list[str] = []
    diffs: list[str] = []
    with Manifest.open(store.manifest_path) as manifest:
        posts = find_posts(paths, exclude=[settings.cache_dir])
        for path in tqdm(posts, desc="rewrite", unit="post", disable=not progress, file=sys.stderr):
            try:
                scan = read_post(path, settings.discover)
            except PostError as exc:
                say(exc.message)
                problems.append(exc.message)
                continue
            for problem in scan.problems:
                say(problem)
            problems.extend(scan.problems)
            result = _rewrite_one(scan, manifest, store, rules, base_url)
            totals.update(result.counts)
            left.extend(result.left_remote)
            if result.new_text is None:
                continue
            totals["posts_changed"] += 1
            if dry_run:
                diffs.append(unified_diff(str(path), scan.text, result.new_text))
            else:
                atomic_write_bytes(path, result.new_text.encode(scan.encoding))
                with manifest.transaction():
                    manifest.record_rewrites(_post_key(path), result.undo)
    for item in left:
        say(f"{item.post}:{item.line}: left remote: {item.source_url} ({item.reason})")
    return RewriteSummary(
        posts=len(posts),
        posts_changed=totals["posts_changed"],
        references=totals["references"],
        references_rewritten=totals["rewritten"],
        references_left_remote=len(left),
        seconds=round(time.monotonic() - started, 3),
        dry_run=dry_run,
        left_remote=tuple(left),
        problems=tuple(problems),
        diffs=tuple(diffs),
    )


@dataclass(frozen=True, slots=True)
class _PostRewrite:
    new_text: str | None
    counts: Counter[str]
    left_remote: tuple[LeftRemote, ...]
    undo: tuple[tuple[int, str, str], ...]


def _rewrite_one(
    scan: PostScan,
    manifest: Manifest,
    store: Store,
    rules: Sequence[Rule],
    base_url: str | None,
) -> _PostRewrite:
    remote = [ref for ref in scan.references if ref.kind is RefKind.REMOTE]
    origin_of = {ref.span: resolve(ref.source_url, rules).origin_url for ref in remote}
    found = manifest.localizations(origin_of.values())

    def target(ref: Reference) -> Localization | None:
        origin = origin_of.get(ref.span)
        return found.get(origin) if origin else None

    def localize(ref: Reference) -> str | None:
        loc = target(ref)
        if loc is None:
            return None
        relpath = _relpath_for(ref, loc)
        return _link(scan.path, store.root / relpath, relpath, base_url)

    def size_for(ref: Reference) -> tuple[int, int] | None:
        return _size_for(ref, target(ref))

    skipped: dict[Span, str] = {}

    def on_skip(ref: Reference, reason: str) -> None:
        skipped[ref.span] = f"cannot rewrite in place: {reason}"

    edits = plan_edits(scan, localize, size_for, on_skip=on_skip)
    new_text = apply_edits(scan.text, edits)
    rewritten = {e.span for e in edits if e.span.start != e.span.end}
    left = _left_remote(scan, remote, origin_of, rewritten, skipped, manifest)
    counts = Counter(references=len(remote), rewritten=len(rewritten))
    changed = new_text if new_text != scan.text else None
    return _PostRewrite(changed, counts, left, _undo_records(scan.text, edits))


def _relpath_for(ref: Reference, loc: Localization) -> str:
    if ref.context in THUMBNAIL_CONTEXTS and loc.thumb_relpath:
        return loc.thumb_relpath
    return loc.relpath


def _link(post: Path, file: Path, relpath: str, base_url: str | None) -> str:
    """The URL text to write: base_url + path in the cache, or a path relative to the post."""
    if base_url:
        return base_url.rstrip("/") + "/" + quote(relpath, safe="/._-~")
    relative = os.path.relpath(file.resolve(), post.resolve().parent)
    return quote(Path(relative).as_posix(), safe="/._-~")


def _size_for(ref: Reference, loc: Localization | None) -> tuple[int, int] | None:
    declared = ref.declared
    if declared and declared.width and declared.height:
        return declared.width, declared.height
    if loc is None or not loc.width or not loc.height:
        return None
    if declared and declared.width:
        return declared.width, round(declared.width * loc.height / loc.width)
    return loc.width, loc.height


def _left_remote(
    scan: PostScan,
    remote: Sequence[Reference],
    origin_of: dict[Span, str],
    rewritten: set[Span],
    skipped: dict[Span, str],
    manifest: Manifest,
) -> tuple[LeftRemote, ...]:
    missing = [ref for ref in remote if ref.span not in rewritten]
    if not missing:
        return ()
    statuses = manifest.url_statuses({origin_of[ref.span] for ref in missing})
    items = []
    for ref in missing:
        origin = origin_of[ref.span]
        status = statuses.get(origin)
        if ref.span in skipped:
            reason = skipped[ref.span]
        elif status is None:
            reason = "not fetched: run mediatool fetch"
        else:
            reason = status.reason or status.status
        items.append(LeftRemote(str(scan.path), ref.line, ref.source_url, origin, reason))
    return tuple(items)


def _undo_records(text: str, edits: Sequence[Edit]) -> tuple[tuple[int, str, str], ...]:
    """(offset in the new text, old text, new text) of each edit, for `rewrite --undo`."""
    records = []
    shift = 0
    for edit in sorted(edits, key=lambda e: (e.span.start, e.span.end)):
        old = text[edit.span.start : edit.span.end]
        records.append((edit.span.start + shift, old, edit.new_text))
        shift += len(edit.new_text) - len(old)
    return tuple(records)


# -- helpers --------------------------------------------------------------------------------


def _post_key(path: Path) -> str:
    return str(path.resolve())


def _scan_fingerprint(settings: Settings) -> str:
    """Changes when anything that decides what discover/resolve find changes."""
    data = json.dumps(
        [
            __version__,
            list(settings.discover.frontmatter_keys),
            [asdict(r) for r in settings.proxy_rules],
        ]
    )
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _batches(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
