"""SQL shared by the tables: the chunked `IN (...)` query and the effective state of a URL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

CHUNK = 500  # bound parameters per query, well under SQLite's limit


def chunks(items: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    """`items` in lists of at most `size`."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_chunks(
    db: sqlite3.Connection, sql: str, items: Iterable[str], size: int = CHUNK
) -> Iterator[Any]:
    """The rows of `sql` (whose `{marks}` stands for the placeholders of an `IN (...)`) run
    once for each chunk of `items`, the chunk bound to the placeholders."""
    for chunk in chunks(items, size):
        yield from db.execute(sql.replace("{marks}", ",".join("?" * len(chunk))), chunk)


def execute_in_chunks(
    db: sqlite3.Connection, sql: str, items: Iterable[str], size: int = CHUNK
) -> int:
    """Run the write `sql` (with `{marks}` as in `in_chunks`) once per chunk; rows changed."""
    changed = 0
    for chunk in chunks(items, size):
        changed += db.execute(sql.replace("{marks}", ",".join("?" * len(chunk))), chunk).rowcount
    return changed


# The effective state of an URL `u` joined with its image `i`: a URL whose download succeeded
# but whose bytes are not a usable image (images.error_reason) is failed, with the image's reason.
_URL_FAILED = "(u.status='failed' OR (u.status='ok' AND i.error_reason IS NOT NULL))"
_URL_REASON = "CASE WHEN u.status='ok' THEN i.error_reason ELSE u.reason END"
_URL_STATE = (
    f"CASE WHEN {_URL_FAILED} THEN 'failed' ELSE u.status END, {_URL_REASON},"
    " CASE WHEN u.status='ok' THEN i.error ELSE u.message END"
)
_URLS_WITH_IMAGES = " FROM urls u LEFT JOIN images i ON i.sha256=u.sha256"
