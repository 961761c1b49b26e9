"""`mediatool report`: the manifest turned into a self-contained HTML page in the cache folder."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from mediatool.config import Settings
from mediatool.errors import FatalError
from mediatool.files import atomic_write_bytes
from mediatool.gallery import (
    Boilerplate,
    DupGroup,
    FailureRow,
    GalleryData,
    GalleryImage,
    Mismatch,
    render_html,
    write_report,
)
from mediatool.manifest import ImageRow, Manifest
from mediatool.pipeline.common import existing_store
from mediatool.resolve import host_label

REPORT_NAME = "report.html"


def run_report(settings: Settings, output: Path | None = None) -> Path:
    """Write report.html into the cache folder, or to `output` (its image paths then lead from
    there into the cache); return its path. Needs the cache only for reading."""
    store = existing_store(settings)
    if output is None and store.state_dir != store.root:  # a site, an s3:// cache: private
        output = store.state_dir / REPORT_NAME
    prefix = _cache_prefix(store.root, output)
    with Manifest.open(store.manifest_path, read_only_ok=True) as manifest:
        data = GalleryData(
            title="mediatool report",
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            totals=tuple(manifest.totals().items()),
            failures=_failure_rows(manifest.failed_url_references(), manifest),
            groups=_groups(manifest.image_rows("grouped"), prefix, manifest),
            boilerplate=tuple(
                Boilerplate(_image(row, prefix), row.post_count)
                for row in manifest.image_rows("boilerplate")
            ),
            mismatches=tuple(
                Mismatch(_image(row, prefix), note)
                for row in manifest.image_rows("mismatched")
                for note in row.notes
            ),
        )
    target = output or store.root / REPORT_NAME
    try:
        if output is None:
            return write_report(store.root, data, REPORT_NAME)
        atomic_write_bytes(output, render_html(data).encode("utf-8"))
        return output
    except OSError as exc:
        raise FatalError(
            f"{target}: cannot write the report ({exc.strerror}); make the cache folder "
            "writable, or run report on a writable copy of it (--cache COPY)."
        ) from exc


def _cache_prefix(cache_root: Path, output: Path | None) -> str:
    """The relative path from the report's folder to the cache folder ("" when the same)."""
    if output is None:
        return ""
    relative = os.path.relpath(cache_root.resolve(), output.resolve().parent)
    return "" if relative == "." else Path(relative).as_posix() + "/"


def _image(row: ImageRow, prefix: str = "") -> GalleryImage:
    return GalleryImage(
        sha256=row.sha256,
        relpath=prefix + (row.thumb_relpath or row.relpath),
        original_relpath=prefix + row.relpath,
        width=row.width,
        height=row.height,
        bytes=row.bytes,
        format=row.format,
    )


def _failure_rows(failed: list[tuple[str, str, int]], manifest: Manifest) -> tuple[FailureRow, ...]:
    """Failed URLs by (reason, host), with the posts behind each row."""
    posts_of = manifest.posts_of_urls(url for url, _, _ in failed)
    by_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    refs: Counter[tuple[str, str]] = Counter()
    for url, reason, references in failed:
        key = (reason, host_label(url))
        by_key[key].append(url)
        refs[key] += references
    ordered = sorted(by_key.items(), key=lambda item: (-len(item[1]), item[0]))
    return tuple(
        FailureRow(
            reason,
            host,
            len(urls),
            tuple(urls[:3]),
            refs[(reason, host)],
            tuple(sorted({post for url in urls for post in posts_of.get(url, ())})),
        )
        for (reason, host), urls in ordered
    )


def _groups(rows: list[ImageRow], prefix: str, manifest: Manifest) -> tuple[DupGroup, ...]:
    """Near-duplicate groups, the kept copy first, with the posts that show any copy."""
    posts_of = manifest.posts_of_images(row.sha256 for row in rows)
    members: dict[str, list[ImageRow]] = defaultdict(list)
    for row in rows:
        members[row.canonical].append(row)
    groups = []
    for canonical, group in members.items():
        kept = next(row for row in group if row.sha256 == canonical)
        others = tuple(_image(row, prefix) for row in group if row.sha256 != canonical)
        posts = tuple(sorted({post for row in group for post in posts_of.get(row.sha256, ())}))
        groups.append(DupGroup(_image(kept, prefix), others, posts))
    return tuple(sorted(groups, key=lambda g: -len(g.members)))
