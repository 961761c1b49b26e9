"""`mediatool rewrite --check`: change nothing; find remote references the cache could localize,
remote references whose download or image failed, remote references fetch never tried, local
references whose file is missing, and posts changed since fetch scanned them (a CI gate).
Failures (and not_rewritable references) whose reason is in [check] allow are accepted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mediatool.config import Settings
from mediatool.discover import find_posts
from mediatool.manifest import FetchedPost, Manifest
from mediatool.models import PostScan, Reference, RefKind
from mediatool.pipeline.common import (
    PostReader,
    Say,
    archive_root_of,
    existing_store,
    post_key,
    post_sha,
)
from mediatool.pipeline.rewriting import base_url_for, cache_relpath, plan_post_rewrite
from mediatool.pipeline.summaries import CheckSummary, Finding, LeftRemote
from mediatool.resolve import compile_rules
from mediatool.store import MediaStore


def run_check(
    paths: Sequence[Path], settings: Settings, *, say: Say, base_url: str | None = None
) -> CheckSummary:
    base_url = base_url_for(settings, base_url)
    store = existing_store(settings)
    rules = compile_rules(settings.proxy_rules)
    localizable: list[Finding] = []
    failed: list[Finding] = []
    unfetched: list[Finding] = []
    missing: list[Finding] = []
    changed: list[Finding] = []
    reader = PostReader(settings.discover, say, keep_post_problems=False, workers=settings.workers)
    root = archive_root_of(settings)
    with Manifest.open(store.manifest_path, read_only_ok=True) as manifest:
        posts = find_posts(paths, exclude=[settings.cache_dir])
        key_of = {path: post_key(path, root) for path in posts}
        fetched = manifest.fetched_posts(list(key_of.values()))
        rewritten = manifest.rewritten_shas(list(fetched))
        for scan in reader.scans(posts):
            path, key = scan.path, key_of[scan.path]
            plan = plan_post_rewrite(scan, manifest, store, rules, base_url)
            localizable += [
                Finding(str(path), r.line, r.source_url, "localizable") for r in plan.localized
            ]
            failed += failed_references(plan.left_remote, manifest)
            unfetched += unfetched_references(plan.left_remote, manifest)
            missing += [
                Finding(str(path), r.line, r.source_url, "missing file")
                for r in missing_local_files(scan, store, base_url)
            ]
            if changed_since_fetch(scan, fetched.get(key), rewritten.get(key, set())):
                changed.append(Finding(str(path), 0, "", CHANGED, "changed"))
    allow = settings.check.allow
    accepted = [f for f in [*failed, *unfetched] if f.reason in allow]
    failed = [f for f in failed if f.reason not in allow]
    unfetched = [f for f in unfetched if f.reason not in allow]
    for finding in [*localizable, *failed, *unfetched, *missing]:
        say(f"{finding.post}:{finding.line}: {finding.why}: {finding.url}")
    for finding in changed:
        say(f"{finding.post}: {finding.why}")
    return CheckSummary(
        len(posts),
        tuple(localizable),
        tuple(missing),
        tuple(reader.problems),
        failed=tuple(failed),
        accepted=tuple(accepted),
        unfetched=tuple(unfetched),
        changed=tuple(changed),
    )


CHANGED = "changed since the last fetch (its references may not be fetched); run mediatool fetch"


def failed_references(left: Sequence[LeftRemote], manifest: Manifest) -> list[Finding]:
    """The references left remote because their URL or its image failed, with the reason."""
    statuses = manifest.url_statuses({item.origin_url for item in left})
    found = []
    for item in left:
        status = statuses.get(item.origin_url)
        if status is not None and status.status == "failed":
            reason = status.reason or "failed"
            why = f"failed ({reason})"
            found.append(Finding(item.post, item.line, item.source_url, why, reason))
    return found


def unfetched_references(left: Sequence[LeftRemote], manifest: Manifest) -> list[Finding]:
    """The references left remote for another reason than a failure: never fetched (reason
    not_fetched), a place rewrite cannot edit (not_rewritable), or stored but not usable."""
    statuses = manifest.url_statuses({item.origin_url for item in left})
    found = []
    for item in left:
        status = statuses.get(item.origin_url)
        if status is not None and status.status == "failed":
            continue
        if item.reason.startswith("cannot rewrite in place"):
            why, reason = item.reason, "not_rewritable"
        elif status is None or status.status == "pending":
            why, reason = "not fetched (run mediatool fetch)", "not_fetched"
        else:
            why, reason = f"not localized ({item.reason})", status.status
        found.append(Finding(item.post, item.line, item.source_url, why, reason))
    return found


def changed_since_fetch(scan: PostScan, fetched: FetchedPost | None, rewritten: set[str]) -> bool:
    """True when the post's bytes are neither those fetch last scanned nor a state `rewrite`
    left it in. A post fetch never scanned is not judged here: its remote references show
    as not fetched. Without a recorded sha256 (an older manifest) size and mtime decide."""
    if fetched is None:
        return False
    sha = post_sha(scan)
    if sha in rewritten:
        return False
    if fetched.sha256 is not None:
        return sha != fetched.sha256
    try:
        stat = scan.path.stat()
    except OSError:
        return True
    return (stat.st_size, stat.st_mtime_ns) != (fetched.size, fetched.mtime_ns)


def missing_local_files(scan: PostScan, store: MediaStore, base_url: str | None) -> list[Reference]:
    """Local references whose file does not exist.

    Relative paths are judged from the post's folder and `base_url` URLs (paths or http(s)
    URLs) by asking the store; root-relative paths (`/images/x.png`) point into a site whose
    root mediatool does not know, so they are not judged."""
    missing = []
    for ref in scan.references:
        if base_url and ref.kind is not RefKind.DATA and ref.source_url.startswith(base_url):
            relpath = cache_relpath(scan.path, ref.source_url, store, base_url)
            if relpath is not None and not store.has(relpath):
                missing.append(ref)
        elif ref.kind is RefKind.LOCAL:
            target = _local_file(scan.path, ref.source_url)
            if target is not None and not target.exists():
                missing.append(ref)
    return missing


def _local_file(post: Path, url: str) -> Path | None:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. `ftp://[::1/x.png`: not a file path either
        return None
    path = unquote(parts.path)
    if not path or path.startswith("/") or parts.scheme:
        return None
    return post.parent / path
