"""`mediatool rewrite --check`: change nothing; find remote references the cache could localize,
remote references whose download or image failed, and local references whose file is missing
(a CI gate)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mediatool.config import Settings
from mediatool.discover import find_posts
from mediatool.manifest import Manifest
from mediatool.models import PostScan, Reference, RefKind
from mediatool.pipeline.common import PostReader, Say, existing_store
from mediatool.pipeline.rewriting import plan_post_rewrite
from mediatool.pipeline.summaries import CheckSummary, Finding, LeftRemote
from mediatool.resolve import compile_rules
from mediatool.store import Store


def run_check(
    paths: Sequence[Path], settings: Settings, *, say: Say, base_url: str | None = None
) -> CheckSummary:
    store = existing_store(settings)
    rules = compile_rules(settings.proxy_rules)
    localizable: list[Finding] = []
    failed: list[Finding] = []
    missing: list[Finding] = []
    reader = PostReader(settings.discover, say, keep_post_problems=False, workers=settings.workers)
    with Manifest.open(store.manifest_path, read_only_ok=True) as manifest:
        posts = find_posts(paths, exclude=[settings.cache_dir])
        for scan in reader.scans(posts):
            path = scan.path
            plan = plan_post_rewrite(scan, manifest, store, rules, base_url)
            localizable += [
                Finding(str(path), r.line, r.source_url, "localizable") for r in plan.localized
            ]
            failed += failed_references(plan.left_remote, manifest)
            missing += [
                Finding(str(path), r.line, r.source_url, "missing file")
                for r in missing_local_files(scan, store, base_url)
            ]
    accepted = [f for f in failed if f.reason in settings.check.allow]
    failed = [f for f in failed if f.reason not in settings.check.allow]
    for finding in [*localizable, *failed, *missing]:
        say(f"{finding.post}:{finding.line}: {finding.why}: {finding.url}")
    return CheckSummary(
        len(posts),
        tuple(localizable),
        tuple(missing),
        tuple(reader.problems),
        failed=tuple(failed),
        accepted=tuple(accepted),
    )


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


def missing_local_files(scan: PostScan, store: Store, base_url: str | None) -> list[Reference]:
    """Local references whose file does not exist.

    Relative paths are judged from the post's folder and `base_url` paths from the cache folder;
    root-relative paths (`/images/x.png`) point into a site whose root mediatool does not know,
    so they are not judged."""
    missing = []
    for ref in scan.references:
        if ref.kind is not RefKind.LOCAL:
            continue
        target = _local_file(scan.path, ref.source_url, store, base_url)
        if target is not None and not target.exists():
            missing.append(ref)
    return missing


def _local_file(post: Path, url: str, store: Store, base_url: str | None) -> Path | None:
    if base_url and url.startswith(base_url):
        return store.root / unquote(url[len(base_url) :]).lstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. `ftp://[::1/x.png`: not a file path either
        return None
    path = unquote(parts.path)
    if not path or path.startswith("/") or parts.scheme:
        return None
    return post.parent / path
