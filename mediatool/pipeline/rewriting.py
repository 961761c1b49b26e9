"""`mediatool rewrite`: find posts -> discover -> look up the manifest -> plan splices ->
write atomically (or print a diff). Only the URL text of localized references changes."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from tqdm import tqdm

from mediatool.config import Settings
from mediatool.discover import find_posts_resolved
from mediatool.errors import UsageError
from mediatool.files import atomic_write_bytes, remove_stale_temp_files_beside
from mediatool.manifest import Localization, Manifest, relative_post_key
from mediatool.models import PostScan, Reference, RefKind, Span
from mediatool.pipeline.common import (
    PostReader,
    Say,
    archive_root_of,
    existing_store,
    post_sha,
    sha256_hex,
)
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import LeftRemote, RewriteSummary
from mediatool.resolve import Rule, compile_rules, resolve, shown_url
from mediatool.rewrite import (
    Edit,
    Generation,
    UndoEdit,
    apply_edits,
    plan_edits,
    srcset_attributes,
    unified_diff,
)
from mediatool.store import MediaStore, StoredPath, parse_relpath

THUMBNAIL_CONTEXTS = ("frontmatter:thumbnail",)
# References a generator passes through its own URL helper (Hexo's url_for prepends `root` to
# Markdown images, tag plugins and, in most themes, front matter images): they get `markup_url`.
MARKUP_CONTEXTS = ("markdown", "frontmatter:", "tag:")
WRITE_BATCH = 100  # rewritten posts whose undo records are committed together
WRITE_THREADS = 8  # posts written (and fsynced) at once


def base_url_for(settings: Settings, base_url: str | None) -> str | None:
    """--base-url as rewrite writes and reads it: a path ("/media/") or an http(s) URL with a
    host (a CDN, a bucket's public URL), always ending in "/". An s3:// cache needs one:
    its files have no path relative to a post."""
    if base_url is None:
        if settings.cache_url is not None:
            raise UsageError(
                f"--cache {settings.cache_url}: give rewrite --base-url URL, the public URL of "
                "the bucket prefix (e.g. https://media.example/)."
            )
        return None
    parts = urlsplit(base_url)
    web = parts.scheme in ("http", "https") and parts.netloc
    if (parts.scheme or parts.netloc or not base_url.strip()) and not web:
        raise UsageError(
            f"--base-url {base_url!r}: not an http(s) URL with a host nor a path; write e.g. "
            "https://media.example/ or /media/."
        )
    return base_url if base_url.endswith("/") else base_url + "/"


@one_run_per_cache("rewrite")
def run_rewrite(
    paths: Sequence[Path],
    settings: Settings,
    *,
    say: Say,
    base_url: str | None = None,
    dry_run: bool = False,
    progress: bool = False,
    markup_url: str | None = None,
    srcset: bool = False,
) -> RewriteSummary:
    """Point every fetched reference at its local copy; change no other byte (with `srcset`,
    also give each `<img>` of a localized image a srcset of its thumbnails)."""
    started = time.monotonic()
    base_url = base_url_for(settings, base_url)
    store = existing_store(settings)
    rules = compile_rules(settings.proxy_rules)
    totals: Counter[str] = Counter()
    left: list[LeftRemote] = []
    reader = PostReader(settings.discover, say, workers=settings.workers)
    diffs: list[str] = []
    ready: list[PostWrite] = []
    failed: list[PostWrite] = []
    root, run = archive_root_of(settings), uuid.uuid4().hex[:12]
    with Manifest.open(store.manifest_path, read_only_ok=dry_run) as manifest:
        found = find_posts_resolved(paths, exclude=[settings.cache_dir])
        posts = list(found)
        if not dry_run:
            remove_stale_temp_files_beside(posts)  # of a killed rewrite
        bar = tqdm(
            total=len(posts), desc="rewrite", unit="post", disable=not progress, file=sys.stderr
        )
        for scan in reader.scans(posts):
            bar.update()
            path = scan.path
            result = plan_post_rewrite(
                scan, manifest, store, rules, base_url, markup_url, srcset=srcset
            )
            totals.update(result.counts)
            left.extend(result.left_remote)
            if result.new_text is None:
                continue
            totals["posts_changed"] += 1
            if dry_run:
                diffs.append(unified_diff(str(path), scan.text, result.new_text))
                continue
            ready.append(post_write(scan, result, relative_post_key(found[path], root), run))
            if len(ready) >= WRITE_BATCH:
                failed.extend(write_rewritten(ready, manifest, say))
                ready.clear()
        failed.extend(write_rewritten(ready, manifest, say))
        bar.close()
    for item in left:
        say(f"{item.post}:{item.line}: left remote: {shown_url(item.source_url)} ({item.reason})")
    for unwritten in failed:  # counted as planned, not written
        totals.subtract({"posts_changed": 1, **unwritten.counts})
    return RewriteSummary(
        posts=len(posts),
        posts_changed=totals["posts_changed"],
        references=totals["references"],
        references_rewritten=totals["rewritten"],
        references_retargeted=totals["retargeted"],
        references_left_remote=len(left),
        seconds=round(time.monotonic() - started, 3),
        dry_run=dry_run,
        left_remote=tuple(left),
        problems=(*reader.problems, *(unwritten.problem for unwritten in failed)),
        diffs=tuple(diffs),
    )


@dataclass(frozen=True, slots=True)
class PostWrite:
    """A rewritten post waiting to be written, with the record that lets `--undo` reverse it."""

    path: Path
    data: bytes
    generation: Generation
    counts: dict[str, int]  # references rewritten and retargeted by the write
    problem: str = ""  # why it could not be written, once it failed


def post_write(scan: PostScan, planned: PostRewrite, key: str, run: str) -> PostWrite:
    data = (planned.new_text or scan.text).encode(scan.encoding)
    before = post_sha(scan)
    generation = Generation(key, before, sha256_hex(data), planned.undo, run)
    counts = {"rewritten": planned.counts["rewritten"], "retargeted": planned.counts["retargeted"]}
    return PostWrite(scan.path, data, generation, counts)


def write_rewritten(ready: Sequence[PostWrite], manifest: Manifest, say: Say) -> list[PostWrite]:
    """Record the generations of a batch of posts in one commit, then write each post atomically;
    return the posts that could not be written, with their `problem` (said here; their records
    are dropped again).

    Recording first means a killed run never leaves a rewritten post without its record; a
    record whose post was not written is recognised by `--undo` from the post's sha256, and
    dropped here when the post is rewritten from the same bytes."""
    if not ready:
        return []
    with manifest.transaction():
        for item in ready:
            if item.generation.before is not None:
                manifest.forget_unwritten(item.generation.post_key, item.generation.before)
        numbers = [manifest.record_generation(item.generation) for item in ready]
    kill_point("write")
    with ThreadPoolExecutor(WRITE_THREADS) as pool:  # the file system commits their fsyncs together
        outcomes = list(pool.map(write_post, ready))
    failed = [(n, item, p) for n, item, p in zip(numbers, ready, outcomes, strict=True) if p]
    if failed:
        with manifest.transaction():
            for number, _, _ in failed:
                manifest.forget_generation(number)
    for _, _, problem in failed:
        say(problem)
    return [replace(item, problem=problem) for _, item, problem in failed]


def write_post(item: PostWrite) -> str | None:
    """Write one rewritten post; None, or the one-line message when it cannot be written."""
    try:
        atomic_write_bytes(item.path, item.data)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return (
            f"{item.path}: cannot write the rewritten post ({reason}); make the file and its "
            "folder writable and run `mediatool rewrite` again."
        )
    kill_point("write")
    return None


# A test hook, not a setting: MEDIATOOL_TEST_KILL_AT="write:N" makes the process SIGKILL itself
# at the Nth kill point of that name: after each commit of a batch's undo records and after each
# post written ("undo:N" likewise in `--undo`, after each restored post is written and before
# its records are dropped). tests/test_undo_safety.py and bench/soak_undo.py use it to kill
# `rewrite` at exact places of its write path.
KILL_ENV = "MEDIATOOL_TEST_KILL_AT"
_kill_counts: Counter[str] = Counter()
_kill_lock = threading.Lock()


def kill_point(name: str) -> None:
    wanted = os.environ.get(KILL_ENV)
    if not wanted or not wanted.startswith(name + ":"):
        return
    with _kill_lock:
        _kill_counts[name] += 1
        if _kill_counts[name] >= int(wanted.partition(":")[2]):
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class PostRewrite:
    new_text: str | None
    counts: Counter[str]
    left_remote: tuple[LeftRemote, ...]
    undo: tuple[UndoEdit, ...]
    localized: tuple[Reference, ...]


def plan_post_rewrite(
    scan: PostScan,
    manifest: Manifest,
    store: MediaStore,
    rules: Sequence[Rule],
    base_url: str | None,
    markup_url: str | None = None,
    *,
    srcset: bool = False,
) -> PostRewrite:
    """The edits for one post: remote references to their local copy, and references already
    in the cache to their group's current canonical (it moves when a better copy arrives)."""
    cached = _cached_references(scan, store, base_url, markup_url)
    # An http(s) URL below an http(s) --base-url is a reference into the store, not remote.
    remote = [r for r in scan.references if r.kind is RefKind.REMOTE and r.span not in cached]
    origin_of = {ref.span: resolve(ref.source_url, rules).origin_url for ref in remote}
    by_origin = manifest.localizations(origin_of.values())
    by_sha = manifest.localizations_of_images(hit.sha256 for hit in cached.values())
    post_dir, cache_root = scan.path.resolve().parent, store.root.resolve()

    def target(ref: Reference) -> Localization | None:
        if ref.span in origin_of:
            return by_origin.get(origin_of[ref.span])
        hit = cached.get(ref.span)
        return by_sha.get(hit.sha256) if hit else None

    wants_thumbs = srcset or any(hit.thumbnail for hit in cached.values())
    thumbs = _thumbnails_of_canonicals(
        manifest, [*by_origin.values(), *by_sha.values()], wants_thumbs
    )
    kept_thumbs = {relpath for made in thumbs.values() for _, _, relpath in made}

    def localize(ref: Reference) -> str | None:
        loc = target(ref)
        if loc is None:
            return None
        hit = cached.get(ref.span)
        relpath = _relpath_for(ref, loc, hit, kept_thumbs)
        if hit is not None and hit.relpath == relpath:
            return None
        prefix = markup_url if markup_url and ref.context.startswith(MARKUP_CONTEXTS) else base_url
        return _link(post_dir, cache_root, relpath, prefix)

    def size_for(ref: Reference) -> tuple[int, int] | None:
        return _size_for(ref, target(ref))

    skipped: dict[Span, str] = {}

    def on_skip(ref: Reference, reason: str) -> None:
        skipped[ref.span] = f"cannot rewrite in place: {reason}"

    def srcset_for(ref: Reference) -> str | None:
        loc = target(ref)
        stored = parse_relpath(loc.relpath) if loc and loc.width else None
        made = thumbs.get(stored.sha256) if stored else None
        if loc is None or not made:
            return None
        candidates = [(_link(post_dir, cache_root, t, base_url), w) for w, _, t in made]
        candidates.append((_link(post_dir, cache_root, loc.relpath, base_url), loc.width))
        declared = ref.declared.width if ref.declared and ref.declared.width else None
        return srcset_attributes(candidates, declared or loc.width)

    edits = plan_edits(
        scan, localize, size_for, on_skip=on_skip, srcset_for=srcset_for if srcset else None
    )
    new_text = apply_edits(scan.text, edits)
    rewritten = {e.span for e in edits if e.span.start != e.span.end}
    left = _left_remote(scan, remote, origin_of, rewritten, skipped, manifest)
    counts = Counter(
        references=len(remote),
        rewritten=len(rewritten - cached.keys()),
        retargeted=len(rewritten & cached.keys()),
    )
    changed = new_text if new_text != scan.text else None
    localized = tuple(ref for ref in remote if ref.span in rewritten)
    return PostRewrite(changed, counts, left, undo_records(scan.text, edits), localized)


def _thumbnails_of_canonicals(
    manifest: Manifest, targets: Sequence[Localization], wanted: bool
) -> dict[str, list[tuple[int, int, str]]]:
    """sha256 of each canonical original -> its thumbnails (for `--srcset`; {} without)."""
    if not wanted:
        return {}
    shas = [hit.sha256 for loc in targets if (hit := parse_relpath(loc.relpath)) is not None]
    return manifest.thumbnails_of_images(shas)


def _cached_references(
    scan: PostScan, store: MediaStore, base_url: str | None, markup_url: str | None = None
) -> dict[Span, StoredPath]:
    hits = {}
    for ref in scan.references:
        if ref.kind is not RefKind.DATA:  # remote: only below an http(s) base_url
            relpath = cache_relpath(scan.path, ref.source_url, store, base_url) or (
                cache_relpath(scan.path, ref.source_url, store, markup_url) if markup_url else None
            )
            hit = parse_relpath(relpath) if relpath else None
            if hit is not None:
                hits[ref.span] = hit
    return hits


def cache_relpath(post: Path, url: str, store: MediaStore, base_url: str | None) -> str | None:
    """The path inside the store that a reference points at, if it does: below `base_url`, or
    (a relative path) from the post's folder into the cache folder."""
    if base_url and url.startswith(base_url.rstrip("/") + "/"):
        return unquote(url[len(base_url.rstrip("/")) + 1 :])
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. `ftp://[::1/x.png`: not a path into the cache
        return None
    if parts.scheme or parts.netloc or url.startswith("/"):
        return None
    target = (post.parent / unquote(parts.path)).resolve()
    try:
        return target.relative_to(store.root.resolve()).as_posix()
    except ValueError:
        return None


def _relpath_for(
    ref: Reference, loc: Localization, hit: StoredPath | None, kept_thumbs: set[str]
) -> str:
    """The path a reference should name: a thumbnail of the canonical stays as it is (a srcset
    candidate), any other thumbnail moves to the canonical's largest, an original to the
    canonical."""
    if hit is not None and hit.thumbnail and hit.relpath in kept_thumbs:
        return hit.relpath
    wants_thumb = ref.context in THUMBNAIL_CONTEXTS or (hit is not None and hit.thumbnail)
    if wants_thumb and loc.thumb_relpath:
        return loc.thumb_relpath
    return loc.relpath


def _link(post_dir: Path, cache_root: Path, relpath: str, base_url: str | None) -> str:
    """The URL text to write: base_url + path in the cache, or a path relative to the post's
    folder (both folders resolved)."""
    if base_url:
        return base_url.rstrip("/") + "/" + quote(relpath, safe="/._-~")
    relative = os.path.relpath(cache_root / relpath, post_dir)
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


def undo_records(text: str, edits: Sequence[Edit]) -> tuple[UndoEdit, ...]:
    """Each edit as `rewrite --undo` reverses it, at its offset in the new text, ascending."""
    records = []
    shift = 0
    for edit in sorted(edits, key=lambda e: (e.span.start, e.span.end)):
        old = text[edit.span.start : edit.span.end]
        records.append(UndoEdit(edit.span.start + shift, old, edit.new_text))
        shift += len(edit.new_text) - len(old)
    return tuple(records)
