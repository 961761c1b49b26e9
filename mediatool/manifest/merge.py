"""Merging shard manifests into one (`mediatool merge`, docs/shards.md).

Each shard is ATTACHed and its rows copied with `INSERT ... ON CONFLICT` on natural keys (a
post's key, an URL, a sha256), never on rowids: ids differ between shards, so a foreign key
(refs.post_id, generation_edits.generation) is remapped through its parent's natural key. The
column lists come from PRAGMA table_info, so a column a later migration adds flows through.

Which row wins a conflict is decided by a total order on the two rows (`MERGE_RULES`), never by
which shard came first, so a merge is order-independent and idempotent:

    posts             the newest scan: mtime, then scan time; its refs come with it (unless
                      both scans read the same bytes with the same settings: same refs)
    urls              a success beats a failure beats pending; then the newest fetch
    images            analyzed and usable beats an image error beats not analyzed yet
    thumbs            same key, same file: any (the greater row, to stay order-independent)
    generations       every distinct one is kept (undo safety), in time order per post

Ties left by those rules go to the greater row as `quote()` spells it: arbitrary, but the same
whatever the order. Groups (images.canonical, post_count, boilerplate) are each shard's own
until `mediatool dedup` groups the merged images again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mediatool.errors import ManifestDamaged, UsageError
from mediatool.manifest.connection import ManifestBase
from mediatool.manifest.schema import SCHEMA_VERSION

SHARD = "shard"  # the schema name a shard is attached under
# Two scans of a post agree on these: the same bytes read the same way with the same settings
# (scan_fingerprint) find the same references, so a later scan's refs need not be copied.
SAME_SCAN = ("sha256", "fingerprint", "encoding", "problem")


@dataclass(frozen=True, slots=True)
class MergeRule:
    """How one table merges: its natural key, the rank that decides a conflict (greater wins,
    an SQL row value over the row's columns, `{t}` standing for the row), and the columns
    that are foreign keys (remapped through the parent's natural key)."""

    key: tuple[str, ...]
    rank: str
    remapped: tuple[str, ...] = ()
    parent: str | None = None  # a child table: merged with its parent's winners


URL_RANK = "CASE {t}.status WHEN 'ok' THEN 2 WHEN 'failed' THEN 1 ELSE 0 END"
IMAGE_RANK = (
    "CASE WHEN {t}.error_reason IS NULL AND {t}.format IS NOT NULL THEN 2"
    " WHEN {t}.error_reason IS NOT NULL THEN 1 ELSE 0 END"
)
MERGE_RULES: dict[str, MergeRule] = {
    "posts": MergeRule(("path",), "coalesce({t}.mtime_ns, -1), coalesce({t}.scanned_at, -1)"),
    "refs": MergeRule((), "", remapped=("post_id",), parent="posts"),
    "urls": MergeRule(("origin_url",), f"{URL_RANK}, coalesce({{t}}.checked_at, -1)"),
    "images": MergeRule(("sha256",), IMAGE_RANK),
    "thumbs": MergeRule(("sha256", "width", "height"), ""),
    # no unique key in the schema: matched with IS (before_sha, after_sha may be NULL)
    "generations": MergeRule(("post_key", "run", "at", "before_sha", "after_sha"), ""),
    "generation_edits": MergeRule((), "", remapped=("generation",), parent="generations"),
}

# What one manifest knows of its own last runs, never merged: a merge empties them, so the next
# fetch or dedup groups the merged images in one full pass (marks: what the last grouping was
# done on; grouping: the state incremental grouping extends).
RUN_STATE_TABLES = ("marks", "grouping")


@dataclass(frozen=True, slots=True)
class ShardMerged:
    """What merging one shard changed: rows taken from it by table, and the posts whose
    rewrite generations now come from more than one manifest."""

    taken: dict[str, int]
    mixed_rewrites: tuple[str, ...]


class MergeTable(ManifestBase):
    """Merging another manifest (a shard's) into this one."""

    def merge_shard(self, path: Path) -> ShardMerged:
        """Copy what `path` knows into this manifest by the rules of MERGE_RULES, in one
        transaction. UsageError when `path` is missing or of another schema version."""
        if not path.is_file():  # ATTACH would make an empty database there
            raise UsageError(f"{path}: no such manifest; give the shards' manifest files.")
        self.db.execute(f"ATTACH DATABASE ? AS {SHARD}", (str(path),))
        try:
            _check_shard(self.db, path)
            taken: dict[str, int] = {}
            mixed: tuple[str, ...] = ()
            with self.transaction():
                for table, rule in MERGE_RULES.items():
                    if rule.parent is not None:
                        continue  # merged with its parent's rows
                    if table == "posts":
                        taken[table] = self._merge_posts()
                    elif table == "generations":
                        taken[table], mixed = self._merge_generations()
                    else:  # a table with a unique natural key: the greater rank wins
                        taken[table] = self._merge_by_rank(table)
                for table in RUN_STATE_TABLES:
                    self.db.execute(f"DELETE FROM main.{table}")
            return ShardMerged(taken, mixed)
        finally:
            self.db.execute(f"DETACH DATABASE {SHARD}")

    def url_status_counts(self) -> dict[str, int]:
        """How many URLs are ok, failed and pending (after a merge: pending ones belong to a
        shard that was not merged, or was not run to its end)."""
        counts = {"ok": 0, "failed": 0, "pending": 0}
        counts.update(self.db.execute("SELECT status, count(*) FROM urls GROUP BY status"))
        return counts

    def table_names(self) -> set[str]:
        """Every table of this manifest (what MERGE_RULES must cover)."""
        rows = self.db.execute(
            "SELECT name FROM main.sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
        return {row[0] for row in rows}

    def foreign_key_columns(self, table: str) -> set[str]:
        """The columns of `table` declared as REFERENCES another table's row."""
        return {row[3] for row in self.db.execute(f"PRAGMA main.foreign_key_list({table})")}

    # -- the tables ---------------------------------------------------------------------

    def _merge_by_rank(self, table: str) -> int:
        """Insert the shard's rows; on a conflict of natural keys the greater rank wins."""
        rule = MERGE_RULES[table]
        columns = _columns(self.db, table)
        names = ", ".join(columns)
        updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in rule.key)
        better = f"{_order(rule, columns, 'excluded')} > {_order(rule, columns, table)}"
        before = self.db.total_changes
        self.db.execute(
            f"INSERT INTO main.{table} ({names}) SELECT {names} FROM {SHARD}.{table} WHERE true"
            f" ON CONFLICT({', '.join(rule.key)}) DO UPDATE SET {updates} WHERE {better}"
        )
        return self.db.total_changes - before

    def _merge_posts(self) -> int:
        """Posts new here or scanned later in the shard replace ours, with their refs (kept
        when both scans read the same bytes with the same settings: the refs are the same)."""
        rule = MERGE_RULES["posts"]
        columns = _columns(self.db, "posts")
        same = " AND ".join(f"s.{c} IS m.{c}" for c in SAME_SCAN)
        self.db.execute("DROP TABLE IF EXISTS temp.merge_posts")
        self.db.execute(
            "CREATE TEMP TABLE merge_posts AS SELECT s.id AS shard_id, s.path AS path,"
            f" (m.id IS NOT NULL AND s.sha256 IS NOT NULL AND {same}) AS same_refs"
            f" FROM {SHARD}.posts s LEFT JOIN main.posts m ON m.path = s.path"
            f" WHERE m.id IS NULL OR {_order(rule, columns, 's')} > {_order(rule, columns, 'm')}"
        )
        self.db.execute("CREATE INDEX temp.merge_posts_shard ON merge_posts(shard_id)")
        names = ", ".join(columns)
        updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c != "path")
        self.db.execute(
            f"INSERT INTO main.posts ({names}) SELECT {names} FROM {SHARD}.posts"
            " WHERE id IN (SELECT shard_id FROM temp.merge_posts)"
            f" ON CONFLICT(path) DO UPDATE SET {updates}"
        )
        self.db.execute(
            "DELETE FROM main.refs WHERE post_id IN (SELECT m.id FROM main.posts m"
            " JOIN temp.merge_posts w ON w.path = m.path WHERE NOT w.same_refs)"
        )
        refs = _columns(self.db, "refs", also_skip=("post_id",))
        self.db.execute(
            f"INSERT INTO main.refs (post_id, {', '.join(refs)})"
            f" SELECT m.id, {', '.join('r.' + c for c in refs)} FROM {SHARD}.refs r"
            " JOIN temp.merge_posts w ON w.shard_id = r.post_id AND NOT w.same_refs"
            " JOIN main.posts m ON m.path = w.path ORDER BY r.id"
        )
        count = int(self.db.execute("SELECT count(*) FROM temp.merge_posts").fetchone()[0])
        self.db.execute("DROP TABLE temp.merge_posts")
        return count

    def _merge_generations(self) -> tuple[int, tuple[str, ...]]:
        """Add the shard's generations not known here; the generations of each post they
        touch are then numbered again in time order (undo walks them newest first). Returns
        how many were added and the posts that now have generations from both manifests."""
        key = MERGE_RULES["generations"].key
        same = " AND ".join(f"m.{c} IS s.{c}" for c in key)
        self.db.execute("DROP TABLE IF EXISTS temp.merge_new")
        self.db.execute(
            "CREATE TEMP TABLE merge_new AS SELECT s.id AS shard_id, s.post_key AS post_key"
            f" FROM {SHARD}.generations s WHERE NOT EXISTS"
            f" (SELECT 1 FROM main.generations m WHERE {same})"
        )
        added = int(self.db.execute("SELECT count(*) FROM temp.merge_new").fetchone()[0])
        mixed = tuple(
            row[0]
            for row in self.db.execute(
                "SELECT DISTINCT post_key FROM temp.merge_new WHERE post_key IN"
                " (SELECT post_key FROM main.generations) ORDER BY post_key"
            )
        )
        if added:
            self._renumber_generations()
        self.db.execute("DROP TABLE temp.merge_new")
        return added, mixed

    def _renumber_generations(self) -> None:
        """Our generations of the posts in temp.merge_new and the shard's new ones, inserted
        again in time order (natural key order) with their edits."""
        columns = _columns(self.db, "generations")
        edits = _columns(self.db, "generation_edits", also_skip=("generation",))
        names, edit_names = ", ".join(columns), ", ".join(edits)
        for statement in (
            "DROP TABLE IF EXISTS temp.merge_gens",
            "DROP TABLE IF EXISTS temp.merge_edits",
            f"CREATE TEMP TABLE merge_gens AS"
            f" SELECT 'main' AS src, id AS old_id, {names} FROM main.generations"
            " WHERE post_key IN (SELECT post_key FROM temp.merge_new) UNION ALL"
            f" SELECT 'shard', id, {names} FROM {SHARD}.generations"
            " WHERE id IN (SELECT shard_id FROM temp.merge_new)",
            "CREATE TEMP TABLE merge_edits AS"
            f" SELECT 'main' AS src, generation AS old_id, {edit_names} FROM main.generation_edits"
            " WHERE generation IN (SELECT old_id FROM temp.merge_gens WHERE src = 'main')"
            f" UNION ALL SELECT 'shard', generation, {edit_names} FROM {SHARD}.generation_edits"
            " WHERE generation IN (SELECT old_id FROM temp.merge_gens WHERE src = 'shard')",
            "DELETE FROM main.generation_edits"
            " WHERE generation IN (SELECT old_id FROM temp.merge_gens WHERE src = 'main')",
            "DELETE FROM main.generations"
            " WHERE id IN (SELECT old_id FROM temp.merge_gens WHERE src = 'main')",
        ):
            self.db.execute(statement)
        order = ", ".join(f"{c} IS NULL, {c}" for c in ("at", *columns))
        rows = self.db.execute(
            f"SELECT src, old_id, {names} FROM temp.merge_gens ORDER BY {order}"
        ).fetchall()
        marks = ", ".join("?" for _ in columns)
        for src, old_id, *values in rows:
            cursor = self.db.execute(
                f"INSERT INTO main.generations ({names}) VALUES ({marks})", values
            )
            self.db.execute(
                f"INSERT INTO main.generation_edits (generation, {edit_names})"
                f" SELECT ?, {edit_names} FROM temp.merge_edits WHERE src = ? AND old_id = ?",
                (cursor.lastrowid, src, old_id),
            )
        self.db.execute("DROP TABLE temp.merge_gens")
        self.db.execute("DROP TABLE temp.merge_edits")


# Migration 3 makes post keys relative to the manifest's folder: a copy elsewhere would get them
# wrong, so only shards of this schema or later are migrated on a copy (`migrated_copy`).
MIGRATES_ON_A_COPY_FROM = 3


def schema_version_of(path: Path) -> int:
    """The schema version of the manifest at `path` (0: not a manifest), read without writing."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise _unreadable(path, exc) from exc
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        db.close()


def migrated_copy(path: Path, copy: Path) -> bool:
    """Copy an older shard's manifest to `copy` (SQLite's backup: with the commits still in its
    -wal file) and bring the copy to this schema; the shard stays as it was. False when the
    shard is too old to migrate away from its folder, or not older than this mediatool."""
    version = schema_version_of(path)
    if not MIGRATES_ON_A_COPY_FROM <= version < SCHEMA_VERSION:
        return False
    source = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    with MergeTable.open(copy):  # opening migrates it
        pass
    return True


def _unreadable(path: Path, exc: sqlite3.Error) -> ManifestDamaged:
    return ManifestDamaged(
        f"{path}: not a readable manifest ({exc}); merge the shard's manifest.sqlite, "
        "or fetch that shard again."
    )


def _check_shard(db: sqlite3.Connection, path: Path) -> None:
    """A shard must be a manifest of this schema version (UsageError naming it otherwise)."""
    try:
        version = int(db.execute(f"PRAGMA {SHARD}.user_version").fetchone()[0])
        db.execute(f"SELECT count(*) FROM {SHARD}.sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _unreadable(path, exc) from exc
    if version == 0:
        raise UsageError(f"{path}: not a mediatool manifest; give the shards' manifest files.")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{path}: written by a newer mediatool (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); merge with the mediatool that fetched the shards (pin one "
            "version in every job)."
        )
    if version < SCHEMA_VERSION:
        raise UsageError(
            f"{path}: a manifest of schema {version}, older than this mediatool's "
            f"{SCHEMA_VERSION}; run any command on it with this mediatool to migrate it (e.g. "
            f"`mediatool report --manifest {path} --cache ITS_CACHE`), then merge again."
        )


def _columns(db: sqlite3.Connection, table: str, also_skip: tuple[str, ...] = ()) -> list[str]:
    """The columns of `table` but its rowid alias `id` (ids differ between manifests)."""
    rows = db.execute(f"PRAGMA main.table_info({table})").fetchall()
    skip = {"id", *also_skip}
    return [row[1] for row in rows if row[1] not in skip]


def _order(rule: MergeRule, columns: list[str], row: str) -> str:
    """The row value a conflict is decided by for the row named `row`: the rule's rank, then
    the whole row as quote() spells it (a total order, so the winner never depends on which
    manifest was merged first)."""
    spelled = " || ',' || ".join(f"quote({row}.{c})" for c in columns)
    rank = rule.rank.format(t=row)
    return f"({rank}, {spelled})" if rank else f"({spelled})"
