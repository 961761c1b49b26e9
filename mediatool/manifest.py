"""The manifest: one SQLite file in the cache folder, the only module that speaks SQL.

Schema changes are numbered migrations; a manifest written by a newer mediatool is refused.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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

MIGRATIONS: tuple[str, ...] = (
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
    }
)


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
            # One script: the migration and its version number commit together or not at all.
            self.db.executescript(
                f"BEGIN;\n{MIGRATIONS[number]}\nPRAGMA user_version={number + 1};\nCOMMIT;"
            )

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
    ) -> tuple[list[FetchJob], list[str]]:
        """(jobs to run, origin URLs already stored) among `origin_urls`.

        A stored URL whose file is present (`file_present(relpath)`) is not requested again
        unless `refresh`; then it is revalidated with its ETag/Last-Modified. One whose file has
        gone is fetched again in full. Permanent failures wait for `retry_failed`."""
        jobs: list[FetchJob] = []
        stored: list[str] = []
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for url, candidates, status, reason, etag, modified, present in self.db.execute(
                "SELECT u.origin_url, u.candidates, u.status, u.reason, u.etag, u.last_modified,"
                " i.relpath FROM urls u LEFT JOIN images i ON i.sha256=u.sha256"
                f" WHERE u.origin_url IN ({marks})",
                chunk,
            ):
                cands = tuple(json.loads(candidates))
                if status == "ok" and present is not None and file_present(present):
                    stored.append(url)
                    if refresh:
                        jobs.append(FetchJob(url, cands, etag, modified))
                elif status == "failed" and reason in PERMANENT_REASONS and not retry_failed:
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
            " etag=?, last_modified=?, reason=NULL, message=NULL, attempts=NULL, checked_at=?"
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
            "UPDATE urls SET status='failed', reason=?, message=?, attempts=?, checked_at=?"
            " WHERE origin_url=?",
            (
                failure.reason,
                failure.message,
                json.dumps(list(failure.attempts)),
                time.time(),
                failure.origin_url,
            ),
        )

    def fail_urls_of_image(self, sha256: str, reason: str, message: str) -> list[str]:
        """Mark every URL that delivered `sha256` as failed (the bytes are not a usable image)."""
        urls = [
            r[0] for r in self.db.execute("SELECT origin_url FROM urls WHERE sha256=?", (sha256,))
        ]
        self.db.execute(
            "UPDATE urls SET status='failed', reason=?, message=? WHERE sha256=?",
            (reason, message, sha256),
        )
        return urls

    def url_statuses(self, origin_urls: Iterable[str]) -> dict[str, UrlStatus]:
        found: dict[str, UrlStatus] = {}
        for chunk in _chunks(sorted(origin_urls), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                "SELECT origin_url, status, reason, message FROM urls"
                f" WHERE origin_url IN ({marks})",
                chunk,
            ):
                found[row[0]] = UrlStatus(*row)
        return found

    def sha256_of(self, origin_url: str) -> str | None:
        row = self.db.execute(
            "SELECT sha256 FROM urls WHERE origin_url=? AND status='ok'", (origin_url,)
        ).fetchone()
        return row[0] if row else None

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
            " notes=?, error_reason=NULL, error=NULL WHERE sha256=?",
            (
                info.format,
                info.width,
                info.height,
                info.bytes,
                info.phash,
                info.dhash,
                int(info.flat),
                json.dumps(list(analysis.notes)) if analysis.notes else None,
                info.sha256,
            ),
        )
        self.db.executemany(
            "INSERT OR REPLACE INTO thumbs (sha256, width, height, relpath) VALUES (?,?,?,?)",
            [(t.sha256, t.width, t.height, t.relpath) for t in analysis.thumbnails],
        )

    def record_image_error(self, sha256: str, reason: str, message: str) -> None:
        self.db.execute(
            "UPDATE images SET error_reason=?, error=? WHERE sha256=?", (reason, message, sha256)
        )

    def analyzed_images(self) -> list[ImageInfo]:
        rows = self.db.execute(
            "SELECT sha256, format, width, height, bytes, phash, dhash, flat FROM images"
            " WHERE format IS NOT NULL AND error_reason IS NULL"
        )
        return [_image_info(row) for row in rows]

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
            "URLs stored": one("SELECT count(*) FROM urls WHERE status='ok'"),
            "URLs failed": one("SELECT count(*) FROM urls WHERE status='failed'"),
            "images": one("SELECT count(*) FROM images WHERE error_reason IS NULL"),
            "bytes stored": one("SELECT sum(bytes) FROM images"),
            "thumbnails": one("SELECT count(*) FROM thumbs"),
        }

    def failed_urls(self) -> list[tuple[str, str]]:
        """(origin_url, reason) of every failed URL."""
        return list(
            self.db.execute(
                "SELECT origin_url, coalesce(reason, 'failed') FROM urls WHERE status='failed'"
                " ORDER BY origin_url"
            )
        )

    def image_rows(self, where: str) -> list[ImageRow]:
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
            f" WHERE i.error_reason IS NULL AND i.format IS NOT NULL AND {filters[where]}"
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

    def record_rewrites(self, post_path: str, edits: Sequence[tuple[int, str, str]]) -> None:
        now = time.time()
        self.db.executemany(
            "INSERT INTO rewrites (post_path, at, start, old, new) VALUES (?,?,?,?,?)",
            [(post_path, now, start, old, new) for start, old, new in edits],
        )

    def rewrites_of(self, post_path: str) -> list[tuple[int, str, str]]:
        """(offset, old, new) of every rewrite of a post, newest first, back to front."""
        return list(
            self.db.execute(
                "SELECT start, old, new FROM rewrites WHERE post_path=? ORDER BY id DESC",
                (post_path,),
            )
        )

    def forget_rewrites(self, post_path: str) -> None:
        self.db.execute("DELETE FROM rewrites WHERE post_path=?", (post_path,))


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
