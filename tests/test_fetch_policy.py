"""The rules that decide whether a known origin URL is fetched again (fetch.policy)."""

from __future__ import annotations

from mediatool.fetch.policy import (
    PERMANENT_REASONS,
    Refetch,
    RefetchOptions,
    UrlRecord,
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
