"""The rules that decide whether a known origin URL is fetched again (fetch.policy)."""

from __future__ import annotations

import email.utils

from mediatool.fetch.policy import (
    PERMANENT_REASONS,
    Freshness,
    Refetch,
    RefetchOptions,
    UrlRecord,
    cache_directives,
    is_fresh,
    limit_raised,
    refetch,
)

PLAIN = RefetchOptions()
RETRY = RefetchOptions(retry_failed=True)
REFRESH = RefetchOptions(refresh=True)


def stored(image_error: str | None = None, present: bool = True) -> UrlRecord:
    return UrlRecord("ok", None, None, present, image_error)


def failed(reason: str, limit: int | None = None) -> UrlRecord:
    return UrlRecord("failed", reason, limit, False, None)


def test_a_stored_url_with_its_file_is_not_requested_again() -> None:
    assert refetch(stored(), PLAIN) is Refetch.STORED


def test_refresh_revalidates_a_stored_url() -> None:
    assert refetch(stored(), REFRESH) is Refetch.REVALIDATE


def test_a_stored_url_whose_file_has_gone_is_fetched_in_full() -> None:
    assert refetch(stored(present=False), PLAIN) is Refetch.FETCH


def test_damaged_bytes_are_fetched_anew_only_when_asked() -> None:
    assert refetch(stored("corrupt_image"), PLAIN) is Refetch.STORED
    assert refetch(stored("corrupt_image"), RETRY) is Refetch.FETCH
    assert refetch(stored("corrupt_image"), REFRESH) is Refetch.FETCH


def test_too_many_pixels_is_not_fetched_anew() -> None:
    # The same bytes would fail the same way: refresh only revalidates them.
    assert refetch(stored("too_many_pixels"), RETRY) is Refetch.STORED
    assert refetch(stored("too_many_pixels"), REFRESH) is Refetch.REVALIDATE


def test_a_permanent_failure_waits_for_retry_failed() -> None:
    assert "http_404" in PERMANENT_REASONS
    assert refetch(failed("http_404"), PLAIN) is Refetch.SKIP
    assert refetch(failed("http_404"), RETRY) is Refetch.FETCH


def test_a_transient_failure_is_retried_on_a_plain_run() -> None:
    assert "http_503" not in PERMANENT_REASONS
    assert refetch(failed("http_503"), PLAIN) is Refetch.FETCH


def test_pending_urls_are_fetched() -> None:
    assert refetch(UrlRecord("pending", None, None, False, None), PLAIN) is Refetch.FETCH
    # Only a failed status skips: a reason left on a URL in another state does not.
    assert refetch(UrlRecord("pending", "http_404", None, False, None), PLAIN) is Refetch.FETCH
    assert refetch(UrlRecord("ok", "http_404", None, False, None), PLAIN) is Refetch.FETCH


def test_a_kind_suffix_still_counts_as_permanent() -> None:
    assert refetch(failed("too_large:video", 10), PLAIN) is Refetch.SKIP


def test_a_raised_limit_retries_its_failure() -> None:
    raised = RefetchOptions(limits={"too_large": 20})
    same = RefetchOptions(limits={"too_large": 10})
    assert refetch(failed("too_large", 10), raised) is Refetch.FETCH
    assert refetch(failed("too_large", 10), same) is Refetch.SKIP


def test_a_category_limit_is_looked_up_by_reason_and_kind() -> None:
    by_kind = {"too_large:video": 20, "too_large": 5}
    assert limit_raised("too_large:video", 10, by_kind)
    assert not limit_raised("too_large:image", 10, by_kind)  # falls back to "too_large"
    assert limit_raised("too_large", None, {"too_large": 1})  # an unrecorded limit
    assert not limit_raised(None, 10, by_kind)


def test_a_changed_setting_retries_the_failures_it_judged() -> None:
    changed = RefetchOptions(retry={"unsafe_svg:image"})
    assert refetch(failed("unsafe_svg:image"), changed) is Refetch.FETCH
    assert refetch(failed("unsafe_svg:video"), changed) is Refetch.SKIP


# -- freshness: what --refresh asks again --------------------------------------------------
FETCHED = 1_000_000.0  # when the stored copy came (Unix time)


def cached(cache_control: str | None, expires: str | None = None) -> UrlRecord:
    return UrlRecord("ok", None, None, True, None, Freshness(cache_control, expires, FETCHED))


def refresh_at(seconds_later: float, *, every: bool = False) -> RefetchOptions:
    return RefetchOptions(refresh=True, refresh_all=every, now=FETCHED + seconds_later)


def test_an_immutable_copy_is_never_revalidated_unless_all_are() -> None:
    record = cached("public, max-age=31536000, immutable")
    assert refetch(record, refresh_at(10 * 365 * 86400)) is Refetch.FRESH
    assert refetch(record, refresh_at(10, every=True)) is Refetch.REVALIDATE


def test_max_age_keeps_a_copy_fresh_for_that_many_seconds() -> None:
    record = cached("max-age=600")
    assert refetch(record, refresh_at(599)) is Refetch.FRESH
    assert refetch(record, refresh_at(600)) is Refetch.REVALIDATE
    assert refetch(cached("max-age=0"), refresh_at(0)) is Refetch.REVALIDATE


def test_no_cache_and_no_store_are_always_revalidated() -> None:
    for header in ("no-cache", "max-age=600, no-cache", "no-store", 'no-cache="Set-Cookie"'):
        assert refetch(cached(header), refresh_at(1)) is Refetch.REVALIDATE, header
    assert refetch(cached("immutable, no-cache"), refresh_at(1)) is Refetch.REVALIDATE


def test_without_a_header_refresh_revalidates_as_it_always_did() -> None:
    assert refetch(cached(None), refresh_at(1)) is Refetch.REVALIDATE
    assert refetch(cached("public"), refresh_at(1)) is Refetch.REVALIDATE
    # A URL stored before the headers were recorded (manifest migration 7) has no freshness.
    assert refetch(stored(), refresh_at(1)) is Refetch.REVALIDATE


def test_expires_counts_when_there_is_no_max_age() -> None:
    later = email.utils.formatdate(FETCHED + 3600, usegmt=True)
    assert refetch(cached(None, later), refresh_at(3599)) is Refetch.FRESH
    assert refetch(cached(None, later), refresh_at(3601)) is Refetch.REVALIDATE
    # max-age wins over Expires; an Expires that does not parse ("0") is in the past
    assert refetch(cached("max-age=10", later), refresh_at(60)) is Refetch.REVALIDATE
    assert refetch(cached(None, "0"), refresh_at(0)) is Refetch.REVALIDATE


def test_a_fresh_copy_is_still_not_requested_without_refresh() -> None:
    assert refetch(cached("no-cache"), RefetchOptions(now=FETCHED)) is Refetch.STORED


def test_damaged_bytes_are_fetched_anew_however_fresh() -> None:
    damaged = UrlRecord("ok", None, None, True, "corrupt_image", Freshness("immutable", None, 0))
    assert refetch(damaged, refresh_at(1)) is Refetch.FETCH


def test_cache_control_directives_are_read_like_a_cache_reads_them() -> None:
    assert cache_directives('Public, MAX-AGE="60" ,no-cache') == {
        "public": "",
        "max-age": "60",
        "no-cache": "",
    }
    assert cache_directives("max-age=60, max-age=5")["max-age"] == "5"  # the stalest
    assert cache_directives(None) == {}
    bad = Freshness("max-age=soon", None, FETCHED)
    assert not is_fresh(bad, FETCHED)
    assert not is_fresh(Freshness("immutable", None, None), FETCHED)  # no fetch time known
