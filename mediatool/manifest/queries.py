"""The reads the report and rewrite make across the tables."""

from __future__ import annotations

import json
from collections.abc import Iterable

from mediatool.manifest._sql import _URL_FAILED, _URL_REASON, _URLS_WITH_IMAGES, in_chunks
from mediatool.manifest.connection import ManifestBase
from mediatool.manifest.rows import ImageFilter, ImageRow, Localization


class QueriesTable(ManifestBase):
    """Reads across the tables for the report and rewrite."""

    def totals(self) -> dict[str, int]:
        """Counts for the report: posts, references, URLs by status, images, bytes stored."""

        def one(sql: str) -> int:
            return int(self.db.execute(sql).fetchone()[0] or 0)

        return {
            "posts": one("SELECT count(*) FROM posts"),
            "posts with problems": one("SELECT count(*) FROM posts WHERE problem IS NOT NULL"),
            "references": one("SELECT count(*) FROM refs"),
            "remote references": one("SELECT count(*) FROM refs WHERE kind='remote'"),
            "URLs": one("SELECT count(*) FROM urls"),
            "URLs stored": one(
                "SELECT count(*) FROM urls u LEFT JOIN images i ON i.sha256=u.sha256"
                " WHERE u.status='ok' AND i.error_reason IS NULL"
            ),
            "URLs failed": one(f"SELECT count(*){_URLS_WITH_IMAGES} WHERE {_URL_FAILED}"),
            "images": one(
                "SELECT count(*) FROM images WHERE error_reason IS NULL AND kind='image'"
            ),
            "media files": one("SELECT count(*) FROM images WHERE kind!='image'"),
            "bytes stored": one("SELECT sum(bytes) FROM images"),
            "thumbnails": one("SELECT count(*) FROM thumbs"),
        }

    def failed_urls(self) -> list[tuple[str, str]]:
        """(origin_url, reason) of every failed URL (its download, or its image)."""
        return [(url, reason) for url, reason, _ in self.failed_url_references()]

    def failed_url_references(self) -> list[tuple[str, str, int]]:
        """(origin_url, reason, references to it) of every failed URL (download or image)."""
        return list(
            self.db.execute(
                f"SELECT u.origin_url, coalesce({_URL_REASON}, 'failed'),"
                " (SELECT count(*) FROM refs r WHERE r.origin_url=u.origin_url)"
                f"{_URLS_WITH_IMAGES} WHERE {_URL_FAILED} ORDER BY u.origin_url"
            )
        )

    def image_rows(self, where: ImageFilter) -> list[ImageRow]:
        """Usable images matching one of the report's fixed filters."""
        filters = {
            "grouped": "coalesce(i.canonical, i.sha256) IN (SELECT canonical FROM images"
            " WHERE canonical IS NOT NULL GROUP BY canonical HAVING count(*) > 1)",
            "boilerplate": "i.boilerplate",
            "mismatched": "i.notes IS NOT NULL",
        }
        rows = self.db.execute(
            "SELECT i.sha256, i.relpath, (SELECT t.relpath FROM thumbs t WHERE t.sha256=i.sha256"
            " ORDER BY t.width DESC LIMIT 1), i.width, i.height, i.bytes, i.format,"
            " coalesce(i.canonical, i.sha256), i.post_count, i.notes FROM images i"
            f" WHERE i.error_reason IS NULL AND i.format IS NOT NULL AND i.kind='image'"
            f" AND {filters[where]}"
            " ORDER BY i.post_count DESC, coalesce(i.canonical, i.sha256), i.sha256"
        )
        return [
            ImageRow(
                sha,
                relpath,
                thumb,
                width or 0,
                height or 0,
                size or 0,
                fmt,
                canon,
                count,
                tuple(json.loads(notes)) if notes else (),
            )
            for sha, relpath, thumb, width, height, size, fmt, canon, count, notes in rows
        ]

    def localizations_of_images(self, shas: Iterable[str]) -> dict[str, Localization]:
        """For stored originals: their group's canonical original and its largest thumbnail."""
        return self._localizations(shas, "i.sha256", " FROM images i", "i.sha256 IN ({marks})")

    def localizations(self, origin_urls: Iterable[str]) -> dict[str, Localization]:
        """For each fetched origin URL: the canonical original and its largest thumbnail."""
        return self._localizations(
            origin_urls,
            "u.origin_url",
            " FROM urls u JOIN images i ON i.sha256=u.sha256",
            "u.status='ok' AND u.origin_url IN ({marks})",
        )

    def _localizations(
        self, keys: Iterable[str], key_column: str, source: str, condition: str
    ) -> dict[str, Localization]:
        """key -> Localization, where `source` brings image `i` for each key and `condition`
        (with `{marks}` for the keys) picks the keys; `c` is i's canonical copy."""
        found: dict[str, Localization] = {}
        rows = in_chunks(
            self.db,
            f"SELECT {key_column}, c.relpath, c.width, c.height,"
            " (SELECT t.relpath FROM thumbs t WHERE t.sha256=c.sha256"
            "  ORDER BY t.width DESC LIMIT 1)"
            f"{source} JOIN images c ON c.sha256=coalesce(i.canonical, i.sha256)"
            f" WHERE c.error_reason IS NULL AND {condition}",
            sorted(set(keys)),
        )
        for key, relpath, width, height, thumb in rows:
            found[key] = Localization(key, relpath, width or 0, height or 0, thumb)
        return found
