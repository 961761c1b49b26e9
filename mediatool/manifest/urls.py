"""The urls table: origin URLs, their candidates and what fetching them gave."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from mediatool.fetch.policy import Freshness, Refetch, RefetchOptions, UrlRecord, refetch
from mediatool.manifest._sql import _URL_FAILED, _URL_STATE, _URLS_WITH_IMAGES, chunks, in_chunks
from mediatool.manifest.connection import ManifestBase
from mediatool.manifest.plan import JobPlan, database_of
from mediatool.manifest.rows import UrlStatus
from mediatool.models import Download, FetchFailure, FetchJob, NotModified, Resolution
from mediatool.partition import hosts_taking_turns


class UrlsTable(ManifestBase):
    """Origin URLs and what fetching them gave."""

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
        self, origin_urls: Iterable[str], **options: Any
    ) -> tuple[list[FetchJob], list[str]]:
        """`plan_fetch` with the jobs as a list, read over this connection (small runs:
        `verify --repair`, tests)."""
        plan, stored = self.plan_fetch(origin_urls, **options)
        return list(plan.jobs(self.db)), stored

    def plan_fetch(
        self,
        origin_urls: Iterable[str],
        *,
        retry_failed: bool,
        refresh: bool,
        file_present: Callable[[str], bool] = lambda relpath: True,
        limits: Mapping[str, int] | None = None,
        retry: Collection[str] = (),
        refresh_all: bool = False,
        now: float | None = None,
    ) -> tuple[JobPlan, list[str]]:
        """(jobs to run, origin URLs already stored) among `origin_urls`; the jobs as a
        `JobPlan` (the caller's URL strings, FetchJobs made as it is iterated), hosts taking
        turns (`partition.hosts_taking_turns`).

        A stored URL whose file is present (`file_present(relpath)`) is not requested again
        unless `refresh` and its copy is stale at `now` (default: the time now) by the
        Cache-Control/Expires recorded with it, or `refresh_all`; then it is revalidated with
        its ETag/Last-Modified (`fetch.policy.refetch` decides). One whose file has
        gone is fetched again in full, and so is one whose bytes are not a usable image when
        `retry_failed` or `refresh`. Permanent failures wait for `retry_failed`, except those
        refused by a limit (`limits`: reason -> the limit now) that has been raised since, and
        those whose "reason:kind" is in `retry` (a setting they were judged by changed)."""
        when = time.time() if now is None else now
        options = RefetchOptions(retry_failed, refresh, limits or {}, retry, refresh_all, when)
        urls: list[str] = []
        validators: dict[str, tuple[str | None, str | None]] = {}
        stored: list[str] = []
        for chunk in chunks(sorted(origin_urls)):
            own = {url: url for url in chunk}  # keep the caller's strings, not new copies
            rows = self.db.execute(
                "SELECT u.origin_url, u.status,"
                " u.reason || coalesce(':' || u.fail_kind, ''), u.fail_limit, u.etag,"
                " u.last_modified, i.relpath, i.error_reason, u.cache_control, u.expires,"
                " u.checked_at FROM urls u LEFT JOIN images i ON i.sha256=u.sha256"
                f" WHERE u.origin_url IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for found, status, reason, limit, etag, modified, relpath, bad, *fresh in rows:
                url = own[found]
                present = status == "ok" and relpath is not None and file_present(relpath)
                record = UrlRecord(status, reason, limit, present, bad, Freshness(*fresh))
                decision = refetch(record, options)
                if decision in (Refetch.STORED, Refetch.FRESH, Refetch.REVALIDATE):
                    stored.append(url)
                if decision is Refetch.REVALIDATE:
                    validators[url] = (etag, modified)
                if decision in (Refetch.REVALIDATE, Refetch.FETCH):
                    urls.append(url)
        return JobPlan(database_of(self.db), hosts_taking_turns(urls), validators), stored

    def post_dates(self, origin_urls: Iterable[str]) -> dict[str, str]:
        """The earliest `date:` (as written) of the posts that reference each origin URL."""
        dates: dict[str, str] = {}
        for url, date in in_chunks(
            self.db,
            "SELECT r.origin_url, min(p.date) FROM refs r JOIN posts p ON p.id=r.post_id"
            " WHERE r.origin_url IN ({marks}) AND p.date IS NOT NULL GROUP BY r.origin_url",
            sorted(origin_urls),
        ):
            dates[url] = date
        return dates

    def first_references(self, origin_urls: Iterable[str]) -> dict[str, tuple[str, int]]:
        """(post path, line) of the first reference to each origin URL, by path and line."""
        found: dict[str, tuple[str, int]] = {}
        for url, path, line in in_chunks(
            self.db,
            "SELECT r.origin_url, p.path, r.line FROM refs r JOIN posts p ON p.id=r.post_id"
            " WHERE r.origin_url IN ({marks}) ORDER BY p.path, r.line",
            sorted(origin_urls),
        ):
            found.setdefault(url, (path, int(line or 0)))
        return found

    def record_download(self, download: Download, sha256: str) -> None:
        self.db.execute(
            "UPDATE urls SET status='ok', sha256=?, fetched_url=?, final_url=?, redirects=?,"
            " etag=?, last_modified=?, reason=NULL, message=NULL, attempts=NULL, checked_at=?,"
            " fail_limit=NULL, fail_kind=NULL, cache_control=?, expires=?"
            " WHERE origin_url=?",
            (
                sha256,
                download.fetched_url,
                download.final_url,
                json.dumps(list(download.redirects)),
                download.etag,
                download.last_modified,
                time.time(),
                download.cache_control,
                download.expires,
                download.origin_url,
            ),
        )

    def record_not_modified(self, answer: NotModified) -> None:
        """A 304: the copy is fresh again from now; the caching headers it sent replace the
        recorded ones (those it left out stay, RFC 9111 4.3.4)."""
        self.db.execute(
            "UPDATE urls SET checked_at=?, cache_control=coalesce(?, cache_control),"
            " expires=coalesce(?, expires) WHERE origin_url=?",
            (time.time(), answer.cache_control, answer.expires, answer.origin_url),
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

    def failed_statuses(self, origin_urls: Iterable[str]) -> dict[str, UrlStatus]:
        """`url_statuses` of the URLs that failed only (the same effective state, _sql's): a
        run asks it of every URL of its posts at its end, and loads no row for the others."""
        found: dict[str, UrlStatus] = {}
        for row in in_chunks(
            self.db,
            f"SELECT u.origin_url, {_URL_STATE}{_URLS_WITH_IMAGES}"
            f" WHERE u.origin_url IN ({{marks}}) AND {_URL_FAILED}",
            sorted(origin_urls),
        ):
            found[row[0]] = UrlStatus(*row)
        return found

    def url_statuses(self, origin_urls: Iterable[str]) -> dict[str, UrlStatus]:
        """The effective status of each URL: "failed" with the image's reason when its bytes
        are not a usable image (corrupt_image, too_many_pixels...)."""
        found: dict[str, UrlStatus] = {}
        for row in in_chunks(
            self.db,
            f"SELECT u.origin_url, {_URL_STATE}{_URLS_WITH_IMAGES}"
            " WHERE u.origin_url IN ({marks})",
            sorted(origin_urls),
        ):
            found[row[0]] = UrlStatus(*row)
        return found
