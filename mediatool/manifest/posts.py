"""The posts table and the references (refs) found in each post."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence, Set

from mediatool.manifest._sql import in_chunks
from mediatool.manifest.connection import ManifestBase
from mediatool.manifest.rows import PostState, RecordedPost
from mediatool.models import Reference

WHOLE_TABLE_FROM = 2000  # posts asked for: from this many, one query reads the whole table


class PostsTable(ManifestBase):
    """Posts and their references."""

    def post_states(self, paths: Sequence[str]) -> dict[str, PostState]:
        """The recorded state of each of these posts that was scanned without a problem. For
        many posts, one query reads every post's state (cheaper than thousands of lookups)."""
        select = (
            "SELECT path, size, mtime_ns, fingerprint FROM posts"
            " WHERE problem IS NULL AND size IS NOT NULL"
        )
        if len(paths) < WHOLE_TABLE_FROM:
            rows = in_chunks(self.db, select + " AND path IN ({marks})", paths)
            return {path: PostState(*state) for path, *state in rows}
        wanted = set(paths)
        return {
            path: PostState(size, mtime_ns, fingerprint)
            for path, size, mtime_ns, fingerprint in self.db.execute(select)
            if path in wanted
        }

    def recorded_posts(self, paths: Sequence[str]) -> dict[str, RecordedPost]:
        """The recorded state and problem lines of each of these posts that was scanned, and
        whose problems (if any) were recorded line by line: one query, as `post_states`."""
        select = (
            "SELECT path, size, mtime_ns, fingerprint, problem_lines FROM posts"
            " WHERE size IS NOT NULL AND (problem IS NULL OR problem_lines IS NOT NULL)"
        )
        if len(paths) < WHOLE_TABLE_FROM:
            rows = in_chunks(self.db, select + " AND path IN ({marks})", paths)
        else:
            wanted = set(paths)
            rows = (row for row in self.db.execute(select) if row[0] in wanted)
        return {
            path: RecordedPost(size, mtime_ns, fingerprint, tuple(json.loads(lines)))
            if lines
            else RecordedPost(size, mtime_ns, fingerprint)
            for path, size, mtime_ns, fingerprint, lines in rows
        }

    def record_post(
        self,
        path: str,
        state: PostState | None,
        encoding: str | None,
        problem: str | None,
        references: Sequence[tuple[Reference, str | None]],
        date: str | None = None,
        problem_lines: Sequence[str] = (),
    ) -> None:
        """Replace what is known of a post: its state, its problem (and the lines that said
        it, for `recorded_posts`) and its references (with origin URLs)."""
        size, mtime_ns, fingerprint = (
            (state.size, state.mtime_ns, state.fingerprint) if state else (None, None, None)
        )
        lines = json.dumps(list(problem_lines), ensure_ascii=False) if problem_lines else None
        self.db.execute(
            "INSERT INTO posts (path, size, mtime_ns, fingerprint, encoding, problem, scanned_at,"
            " date, problem_lines) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET"
            " size=excluded.size, mtime_ns=excluded.mtime_ns, fingerprint=excluded.fingerprint,"
            " encoding=excluded.encoding, problem=excluded.problem,"
            " scanned_at=excluded.scanned_at, date=excluded.date,"
            " problem_lines=excluded.problem_lines",
            (path, size, mtime_ns, fingerprint, encoding, problem, time.time(), date, lines),
        )
        post_id = self.db.execute("SELECT id FROM posts WHERE path=?", (path,)).fetchone()[0]
        self.db.execute("DELETE FROM refs WHERE post_id=?", (post_id,))
        self.db.executemany(
            "INSERT INTO refs (post_id, context, line, col, span_start, span_end, raw,"
            " source_url, origin_url, kind, declared_w, declared_h)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [_ref_row(post_id, ref, origin) for ref, origin in references],
        )

    def reference_totals(self, paths: Sequence[str]) -> tuple[int, int, set[str]]:
        """(references, remote references, distinct origin URLs) of these posts, counted in
        SQL: one row per origin URL comes back, not one per reference."""
        total = remote = 0
        origins: set[str] = set()
        for origin, refs, remote_refs in in_chunks(
            self.db,
            "SELECT r.origin_url, count(*), coalesce(sum(r.kind='remote'), 0) FROM refs r"
            " JOIN posts p ON p.id=r.post_id WHERE p.path IN ({marks}) GROUP BY r.origin_url",
            paths,
        ):
            total, remote = total + refs, remote + remote_refs
            if origin is not None:
                origins.add(origin)
        return total, remote, origins

    def references_to(self, origin_urls: Iterable[str], paths: Set[str]) -> dict[str, list[str]]:
        """origin URL -> the posts among `paths` that refer to it, one entry per reference (for
        a few URLs: the failed ones)."""
        found: dict[str, list[str]] = {}
        for origin, path in in_chunks(
            self.db,
            "SELECT r.origin_url, p.path FROM refs r JOIN posts p ON p.id=r.post_id"
            " WHERE r.origin_url IN ({marks})",
            sorted(origin_urls),
        ):
            if path in paths:
                found.setdefault(origin, []).append(path)
        return found

    def origin_urls_of(self, paths: Sequence[str]) -> set[str]:
        urls: set[str] = set()
        urls.update(
            row[0]
            for row in in_chunks(
                self.db,
                "SELECT DISTINCT origin_url FROM refs JOIN posts ON posts.id=refs.post_id"
                " WHERE posts.path IN ({marks}) AND origin_url IS NOT NULL",
                paths,
            )
        )
        return urls


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
