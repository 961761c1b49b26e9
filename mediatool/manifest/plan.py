"""The fetch jobs of a run, held compactly: origin URLs only, FetchJobs made a page at a time.

A run over 100,000 posts has ~500,000 jobs; as FetchJob objects (their candidates decoded
from JSON) they weigh ~600 bytes each, 300 MB held from planning to the end of the run. A
`JobPlan` keeps the origin URL strings (the ones the caller already holds) and the validators
of the URLs to revalidate, and reads the candidates from the manifest PAGE URLs at a time while
it is iterated: the Fetcher reads jobs just ahead of its workers, so a few thousand FetchJobs
live at once.

The Fetcher reads its jobs on a thread of its own, so iterating a plan reads over a read-only
connection of its own to the manifest file (SQLite connections stay on their thread); the
candidates it reads were committed by the scan, before the plan was made.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from urllib.parse import quote

from mediatool.manifest._sql import chunks, in_chunks
from mediatool.models import FetchJob

PAGE = 500  # candidates read per query while iterating

Validators = Mapping[str, tuple[str | None, str | None]]  # URL -> (ETag, Last-Modified)


class JobPlan:
    """FetchJobs for `urls`, in that order; `validators` (ETag, Last-Modified) for the URLs to
    revalidate. `database` is the manifest file the candidates are read from."""

    def __init__(self, database: str, urls: list[str], validators: Validators) -> None:
        self._database = database
        self.urls = urls
        self._validators = validators

    def __len__(self) -> int:
        return len(self.urls)

    def __contains__(self, job: object) -> bool:
        """Whether `job`'s URL is planned (a scan of the URLs: for tests, not for a run)."""
        return isinstance(job, FetchJob) and job.origin_url in self.urls

    def __iter__(self) -> Iterator[FetchJob]:
        """The jobs in order, over a connection of the iterating thread's own."""
        with closing(_reader(self._database)) as db:
            yield from self.jobs(db)

    def jobs(self, db: sqlite3.Connection, urls: Sequence[str] | None = None) -> Iterator[FetchJob]:
        """The jobs of `urls` (default: the plan's), in their order, candidates read over `db`
        a page at a time."""
        for page in chunks(self.urls if urls is None else urls, PAGE):
            candidates = dict(
                in_chunks(
                    db,
                    "SELECT origin_url, candidates FROM urls WHERE origin_url IN ({marks})",
                    page,
                )
            )
            for url in page:
                etag, modified = self._validators.get(url, (None, None))
                yield FetchJob(url, tuple(json.loads(candidates[url])), etag, modified)

    def jobs_of(self, urls: Sequence[str]) -> list[FetchJob]:
        """The jobs of some of the plan's `urls` (a part of a run split over workers)."""
        with closing(_reader(self._database)) as db:
            return list(self.jobs(db, urls))

    def keeping(self, keep: Callable[[str], bool]) -> JobPlan:
        """The plan of the URLs `keep` says yes to, in the same order."""
        return JobPlan(self._database, [url for url in self.urls if keep(url)], self._validators)


def database_of(db: sqlite3.Connection) -> str:
    """The file of the main database of `db` (for a plan's own reader)."""
    for _, name, file in db.execute("PRAGMA database_list"):
        if name == "main":
            return str(file)
    raise ValueError("the connection has no main database")  # pragma: no cover


def _reader(database: str) -> sqlite3.Connection:
    """A read-only connection to the manifest file `database` (WAL: it sees what is committed)."""
    return sqlite3.connect(f"file:{quote(database)}?mode=ro", uri=True, isolation_level=None)
