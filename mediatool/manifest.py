"""The manifest: one SQLite file in the cache folder, the only module that speaks SQL.

Schema changes are numbered migrations; a manifest written by a newer mediatool is refused.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from mediatool.errors import (
    CacheNotWritable,
    FatalError,
    ManifestDamaged,
    ManifestTooNew,
    NoSpace,
)
from mediatool.models import (
    Analysis,
    Download,
    FetchFailure,
    FetchJob,
    ImageInfo,
    Reference,
    Resolution,
)
from mediatool.rewrite import Generation, UndoEdit

Migration = str | Callable[[sqlite3.Connection, Path], None]  # SQL, or (db, manifest path)

MIGRATIONS: tuple[Migration, ...] = (
    # 1: the first schema
    """
    CREATE TABLE posts (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        size INTEGER, mtime_ns INTEGER, fingerprint TEXT,
        encoding TEXT, problem TEXT, scanned_at REAL
    );
    CREATE TABLE refs (
        id INTEGER PRIMARY KEY,
        post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
        context TEXT NOT NULL, line INTEGER, col INTEGER,
        span_start INTEGER, span_end INTEGER,
        raw TEXT NOT NULL, source_url TEXT NOT NULL, origin_url TEXT, kind TEXT NOT NULL,
        declared_w INTEGER, declared_h INTEGER
    );
    CREATE INDEX refs_post ON refs(post_id);
    CREATE INDEX refs_origin ON refs(origin_url);
    CREATE TABLE urls (
        origin_url TEXT PRIMARY KEY,
        candidates TEXT NOT NULL, rules TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        sha256 TEXT, fetched_url TEXT, final_url TEXT, redirects TEXT,
        etag TEXT, last_modified TEXT,
        reason TEXT, message TEXT, attempts TEXT, checked_at REAL
    );
    CREATE INDEX urls_sha ON urls(sha256);
    CREATE TABLE images (
        sha256 TEXT PRIMARY KEY, relpath TEXT NOT NULL,
        format TEXT, width INTEGER, height INTEGER, bytes INTEGER,
        phash TEXT, dhash TEXT, flat INTEGER,
        canonical TEXT, error_reason TEXT, error TEXT, notes TEXT
    );
    CREATE TABLE thumbs (
        sha256 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
        relpath TEXT NOT NULL, PRIMARY KEY (sha256, width, height)
    );
    CREATE TABLE rewrites (
        id INTEGER PRIMARY KEY, post_path TEXT NOT NULL, at REAL NOT NULL,
        start INTEGER NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL
    );
    CREATE INDEX rewrites_post ON rewrites(post_path);
    """,
    # 2: how many posts show each canonical image; boilerplate (banners, logos) flagged
    """
    ALTER TABLE images ADD COLUMN post_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE images ADD COLUMN boilerplate INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE posts ADD COLUMN date TEXT;
    """,
    # 3: undo records as generations (sha256 before/after); post keys relative to the archive
    lambda db, path: _generations_and_relative_keys(db, path),
    # 4: a failure on a limit records the limit and whose it was (raising it tries again); an
    # image error no longer marks its URLs failed: their status is derived from the image;
    # media files (video, audio, document) are stored as plain assets beside the images
    """
    ALTER TABLE urls ADD COLUMN fail_limit INTEGER;
    ALTER TABLE urls ADD COLUMN fail_kind TEXT;
    ALTER TABLE images ADD COLUMN error_limit INTEGER;
    ALTER TABLE images ADD COLUMN kind TEXT NOT NULL DEFAULT 'image';
    UPDATE urls SET status='ok', reason=NULL, message=NULL
        WHERE status='failed' AND reason IN ('corrupt_image', 'not_an_image', 'too_many_pixels')
        AND sha256 IN (SELECT sha256 FROM images WHERE error_reason IS NOT NULL);
    """,
    # 5: each image's 32x32 grey pixels (dedup.grey_of), which confirm cropped near-duplicates;
    # images analyzed before have none and group by phash and dhash alone
    "ALTER TABLE images ADD COLUMN grey BLOB;",
    # 6: the sha256 of a post's bytes when fetch scanned it (`rewrite --check` sees a post that
    # changed since, even when a checkout gave it a new mtime)
    """
    ALTER TABLE posts ADD COLUMN sha256 TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Failures that a plain re-run does not retry (use --retry-failed); others are transient.
PERMANENT_REASONS = frozenset(
    {
        "http_400",
        "http_401",
        "http_403",
        "http_404",
        "http_410",
        "http_451",
        "not_an_image",
        "empty_body",
        "too_large",
        "too_many_pixels",
        "corrupt_image",
        "blocked_private",
        "blocked_scheme",
        "bad_url",
        "too_many_redirects",
        "unsafe_svg",
    }
)

