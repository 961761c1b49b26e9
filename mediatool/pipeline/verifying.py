"""`mediatool verify`: every stored original present with its sha256, every thumbnail present,
every localized reference's file present; `--repair` fetches again what is missing or damaged
and makes missing thumbnails again."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mediatool.config import Settings
from mediatool.manifest import Manifest, StoredFile
from mediatool.pipeline.analyzing import Analyses
from mediatool.pipeline.common import Say, cpu_pool, existing_store
from mediatool.pipeline.fetching import download_and_analyze
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import VerifySummary
from mediatool.store import MediaStore, find_relpath

VERIFY_THREADS = 8  # originals read back at once


@dataclass(frozen=True, slots=True)
class Damage:
    """What verify found wrong with the store."""

    originals: tuple[tuple[StoredFile, str], ...]  # (file, "missing" or "damaged")
    thumbs: tuple[tuple[str, str], ...]  # (sha256 of the original, thumbnail relpath)
    references: tuple[tuple[str, int, str], ...]  # (post key, line, relpath) with no file

    def lines(self) -> list[str]:
        said = [
            f"{store_file.relpath}: stored original {why} (sha256 {store_file.sha256[:12]}...);"
            " run mediatool verify --repair"
            for store_file, why in self.originals
        ]
        said += [
            f"{relpath}: thumbnail missing; run mediatool verify --repair"
            for _, relpath in self.thumbs
        ]
        said += [
            f"{post}:{line}: localized reference to a missing file {relpath}; "
            "run mediatool verify --repair, then mediatool rewrite"
            for post, line, relpath in self.references
        ]
        return said


def run_verify(settings: Settings, *, say: Say, repair: bool = False) -> VerifySummary:
    """Re-read every stored original against its sha256; with `repair`, delete a damaged one,
    fetch the URLs of every missing original again and make missing thumbnails again (holding
    the cache's lock: repair writes; a plain verify only reads)."""
    if repair:
        return _verify_and_repair(settings, say=say)
    return _verify(settings, say, repair=False)


@one_run_per_cache("verify --repair")
def _verify_and_repair(settings: Settings, *, say: Say) -> VerifySummary:
    return _verify(settings, say, repair=True)


def _verify(settings: Settings, say: Say, *, repair: bool) -> VerifySummary:
    started = time.monotonic()
    store = existing_store(settings)
    with Manifest.open(store.manifest_path, read_only_ok=not repair) as manifest:
        files = manifest.stored_files()
        damage = find_damage(files, manifest, store)
        repaired = 0
        if repair and (damage.originals or damage.thumbs):
            repaired = _repair(damage, manifest, store, settings, say)
            damage = find_damage(manifest.stored_files(), manifest, store)
    for line in damage.lines():
        say(line)
    return VerifySummary(
        originals=len(files),
        thumbnails=sum(len(f.thumbs) for f in files),
        missing_originals=sum(why == "missing" for _, why in damage.originals),
        damaged_originals=sum(why == "damaged" for _, why in damage.originals),
        missing_thumbnails=len(damage.thumbs),
        missing_references=len(damage.references),
        repaired=repaired,
        seconds=round(time.monotonic() - started, 3),
        problems=tuple(damage.lines()),
    )


def find_damage(files: list[StoredFile], manifest: Manifest, store: MediaStore) -> Damage:
    """What is missing or damaged. The originals are read back VERIFY_THREADS at a time: an
    object store answers each GET after a round trip, and hashing releases the GIL."""
    with ThreadPoolExecutor(VERIFY_THREADS) as pool:
        states = list(pool.map(lambda stored: _original_state(stored, store), files))
    originals = [(stored, why) for stored, why in zip(files, states, strict=True) if why]
    thumbs = [(f.sha256, t) for f in files for t in f.thumbs if not store.has(t)]
    references = []
    for post, line, url in manifest.local_reference_urls():
        target = find_relpath(url)
        if target and not store.has(target.relpath):
            references.append((post, line, target.relpath))
    return Damage(tuple(originals), tuple(thumbs), tuple(references))


def _original_state(stored: StoredFile, store: MediaStore) -> str:
    """ "missing", "damaged" (bytes that are not those of its sha256) or "" (intact)."""
    if not store.has(stored.relpath):
        return "missing"
    return "" if store.verify(stored.relpath, stored.sha256) else "damaged"


def _repair(
    damage: Damage, manifest: Manifest, store: MediaStore, settings: Settings, say: Say
) -> int:
    """Fetch the originals again (their URLs, as fetch would), then the thumbnails; return how
    many files are back."""
    for stored, why in damage.originals:
        if why == "damaged":  # wrong bytes under a sha256 name: gone, so fetch sees it missing
            store.delete(stored.relpath)
    urls = {url for stored, _ in damage.originals for url in manifest.urls_of_image(stored.sha256)}
    jobs, _ = manifest.fetch_jobs(urls, retry_failed=False, refresh=False, file_present=store.has)
    store.prepare()
    download_and_analyze(jobs, manifest, store, settings, say, progress=False)
    back = sum(store.has(stored.relpath) for stored, _ in damage.originals)
    shas = {sha for sha, _ in damage.thumbs} | {s.sha256 for s, _ in damage.originals}
    shas = {sha for sha in shas if store.has(manifest.relpath_of_image(sha))}
    thumbs = [relpath for sha, relpath in damage.thumbs]
    if shas:
        with cpu_pool(settings.workers) as pool, manifest.transaction():
            analyses = Analyses(pool, manifest, store, settings, say, rewrite_thumbnails=True)
            for sha in sorted(shas):
                analyses.add(sha)
            analyses.collect(block=True)
    return back + sum(store.has(relpath) for relpath in thumbs)
