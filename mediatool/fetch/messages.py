"""One FetchFailure per job: the origin's reason, and one line that says what to do."""

from __future__ import annotations

from mediatool.fetch.results import Failed
from mediatool.models import FetchFailure, FetchJob

ADVICE = {
    "http_401": 'the host wants a login; set a Cookie for it in [fetch.headers."HOST"]',
    "http_403": (
        "the host refuses us (hotlink protection?); set Referer/User-Agent/Cookie for it "
        'in [fetch.headers."HOST"]'
    ),
    "http_404": "the image is gone; find another copy or remove the reference",
    "http_410": "the image is gone for good; find another copy or remove the reference",
    "http_429": (
        'the host rate-limits us; slow down for it ([fetch.hosts."HOST"] requests_per_second '
        "or per_host) or raise fetch.max_wait, run again"
    ),
    "not_an_image": "the URL does not serve an image; open it in a browser, or set headers for "
    "this host if it hides images behind a hotlink or login page",
    "empty_body": "the host sent nothing; run again later or remove the reference",
    "truncated": "the connection broke mid-download; run again",
    "too_large": "raise --max-bytes (fetch.max_bytes) if this file is wanted; the next fetch "
    "then tries again",
    "too_slow": "the host sends too slowly; raise --max-time (fetch.max_time) or run again later",
    "unsafe_svg": 'the SVG holds scripts or external references; set images.svg = "sanitize" '
    'to store a cleaned copy, or "keep" if you trust the host',
    "timeout": "the host is slow; raise fetch.read_timeout/connect_timeout or run again later",
    "connect_error": "the host cannot be reached; check the name and the network, or run again",
    "too_many_redirects": (
        "open the URL in a browser; raise fetch.max_redirects if the chain is legitimate"
    ),
    "blocked_private": (
        "the URL points inside this network; set fetch.allow_private = true if that is meant"
    ),
    "blocked_scheme": "only http and https URLs are fetched; fix or remove the reference",
    "host_down": "the host kept failing and was skipped for the rest of this run; run again later",
    "bad_url": "fix the URL in the post",
    "proxy_error": "check HTTP_PROXY/HTTPS_PROXY/NO_PROXY and that the proxy is up",
}


def advice(reason: str) -> str:
    if reason in ADVICE:
        return ADVICE[reason]
    if reason.startswith("http_5"):
        return "the host is failing; run again later"
    if reason.startswith("http_"):
        return "the host refused the request; check the URL in a browser"
    return "run again later"


def failure_for(job: FetchJob, failures: list[tuple[str, Failed]]) -> FetchFailure:
    """Every candidate failed: report the origin candidate's reason, list every attempt."""
    if not failures:
        failure = Failed("bad_url", "no URL to fetch")
        return FetchFailure(job.origin_url, failure.reason, _line(job, failure, []), ())
    origin = next((f for url, f in failures if url == job.origin_url), failures[0][1])
    attempts = tuple(f"{url} -> {f.reason}" for url, f in failures)
    others = [f"{url} -> {f.reason}" for url, f in failures if f is not origin]
    line = _line(job, origin, others)
    return FetchFailure(
        job.origin_url, origin.reason, line, attempts, origin.limit, origin.limit_kind
    )


def _line(job: FetchJob, failure: Failed, others: list[str]) -> str:
    tried = f" (also tried {', '.join(others)})" if others else ""
    line = f"{job.origin_url}: {failure.detail}{tried}; {advice(failure.reason)}"
    return " ".join(line.split())