# The effective state of an URL `u` joined with its image `i`: a URL whose download succeeded
# but whose bytes are not a usable image (images.error_reason) is failed, with the image's reason.
_URL_FAILED = "(u.status='failed' OR (u.status='ok' AND i.error_reason IS NOT NULL))"
_URL_REASON = "CASE WHEN u.status='ok' THEN i.error_reason ELSE u.reason END"
_URL_STATE = (
    f"CASE WHEN {_URL_FAILED} THEN 'failed' ELSE u.status END, {_URL_REASON},"
    " CASE WHEN u.status='ok' THEN i.error ELSE u.message END"
)
_URLS_WITH_IMAGES = " FROM urls u LEFT JOIN images i ON i.sha256=u.sha256"


@dataclass(frozen=True, slots=True)
class PostState:
    """What the manifest remembers of a post file, to skip re-scanning it."""

    size: int
    mtime_ns: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Localization:
    """Where a fetched origin URL lives in the cache."""

    origin_url: str
    relpath: str  # the canonical original
    width: int
    height: int
    thumb_relpath: str | None  # the largest thumbnail of the canonical, if any


@dataclass(frozen=True, slots=True)
class ImageRow:
    """A stored original as the report shows it."""

    sha256: str
    relpath: str
    thumb_relpath: str | None
    width: int
    height: int
    bytes: int
    format: str
    canonical: str
    post_count: int
    notes: tuple[str, ...]


ImageFilter = Literal["grouped", "boilerplate", "mismatched"]  # the report's image queries


@dataclass(frozen=True, slots=True)
class UrlStatus:
    origin_url: str
    status: str
    reason: str | None
    message: str | None


