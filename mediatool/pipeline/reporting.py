"""`mediatool report`: the manifest turned into a self-contained HTML page in the cache folder."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from mediatool.config import Settings
from mediatool.gallery import (
    Boilerplate,
    DupGroup,
    FailureRow,
    GalleryData,
    GalleryImage,
    Mismatch,
    write_report,
)
from mediatool.manifest import ImageRow, Manifest
from mediatool.pipeline.common import existing_store
from mediatool.resolve import host_label


def run_report(settings: Settings) -> Path:
    """Write report.html into the cache folder; return its path."""
    store = existing_store(settings)
    with Manifest.open(store.manifest_path) as manifest:
        data = GalleryData(
            title="mediatool report",
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            totals=tuple(manifest.totals().items()),
            failures=_failure_rows(manifest.failed_url_references()),
            groups=_groups(manifest.image_rows("grouped")),
            boilerplate=tuple(
                Boilerplate(_image(row), row.post_count)
                for row in manifest.image_rows("boilerplate")
            ),
            mismatches=tuple(
                Mismatch(_image(row), note)
                for row in manifest.image_rows("mismatched")
                for note in row.notes
            ),
        )
    return write_report(store.root, data)


def _image(row: ImageRow) -> GalleryImage:
    return GalleryImage(
        sha256=row.sha256,
        relpath=row.thumb_relpath or row.relpath,
        original_relpath=row.relpath,
        width=row.width,
        height=row.height,
        bytes=row.bytes,
        format=row.format,
    )


def _failure_rows(failed: list[tuple[str, str, int]]) -> tuple[FailureRow, ...]:
    by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    refs: Counter[tuple[str, str]] = Counter()
    for url, reason, references in failed:
        key = (reason, host_label(url))
        by_key[key].append(url)
        refs[key] += references
    ordered = sorted(by_key.items(), key=lambda item: (-len(item[1]), item[0]))
    return tuple(
        FailureRow(reason, host, len(urls), tuple(urls[:3]), refs[(reason, host)])
        for (reason, host), urls in ordered
    )


def _groups(rows: list[ImageRow]) -> tuple[DupGroup, ...]:
    members: dict[str, list[ImageRow]] = defaultdict(list)
    for row in rows:
        members[row.canonical].append(row)
    groups = []
    for canonical, group in members.items():
        kept = next(row for row in group if row.sha256 == canonical)
        others = tuple(_image(row) for row in group if row.sha256 != canonical)
        groups.append(DupGroup(_image(kept), others))
    return tuple(sorted(groups, key=lambda g: -len(g.members)))
