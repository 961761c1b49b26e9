"""The fetcher against a real origin server on 127.0.0.1: direct, as a proxy, through CONNECT."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mediatool.config import DEFAULT_USER_AGENT, FetchSettings
from mediatool.fetch import Fetcher, describe, guard, image_kind
from mediatool.fetch.candidate import parse_retry_after
from mediatool.fetch.guard import Guard, literal_address
from mediatool.files import TEMP_PREFIX
from mediatool.models import Download, FetchFailure, FetchJob, FetchOutcome, NotModified
from mediatool.store import Store
from mediatool.testing import OriginServer

pytestmark = pytest.mark.timeout(20)

FAST = FetchSettings(
    allow_private=True,
    backoff=0.01,
    retries=2,
    connect_timeout=2.0,
    read_timeout=2.0,
    max_wait=5.0,
)


def job(url: str, *fallbacks: str, **kwargs: str) -> FetchJob:
    return FetchJob(origin_url=url, candidates=(url, *fallbacks), **kwargs)


def fetch(temp_dir: Path, jobs: list[FetchJob], **settings: object) -> list[FetchOutcome]:
    with Fetcher(replace(FAST, **settings), temp_dir) as fetcher:  # type: ignore[arg-type]
        return list(fetcher.fetch_all(jobs))


def fetch_one(temp_dir: Path, url_or_job: str | FetchJob, **settings: object) -> FetchOutcome:
    one = job(url_or_job) if isinstance(url_or_job, str) else url_or_job
    [outcome] = fetch(temp_dir, [one], **settings)
    return outcome


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{TEMP_PREFIX}*")) if folder.exists() else []


def failed(outcome: FetchOutcome, reason: str) -> FetchFailure:
    assert isinstance(outcome, FetchFailure), outcome
    assert outcome.reason == reason, outcome
    assert "\n" not in outcome.message
    assert outcome.message.startswith(outcome.origin_url + ": ")
    return outcome


@pytest.fixture
def temp_dir(tmp_cache: Path, no_proxy_env: None) -> Iterator[Path]:
    folder = tmp_cache / "tmp"
    yield folder


# -- success -----------------------------------------------------------------------------------
def test_download_streams_to_temp_file_with_sha256(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url = origin.url("/img/a.jpg")
    origin.add(url, jpeg_bytes)
    outcome = fetch_one(temp_dir, url)
    assert isinstance(outcome, Download)
    assert outcome.sha256 == hashlib.sha256(jpeg_bytes).hexdigest()
    assert outcome.temp_path.read_bytes() == jpeg_bytes
    assert outcome.temp_path.parent == temp_dir
    assert (outcome.fetched_url, outcome.final_url, outcome.redirects) == (url, url, ())
    assert outcome.size == len(jpeg_bytes) and outcome.content_type == "image/jpeg"
    assert outcome.etag and outcome.last_modified
    [request] = origin.requests_for(url)
    assert request.header("Referer") is None
    assert request.header("User-Agent") == DEFAULT_USER_AGENT


def test_keep_stores_each_body_on_the_worker_and_leaves_no_temp_file(
    origin: OriginServer, tmp_path: Path, jpeg_bytes: bytes, png_bytes: bytes
) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    urls = {origin.url("/img/a.jpg"): jpeg_bytes, origin.url("/img/b"): png_bytes}
    for url, body in urls.items():
        origin.add(url, body)
    with Fetcher(FAST, store.temp_dir, store.keep) as fetcher:
        outcomes = list(fetcher.fetch_all(job(url) for url in urls))
    kept = {o.origin_url: o for o in outcomes if isinstance(o, Download)}
    assert set(kept) == set(urls)
    for url, body in urls.items():
        sha = hashlib.sha256(body).hexdigest()
        ext = "jpg" if body == jpeg_bytes else "png"  # by the bytes, not the URL
        assert kept[url].relpath == f"originals/{sha[:2]}/{sha[2:4]}/{sha}.{ext}"
        assert store.path(kept[url].relpath).read_bytes() == body
        assert not kept[url].temp_path.exists()
    assert temp_files(store.temp_dir) == []


def test_content_is_judged_by_bytes_not_type(
    origin: OriginServer, temp_dir: Path, png_bytes: bytes
) -> None:
    url = origin.url("/img/really-a-png.jpg")
    origin.add(url, png_bytes, content_type="text/html")
    assert isinstance(fetch_one(temp_dir, url), Download)


def test_outcomes_come_in_completion_order(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    origin.add("/slow.jpg", jpeg_bytes, delay=0.4)
    origin.add("/fast.jpg", jpeg_bytes)
    outcomes = fetch(temp_dir, [job(origin.url("/slow.jpg")), job(origin.url("/fast.jpg"))])
    assert [o.origin_url for o in outcomes] == [origin.url("/fast.jpg"), origin.url("/slow.jpg")]


def test_per_host_limit_is_kept(origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes) -> None:
    urls = [origin.url(f"/many/{i}.jpg") for i in range(12)]
    for url in urls:
        origin.add(url, jpeg_bytes, delay=0.05)
    outcomes = fetch(temp_dir, [job(u) for u in urls], concurrency=8, per_host=3)
    assert all(isinstance(o, Download) for o in outcomes)
    assert origin.max_in_flight(origin.url("/")[len("http://") : -1]) == 3


# -- HTTP failures -----------------------------------------------------------------------------
def test_404_is_not_retried(origin: OriginServer, temp_dir: Path) -> None:
    url = origin.url("/gone.jpg")
    outcome = failed(fetch_one(temp_dir, url), "http_404")
    assert "HTTP 404" in outcome.message and "remove the reference" in outcome.message
    assert outcome.attempts == (f"{url} -> http_404",)
    assert len(origin.requests_for(url)) == 1


def test_410_is_its_own_reason(origin: OriginServer, temp_dir: Path) -> None:
    origin.add("/gone", status=410)
    failed(fetch_one(temp_dir, origin.url("/gone")), "http_410")


def test_429_retry_after_is_honoured(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url = origin.url("/limited.jpg")
    origin.add(url, jpeg_bytes, fail_first=1, fail_status=429, retry_after="1")
    assert isinstance(fetch_one(temp_dir, url), Download)
    first, second = origin.requests_for(url)
    assert second.time - first.time >= 1.0


def test_429_retry_after_longer_than_max_wait_fails_without_waiting(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url = origin.url("/very-limited.jpg")
    origin.add(url, jpeg_bytes, fail_first=5, fail_status=429, retry_after="3600")
    started = time.monotonic()
    outcome = failed(fetch_one(temp_dir, url, max_wait=2.0), "http_429")
    assert time.monotonic() - started < 1.5
    assert "Retry-After 3600s" in outcome.message and "max_wait 2s" in outcome.message
    assert 'slow down for it ([fetch.hosts."HOST"] requests_per_second' in outcome.message
    assert len(origin.requests_for(url)) == 1


def test_retry_after_http_date() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("soon", now) is None


def test_500_then_success_is_retried(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url = origin.url("/flaky.jpg")
    origin.add(url, jpeg_bytes, fail_first=2, fail_status=500)
    assert isinstance(fetch_one(temp_dir, url, retries=2), Download)
    assert len(origin.requests_for(url)) == 3


def test_500_gives_up_after_retries(origin: OriginServer, temp_dir: Path) -> None:
    url = origin.url("/broken.jpg")
    origin.add(url, status=500)
    failed(fetch_one(temp_dir, url, retries=2), "http_500")
    assert len(origin.requests_for(url)) == 3


def test_slow_answer_times_out(origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes) -> None:
    url = origin.url("/slow.jpg")
    origin.add(url, jpeg_bytes, delay=2.0)
    outcome = failed(fetch_one(temp_dir, url, read_timeout=0.2, retries=0), "timeout")
    assert "0.2s" in outcome.message


def test_truncated_body(origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes) -> None:
    url = origin.url("/cut.jpg")
    origin.add(url, jpeg_bytes, truncate_at=100)
    outcome = failed(fetch_one(temp_dir, url), "truncated")
    assert f"of {len(jpeg_bytes)}" in outcome.message
    assert temp_files(temp_dir) == []


def test_html_served_as_jpeg_is_not_an_image(origin: OriginServer, temp_dir: Path) -> None:
    url = origin.url("/hotlink.jpg")
    page = b"<!DOCTYPE html>\n<html><body>Please visit our site</body></html>"
    origin.add(url, page, content_type="image/jpeg")
    outcome = failed(fetch_one(temp_dir, url), "not_an_image")
    assert "served HTML (status 200, Content-Type image/jpeg)" in outcome.message
    assert temp_files(temp_dir) == []


def test_empty_body(origin: OriginServer, temp_dir: Path) -> None:
    origin.add("/empty.jpg", b"")
    failed(fetch_one(temp_dir, origin.url("/empty.jpg")), "empty_body")


def test_connection_closed_without_answer(origin: OriginServer, temp_dir: Path) -> None:
    origin.add("/drop.jpg", drop=True)
    failed(fetch_one(temp_dir, origin.url("/drop.jpg"), retries=1), "connect_error")
    assert len(origin.requests_for("/drop.jpg")) == 2


def test_too_large_is_refused_from_content_length(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    origin.add("/big.jpg", jpeg_bytes)
    outcome = failed(fetch_one(temp_dir, origin.url("/big.jpg"), max_bytes=1000), "too_large")
    assert "max_bytes 1000" in outcome.message
    assert temp_files(temp_dir) == []


# -- redirects ---------------------------------------------------------------------------------
def test_redirects_are_followed_and_recorded(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    a, b, c, d = (origin.url(f"/r/{name}") for name in "abcd")
    origin.add(a, redirect=b, status=301)
    origin.add(b, redirect="/r/c", status=302)  # relative Location
    origin.add(c, redirect=d, status=307)
    origin.add(d, jpeg_bytes)
    outcome = fetch_one(temp_dir, a)
    assert isinstance(outcome, Download)
    assert (outcome.fetched_url, outcome.final_url, outcome.redirects) == (a, d, (b, c, d))


def test_redirect_loop(origin: OriginServer, temp_dir: Path) -> None:
    a, b = origin.url("/loop/a"), origin.url("/loop/b")
    origin.add(a, redirect=b)
    origin.add(b, redirect=a)
    outcome = failed(fetch_one(temp_dir, a), "too_many_redirects")
    assert "redirect loop" in outcome.message


def test_too_many_redirects(origin: OriginServer, temp_dir: Path) -> None:
    for i in range(5):
        origin.add(f"/chain/{i}", redirect=f"/chain/{i + 1}")
    outcome = failed(
        fetch_one(temp_dir, origin.url("/chain/0"), max_redirects=2), "too_many_redirects"
    )
    assert "more than 2 redirects" in outcome.message


# -- headers -----------------------------------------------------------------------------------
def test_hotlink_protection_no_referer_by_default(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url = origin.url("/protected.jpg")
    origin.add(url, jpeg_bytes, forbid_referer=True)
    assert isinstance(fetch_one(temp_dir, url), Download)
    headers = {"127.0.0.1": {"Referer": "https://blog.example/"}}
    outcome = failed(fetch_one(temp_dir, url, headers=headers), "http_403")
    assert "Referer" in outcome.message


def test_per_host_headers_are_sent(origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes) -> None:
    url = origin.url("/needs-referer.jpg")
    origin.add(url, jpeg_bytes, allow_referers=("https://blog.example/",))
    host_with_port = f"127.0.0.1:{origin.port}"
    headers = {
        "127.0.0.1": {"Referer": "https://blog.example/post", "User-Agent": "Mozilla/5.0"},
        host_with_port: {"Cookie": "session=1"},
    }
    assert isinstance(fetch_one(temp_dir, url, headers=headers), Download)
    [request] = origin.requests_for(url)
    assert request.header("Referer") == "https://blog.example/post"
    assert request.header("User-Agent") == "Mozilla/5.0"
    assert request.header("Cookie") == "session=1"


def test_revalidation_answers_not_modified(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url = origin.url("/cached.jpg")
    origin.add(url, jpeg_bytes)
    first = fetch_one(temp_dir, url)
    assert isinstance(first, Download) and first.etag
    again = fetch_one(temp_dir, job(url, etag=first.etag))
    assert again == NotModified(origin_url=url, fetched_url=url)
    assert origin.requests_for(url)[-1].header("If-None-Match") == first.etag
    since = fetch_one(temp_dir, job(url, last_modified=first.last_modified or ""))
    assert isinstance(since, NotModified)
    changed = fetch_one(temp_dir, job(url, etag='"something-else"'))
    assert isinstance(changed, Download)
    assert temp_files(temp_dir) == sorted([first.temp_path, changed.temp_path])


# -- candidates, hosts -------------------------------------------------------------------------
def test_falls_back_to_proxied_candidate(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url, proxied = origin.url("/lost.jpg"), origin.url("/proxy?url=lost.jpg")
    origin.add(proxied, jpeg_bytes)
    outcome = fetch_one(temp_dir, job(url, proxied))
    assert isinstance(outcome, Download)
    assert (outcome.origin_url, outcome.fetched_url) == (url, proxied)


def test_failure_reports_origin_reason_and_every_attempt(
    origin: OriginServer, temp_dir: Path
) -> None:
    url, proxied = origin.url("/lost.jpg"), origin.url("/proxy?url=lost.jpg")
    origin.add(proxied, status=502)
    outcome = failed(fetch_one(temp_dir, job(url, proxied), retries=0), "http_404")
    assert outcome.attempts == (f"{url} -> http_404", f"{proxied} -> http_502")
    assert f"(also tried {proxied} -> http_502)" in outcome.message


def test_host_down_after_consecutive_connection_failures(temp_dir: Path) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused at once
        closed.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{closed.getsockname()[1]}"
        jobs = [job(f"{base}/{i}.jpg") for i in range(5)]
        outcomes = fetch(temp_dir, jobs, retries=0, host_down_after=3, concurrency=1, per_host=1)
    assert Counter(o.reason for o in outcomes if isinstance(o, FetchFailure)) == {
        "connect_error": 3,
        "host_down": 2,
    }
    host_down = next(o for o in outcomes if isinstance(o, FetchFailure) and o.reason == "host_down")
    assert "3 connection failures in a row" in host_down.message


# -- SSRF --------------------------------------------------------------------------------------
def test_private_addresses_are_refused_unless_allowed(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    url = origin.url("/local.jpg")
    origin.add(url, jpeg_bytes)
    outcome = failed(fetch_one(temp_dir, url, allow_private=False), "blocked_private")
    assert "allow_private" in outcome.message
    assert origin.requests_for(url) == []
    assert isinstance(fetch_one(temp_dir, url, allow_private=True), Download)


def test_other_schemes_are_refused(temp_dir: Path) -> None:
    failed(fetch_one(temp_dir, "ftp://example.com/a.jpg"), "blocked_scheme")
    failed(fetch_one(temp_dir, "file:///etc/passwd"), "blocked_scheme")


def test_bad_url(temp_dir: Path) -> None:
    failed(fetch_one(temp_dir, "http://exa mple.com:99999999/a.jpg"), "bad_url")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "[::1]",
        "2130706433",
        "0x7f.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "224.0.0.1",
        "localhost",
        "a.localhost",
    ],
)
def test_guard_refuses_internal_literals(host: str) -> None:
    guard = Guard(allow_private=False, is_proxied=lambda url: True)
    verdict = guard.check(httpx.URL(f"http://{host}/x.jpg"))
    assert verdict is not None and verdict[0] == "blocked_private"


def test_guard_checks_resolved_names_only_when_not_proxied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def resolve(host: str, port: int, **kwargs: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    url = httpx.URL("http://intranet.example.com/a.jpg")
    assert Guard(False, lambda url: False).check(url) == (
        "blocked_private",
        "refused to fetch from the private/local address intranet.example.com (10.0.0.7)",
    )
    assert Guard(False, lambda url: True).check(url) is None
    assert literal_address("93.184.216.34") is not None
    assert Guard(False, lambda url: False).check(httpx.URL("http://93.184.216.34/")) is None


def test_redirect_to_private_address_is_refused(
    proxy_env: OriginServer, tmp_cache: Path, jpeg_bytes: bytes
) -> None:
    origin = proxy_env
    inside = origin.url("/secret.jpg")
    origin.add(inside, jpeg_bytes)
    origin.add("http://static.1sapp.com/r.jpg", redirect=inside)
    outcome = failed(
        fetch_one(tmp_cache, "http://static.1sapp.com/r.jpg", allow_private=False),
        "blocked_private",
    )
    assert "127.0.0.1" in outcome.message
    assert origin.requests_for(inside) == []


# -- environment: proxies and TLS trust --------------------------------------------------------
def test_http_proxy_from_environment(
    proxy_env: OriginServer, tmp_cache: Path, jpeg_bytes: bytes
) -> None:
    url = "http://static.1sapp.com/a.jpg"
    proxy_env.add(url, jpeg_bytes)
    outcome = fetch_one(tmp_cache, url, allow_private=False)
    assert (
        isinstance(outcome, Download) and outcome.sha256 == hashlib.sha256(jpeg_bytes).hexdigest()
    )
    [request] = proxy_env.requests_for(url)
    assert request.via == "proxy"


def test_https_through_connect_trusts_ssl_cert_file(
    proxy_env: OriginServer, tmp_cache: Path, png_bytes: bytes
) -> None:
    url = "https://img.example.org/p/b.png"
    proxy_env.add(url, png_bytes)
    outcome = fetch_one(tmp_cache, url, allow_private=False)
    assert isinstance(outcome, Download) and outcome.size == len(png_bytes)
    assert [r.method for r in proxy_env.requests] == ["CONNECT", "GET"]
    assert proxy_env.requests[0].url == "img.example.org:443"
    assert proxy_env.requests[1].via == "tunnel"


def test_https_without_the_ca_fails_with_tls_message(
    proxy_env: OriginServer, tmp_cache: Path, monkeypatch: pytest.MonkeyPatch, png_bytes: bytes
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    url = "https://img.example.org/p/b.png"
    proxy_env.add(url, png_bytes)
    outcome = failed(fetch_one(tmp_cache, url, retries=0), "connect_error")
    assert "SSL_CERT_FILE" in outcome.message


def test_no_proxy_sends_direct(
    proxy_env: OriginServer, tmp_cache: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes
) -> None:
    url = proxy_env.url("/direct.jpg")
    proxy_env.add(url, jpeg_bytes)
    assert isinstance(fetch_one(tmp_cache, url), Download)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert isinstance(fetch_one(tmp_cache, url), Download)
    assert [r.via for r in proxy_env.requests_for(url)] == ["proxy", "direct"]


def test_unreachable_proxy_is_a_proxy_error(
    monkeypatch: pytest.MonkeyPatch, tmp_cache: Path, no_proxy_env: None
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed.getsockname()[1]}")
        outcome = failed(
            fetch_one(tmp_cache, "http://static.1sapp.com/a.jpg", retries=0), "proxy_error"
        )
    assert "HTTP_PROXY" in outcome.message


# -- temp files when things stop ---------------------------------------------------------------
def test_closing_midway_leaves_no_temp_file(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    body = jpeg_bytes * 20
    origin.add("/trickle.jpg", body, body_delay=0.05, chunk_size=2048)
    origin.add("/quick.jpg", jpeg_bytes)
    with Fetcher(FAST, temp_dir) as fetcher:
        outcomes = fetcher.fetch_all(
            [job(origin.url("/trickle.jpg")), job(origin.url("/quick.jpg"))]
        )
        quick = next(outcomes)
        assert isinstance(quick, Download)
        deadline = time.monotonic() + 5
        while len(temp_files(temp_dir)) < 2 and time.monotonic() < deadline:
            threading.Event().wait(0.01)  # the trickle has started writing its temp file
        assert len(temp_files(temp_dir)) == 2
        outcomes.close()
        assert temp_files(temp_dir) == [quick.temp_path]


def test_leaving_the_fetcher_removes_unfinished_temp_files(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes
) -> None:
    origin.add("/trickle.jpg", jpeg_bytes * 20, body_delay=0.05, chunk_size=2048)
    with Fetcher(FAST, temp_dir) as fetcher:
        outcomes = fetcher.fetch_all([job(origin.url("/trickle.jpg"))])
        thread = threading.Thread(target=lambda: list(outcomes), daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not temp_files(temp_dir) and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert temp_files(temp_dir)
    thread.join(5)
    assert temp_files(temp_dir) == []


# -- sniffing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "png"),
        (b"GIF89a\x01\0\x01\0", "gif"),
        (b"RIFF\x24\0\0\0WEBPVP8 ", "webp"),
        (b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0", "bmp"),
        (b"II*\0\x08\0\0\0", "tiff"),
        (b"\0\0\1\0\1\0\x10\x10", "ico"),
        (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1", "avif"),
        (b"\0\0\0\x18ftypmif1\0\0\0\0heic", "heif"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "svg"),
        (
            b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- made by hand -->\n'
            b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd" [ <!ENTITY a "b"> ]>\n<svg>',
            "svg",
        ),
        (b"<!DOCTYPE html><html>", None),
        (b"\0\0\0\x18ftypisom\0\0\0\0mp41", None),
        (b"BMW is a car", None),
    ],
)
def test_image_kind(head: bytes, kind: str | None) -> None:
    assert image_kind(head) == kind


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"<!doctype html><title>x</title>", "HTML"),
        (b"  \n<HTML lang=en>", "HTML"),
        (b"<?xml version='1.0'?><rss/>", "XML"),
        (b'{"error": "no"}', "JSON"),
        (b"Access denied", "text"),
        (b"%PDF-1.4", "PDF"),
        (b"\x00\x01\x02\x03\x04" * 10, "binary data"),
    ],
)
def test_describe_what_is_not_an_image(head: bytes, kind: str) -> None:
    assert describe(head) == kind


def test_a_name_that_resolves_inside_when_connecting_is_refused(
    temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the guard's look-up says public, the one at connect time says loopback."""
    answers = iter(["93.184.216.34", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host: str, port: object, *args: object, **kwargs: object) -> object:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    outcome = fetch_one(temp_dir, "http://rebind.example:9/a.jpg", allow_private=False)
    failure = failed(outcome, "blocked_private")
    assert "127.0.0.1" in failure.message and "rebind.example" in failure.message
    assert next(answers, None) is None  # both look-ups happened: the second one decided


def test_a_checked_name_is_connected_to_at_the_address_that_was_checked(
    origin: OriginServer, temp_dir: Path, jpeg_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://pinned.example:{origin.port}/a.jpg"
    origin.add(url, jpeg_bytes)
    lookups: list[str] = []
    real = socket.getaddrinfo

    def resolve(host: str, port: object, *args: object, **kwargs: object) -> object:
        if host != "pinned.example":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(guard, "is_internal", lambda address: False)  # loopback plays public
    outcome = fetch_one(temp_dir, url, allow_private=False)
    assert isinstance(outcome, Download), outcome
    assert outcome.temp_path.read_bytes() == jpeg_bytes
    [request] = origin.requests_for(url)
    assert request.header("Host") == f"pinned.example:{origin.port}"
    assert lookups == [
        "pinned.example",
        "pinned.example",
    ]  # the guard's, the connection's: no third
