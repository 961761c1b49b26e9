"""A response body to a file: streamed with its sha256, judged by its first bytes (an image or
a media file, each category with its own size limit), cut at max_time, an unsafe SVG refused
or cleaned, and an interrupted transfer kept to be resumed with Range (partial.py)."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import httpx

from mediatool.config import DEFAULT_SVG_POLICY, FetchSettings
from mediatool.fetch.hosts import Cancelled
from mediatool.fetch.partial import RESUME_MIN, Partial, Partials, resumed_from, validator_of
from mediatool.fetch.results import Abort, Body, Failed, Keep, RunState
from mediatool.fetch.sniff import IMAGE, SNIFF_BYTES, content_kind, describe
from mediatool.fetch.svg import vet_svg
from mediatool.files import temp_file_in

RESUMABLE = frozenset({"truncated", "timeout", "too_slow"})  # a body that stopped short
WRITE_BLOCK = 1 << 20  # bytes gathered before one hash update and one write (bounds memory)


class BodyReader:
    """Reads the body of a 2xx answer for a CandidateFetcher (on its worker thread)."""

    def __init__(
        self,
        settings: FetchSettings,
        temp_dir: Path,
        keep: Keep | None = None,
        svg_policy: str = DEFAULT_SVG_POLICY,
    ) -> None:
        self.settings = settings
        self.temp_dir = temp_dir
        self.keep = keep
        self.svg_policy = svg_policy
        self.partials = Partials(temp_dir)
        self._per_kind_limits = not isinstance(settings.max_bytes, int)

    def read(
        self,
        url: str,
        response: httpx.Response,
        run: RunState,
        deadline: float,
        partial: Partial | None,
    ) -> Body | Failed:
        """The body of `response` (to `url`), or why it failed. With `partial`, the request
        asked for the rest of a kept partial download: a 206 from its end is appended to it,
        anything else starts over."""
        total = resumed_from(response, partial) if partial is not None else None
        if partial is not None and total is None:  # a 200: the server ignores Range, start over
            self.partials.drop(partial.url)
            partial = None
        length = total if partial is not None else content_length(response)
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
            except Abort as stop:
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
    ) -> Body | Failed:
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
        return Body(
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
        """An SVG that could run script or load resources (images.svg): refused, or cleaned in
        place (its new sha256, size and a note). None when it is safe as it is."""
        verdict = vet_svg(path.read_bytes())
        if verdict.safe:
            return None
        if verdict.cleaned is None or self.svg_policy == "refuse":
            run.live.discard(path)
            path.unlink(missing_ok=True)
            detail = f"SVG refused: {verdict.summary()}"
            return Failed("unsafe_svg", detail, limit_kind=self.svg_policy)
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
                    raise Abort(self._too_large(progress.category, received, announced=False))
                if time.monotonic() > deadline:
                    raise Abort(self._too_slow(received, length))
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
                raise Abort(self._too_slow(received, length)) from exc
            seconds = self.settings.read_timeout
            detail = f"the body stalled after {received} bytes (read_timeout {seconds:g}s)"
            raise Abort(Failed("timeout", detail, retryable=True)) from exc
        except httpx.HTTPError as exc:
            _write_block(block, progress, handle)
            expected = f" of {length}" if length is not None else ""
            detail = f"the connection broke after {received}{expected} bytes ({exc})"
            raise Abort(Failed("truncated", detail)) from exc
        except Abort as stop:
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
            raise Abort(_not_an_image(head, response))
        category = found[0]
        if length is not None and length > self.settings.max_bytes_for(category):
            raise Abort(self._too_large(category, length, announced=True))
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
        raise Abort(Failed("empty_body", f"empty body (status {response.status_code})"))
    identity = response.headers.get("content-encoding", "identity").lower() == "identity"
    if length is not None and size < length and identity:
        raise Abort(Failed("truncated", f"got {size} of {length} bytes"))


def _not_an_image(head: bytes, response: httpx.Response) -> Failed:
    status = response.status_code
    content_type = response.headers.get("content-type")
    said = f", Content-Type {content_type}" if content_type else ""
    return Failed("not_an_image", f"served {describe(head)} (status {status}{said})")


def content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None
