"""`mediatool gc`: forget the posts that are gone (deleted, or renamed: the new name is scanned
by the next fetch) with their references, then the URLs no post refers to, and the originals
and thumbnails no remaining URL, canonical or localized reference uses. Manifest rows go first,
in one commit, then the files: a killed gc leaves at most files nothing names."""

from __future__ import annotations

import time
from pathlib import Path

from mediatool.config import Settings
from mediatool.manifest import Manifest, StoredFile
from mediatool.pipeline.common import Say, archive_root_of, existing_store
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import GcSummary
from mediatool.store import find_relpath


@one_run_per_cache("gc")
def run_gc(settings: Settings, *, say: Say, dry_run: bool = False) -> GcSummary:
    started = time.monotonic()
    store = existing_store(settings)
    root = archive_root_of(settings)
    with Manifest.open(store.manifest_path) as manifest:
        gone = [key for key in manifest.post_keys() if not _post_path(key, root).exists()]
        try:
            with manifest.transaction():  # a dry run computes the same, then rolls back
                manifest.forget_posts(gone)
                urls = manifest.unused_urls()
                manifest.forget_urls(urls)
                files = manifest.stored_files()
                unused = unused_images(files, manifest.url_images(), _localized_shas(manifest))
                manifest.forget_images([f.sha256 for f in unused])
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
    relpaths = [path for f in unused for path in (f.relpath, *f.thumbs)]
    for key in gone:
        say(f"{key}: post is gone; {'would forget' if dry_run else 'forgot'} its references")
    for url in urls:
        say(f"{url}: no post refers to it; {'would forget' if dry_run else 'forgot'} it")
    for relpath in relpaths:
        say(f"{relpath}: unused; {'would delete' if dry_run else 'deleted'}")
        if not dry_run:
            store.delete(relpath)
    return GcSummary(
        posts=len(gone),
        urls=len(urls),
        originals=len(unused),
        thumbnails=sum(len(f.thumbs) for f in unused),
        bytes=sum(store.size(p) for p in relpaths) if dry_run else 0,
        dry_run=dry_run,
        seconds=round(time.monotonic() - started, 3),
    )


def unused_images(
    files: list[StoredFile], from_urls: set[str], localized: set[str]
) -> list[StoredFile]:
    """The originals neither a recorded URL nor a localized reference uses, directly or as the
    canonical of its near-duplicate group (rewrite points a group's references at it)."""
    used = from_urls | localized
    canonical = {f.sha256: f.canonical for f in files}
    used |= {c for sha in used if (c := canonical.get(sha))}
    return [f for f in files if f.sha256 not in used]


class _DryRun(Exception):
    """Rolls back a dry run's transaction."""


def _localized_shas(manifest: Manifest) -> set[str]:
    shas = set()
    for _, _, url in manifest.local_reference_urls():
        if stored := find_relpath(url):
            shas.add(stored.sha256)
    return shas


def _post_path(key: str, root: Path) -> Path:
    return Path(key) if key.startswith("/") else root / key
