"""One candidate URL: redirects (each hop checked), retries with backoff, a kept partial download
asked for with Range; the body itself is read by body.BodyReader."""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from mediatool.config import DEFAULT_SVG_POLICY, FetchSettings
from mediatool.fetch.body import BodyReader, content_length
from mediatool.fetch.client import POOL_TIMEOUT, is_proxied
from mediatool.fetch.credentials import Credentials
from mediatool.fetch.guard import BLOCKED_AT_CONNECT, Guard
from mediatool.fetch.hosts import Cancelled, HostTable
from mediatool.fetch.partial import Partial
from mediatool.fetch.results import Body, Failed, Keep, RunState
from mediatool.models import Download, FetchJob, NotModified

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SMALL_BODY = 65536  # error and redirect bodies up to this size are read to keep the connection

Result = Download | NotModified | Failed


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


@dataclass(frozen=True, slots=True)
class _Received:
    """A body received in full, with the caching headers of its answer (fetch.policy)."""

    body: Body
    cache_control: str | None
    expires: str | None


class CandidateFetcher:
    def __init__(
        self,
        client: httpx.Client,
        settings: FetchSettings,
        temp_dir: Path,
        guard: Guard,
        hosts: HostTable,
        keep: Keep | None = None,
        svg_policy: str = DEFAULT_SVG_POLICY,
    ) -> None:
        self.client = client
        self.body = BodyReader(settings, temp_dir, keep, svg_policy)
        self.partials = self.body.partials
        self.settings = settings
        self.temp_dir = temp_dir
        self.guard = guard
        self.hosts = hosts
        self._host_headers = {h.lower(): dict(v) for h, v in settings.headers.items()}
        self._credentials = Credentials.from_environment(settings.cookies_file)
        # No single read may outlast the whole download's deadline (max_time).
        read = min(settings.read_timeout, settings.max_time)
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout, read=read, write=read, pool=POOL_TIMEOUT
        )

    def fetch(self, job: FetchJob, candidate: str, run: RunState) -> Result:
        """Fetch `candidate`, following redirects; Download, NotModified or Failed."""
        hops: list[str] = []
        current = candidate
        while True:
            result = self._fetch_url(job, current, run)
            if not isinstance(result, _Redirect):
                return self._finish(job, candidate, current, hops, result)
            if result.location in (candidate, *hops):
                chain = " -> ".join([candidate, *hops, result.location])
                return Failed("too_many_redirects", f"redirect loop: {chain}")
            hops.append(result.location)
            if len(hops) > self.settings.max_redirects:
                limit = self.settings.max_redirects
                return Failed("too_many_redirects", f"more than {limit} redirects (max_redirects)")
            current = result.location

    def _finish(
        self, job: FetchJob, candidate: str, final: str, hops: list[str], result: object
    ) -> Result:
        if isinstance(result, _Received):
            body = result.body
            return Download(
                origin_url=job.origin_url,
                fetched_url=candidate,
                final_url=final,
                temp_path=body.temp_path,
                sha256=body.sha256,
                size=body.size,
                content_type=body.content_type,
                etag=body.etag,
                last_modified=body.last_modified,
                redirects=tuple(hops),
                kind=body.kind,
                relpath=body.relpath,
                notes=body.notes,
                category=body.category,
                cache_control=result.cache_control,
                expires=result.expires,
            )
        if isinstance(result, NotModified):
            return replace(result, origin_url=job.origin_url, fetched_url=candidate)
        assert isinstance(result, Failed)
        return result

    # -- one URL, with retries --------------------------------------------------------------
    def _fetch_url(
        self, job: FetchJob, url_text: str, run: RunState
    ) -> _Received | NotModified | _Redirect | Failed:
        try:
            url = httpx.URL(url_text)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            return Failed("bad_url", f"not a valid URL ({exc})")
        refused = self.guard.check(url)
        if refused is not None:
            return Failed(*refused)
        host = url.netloc.decode("ascii", "replace").rpartition("@")[2].lower()
        attempt = 0
        while True:
            if self.hosts.is_down(host):
                after = self.hosts.down_after
                return Failed("host_down", f"{host} is down ({after} connection failures in a row)")
            result = self._request(job, url, host, run)
            if not isinstance(result, Failed) or not result.retryable:
                return result
            if attempt >= self.settings.retries:
                return result
            delay = self._delay(attempt, result)
            if isinstance(delay, Failed):
                return delay
            if not self.hosts.wait_unless_offline(delay, run.cancel):
                return result  # no host answers at all: retrying is no use
            attempt += 1

    def _delay(self, attempt: int, failure: Failed) -> float | Failed:
        max_wait = self.settings.max_wait
        if failure.retry_after is not None:
            if failure.retry_after > max_wait:
                detail = (
                    f"{failure.detail}, Retry-After {failure.retry_after:.0f}s is longer than "
                    f"max_wait {max_wait:g}s, not waited"
                )
                return Failed(failure.reason, detail)
            return failure.retry_after
        base = self.settings.backoff * (2**attempt)
        return float(min(max_wait, base * random.uniform(0.5, 1.5)))

    def _headers(self, job: FetchJob, url: httpx.URL, key: str) -> dict[str, str]:
        """The request's headers: credentials, then [fetch.hosts."..."] headers of the host
        key `key` (host[:port]), then [fetch.headers."HOST"]; the later win."""
        host = url.host.lower()
        headers = self._credentials.headers_for(str(url), host)  # the config's headers win
        headers.update(self.hosts.budget(key).headers or {})
        headers.update(self._host_headers.get(host, {}))
        if url.port is not None:
            headers.update(self._host_headers.get(f"{host}:{url.port}", {}))
        if job.etag:
            headers["If-None-Match"] = job.etag
        if job.last_modified:
            headers["If-Modified-Since"] = job.last_modified
        return headers

    # -- one request ------------------------------------------------------------------------
    def _request(
        self, job: FetchJob, url: httpx.URL, host: str, run: RunState
    ) -> _Received | NotModified | _Redirect | Failed:
        headers = self._headers(job, url, host)
        partial = None
        if not (job.etag or job.last_modified):  # a revalidation asks for the whole file
            partial = self.partials.find(str(url))
        if partial is not None:
            headers["Range"] = f"bytes={partial.size}-"
            headers["If-Range"] = partial.validator
        with self.hosts.slot(host, run.cancel):
            if run.cancel.is_set():
                raise Cancelled
            deadline = time.monotonic() + self.settings.max_time
            try:
                with self.client.stream(
                    "GET", url, headers=headers, timeout=self._timeout
                ) as response:
                    self.hosts.answered(host)
                    return self._handle(job, url, response, run, deadline, partial)
            except httpx.HTTPError as exc:
                return self._transport_failure(url, host, exc)

    def _transport_failure(self, url: httpx.URL, host: str, exc: httpx.HTTPError) -> Failed:
        text = str(exc) or type(exc).__name__
        if BLOCKED_AT_CONNECT in text:  # the name resolved to an internal address at connect
            return Failed("blocked_private", text)
        if isinstance(exc, httpx.ProxyError):
            return Failed("proxy_error", f"the proxy refused the request ({text})", retryable=True)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return Failed("blocked_scheme", f"scheme {url.scheme}: is not fetched")
        if isinstance(exc, httpx.InvalidURL | httpx.LocalProtocolError):
            return Failed("bad_url", f"cannot send a request for this URL ({text})")
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text:
            self.hosts.reached()  # a TLS handshake: the network works
            return Failed(
                "connect_error", f"TLS failed ({text}); set SSL_CERT_FILE for a private CA"
            )
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and self._proxied(url):
            return Failed("proxy_error", f"cannot reach the proxy ({text})", retryable=True)
        connected = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        self.hosts.connection_failed(host, connected=connected)
        if isinstance(exc, httpx.ConnectTimeout):
            limit = self.settings.connect_timeout
            return Failed("timeout", f"connect timed out after {limit:g}s", retryable=True)
        if isinstance(exc, httpx.TimeoutException):
            limit = self.settings.read_timeout
            return Failed("timeout", f"no answer within {limit:g}s (read_timeout)", retryable=True)
        if isinstance(exc, httpx.ConnectError):
            return Failed("connect_error", f"cannot connect ({text})", retryable=True)
        return Failed("connect_error", f"connection closed without an answer ({text})", True)

    def _proxied(self, url: httpx.URL) -> bool:
        return is_proxied(self.client, url)

    def _handle(
        self,
        job: FetchJob,
        url: httpx.URL,
        response: httpx.Response,
        run: RunState,
        deadline: float,
        partial: Partial | None = None,
    ) -> _Received | NotModified | _Redirect | Failed:
        status = response.status_code
        if status in REDIRECT_STATUSES and "location" in response.headers:
            self._drain_small(response)
            return _Redirect(str(url.join(response.headers["location"])))
        if status == 304 and (job.etag or job.last_modified):
            return NotModified(job.origin_url, str(url), *_cache_headers(response))
        if 200 <= status < 300:
            body = self.body.read(str(url), response, run, deadline, partial)
            return _Received(body, *_cache_headers(response)) if isinstance(body, Body) else body
        self._drain_small(response)
        if status == 416 and partial is not None:  # the kept part no longer fits the file
            self.partials.drop(partial.url)
            return Failed("truncated", "the kept part of an earlier download no longer fits", True)
        retryable = status in (408, 429) or status >= 500
        retry_after = parse_retry_after(response.headers.get("retry-after")) if retryable else None
        detail = f"HTTP {status} {response.reason_phrase}".rstrip()
        return Failed(f"http_{status}", detail, retryable, retry_after)

    def _drain_small(self, response: httpx.Response) -> None:
        length = content_length(response)
        if length is not None and length <= SMALL_BODY:
            with contextlib.suppress(httpx.HTTPError):
                response.read()


def _cache_headers(response: httpx.Response) -> tuple[str | None, str | None]:
    """(Cache-Control, Expires) of an answer, as sent (repeated headers joined by commas)."""
    control = response.headers.get_list("cache-control")
    return (", ".join(control) if control else None), response.headers.get("expires")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
