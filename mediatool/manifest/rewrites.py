"""The generations and generation_edits tables: each rewrite of a post, for undo."""

from __future__ import annotations

import time

from mediatool.manifest.connection import ManifestBase
from mediatool.rewrite import Generation, UndoEdit


class RewritesTable(ManifestBase):
    """Rewrites of posts as generations, for undo."""

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
