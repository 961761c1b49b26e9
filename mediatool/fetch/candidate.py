"""One candidate URL: redirects (each hop checked), retries with backoff, the body streamed to a
temporary file with its sha256, size limit and first-bytes check."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import httpx

from mediatool.config import DEFAULT_SVG_POLICY, FetchSettings
from mediatool.fetch.client import POOL_TIMEOUT, is_proxied
from mediatool.fetch.guard import BLOCKED_AT_CONNECT, Guard
from mediatool.fetch.hosts import Cancelled, HostTable
from mediatool.fetch.partial import (
    RESUME_MIN,
    Partial,
    Partials,
    resumed_from,
    validator_of,
)
from mediatool.fetch.sniff import IMAGE, SNIFF_BYTES, content_kind, describe
from mediatool.fetch.svg import vet_svg
from mediatool.files import temp_file_in
from mediatool.models import Download, FetchJob, NotModified

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RESUMABLE = frozenset({"truncated", "timeout", "too_slow"})  # a body that stopped short
SMALL_BODY = 65536  # error and redirect bodies up to this size are read to keep the connection
WRITE_BLOCK = 1 << 20  # bytes gathered before one hash update and one write (bounds memory)


@dataclass(frozen=True, slots=True)
class Failed:
    """Why one candidate failed: a reason code (errors.py) and one line saying what happened."""

    reason: str
    detail: str
    retryable: bool = False
    retry_after: float | None = None
    limit: int | None = None  # the limit that refused it (max_bytes for too_large)
    limit_kind: str | None = None  # the category whose limit it was (None: not known yet)


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


@dataclass(frozen=True, slots=True)
class _Body:
    temp_path: Path
    sha256: str
    size: int
    content_type: str | None
    etag: str | None
    last_modified: str | None
    kind: str
    relpath: str = ""
    notes: tuple[str, ...] = ()
    category: str = IMAGE


class _Abort(Exception):
    def __init__(self, failure: Failed) -> None:
        self.failure = failure


Result = Download | NotModified | Failed
Keep = Callable[[Path, str, str], str]  # (temp file, sha256, kind) -> relpath; moves the file


class LiveFiles:
    """Temporary files that belong to the fetcher (not yet handed to the caller)."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        with self._lock:
            self._paths.add(path)

    def discard(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(path)

    def remove_all(self) -> None:
        with self._lock:
            paths, self._paths = self._paths, set()
        for path in paths:
            path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class RunState:
    """What one fetch_all run shares with its workers: its stop signal and its temp files."""

    cancel: threading.Event
    live: LiveFiles


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
        self.keep = keep
        self.svg_policy = svg_policy
        self.partials = Partials(temp_dir)
        self.settings = settings
        self.temp_dir = temp_dir
        self.guard = guard
        self.hosts = hosts
        self._host_headers = {h.lower(): dict(v) for h, v in settings.headers.items()}
        self._per_kind_limits = not isinstance(settings.max_bytes, int)
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
        if isinstance(result, _Body):
            return Download(
                origin_url=job.origin_url,
                fetched_url=candidate,
                final_url=final,
                temp_path=result.temp_path,
                sha256=result.sha256,
                size=result.size,
                content_type=result.content_type,
                etag=result.etag,
                last_modified=result.last_modified,
                redirects=tuple(hops),
                kind=result.kind,
                relpath=result.relpath,
                notes=result.notes,
                category=result.category,
            )
        if isinstance(result, NotModified):
            return NotModified(origin_url=job.origin_url, fetched_url=candidate)
        assert isinstance(result, Failed)
        return result

    # -- one URL, with retries --------------------------------------------------------------
    def _fetch_url(
        self, job: FetchJob, url_text: str, run: RunState
    ) -> _Body | NotModified | _Redirect | Failed:
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
            if run.cancel.wait(delay):
                raise Cancelled
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

    def _headers(self, job: FetchJob, url: httpx.URL) -> dict[str, str]:
        headers: dict[str, str] = {}
        host = url.host.lower()
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
    ) -> _Body | NotModified | _Redirect | Failed:
        headers = self._headers(job, url)
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
            return Failed(
                "connect_error", f"TLS failed ({text}); set SSL_CERT_FILE for a private CA"
            )
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and self._proxied(url):
            return Failed("proxy_error", f"cannot reach the proxy ({text})", retryable=True)
        self.hosts.connection_failed(host)
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
    ) -> _Body | NotModified | _Redirect | Failed:
        status = response.status_code
        if status in REDIRECT_STATUSES and "location" in response.headers:
            self._drain_small(response)
            return _Redirect(str(url.join(response.headers["location"])))
        if status == 304 and (job.etag or job.last_modified):
            return NotModified(origin_url=job.origin_url, fetched_url=str(url))
        if 200 <= status < 300:
            return self._stream_body(str(url), response, run, deadline, partial)
        self._drain_small(response)
        if status == 416 and partial is not None:  # the kept part no longer fits the file
            self.partials.drop(partial.url)
            return Failed("truncated", "the kept part of an earlier download no longer fits", True)
        retryable = status in (408, 429) or status >= 500
        retry_after = parse_retry_after(response.headers.get("retry-after")) if retryable else None
        detail = f"HTTP {status} {response.reason_phrase}".rstrip()
        return Failed(f"http_{status}", detail, retryable, retry_after)

    def _drain_small(self, response: httpx.Response) -> None:
        length = _content_length(response)
        if length is not None and length <= SMALL_BODY:
            with contextlib.suppress(httpx.HTTPError):
                response.read()

    # -- the body ---------------------------------------------------------------------------
    def _stream_body(
        self,
        url: str,
        response: httpx.Response,
        run: RunState,
        deadline: float,
        partial: Partial | None,
    ) -> _Body | Failed:
        total = resumed_from(response, partial) if partial is not None else None
        if partial is not None and total is None:  # a 200: the server ignores Range, start over
            self.partials.drop(partial.url)
            partial = None
        length = total if partial is not None else _content_length(response)
        if length is not None and length > self.settings.max_bytes_for(None):
            self._drop(partial)
            return self._too_large(None, length, announced=True)
        if length == 0:
            return Failed("empty_body", f"empty body (status {response.status_code})")
        validator = validator_of(response) or (partial.validator if partial else None)
        opened = _append_to(partial.path) if partial else temp_file_in(self.temp_dir)
        with opened as (handle, path):
            run.live.add(path)
            progress = _progress_of(path) if partial else _Progress(hashlib.sha256())
            try:
                self._copy(response, handle, length, run, deadline, progress)
            except _Abort as stop:
                handle.close()
                return self._after_break(url, path, progress, validator, stop.failure, run)
            except BaseException:
                run.live.discard(path)
                self._drop(partial)
                raise
        if partial is not None:
            self.partials.forget(url)
        return self._finish_body(response, run, path, progress)

    def _finish_body(
        self, response: httpx.Response, run: RunState, path: Path, progress: _Progress
    ) -> _Body | Failed:
        category, kind = content_kind(progress.head) or (IMAGE, "")
        digest, size = progress.digest.hexdigest(), progress.size
        notes: tuple[str, ...] = ()
        if kind == "svg" and self.svg_policy != "keep":
            vetted = self._vet_svg(path, run)
            if isinstance(vetted, Failed):
                return vetted
            if vetted is not None:
                digest, size, notes = vetted
        relpath = ""
        if self.keep is not None:  # on this worker thread: storing overlaps the network
            relpath = self.keep(path, digest, kind)
            run.live.discard(path)
        return _Body(
            temp_path=path,
            sha256=digest,
            size=size,
            content_type=response.headers.get("content-type"),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            kind=kind,
            relpath=relpath,
            notes=notes,
            category=category,
        )

    def _after_break(
        self,
        url: str,
        path: Path,
        progress: _Progress,
        validator: str | None,
        failure: Failed,
        run: RunState,
    ) -> Failed:
        """A body that stopped short: kept to be resumed (partial.py) when the server named its
        version and enough came, else deleted."""
        run.live.discard(path)
        resumable = failure.reason in RESUMABLE and progress.size >= RESUME_MIN
        if not resumable or validator is None:
            path.unlink(missing_ok=True)
            self.partials.drop(url)
            return failure
        self.partials.keep(url, path, progress.size, validator)
        detail = f"{failure.detail}; the {progress.size} bytes received are kept to resume"
        return replace(failure, detail=detail, retryable=failure.reason != "too_slow")

    def _drop(self, partial: Partial | None) -> None:
        if partial is not None:
            self.partials.drop(partial.url)

    def _vet_svg(
        self, path: Path, run: RunState
    ) -> tuple[str, int, tuple[str, ...]] | Failed | None:
        """An SVG that could run script or load resources (fetch.svg): refused, or cleaned in
        place (its new sha256, size and a note). None when it is safe as it is."""
        verdict = vet_svg(path.read_bytes())
        if verdict.safe:
            return None
        if verdict.cleaned is None or self.svg_policy == "refuse":
            run.live.discard(path)
            path.unlink(missing_ok=True)
            return Failed("unsafe_svg", f"SVG refused: {verdict.summary()}")
        path.write_bytes(verdict.cleaned)
        digest = hashlib.sha256(verdict.cleaned).hexdigest()
        return digest, len(verdict.cleaned), (f"SVG sanitized, removed {verdict.summary()}",)

    def _copy(
        self,
        response: httpx.Response,
        handle: BinaryIO,
        length: int | None,
        run: RunState,
        deadline: float,
        progress: _Progress,
    ) -> None:
        """Stream the body into `handle` (after what `progress` already holds), keeping its
        sha256, size and first bytes in `progress`. Everything received is written, even when
        the transfer stops short, so that it can be resumed."""
        received = progress.size
        block = bytearray()  # chunks gathered into WRITE_BLOCK writes: fewer system calls
        try:
            for chunk in response.iter_bytes():
                if run.cancel.is_set():
                    raise Cancelled
                received += len(chunk)
                if received > self.settings.max_bytes_for(progress.category):
                    raise _Abort(self._too_large(progress.category, received, announced=False))
                if time.monotonic() > deadline:
                    raise _Abort(self._too_slow(received, length))
                if progress.category is None:
                    progress.head += chunk[: SNIFF_BYTES - len(progress.head)]
                    if len(progress.head) >= SNIFF_BYTES:
                        progress.category = self._judge(progress.head, response, length)
                block += chunk
                if len(block) >= WRITE_BLOCK:
                    _write_block(block, progress, handle)
        except httpx.TimeoutException as exc:
            _write_block(block, progress, handle)
            if time.monotonic() > deadline:
                raise _Abort(self._too_slow(received, length)) from exc
            seconds = self.settings.read_timeout
            detail = f"the body stalled after {received} bytes (read_timeout {seconds:g}s)"
            raise _Abort(Failed("timeout", detail, retryable=True)) from exc
        except httpx.HTTPError as exc:
            _write_block(block, progress, handle)
            expected = f" of {length}" if length is not None else ""
            detail = f"the connection broke after {received}{expected} bytes ({exc})"
            raise _Abort(Failed("truncated", detail)) from exc
        except _Abort as stop:
            if stop.failure.reason == "too_slow":
                _write_block(block, progress, handle)
            raise
        _write_block(block, progress, handle)
        _check_complete(progress.size, length, response)
        if progress.category is None:
            self._judge(progress.head, response, length)

    def _judge(self, head: bytes, response: httpx.Response, length: int | None) -> str:
        """The category of a body from its first bytes: not_an_image when it is neither an
        image nor a media file, too_large when it announced more than its category's limit."""
        found = content_kind(head)
        if found is None:
            raise _Abort(_not_an_image(head, response))
        category = found[0]
        if length is not None and length > self.settings.max_bytes_for(category):
            raise _Abort(self._too_large(category, length, announced=True))
        return category

    def _too_large(self, category: str | None, size: int, *, announced: bool) -> Failed:
        """More bytes than fetch.max_bytes allows for the category (the largest limit while the
        category is not known yet); the limit is recorded, so raising it fetches again."""
        limit = self.settings.max_bytes_for(category)
        key = f"max_bytes.{category}" if category and self._per_kind_limits else "max_bytes"
        what = f"{size} bytes announced" if announced else f"more than {limit} bytes came"
        detail = f"{what}, more than {key} {limit}" if announced else f"{what} ({key})"
        return Failed("too_large", detail, limit=limit, limit_kind=category)

    def _too_slow(self, size: int, length: int | None) -> Failed:
        """The download outlived max_time: not retried in this run (it would be as slow)."""
        expected = f" of {length}" if length is not None else ""
        seconds = self.settings.max_time
        return Failed(
            "too_slow", f"not finished within max_time {seconds:g}s ({size}{expected} bytes came)"
        )


