"""The images and thumbs tables: stored originals, their analysis, groups and thumbnails."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence

from mediatool.manifest._sql import _URLS_WITH_IMAGES, CHUNK, in_chunks
from mediatool.manifest.connection import ManifestBase
from mediatool.models import Analysis, ImageInfo


class ImagesTable(ManifestBase):
    """Stored originals, their analysis, groups and thumbnails."""

    def add_original(self, sha256: str, relpath: str, size: int) -> bool:
        """Record a stored original; True when it is new and still needs analysis."""
        self.db.execute(
            "INSERT INTO images (sha256, relpath, bytes) VALUES (?,?,?)"
            " ON CONFLICT(sha256) DO NOTHING",
            (sha256, relpath, size),
        )
        row = self.db.execute(
            "SELECT format, error_reason FROM images WHERE sha256=?", (sha256,)
        ).fetchone()
        return row[0] is None and row[1] is None

    def record_asset(self, sha256: str, fmt: str, kind: str, size: int) -> None:
        """A stored media file (video, audio, document): a plain asset, never analyzed."""
        self.db.execute(
            "UPDATE images SET format=?, kind=?, width=0, height=0, bytes=?, phash='', dhash='',"
            " flat=0, error_reason=NULL, error=NULL, grouped=0 WHERE sha256=?",
            (fmt.upper(), kind, size, sha256),
        )

    def stored_kinds(self, origin_urls: Iterable[str]) -> dict[str, int]:
        """How many of these URLs are stored and usable, by kind (image, video, ...)."""
        counts: dict[str, int] = {}
        for kind, count in in_chunks(
            self.db,
            f"SELECT i.kind, count(*){_URLS_WITH_IMAGES} WHERE u.origin_url IN ({{marks}})"
            " AND u.status='ok' AND i.error_reason IS NULL AND i.format IS NOT NULL"
            " GROUP BY i.kind",
            sorted(origin_urls),
        ):
            counts[kind] = counts.get(kind, 0) + count
        return counts

    def relpath_of_image(self, sha256: str) -> str:
        row = self.db.execute("SELECT relpath FROM images WHERE sha256=?", (sha256,)).fetchone()
        return str(row[0])

    def thumbnail_relpaths(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT relpath FROM thumbs")}

    def forget_thumbnails(self, relpaths: Iterable[str]) -> None:
        """Drop the records of these thumbnails (derived files no longer made)."""
        self.db.executemany("DELETE FROM thumbs WHERE relpath=?", [(r,) for r in relpaths])

    def thumbnail_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM thumbs").fetchone()[0])

    def usable_images(self) -> list[str]:
        """sha256 of every stored original that is a usable image (analyzed, no error)."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT sha256 FROM images WHERE error_reason IS NULL AND format IS NOT NULL"
                " AND kind='image'"
            )
        ]

    def unanalyzed_images(self) -> list[tuple[str, str]]:
        """(sha256, relpath) of stored originals that have no analysis yet (e.g. a killed run)."""
        return list(
            self.db.execute(
                "SELECT sha256, relpath FROM images WHERE format IS NULL AND error_reason IS NULL"
            )
        )

    def declared_sizes(self, sha256: str) -> list[tuple[int | None, int | None]]:
        return list(
            self.db.execute(
                "SELECT DISTINCT r.declared_w, r.declared_h FROM refs r JOIN urls u"
                " ON u.origin_url=r.origin_url WHERE u.sha256=? AND r.declared_w IS NOT NULL",
                (sha256,),
            )
        )

    def record_analysis(self, analysis: Analysis) -> None:
        info = analysis.info
        self.db.execute(
            "UPDATE images SET format=?, width=?, height=?, bytes=?, phash=?, dhash=?, flat=?,"
            " grey=?, notes=?, error_reason=NULL, error=NULL, grouped=0 WHERE sha256=?",
            (
                info.format,
                info.width,
                info.height,
                info.bytes,
                info.phash,
                info.dhash,
                int(info.flat),
                info.grey or None,
                json.dumps(list(analysis.notes)) if analysis.notes else None,
                info.sha256,
            ),
        )
        self.db.executemany(
            "INSERT INTO thumbs (sha256, width, height, relpath) VALUES (?,?,?,?)"
            " ON CONFLICT(sha256, width, height) DO UPDATE SET relpath=excluded.relpath",
            [(t.sha256, t.width, t.height, t.relpath) for t in analysis.thumbnails],
        )

    def record_image_error(
        self, sha256: str, reason: str, message: str, limit: int | None = None
    ) -> None:
        """The stored bytes are not a usable image; `limit` is the limit that refused them
        (images.max_pixels for too_many_pixels), so that raising it analyzes them again."""
        self.db.execute(
            "UPDATE images SET error_reason=?, error=?, error_limit=?, grouped=0 WHERE sha256=?",
            (reason, message, limit, sha256),
        )

    def reopen_images(self, limits: Mapping[str, int], *, all_errors: bool) -> int:
        """Forget the errors of images refused by a limit that has been raised since (`limits`:
        reason -> the limit now), or of every image with an error when `all_errors`, so that
        they are analyzed again (`unanalyzed_images`). Returns how many."""
        if all_errors:
            where, params = "error_reason IS NOT NULL", []
        else:
            where = " OR ".join(
                "(error_reason=? AND (error_limit IS NULL OR error_limit < ?))" for _ in limits
            )
            params = [value for item in limits.items() for value in item]
            if not where:
                return 0
        cursor = self.db.execute(
            "UPDATE images SET error_reason=NULL, error=NULL, error_limit=NULL,"
            f" format=NULL WHERE {where}",
            params,
        )
        return cursor.rowcount

    # --- grouping: a page of images at a time (`start_grouping` for a full pass, then
    # `extend_grouping` for each page, or for the images analyzed since the last grouping)

    def grouping_state(self) -> tuple[str, int, int, int] | None:
        """(rules, radius, images, groupable) of the last grouping (dedup.GroupingState)."""
        row = self.db.execute("SELECT rules, radius, images, groupable FROM grouping").fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def grouped_image_count(self) -> int:
        """How many analyzed images the last grouping holds, unchanged since."""
        row = self.db.execute(f"SELECT count(*) FROM images WHERE grouped AND {_ANALYZED}")
        return int(row.fetchone()[0])

    def ungrouped_images(self, limit: int | None = None) -> list[ImageInfo]:
        """The analyzed images no grouping holds yet (analyzed since the last one), the
        `limit` first of them (by rowid) when given."""
        return [info for _, info in self.ungrouped_rows(limit)]

    def ungrouped_rows(self, limit: int | None = None) -> list[tuple[int, ImageInfo]]:
        """`ungrouped_images` with the id (rowid) each is named by (`grouped_names`)."""
        rows = self.db.execute(
            f"SELECT rowid, {_INFO} FROM images WHERE NOT grouped AND {_ANALYZED}"
            " ORDER BY rowid LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [(int(row[0]), _image_info(row[1:])) for row in rows]

    def each_analyzed_image(self, *, ungrouped_only: bool) -> Iterator[ImageInfo]:
        """Every analyzed image (with `ungrouped_only`, those `ungrouped_images` gives), one at
        a time as SQLite reads them: for counting them without holding them."""
        where = f"NOT grouped AND {_ANALYZED}" if ungrouped_only else _ANALYZED
        for row in self.db.execute(f"SELECT {_INFO} FROM images WHERE {where}"):
            yield _image_info(row)

    def grouped_columns(self) -> tuple[str, str, str, str, str, str]:
        """Of the images the last grouping holds that have a 64-bit phash and dhash: their ids
        (rowids), phashes, dhashes, widths, heights and flat flags, each column in one string
        (dedup.StoredHashes.of_columns): numbers comma-separated, hashes (16 hex digits) one
        after the other. A million rows come in a third of the time rows one by one take."""
        row = self.db.execute(
            "SELECT group_concat(rowid), group_concat(phash, ''), group_concat(dhash, ''),"
            " group_concat(width), group_concat(height), group_concat(flat)"
            " FROM (SELECT rowid, phash, dhash, coalesce(width, 0) AS width,"
            " coalesce(height, 0) AS height, coalesce(flat, 0) AS flat FROM images"
            f" WHERE grouped AND {_ANALYZED} AND length(phash)=16 AND length(dhash)=16"
            " ORDER BY rowid)"
        ).fetchone()
        return tuple(str(value or "") for value in row)  # type: ignore[return-value]

    def grouped_names(self, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """id (from `grouped_columns` or `ungrouped_rows`) -> (the image's sha256, its group's
        canonical)."""
        found: dict[int, tuple[str, str]] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = [int(i) for i in ids[start : start + CHUNK]]
            rows = self.db.execute(
                "SELECT rowid, sha256, coalesce(canonical, sha256) FROM images"
                f" WHERE rowid IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update((int(ident), (str(sha), str(canon))) for ident, sha, canon in rows)
        return found

    def images_by_sha(self, shas: Sequence[str]) -> dict[str, ImageInfo]:
        """sha256 -> the analyzed image, for those of `shas` that are."""
        rows = in_chunks(
            self.db, f"SELECT {_INFO} FROM images WHERE {_ANALYZED} AND sha256 IN ({{marks}})", shas
        )
        return {info.sha256: info for info in map(_image_info, rows)}

    def start_grouping(self, state: tuple[str, int, int, int]) -> None:
        """Begin a full grouping made a page at a time: no image is grouped, `state` (nothing
        grouped, the whole set's rules and radius) recorded; `extend_grouping` adds the pages.
        A run stopped between pages leaves a grouping the next one extends."""
        self.db.execute("UPDATE images SET grouped=0 WHERE grouped")
        self._record_grouping(state)

    def extend_grouping(
        self,
        canonical_of: Mapping[str, str],
        renamed: Mapping[str, str],
        state: tuple[str, int, int, int],
    ) -> None:
        """Record the grouping of new images: their canonicals, and the groups made before that
        they grew or merged (old canonical -> new: every member moves)."""
        self.db.executemany(
            "UPDATE images SET canonical=? WHERE canonical=?",
            [(new, old) for old, new in renamed.items()],
        )
        self._set_grouped(canonical_of)
        self._record_grouping(state)

    def _set_grouped(self, canonical_of: Mapping[str, str]) -> None:
        self.db.executemany(
            "UPDATE images SET canonical=?, grouped=1 WHERE sha256=?",
            [(canon, sha) for sha, canon in canonical_of.items()],
        )

    def _record_grouping(self, state: tuple[str, int, int, int]) -> None:
        self.db.execute(
            "INSERT INTO grouping (id, rules, radius, images, groupable) VALUES (1,?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET rules=excluded.rules, radius=excluded.radius,"
            " images=excluded.images, groupable=excluded.groupable",
            state,
        )

    def greys(self, shas: Sequence[str]) -> dict[str, bytes]:
        """sha256 -> the grey image analysis stored (dedup.grey_of), for those that have one;
        asked for the few wide-band candidates only, so grouping never holds them all."""
        found: dict[str, bytes] = {}
        rows = in_chunks(
            self.db,
            "SELECT sha256, grey FROM images WHERE grey IS NOT NULL AND sha256 IN ({marks})",
            shas,
        )
        found.update((str(sha), bytes(grey)) for sha, grey in rows)
        return found

    def thumbnails_of_images(self, shas: Iterable[str]) -> dict[str, list[tuple[int, int, str]]]:
        """For stored originals: the (width, height, relpath) of each thumbnail made of it,
        narrowest first (`rewrite --srcset`)."""
        found: dict[str, list[tuple[int, int, str]]] = {}
        rows = in_chunks(
            self.db,
            "SELECT sha256, width, height, relpath FROM thumbs WHERE sha256 IN ({marks})"
            " ORDER BY sha256, width, height",
            sorted(set(shas)),
        )
        for sha, width, height, relpath in rows:
            found.setdefault(sha, []).append((width, height, relpath))
        return found

    def set_canonicals(self, canonical_of: dict[str, str]) -> None:
        self.db.executemany(
            "UPDATE images SET canonical=? WHERE sha256=?",
            [(canon, sha) for sha, canon in canonical_of.items()],
        )

    def group_count(self) -> tuple[int, int]:
        """(groups with more than one member, images in them)."""
        row = self.db.execute(
            "SELECT count(*), coalesce(sum(n),0) FROM (SELECT canonical, count(*) AS n FROM images"
            " WHERE canonical IS NOT NULL GROUP BY canonical HAVING n > 1)"
        ).fetchone()
        return int(row[0]), int(row[1])

    def count_posts_per_image(self, boilerplate_over: int) -> int:
        """Store how many posts show each canonical image; flag those shown by more than
        `boilerplate_over` posts. Returns how many are boilerplate."""
        self.db.executescript(
            """
            DROP TABLE IF EXISTS temp.post_counts;
            CREATE TEMP TABLE post_counts (canon TEXT PRIMARY KEY, n INTEGER NOT NULL);
            INSERT INTO post_counts
                SELECT coalesce(i.canonical, i.sha256), count(DISTINCT r.post_id)
                FROM refs r JOIN urls u ON u.origin_url = r.origin_url
                JOIN images i ON i.sha256 = u.sha256
                WHERE u.status = 'ok'
                GROUP BY coalesce(i.canonical, i.sha256);
            """
        )
        # only the rows whose count or flag changed are written: a row carries its 4 KiB grey
        # image, and rewriting every one (~2.7 GB at 100,000 posts) took most of the time
        with self.transaction():
            count = "coalesce((SELECT n FROM post_counts WHERE canon = images.sha256), 0)"
            self.db.execute(f"UPDATE images SET post_count = {count} WHERE post_count != {count}")
            flag = "(post_count > ?)"
            self.db.execute(
                f"UPDATE images SET boilerplate = {flag} WHERE boilerplate != {flag}",
                (boilerplate_over, boilerplate_over),
            )
        self.db.execute("DROP TABLE temp.post_counts")
        row = self.db.execute("SELECT count(*) FROM images WHERE boilerplate").fetchone()
        return int(row[0])


_INFO = "sha256, format, width, height, bytes, phash, dhash, flat"  # the columns of _image_info
_ANALYZED = "format IS NOT NULL AND error_reason IS NULL"


def _image_info(row: tuple[object, ...]) -> ImageInfo:
    sha, fmt, width, height, size, phash, dhash, flat = row
    return ImageInfo(
        sha256=str(sha),
        format=str(fmt),
        width=int(width or 0),  # type: ignore[call-overload]
        height=int(height or 0),  # type: ignore[call-overload]
        bytes=int(size or 0),  # type: ignore[call-overload]
        phash=str(phash or ""),
        dhash=str(dhash or ""),
        flat=bool(flat),
    )
