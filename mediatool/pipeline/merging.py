"""`mediatool merge`: the manifests of `fetch --shard I/N` runs (a CI matrix) merged into one,
and the originals and thumbnails of their cache folders copied into the merged store.

The files go first (each to a temp name, then linked into place: an existing file is never
overwritten; an original whose bytes do not match its name is refused), then the manifests
(mediatool.manifest.merge: natural keys, order-independent rules), so the merged manifest never
names a file the store lacks. Grouping and rewriting come after, on the merged manifest
(`mediatool dedup`, `mediatool rewrite`): docs/shards.md.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mediatool.config import Settings
from mediatool.errors import UsageError
from mediatool.files import temp_file_in
from mediatool.manifest import (
    SCHEMA_VERSION,
    Manifest,
    ShardMerged,
    migrated_copy,
    schema_version_of,
)
from mediatool.pipeline.common import Say, store_of
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import MergeSummary
from mediatool.store import ORIGINALS, THUMBS, MediaStore, Store, fsync_folder, parse_relpath

BLOCK = 1 << 20


@dataclass
class Copied:
    """What copying a shard's cache folder did."""

    copied: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)
    folders: set[Path] = field(default_factory=set)  # to flush once at the end


@one_run_per_cache("merge", makes_cache=True)
def run_merge(
    shards: Sequence[Path], settings: Settings, *, say: Say, from_caches: Sequence[Path] = ()
) -> MergeSummary:
    """Merge the shard manifests into the settings' manifest (created if missing; any order
    gives the same result, and merging a shard again changes nothing), after copying the
    files of `from_caches` that the store lacks."""
    started = time.monotonic()
    store = store_of(settings)
    _check_shards(shards, store.manifest_path)
    store.prepare()
    copied = Copied()
    if from_caches and not isinstance(store, Store):
        raise UsageError(
            "--from-cache copies files into a cache folder; shards that fetched into one "
            "s3:// bucket share their objects already: merge their manifests without it."
        )
    for folder in from_caches:
        assert isinstance(store, Store)
        copy_missing_files(folder, store, copied, say)
    for folder in copied.folders:
        fsync_folder(folder)
    taken: dict[str, int] = {}
    mixed: set[str] = set()
    with Manifest.open(store.manifest_path) as manifest:
        for shard in shards:
            merged = _merge_one(manifest, shard, store, say)
            for table, count in merged.taken.items():
                taken[table] = taken.get(table, 0) + count
            mixed.update(merged.mixed_rewrites)
        urls = manifest.url_status_counts()
    for key in sorted(mixed):
        say(
            f"{key}: rewritten in more than one shard; every rewrite is kept for undo, newest "
            "last (rewrite after merging: docs/shards.md)"
        )
    return MergeSummary(
        shards=len(shards),
        manifest=str(store.manifest_path),
        taken=taken,
        urls=urls,
        files_copied=copied.copied,
        files_present=copied.present,
        seconds=round(time.monotonic() - started, 3),
        mixed_rewrites=tuple(sorted(mixed)),
        problems=tuple(copied.problems),
    )


def _merge_one(manifest: Manifest, shard: Path, store: MediaStore, say: Say) -> ShardMerged:
    """Merge one shard; an older one (of a schema this mediatool can migrate away from its
    folder) is merged from a migrated copy in the store's tmp/, the shard left as it was."""
    with temp_file_in(store.temp_dir) as (_, copy):
        pass  # an empty file: SQLite's backup fills it
    try:
        if migrated_copy(shard, copy):
            version = schema_version_of(shard)
            say(
                f"{shard}: a manifest of schema {version}, older than this mediatool's "
                f"{SCHEMA_VERSION}: merged from a migrated copy (the shard is left as it was)"
            )
            return manifest.merge_shard(copy)
        return manifest.merge_shard(shard)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)


def _check_shards(shards: Sequence[Path], into: Path) -> None:
    """Every shard is a file, and none is the manifest merged into."""
    for shard in shards:
        if not shard.is_file():
            raise UsageError(f"{shard}: no such manifest; give the shards' manifest files.")
        if into.exists() and shard.samefile(into):
            raise UsageError(
                f"{shard}: this is the manifest merged into (--into); give the shards' manifests."
            )


def copy_missing_files(source: Path, store: Store, copied: Copied, say: Say) -> None:
    """Copy the originals and thumbnails below `source` (a shard's cache folder) that the store
    lacks; files that are no store path (temp files, the manifest) are left."""
    if source.resolve() == store.root.resolve():
        return
    for path in _store_files(source):
        relpath = path.relative_to(source).as_posix()
        stored = parse_relpath(relpath)
        if stored is None:
            continue
        if store.has(relpath):
            copied.present += 1
            continue
        expected = None if stored.thumbnail else stored.sha256
        problem = _copy_in(path, store, relpath, expected, copied)
        if problem:
            say(problem)
            copied.problems.append(problem)


def _store_files(source: Path) -> Iterator[Path]:
    for top in (ORIGINALS, THUMBS):
        for folder, _, names in os.walk(source / top):
            for name in sorted(names):
                yield Path(folder) / name


def _copy_in(
    path: Path, store: Store, relpath: str, sha256: str | None, copied: Copied
) -> str | None:
    """Copy one file to a temp name, check an original's bytes against its name, then link it
    into place (never over an existing file). Returns a problem line, or None."""
    digest = hashlib.sha256()
    with temp_file_in(store.temp_dir) as (handle, temp), path.open("rb") as source:
        for block in iter(lambda: source.read(BLOCK), b""):
            digest.update(block)
            handle.write(block)
        os.fsync(handle.fileno())
    try:
        if sha256 is not None and digest.hexdigest() != sha256:
            return (
                f"{path}: damaged (its bytes do not match its sha256); not copied, fetch that "
                "shard again or run `mediatool verify --repair` after merging"
            )
        final = store.path(relpath)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(temp, 0o644)
        try:
            os.link(temp, final)  # unlike a rename, never replaces a file already there
        except FileExistsError:
            copied.present += 1
            return None
        copied.copied += 1
        copied.folders.add(final.parent)
        return None
    finally:
        temp.unlink(missing_ok=True)