class Manifest:
    """A connection to manifest.sqlite with the queries the pipeline needs."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    @classmethod
    @contextmanager
    def open(cls, path: Path, *, read_only_ok: bool = False) -> Iterator[Manifest]:
        """The manifest at `path`, created or migrated as needed.

        A cache folder (or manifest) that cannot be written is CacheNotWritable, unless
        `read_only_ok` (the command writes nothing): then the manifest is opened read-only and
        immutable. Any SQLite error while it is open becomes one fatal line naming the file:
        ManifestDamaged (not a database, truncated, corrupt), NoSpace (disk full), or
        CacheNotWritable."""
        problem = _not_writable(path)
        read_only = problem is not None and read_only_ok and path.is_file()
        if problem is not None and not read_only:
            raise CacheNotWritable(
                f"{path.parent}: cache folder is not writable ({problem}); "
                "choose another with --cache or fix its permissions."
            )
        try:
            connection = _connect(path, read_only)
        except sqlite3.Error as exc:
            raise _fatal(path, exc) from exc
        try:
            manifest = cls(connection)
            if not read_only:
                manifest._configure()
            manifest._migrate(path, read_only)
            yield manifest
        except sqlite3.Error as exc:
            raise _fatal(path, exc) from exc
        finally:
            connection.close()

    def _configure(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")

    def _migrate(self, path: Path, read_only: bool = False) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ManifestTooNew(
                f"{path}: written by a newer mediatool (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade mediatool or use another --cache."
            )
        if read_only and version < SCHEMA_VERSION:
            raise CacheNotWritable(
                f"{path}: written by an older mediatool and read-only here; make the cache "
                "folder writable and run the command again (the manifest is upgraded once)."
            )
        for number in range(version, SCHEMA_VERSION):
            step = MIGRATIONS[number]
            if not isinstance(step, str):
                with self.transaction():  # the step and its version number commit together
                    step(self.db, path)
                    self.db.execute(f"PRAGMA user_version={number + 1}")
                continue
            # One script: the migration and its version number commit together or not at all.
            self.db.executescript(f"BEGIN;\n{step}\nPRAGMA user_version={number + 1};\nCOMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        self.db.execute("COMMIT")

    def _rollback(self) -> None:
        # SQLite may have rolled back already (a full disk, an I/O error).
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    @contextmanager
    def checkpoints(self, every: int, seconds: float) -> Iterator[Callable[[], None]]:
        """One long transaction committed at the checkpoints the caller marks, at most every
        `every` marks or `seconds`: many small writes without a commit each. A mark must fall
        where the manifest is consistent; on an error the writes since the last commit are
        rolled back (a killed run loses at most that much, and the next run redoes it)."""
        marks = 0
        since = time.monotonic()
        self.db.execute("BEGIN")

        def checkpoint() -> None:
            nonlocal marks, since
            marks += 1
            if marks >= every or time.monotonic() - since >= seconds:
                self.db.execute("COMMIT")
                self.db.execute("BEGIN")
                marks, since = 0, time.monotonic()

        try:
            yield checkpoint
        except BaseException:
            self._rollback()
            raise
        self.db.execute("COMMIT")

    # -- posts and references ---------------------------------------------------------------

    def post_states(self, paths: Sequence[str]) -> dict[str, PostState]:
        """The recorded state of each of these posts that was scanned without a problem."""
        states: dict[str, PostState] = {}
        for chunk in _chunks(paths, 500):
            marks = ",".join("?" * len(chunk))
            for path, *state in self.db.execute(
                "SELECT path, size, mtime_ns, fingerprint FROM posts"
                f" WHERE path IN ({marks}) AND problem IS NULL AND size IS NOT NULL",
                chunk,
            ):
                states[path] = PostState(*state)
        return states

    def record_post(
        self,
        path: str,
        state: PostState | None,
        encoding: str | None,
        problem: str | None,
        references: Sequence[tuple[Reference, str | None]],
        date: str | None = None,
    ) -> None:
        """Replace what is known of a post: its state and its references (with origin URLs)."""
        size, mtime_ns, fingerprint = (
            (state.size, state.mtime_ns, state.fingerprint) if state else (None, None, None)
        )
        self.db.execute(
            "INSERT INTO posts (path, size, mtime_ns, fingerprint, encoding, problem, scanned_at,"
            " date) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET size=excluded.size,"
            " mtime_ns=excluded.mtime_ns, fingerprint=excluded.fingerprint,"
            " encoding=excluded.encoding, problem=excluded.problem,"
            " scanned_at=excluded.scanned_at, date=excluded.date",
            (path, size, mtime_ns, fingerprint, encoding, problem, time.time(), date),
        )
        post_id = self.db.execute("SELECT id FROM posts WHERE path=?", (path,)).fetchone()[0]
        self.db.execute("DELETE FROM refs WHERE post_id=?", (post_id,))
        self.db.executemany(
            "INSERT INTO refs (post_id, context, line, col, span_start, span_end, raw,"
            " source_url, origin_url, kind, declared_w, declared_h)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [_ref_row(post_id, ref, origin) for ref, origin in references],
        )

    def reference_counts(self, paths: Sequence[str]) -> tuple[int, int]:
        """(all references, remote references) of the given posts."""
        total = remote = 0
        for chunk in _chunks(paths, 500):
            marks = ",".join("?" * len(chunk))
            row = self.db.execute(
                "SELECT count(*), coalesce(sum(kind='remote'),0) FROM refs JOIN posts"
                f" ON posts.id=refs.post_id WHERE posts.path IN ({marks})",
                chunk,
            ).fetchone()
            total, remote = total + row[0], remote + row[1]
        return total, remote

    def references_by_origin(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """origin_url -> the posts (among `paths`, one entry per reference) that refer to it."""
        found: dict[str, list[str]] = {}
        for chunk in _chunks(paths, 500):
            marks = ",".join("?" * len(chunk))
            for origin, path in self.db.execute(
                "SELECT r.origin_url, p.path FROM refs r JOIN posts p ON p.id=r.post_id"
                f" WHERE p.path IN ({marks}) AND r.origin_url IS NOT NULL",
                chunk,
            ):
                found.setdefault(origin, []).append(path)
        return found

    def origin_urls_of(self, paths: Sequence[str]) -> set[str]:
        urls: set[str] = set()
        for chunk in _chunks(paths, 500):
            marks = ",".join("?" * len(chunk))
            urls.update(
                row[0]
                for row in self.db.execute(
                    "SELECT DISTINCT origin_url FROM refs JOIN posts ON posts.id=refs.post_id"
                    f" WHERE posts.path IN ({marks}) AND origin_url IS NOT NULL",
                    chunk,
                )
            )
        return urls

    # -- URLs -------------------------------------------------------------------------------

    def add_resolution(self, resolution: Resolution) -> None:
        """Record an origin URL and merge its candidates (origin first, then every proxy)."""
        row = self.db.execute(
            "SELECT candidates FROM urls WHERE origin_url=?", (resolution.origin_url,)
        ).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO urls (origin_url, candidates, rules) VALUES (?,?,?)",
                (
                    resolution.origin_url,
                    json.dumps(list(resolution.candidates)),
                    json.dumps(list(resolution.rules)),
                ),
            )
            return
        known: list[str] = json.loads(row[0])
        merged = known + [c for c in resolution.candidates if c not in known]
        if merged != known:
            self.db.execute(
                "UPDATE urls SET candidates=? WHERE origin_url=?",
                (json.dumps(merged), resolution.origin_url),
            )

    def fetch_jobs(
        self,
        origin_urls: Iterable[str],
        *,
        retry_failed: bool,
        refresh: bool,
        file_present: Callable[[str], bool] = lambda relpath: True,
        limits: Mapping[str, int] | None = None,
        retry: Collection[str] = (),
    ) -> tuple[list[FetchJob], list[str]]:
        """(jobs to run, origin URLs already stored) among `origin_urls`.

        A stored URL whose file is present (`file_present(relpath)`) is not requested again
        unless `refresh`; then it is revalidated with its ETag/Last-Modified. One whose file has
        gone is fetched again in full, and so is one whose bytes are not a usable image when
        `retry_failed` or `refresh`. Permanent failures wait for `retry_failed`, except those
        refused by a limit (`limits`: reason -> the limit now) that has been raised since, and
        those whose "reason:kind" is in `retry` (a setting they were judged by changed)."""
        jobs: list[FetchJob] = []
        stored: list[str] = []
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for (
                url,
                candidates,
                status,
                reason,
                limit,
                etag,
                modified,
                present,
                bad,
            ) in self.db.execute(
                "SELECT u.origin_url, u.candidates, u.status,"
                " u.reason || coalesce(':' || u.fail_kind, ''), u.fail_limit, u.etag,"
                " u.last_modified, i.relpath, i.error_reason FROM urls u"
                f" LEFT JOIN images i ON i.sha256=u.sha256 WHERE u.origin_url IN ({marks})",
                chunk,
            ):
                cands = tuple(json.loads(candidates))
                if status == "ok" and present is not None and file_present(present):
                    if bad is not None and (retry_failed or refresh) and bad != "too_many_pixels":
                        jobs.append(FetchJob(url, cands))  # damaged bytes: fetch them anew
                        continue
                    stored.append(url)
                    if refresh:
                        jobs.append(FetchJob(url, cands, etag, modified))
                elif (
                    status == "failed"
                    and str(reason).partition(":")[0] in PERMANENT_REASONS
                    and not retry_failed
                    and not _limit_raised(reason, limit, limits or {})
                    and reason not in retry
                ):
                    continue
                else:
                    jobs.append(FetchJob(url, cands))
        return jobs, stored

    def post_dates(self, origin_urls: Iterable[str]) -> dict[str, str]:
        """The earliest `date:` (as written) of the posts that reference each origin URL."""
        dates: dict[str, str] = {}
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for url, date in self.db.execute(
                "SELECT r.origin_url, min(p.date) FROM refs r JOIN posts p ON p.id=r.post_id"
                f" WHERE r.origin_url IN ({marks}) AND p.date IS NOT NULL GROUP BY r.origin_url",
                chunk,
            ):
                dates[url] = date
        return dates

    def first_references(self, origin_urls: Iterable[str]) -> dict[str, tuple[str, int]]:
        """(post path, line) of the first reference to each origin URL, by path and line."""
        found: dict[str, tuple[str, int]] = {}
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for url, path, line in self.db.execute(
                "SELECT r.origin_url, p.path, r.line FROM refs r JOIN posts p ON p.id=r.post_id"
                f" WHERE r.origin_url IN ({marks}) ORDER BY p.path, r.line",
                chunk,
            ):
                found.setdefault(url, (path, int(line or 0)))
        return found

    def record_download(self, download: Download, sha256: str) -> None:
        self.db.execute(
            "UPDATE urls SET status='ok', sha256=?, fetched_url=?, final_url=?, redirects=?,"
            " etag=?, last_modified=?, reason=NULL, message=NULL, attempts=NULL, checked_at=?,"
            " fail_limit=NULL, fail_kind=NULL"
            " WHERE origin_url=?",
            (
                sha256,
                download.fetched_url,
                download.final_url,
                json.dumps(list(download.redirects)),
                download.etag,
                download.last_modified,
                time.time(),
                download.origin_url,
            ),
        )

    def record_not_modified(self, origin_url: str) -> None:
        self.db.execute(
            "UPDATE urls SET checked_at=? WHERE origin_url=?", (time.time(), origin_url)
        )

    def record_failure(self, failure: FetchFailure) -> None:
        self.db.execute(
            "UPDATE urls SET status='failed', reason=?, message=?, attempts=?, checked_at=?,"
            " fail_limit=?, fail_kind=? WHERE origin_url=?",
            (
                failure.reason,
                failure.message,
                json.dumps(list(failure.attempts)),
                time.time(),
                failure.limit,
                failure.limit_kind,
                failure.origin_url,
            ),
        )

    def urls_of_image(self, sha256: str) -> list[str]:
        """Every origin URL whose download gave `sha256`."""
        return [
            r[0] for r in self.db.execute("SELECT origin_url FROM urls WHERE sha256=?", (sha256,))
        ]

    def url_statuses(self, origin_urls: Iterable[str]) -> dict[str, UrlStatus]:
        """The effective status of each URL: "failed" with the image's reason when its bytes
        are not a usable image (corrupt_image, too_many_pixels...)."""
        found: dict[str, UrlStatus] = {}
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT u.origin_url, {_URL_STATE}{_URLS_WITH_IMAGES}"
                f" WHERE u.origin_url IN ({marks})",
                chunk,
            ):
                found[row[0]] = UrlStatus(*row)
        return found

    # -- images -----------------------------------------------------------------------------

    def add_original(self, sha256: str, relpath: str, size: int) -> bool:
        """Record a stored original; True when it is new and still needs analysis."""
        self.db.execute(
            "INSERT OR IGNORE INTO images (sha256, relpath, bytes) VALUES (?,?,?)",
            (sha256, relpath, size),
        )
        row = self.db.execute(
            "SELECT format IS NULL AND error_reason IS NULL FROM images WHERE sha256=?", (sha256,)
        ).fetchone()
        return bool(row[0])

    def record_asset(self, sha256: str, fmt: str, kind: str, size: int) -> None:
        """A stored media file (video, audio, document): a plain asset, never analyzed."""
        self.db.execute(
            "UPDATE images SET format=?, kind=?, width=0, height=0, bytes=?, phash='', dhash='',"
            " flat=0, error_reason=NULL, error=NULL WHERE sha256=?",
            (fmt.upper(), kind, size, sha256),
        )

    def stored_kinds(self, origin_urls: Iterable[str]) -> dict[str, int]:
        """How many of these URLs are stored and usable, by kind (image, video, ...)."""
        counts: dict[str, int] = {}
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for kind, count in self.db.execute(
                f"SELECT i.kind, count(*){_URLS_WITH_IMAGES} WHERE u.origin_url IN ({marks})"
                " AND u.status='ok' AND i.error_reason IS NULL AND i.format IS NOT NULL"
                " GROUP BY i.kind",
                chunk,
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
            " grey=?, notes=?, error_reason=NULL, error=NULL WHERE sha256=?",
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
            "INSERT OR REPLACE INTO thumbs (sha256, width, height, relpath) VALUES (?,?,?,?)",
            [(t.sha256, t.width, t.height, t.relpath) for t in analysis.thumbnails],
        )

    def record_image_error(
        self, sha256: str, reason: str, message: str, limit: int | None = None
    ) -> None:
        """The stored bytes are not a usable image; `limit` is the limit that refused them
        (images.max_pixels for too_many_pixels), so that raising it analyzes them again."""
        self.db.execute(
            "UPDATE images SET error_reason=?, error=?, error_limit=? WHERE sha256=?",
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

    def analyzed_images(self) -> list[ImageInfo]:
        rows = self.db.execute(
            "SELECT sha256, format, width, height, bytes, phash, dhash, flat FROM images"
            " WHERE format IS NOT NULL AND error_reason IS NULL"
        )
        return [_image_info(row) for row in rows]

    def greys(self, shas: Sequence[str]) -> dict[str, bytes]:
        """sha256 -> the grey image analysis stored (dedup.grey_of), for those that have one;
        asked for the few wide-band candidates only, so grouping never holds them all."""
        found: dict[str, bytes] = {}
        for chunk in _chunks(shas, 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT sha256, grey FROM images WHERE grey IS NOT NULL AND sha256 IN ({marks})",
                chunk,
            )
            found.update((str(sha), bytes(grey)) for sha, grey in rows)
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
        with self.transaction():
            self.db.execute(
                "UPDATE images SET post_count ="
                " coalesce((SELECT n FROM post_counts WHERE canon = images.sha256), 0)"
            )
            self.db.execute("UPDATE images SET boilerplate = (post_count > ?)", (boilerplate_over,))
        self.db.execute("DROP TABLE temp.post_counts")
        row = self.db.execute("SELECT count(*) FROM images WHERE boilerplate").fetchone()
        return int(row[0])

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
        for chunk in _chunks(sorted(set(keys)), 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT {key_column}, c.relpath, c.width, c.height,"
                " (SELECT t.relpath FROM thumbs t WHERE t.sha256=c.sha256"
                "  ORDER BY t.width DESC LIMIT 1)"
                f"{source} JOIN images c ON c.sha256=coalesce(i.canonical, i.sha256)"
                f" WHERE c.error_reason IS NULL AND {condition.format(marks=marks)}",
                chunk,
            )
            for key, relpath, width, height, thumb in rows:
                found[key] = Localization(key, relpath, width or 0, height or 0, thumb)
        return found

    # -- rewrites (for undo) ----------------------------------------------------------------

    def record_generation(self, generation: Generation) -> int:
        """Record one rewrite of one post with its edits; return its number."""
        cursor = self.db.execute(
            "INSERT INTO generations (post_key, run, at, before_sha, after_sha) VALUES (?,?,?,?,?)",
            (generation.post_key, generation.run, time.time(), generation.before, generation.after),
        )
        number = int(cursor.lastrowid or 0)
        self.db.executemany(
            "INSERT INTO generation_edits (generation, seq, start, old, new) VALUES (?,?,?,?,?)",
            [(number, seq, e.offset, e.old, e.new) for seq, e in enumerate(generation.edits)],
        )
        return number

    def generations_of(self, post_key: str) -> list[Generation]:
        """Every recorded rewrite of a post, newest first."""
        rows = self.db.execute(
            "SELECT id, run, before_sha, after_sha FROM generations WHERE post_key=?"
            " ORDER BY id DESC",
            (post_key,),
        ).fetchall()
        return [
            Generation(post_key, before, after, self._edits_of(number), run, number)
            for number, run, before, after in rows
        ]

    def _edits_of(self, generation: int) -> tuple[UndoEdit, ...]:
        rows = self.db.execute(
            "SELECT start, old, new FROM generation_edits WHERE generation=? ORDER BY seq",
            (generation,),
        )
        return tuple(UndoEdit(*row) for row in rows)

    def rewritten_post_keys(self) -> set[str]:
        """The key of every post with recorded rewrites."""
        return {row[0] for row in self.db.execute("SELECT DISTINCT post_key FROM generations")}

    def forget_unwritten(self, post_key: str, current_sha: str) -> None:
        """Drop the post's newest generations while they start from the bytes it holds now: a
        run killed before it wrote them, or a state the post was set back to since; none is in
        effect. Older ones stay (a post can come back to an earlier state by later rewrites)."""
        rows = self.db.execute(
            "SELECT id, before_sha FROM generations WHERE post_key=? ORDER BY id DESC",
            (post_key,),
        ).fetchall()
        for number, before in rows:
            if before != current_sha:
                break
            self.forget_generation(number)

    def forget_generation(self, generation: int) -> None:
        self.db.execute("DELETE FROM generation_edits WHERE generation=?", (generation,))
        self.db.execute("DELETE FROM generations WHERE id=?", (generation,))

    def forget_rewrites(self, post_key: str) -> None:
        """Drop every recorded rewrite of a post (after `--undo` restored it)."""
        self.db.execute(
            "DELETE FROM generation_edits WHERE generation IN"
            " (SELECT id FROM generations WHERE post_key=?)",
            (post_key,),
        )
        self.db.execute("DELETE FROM generations WHERE post_key=?", (post_key,))

    # -- the CI job: check, verify, gc ------------------------------------------------------

    def record_post_sha(self, path: str, sha256: str | None) -> None:
        """The sha256 of a post's bytes as fetch scanned them (None: it could not be read)."""
        self.db.execute("UPDATE posts SET sha256=? WHERE path=?", (sha256, path))

    def fetched_posts(self, paths: Sequence[str]) -> dict[str, FetchedPost]:
        """What fetch recorded of each of these posts that it scanned without a problem."""
        found: dict[str, FetchedPost] = {}
        for chunk in _chunks(paths, 500):
            marks = ",".join("?" * len(chunk))
            for path, size, mtime_ns, sha in self.db.execute(
                "SELECT path, size, mtime_ns, sha256 FROM posts"
                f" WHERE path IN ({marks}) AND size IS NOT NULL",
                chunk,
            ):
                found[path] = FetchedPost(path, size, mtime_ns, sha)
        return found

    def rewritten_shas(self, paths: Sequence[str]) -> dict[str, set[str]]:
        """post key -> the sha256 of every state `rewrite` left it in (its recorded rewrites)."""
        found: dict[str, set[str]] = {}
        for chunk in _chunks(paths, 500):
            marks = ",".join("?" * len(chunk))
            for key, sha in self.db.execute(
                "SELECT post_key, after_sha FROM generations"
                f" WHERE post_key IN ({marks}) AND after_sha IS NOT NULL",
                chunk,
            ):
                found.setdefault(key, set()).add(sha)
        return found

    def post_keys(self) -> list[str]:
        """Every post the manifest knows, by key."""
        return [row[0] for row in self.db.execute("SELECT path FROM posts ORDER BY path")]

    def forget_posts(self, paths: Sequence[str]) -> int:
        """Drop these posts and their references (their undo records stay); return how many."""
        dropped = 0
        for chunk in _chunks(paths, 500):
            marks = ",".join("?" * len(chunk))
            ids = f"SELECT id FROM posts WHERE path IN ({marks})"
            self.db.execute(f"DELETE FROM refs WHERE post_id IN ({ids})", chunk)
            dropped += self.db.execute(f"DELETE FROM posts WHERE path IN ({marks})", chunk).rowcount
        return dropped

    def unused_urls(self) -> list[str]:
        """Origin URLs that no recorded reference names."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT origin_url FROM urls WHERE origin_url NOT IN"
                " (SELECT origin_url FROM refs WHERE origin_url IS NOT NULL) ORDER BY origin_url"
            )
        ]

    def forget_urls(self, origin_urls: Sequence[str]) -> None:
        for chunk in _chunks(origin_urls, 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM urls WHERE origin_url IN ({marks})", chunk)

    def local_reference_urls(self) -> list[tuple[str, int, str]]:
        """(post key, line, URL) of every recorded local reference."""
        return list(
            self.db.execute(
                "SELECT p.path, coalesce(r.line, 0), r.source_url FROM refs r"
                " JOIN posts p ON p.id=r.post_id WHERE r.kind='local' ORDER BY p.path, r.line"
            )
        )

    def stored_files(self) -> list[StoredFile]:
        """Every stored original (sha256, relpath) with the thumbnails made of it."""
        thumbs: dict[str, list[str]] = {}
        for sha, relpath in self.db.execute("SELECT sha256, relpath FROM thumbs"):
            thumbs.setdefault(sha, []).append(relpath)
        return [
            StoredFile(sha, relpath, canonical, tuple(sorted(thumbs.get(sha, ()))))
            for sha, relpath, canonical in self.db.execute(
                "SELECT sha256, relpath, canonical FROM images ORDER BY sha256"
            )
        ]

    def url_images(self) -> set[str]:
        """sha256 of every image some recorded URL downloaded."""
        return {
            row[0]
            for row in self.db.execute("SELECT DISTINCT sha256 FROM urls WHERE sha256 IS NOT NULL")
        }

    def forget_images(self, shas: Sequence[str]) -> None:
        """Drop these originals and their thumbnails (their files are the caller's)."""
        for chunk in _chunks(shas, 500):
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM thumbs WHERE sha256 IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM images WHERE sha256 IN ({marks})", chunk)

    def posts_of_urls(self, origin_urls: Iterable[str]) -> dict[str, list[str]]:
        """origin URL -> the posts (keys, sorted, once each) whose references name it."""
        found: dict[str, set[str]] = {}
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for url, path in self.db.execute(
                "SELECT DISTINCT r.origin_url, p.path FROM refs r JOIN posts p ON p.id=r.post_id"
                f" WHERE r.origin_url IN ({marks})",
                chunk,
            ):
                found.setdefault(url, set()).add(path)
        return {url: sorted(paths) for url, paths in found.items()}

    def posts_of_images(self, shas: Iterable[str]) -> dict[str, list[str]]:
        """sha256 -> the posts (keys, sorted) that refer to an URL whose download gave it."""
        found: dict[str, set[str]] = {}
        for chunk in _chunks(sorted(shas), 500):
            marks = ",".join("?" * len(chunk))
            for sha, path in self.db.execute(
                "SELECT DISTINCT u.sha256, p.path FROM urls u JOIN refs r ON r.origin_url="
                f"u.origin_url JOIN posts p ON p.id=r.post_id WHERE u.sha256 IN ({marks})",
                chunk,
            ):
                found.setdefault(sha, set()).add(path)
        return {sha: sorted(paths) for sha, paths in found.items()}

    def thumbnails_of_images(self, shas: Iterable[str]) -> dict[str, list[tuple[int, int, str]]]:
        """For stored originals: the (width, height, relpath) of each thumbnail made of it,
        narrowest first (`rewrite --srcset`)."""
        found: dict[str, list[tuple[int, int, str]]] = {}
        for chunk in _chunks(sorted(set(shas)), 500):
            marks = ",".join("?" * len(chunk))
            for sha, width, height, relpath in self.db.execute(
                f"SELECT sha256, width, height, relpath FROM thumbs WHERE sha256 IN ({marks})"
                " ORDER BY sha256, width, height",
                chunk,
            ):
                found.setdefault(sha, []).append((width, height, relpath))
        return found


@dataclass(frozen=True, slots=True)
class FetchedPost:
    """A post as fetch last scanned it."""

    key: str
    size: int
    mtime_ns: int
    sha256: str | None  # None in manifests older than schema 5


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A stored original and the thumbnails made of it."""

    sha256: str
    relpath: str
    canonical: str | None
    thumbs: tuple[str, ...]


def archive_root(cache_dir: Path) -> Path:
    """The folder post keys are relative to: the one that holds the cache folder. The cache
    folder itself may be a symlink to another disk; the folder holding that link counts."""
    return cache_dir.absolute().parent.resolve()


def relative_post_key(resolved: Path, root: Path) -> str:
    """How the manifest names a post (given its resolved path): its path relative to the archive
    root when it lies below it, so moving the archive with its cache keeps every key; else its
    absolute path (such keys start with "/" and hold only while the post stays put)."""
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return str(resolved)


def _generations_and_relative_keys(db: sqlite3.Connection, manifest_path: Path) -> None:
    """Migration 3: each legacy undo record batch (one post, one time) becomes a generation with
    unknown hashes; post keys below the archive root become relative (see `relative_post_key`)."""
    root = archive_root(manifest_path.parent)
    for statement in _GENERATION_TABLES:
        db.execute(statement)
    numbers: dict[tuple[str, float], int] = {}
    rows = db.execute("SELECT post_path, at, start, old, new FROM rewrites ORDER BY id").fetchall()
    for post_path, at, start, old, new in rows:
        if (post_path, at) not in numbers:
            key = relative_post_key(Path(post_path), root)
            cursor = db.execute(
                "INSERT INTO generations (post_key, run, at) VALUES (?,?,?)",
                (key, "before-schema-3", at),
            )
            numbers[post_path, at] = int(cursor.lastrowid or 0)
        db.execute(
            "INSERT INTO generation_edits (generation, seq, start, old, new)"
            " VALUES (?, (SELECT count(*) FROM generation_edits WHERE generation=?), ?,?,?)",
            (numbers[post_path, at], numbers[post_path, at], start, old, new),
        )
    db.execute("DROP TABLE rewrites")
    for number, path in db.execute("SELECT id, path FROM posts").fetchall():
        key = relative_post_key(Path(path), root)
        if key != path:
            db.execute("UPDATE posts SET path=? WHERE id=?", (key, number))


_GENERATION_TABLES = (
    """CREATE TABLE generations (
        id INTEGER PRIMARY KEY, post_key TEXT NOT NULL, run TEXT NOT NULL, at REAL NOT NULL,
        before_sha TEXT, after_sha TEXT
    )""",
    "CREATE INDEX generations_post ON generations(post_key)",
    """CREATE TABLE generation_edits (
        generation INTEGER NOT NULL, seq INTEGER NOT NULL,
        start INTEGER NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL,
        PRIMARY KEY (generation, seq)
    )""",
)


def _limit_raised(reason: str | None, limit: int | None, limits: Mapping[str, int]) -> bool:
    """A failure on a limit whose value now is higher than when it failed (or unrecorded).
    `reason` is "reason:kind" when the limit was a category's ("too_large:video"), which
    `limits` may name; else the reason's own entry counts."""
    if reason is None:
        return False
    key = reason if reason in limits else reason.partition(":")[0]
    if key not in limits:
        return False
    return limit is None or limit < limits[key]


def _ref_row(post_id: int, ref: Reference, origin: str | None) -> tuple[object, ...]:
    declared = ref.declared
    return (
        post_id,
        ref.context,
        ref.line,
        ref.column,
        ref.span.start,
        ref.span.end,
        ref.raw,
        ref.source_url,
        origin,
        ref.kind.value,
        declared.width if declared else None,
        declared.height if declared else None,
    )


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


def _chunks(items: Sequence[str] | list[str], size: int) -> Iterator[list[str]]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- opening: read-only caches and damaged files ---------------------------------------------

_DAMAGED = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}
_FULL = {"SQLITE_FULL"}
_NOT_WRITABLE = {"SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"}


