"""The marks table: small named values a run leaves for the next one (JSON), and the cheap
reads that tell a later run whether what it would redo has changed."""

from __future__ import annotations

import json

from mediatool.manifest.connection import ManifestBase

GROUPING = "grouping"  # what the last fetch grouped on: its settings and `grouping_inputs`


class MarksTable(ManifestBase):
    """Named marks, and the fingerprints they hold."""

    def grouping_mark(self) -> object:
        """What `set_grouping_mark` recorded (None: nothing, or a grouping since forgot it)."""
        row = self.db.execute("SELECT value FROM marks WHERE name=?", (GROUPING,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_grouping_mark(self, value: object) -> None:
        """Record what a grouping was done on; None forgets it (any grouping does that first,
        so only the fetch that records it afterwards may skip the next one)."""
        if value is None:
            self.db.execute("DELETE FROM marks WHERE name=?", (GROUPING,))
            return
        self.db.execute(
            "INSERT INTO marks (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (GROUPING, json.dumps(value)),
        )

    def grouping_inputs(self) -> list[object]:
        """A cheap fingerprint of what grouping reads (the analyzed images, the references and
        the stored URLs): counts and highest row ids, which any addition or removal moves."""
        images = self.db.execute(
            "SELECT count(*), coalesce(max(rowid), 0), total(width) + total(bytes) FROM images"
            " WHERE format IS NOT NULL AND error_reason IS NULL"
        ).fetchone()
        refs = self.db.execute("SELECT count(*), coalesce(max(id), 0) FROM refs").fetchone()
        urls = self.db.execute(
            "SELECT count(*), count(DISTINCT sha256) FROM urls WHERE status='ok'"
        ).fetchone()
        return [*images, *refs, *urls]

    def boilerplate_count(self) -> int:
        """How many images the last count of posts per image flagged as boilerplate."""
        return int(self.db.execute("SELECT count(*) FROM images WHERE boilerplate").fetchone()[0])
