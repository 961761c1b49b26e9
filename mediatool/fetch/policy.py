"""What to fetch again: the rules for an origin URL the manifest already knows.

A pure function of what the manifest recorded (`UrlRecord`) and the run's options
(`RefetchOptions`); the manifest selects the rows, this decides.

Freshness (`--refresh`): a stored URL is revalidated only when its copy is stale by the
`Cache-Control`/`Expires` its server sent with the last 200 or 304 (`is_fresh`):
`no-cache`/`no-store` always, `immutable` never, `max-age=N` after N seconds, `Expires` after
that date; without either header always (as before they were recorded). `--refresh-all`
(`RefetchOptions.refresh_all`) revalidates every stored URL.
"""

from __future__ import annotations

import email.utils
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC as _UTC
from enum import Enum

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


@dataclass(frozen=True, slots=True)
class UrlRecord:
    """What the manifest recorded of one origin URL (and of its image, when stored)."""

    status: str  # "pending", "ok" or "failed"
    reason: str | None  # "reason", or "reason:kind" when a category's limit refused it
    fail_limit: int | None  # the limit's value when it refused the URL
    file_present: bool  # status "ok" and the stored original is still in the store
    image_error: str | None  # why the stored bytes are not a usable image
    freshness: Freshness | None = None  # what its server said of caching it (None: nothing)


@dataclass(frozen=True, slots=True)
class Freshness:
    """The caching headers of the last 200 or 304 for a stored URL, as sent, and when (Unix
    time) that answer came."""

    cache_control: str | None
    expires: str | None
    fetched_at: float | None


@dataclass(frozen=True, slots=True)
class RefetchOptions:
    retry_failed: bool = False
    refresh: bool = False  # revalidate stored URLs whose copy is stale (`is_fresh`)
    limits: Mapping[str, int] = field(default_factory=dict)  # reason -> the limit now
    retry: Collection[str] = ()  # "reason:kind" whose setting changed since
    refresh_all: bool = False  # revalidate every stored URL, fresh or not (implies refresh)
    now: float = 0.0  # Unix time the freshness is judged at


class Refetch(Enum):
    STORED = "stored"  # stored, not requested again
    FRESH = "fresh"  # stored, --refresh leaves it: its server said it is still fresh
    REVALIDATE = "revalidate"  # stored, revalidated with its ETag/Last-Modified
    FETCH = "fetch"  # fetched in full
    SKIP = "skip"  # a permanent failure, left alone


def refetch(record: UrlRecord, options: RefetchOptions) -> Refetch:
    """What to do with a known URL. A stored URL whose file is present is not requested again
    unless `refresh` (then revalidated when stale, `is_fresh`) or `refresh_all` (revalidated);
    one whose file has gone is fetched again in full, and so is one whose bytes are not a
    usable image when `retry_failed` or a refresh (except too_many_pixels: the same bytes would
    fail the same way). Permanent failures wait for `retry_failed`, except those refused by a
    limit raised since, and those whose "reason:kind" is in `retry`."""
    if record.status == "ok" and record.file_present:
        return _stored(record, options)
    if (
        record.status == "failed"
        and str(record.reason).partition(":")[0] in PERMANENT_REASONS
        and not options.retry_failed
        and not limit_raised(record.reason, record.fail_limit, options.limits)
        and record.reason not in options.retry
    ):
        return Refetch.SKIP
    return Refetch.FETCH


def _stored(record: UrlRecord, options: RefetchOptions) -> Refetch:
    """A stored URL whose file is present: see `refetch`."""
    refresh = options.refresh or options.refresh_all
    damaged = record.image_error is not None and record.image_error != "too_many_pixels"
    if damaged and (options.retry_failed or refresh):
        return Refetch.FETCH
    if not refresh:
        return Refetch.STORED
    if not options.refresh_all and is_fresh(record.freshness, options.now):
        return Refetch.FRESH
    return Refetch.REVALIDATE


def is_fresh(freshness: Freshness | None, now: float) -> bool:
    """Whether a stored copy may be used at `now` without asking its server (RFC 9111 for one
    private cache, RFC 8246 `immutable`): never with `no-cache` or `no-store`; always with
    `immutable`; with `max-age=N` (which wins over `Expires`) for N seconds from the fetch;
    else until `Expires` (a date that does not parse, such as "0", is in the past). Without
    any of them (or a fetch time), not fresh: `--refresh` asks again, as it always did."""
    if freshness is None or freshness.fetched_at is None:
        return False
    directives = cache_directives(freshness.cache_control)
    if "no-cache" in directives or "no-store" in directives:
        return False
    if "immutable" in directives:
        return True
    if "max-age" in directives:
        max_age = _seconds(directives["max-age"])
        return max_age is not None and now - freshness.fetched_at < max_age
    if freshness.expires is not None:
        expires = _http_date(freshness.expires)
        return expires is not None and now < expires
    return False


def cache_directives(header: str | None) -> dict[str, str]:
    """The directives of a Cache-Control header, names in lower case, values unquoted ("" for
    none): "public, max-age=60" -> {"public": "", "max-age": "60"}. The first of a repeated
    directive counts, except max-age where the smallest does (the stalest reading)."""
    directives: dict[str, str] = {}
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if not name:
            continue
        if name == "max-age" and name in directives:
            directives[name] = _smaller(directives[name], value)
        else:
            directives.setdefault(name, value)
    return directives


def _smaller(first: str, second: str) -> str:
    """Of two max-age values, the smaller; one that is not a number (stale) wins."""
    a, b = _seconds(first), _seconds(second)
    if a is None:
        return first
    if b is None:
        return second
    return first if a <= b else second


def _seconds(value: str) -> int | None:
    """A delta-seconds value ("60"); None when it is not one (the copy is then stale)."""
    return int(value) if value.isdigit() else None


def _http_date(value: str) -> float | None:
    """An HTTP-date as Unix time; None when it does not parse."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "GMT" is parsed as naive UTC
        return when.replace(tzinfo=_UTC).timestamp()
    return when.timestamp()


def limit_raised(reason: str | None, limit: int | None, limits: Mapping[str, int]) -> bool:
    """A failure on a limit whose value now is higher than when it failed (or unrecorded).
    `reason` is "reason:kind" when the limit was a category's ("too_large:video"), which
    `limits` may name; else the reason's own entry counts."""
    if reason is None:
        return False
    key = reason if reason in limits else reason.partition(":")[0]
    if key not in limits:
        return False
    return limit is None or limit < limits[key]