def _not_writable(path: Path) -> str | None:
    """Why the manifest at `path` or its folder (where SQLite makes its -wal and -shm files)
    cannot be written, or None. A missing folder is left to SQLite's own error."""
    for target in (path.parent, path):
        if target.exists() and not os.access(target, os.W_OK):
            flags = os.statvfs(target).f_flag
            return os.strerror(errno.EROFS if flags & os.ST_RDONLY else errno.EACCES)
    return None


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(path, isolation_level=None)
    wal = path.with_name(path.name + "-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        # Everything is in the main file: immutable needs no -shm file, none can be made here.
        uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    # Commits of a run that was killed are still in the -wal file: reading them needs the -shm
    # file (SQLite reads a read-only one); immutable would silently skip them.
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        connection.close()
        raise CacheNotWritable(
            f"{path}: holds changes of an interrupted run that cannot be read in a read-only "
            "folder; make the cache folder writable and run the command again."
        ) from exc
    return connection


def _disk_full(folder: Path) -> bool:
    """True when the file system of `folder` has no block left (SQLite then reports some
    writes, e.g. of its -shm file, as an I/O error rather than SQLITE_FULL)."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _fatal(path: Path, exc: sqlite3.Error) -> FatalError:
    """The one-line error for a SQLite error on the manifest at `path`."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    base = name.split("_", 2)[:2]
    code = "_".join(base)
    if code in _DAMAGED:
        return ManifestDamaged(
            f"{path}: the manifest is damaged ({exc}); move it aside (e.g. to {path.name}.bad) "
            "and run `mediatool fetch` again to rebuild it (its undo records stay in the "
            "moved file)."
        )
    if code in _FULL or (code == "SQLITE_IOERR" and _disk_full(path.parent)):
        return NoSpace(f"{path}: cannot write ({exc}); free some space and run again.")
    if code in _NOT_WRITABLE:
        return CacheNotWritable(
            f"{path}: cannot write the manifest ({exc}); choose another --cache or fix its "
            "permissions."
        )
    return FatalError(f"{path}: the manifest cannot be used ({exc}); run the command again.")
