"""What to fetch again: the rules for an origin URL the manifest already knows.

A pure function of what the manifest recorded (`UrlRecord`) and the run's options
(`RefetchOptions`); the manifest selects the rows, this decides.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class RefetchOptions:
    retry_failed: bool = False
    refresh: bool = False
    limits: Mapping[str, int] = field(default_factory=dict)  # reason -> the limit now
    retry: Collection[str] = ()  # "reason:kind" whose setting changed since


class Refetch(Enum):
    STORED = "stored"  # stored, not requested again
    REVALIDATE = "revalidate"  # stored, revalidated with its ETag/Last-Modified
    FETCH = "fetch"  # fetched in full
    SKIP = "skip"  # a permanent failure, left alone


def refetch(record: UrlRecord, options: RefetchOptions) -> Refetch:
    """What to do with a known URL. A stored URL whose file is present is not requested again
    unless `refresh` (then revalidated); one whose file has gone is fetched again in full, and
    so is one whose bytes are not a usable image when `retry_failed` or `refresh` (except
    too_many_pixels: the same bytes would fail the same way). Permanent failures wait for
    `retry_failed`, except those refused by a limit raised since, and those whose
    "reason:kind" is in `retry`."""
    if record.status == "ok" and record.file_present:
        damaged = record.image_error is not None and record.image_error != "too_many_pixels"
        if damaged and (options.retry_failed or options.refresh):
            return Refetch.FETCH
        return Refetch.REVALIDATE if options.refresh else Refetch.STORED
    if (
        record.status == "failed"
        and str(record.reason).partition(":")[0] in PERMANENT_REASONS
        and not options.retry_failed
        and not limit_raised(record.reason, record.fail_limit, options.limits)
        and record.reason not in options.retry
    ):
        return Refetch.SKIP
    return Refetch.FETCH


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