@dataclass(slots=True)
class _Progress:
    """What a body has given so far: its running sha256, the bytes written, its first bytes
    and, once they show it, its category (image, video, audio, document)."""

    digest: hashlib._Hash
    size: int = 0
    head: bytes = b""
    category: str | None = None


def _progress_of(path: Path) -> _Progress:
    """The progress a kept partial file stands for (its bytes hashed again)."""
    progress = _Progress(hashlib.sha256())
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(WRITE_BLOCK), b""):
            progress.digest.update(block)
            progress.size += len(block)
            if len(progress.head) < SNIFF_BYTES:
                progress.head += block[: SNIFF_BYTES - len(progress.head)]
    found = content_kind(progress.head) if len(progress.head) >= SNIFF_BYTES else None
    progress.category = found[0] if found else None
    return progress


@contextlib.contextmanager
def _append_to(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A kept partial file opened to append the rest; left in place whatever happens."""
    with path.open("ab", buffering=0) as handle:
        yield handle, path


def _write_block(block: bytearray, progress: _Progress, handle: BinaryIO) -> None:
    if block:
        progress.digest.update(block)
        handle.write(block)
        progress.size += len(block)
        block.clear()


def _check_complete(size: int, length: int | None, response: httpx.Response) -> None:
    if size == 0:
        raise _Abort(Failed("empty_body", f"empty body (status {response.status_code})"))
    identity = response.headers.get("content-encoding", "identity").lower() == "identity"
    if length is not None and size < length and identity:
        raise _Abort(Failed("truncated", f"got {size} of {length} bytes"))


def _not_an_image(head: bytes, response: httpx.Response) -> Failed:
    status = response.status_code
    content_type = response.headers.get("content-type")
    said = f", Content-Type {content_type}" if content_type else ""
    return Failed("not_an_image", f"served {describe(head)} (status {status}{said})")


def _content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


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
