"""Work on the store alone, offline: `dedup --regroup` and `thumbs --rebuild`."""

from __future__ import annotations

import time

from mediatool.config import Settings
from mediatool.manifest import Manifest
from mediatool.pipeline.analyzing import analyses_on
from mediatool.pipeline.clusters import cluster_of
from mediatool.pipeline.common import (
    CHECKPOINT_EVERY,
    CHECKPOINT_SECONDS,
    Say,
    existing_store,
)
from mediatool.pipeline.fetching import group_and_count
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import MaintenanceSummary


@one_run_per_cache("dedup --regroup")
def run_regroup(
    settings: Settings, *, say: Say, threshold: int | None = None
) -> MaintenanceSummary:
    """Group every stored image again, a full pass (e.g. with another threshold; fetch groups
    only the images it analyzed); rewrite follows."""
    started = time.monotonic()
    store = existing_store(settings)
    with Manifest.open(store.manifest_path) as manifest:
        boilerplate = group_and_count(manifest, settings, threshold, full=True)
        return _summary(manifest, boilerplate, started, thumbnails=0)


@one_run_per_cache("thumbs --rebuild")
def run_rebuild_thumbs(settings: Settings, *, say: Say) -> MaintenanceSummary:
    """Make every thumbnail again from the originals (one decode each), e.g. after changing
    `thumb_widths`, format or quality. Each is replaced in place (readers see the old file or the
    new one, and a killed rebuild leaves every post's thumbnail there); thumbnails no longer made
    are deleted only at the end."""
    started = time.monotonic()
    store = existing_store(settings)
    problems: list[str] = []
    with Manifest.open(store.manifest_path) as manifest:
        old = manifest.thumbnail_relpaths()
        shas = manifest.usable_images()

        def note(message: str) -> None:
            problems.append(message)
            say(message)

        with (
            cluster_of(settings, say) as cluster,
            analyses_on(
                cluster, manifest, store, settings, note, rewrite_thumbnails=True
            ) as analyses,
            manifest.checkpoints(CHECKPOINT_EVERY, CHECKPOINT_SECONDS) as checkpoint,
        ):
            for sha in shas:
                analyses.add(sha)
                analyses.collect(block=False)
                checkpoint()
            analyses.collect(block=True)
        stale = old - analyses.thumbnails_made
        with manifest.transaction():
            manifest.forget_thumbnails(stale)
        for relpath in stale:
            store.delete(relpath)
        boilerplate = group_and_count(manifest, settings)
        thumbnails = manifest.thumbnail_count()
        return _summary(manifest, boilerplate, started, thumbnails, tuple(problems))


def _summary(
    manifest: Manifest,
    boilerplate: int,
    started: float,
    thumbnails: int,
    problems: tuple[str, ...] = (),
) -> MaintenanceSummary:
    groups, grouped = manifest.group_count()
    return MaintenanceSummary(
        images=len(manifest.usable_images()),
        groups=groups,
        grouped_images=grouped,
        boilerplate_images=boilerplate,
        thumbnails=thumbnails,
        seconds=round(time.monotonic() - started, 3),
        problems=problems,
    )
