"""The schema: numbered migrations (SQL, or a function of the db and the manifest path).

A manifest written by a newer mediatool is refused (see connection.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from mediatool.manifest.keys import archive_root, relative_post_key

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
    # 7: the Cache-Control and Expires headers of each stored URL's last 200 or 304, as sent
    # (checked_at is when it came), so `fetch --refresh` revalidates only stale copies; URLs
    # stored before have none and are revalidated by every --refresh, as they were. marks:
    # small named values a run leaves for the next (what the last grouping was done on). Each
    # post's problem lines as said (JSON), so an unchanged post with a problem is not read again
    # to say them; a post recorded before has none and is read once more
    """
    ALTER TABLE urls ADD COLUMN cache_control TEXT;
    ALTER TABLE urls ADD COLUMN expires TEXT;
    CREATE TABLE marks (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    ALTER TABLE posts ADD COLUMN problem_lines TEXT;
    """,
    # 8: which analyzed images the last
    # grouping holds (images.grouped) and what it was made with (grouping, one row:
    # dedup.GroupingState), so that fetch groups only the images analyzed since
    """
    ALTER TABLE images ADD COLUMN grouped INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX images_canonical ON images(canonical);
    CREATE TABLE grouping (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        rules TEXT NOT NULL, radius INTEGER NOT NULL,
        images INTEGER NOT NULL, groupable INTEGER NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


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
