"""Interrupted downloads kept to be resumed with `Range`, within a run and across runs.

<cache>/tmp/partial/<key>.data   the bytes received so far (key: sha256 of the URL, 32 digits)
<cache>/tmp/partial/<key>.json   {"url", "validator", "size"}: what a resume asks for

A download whose connection broke (or that outlived max_time) after RESUME_MIN bytes, from a
server that named the version it sent (a strong ETag, else Last-Modified) and did not refuse
ranges (`Accept-Ranges: none`), is kept here. The next attempt asks for the rest with
`Range: bytes=N-` and `If-Range: <validator>`: a 206 from byte N is appended; anything else
(a 200: the server ignores Range, or the file changed) starts over and drops the partial.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

RESUME_MIN = 64 * 1024  # smaller downloads simply start over
KEEP_DAYS = 14  # a partial download not resumed for this long is deleted
PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class Partial:
    url: str
    path: Path  # the .data file
    size: int
    validator: str  # sent as If-Range


def validator_of(response: httpx.Response) -> str | None:
    """The strong ETag, else Last-Modified, of a response whose ranges may be asked for."""
    if response.headers.get("accept-ranges", "").strip().lower() == "none":
        return None
    etag: str | None = response.headers.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    modified: str | None = response.headers.get("last-modified")
    return modified


def resumed_from(response: httpx.Response, partial: Partial) -> int | None:
    """The total length when `response` is the rest of `partial` (206 starting at its size)."""
    if response.status_code != 206:
        return None
    unit, _, spec = response.headers.get("content-range", "").partition(" ")
    span, _, total = spec.partition("/")
    start, _, _ = span.partition("-")
    if unit.lower() != "bytes" or not start.isdigit() or int(start) != partial.size:
        return None
    return int(total) if total.isdigit() else None


class Partials:
    """The partial downloads of one cache's temp folder."""

    def __init__(self, temp_dir: Path) -> None:
        self.folder = temp_dir / PARTIAL

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.folder / f"{key}.data", self.folder / f"{key}.json"

    def find(self, url: str) -> Partial | None:
        """The kept partial download of `url`, if its record and its bytes agree."""
        data, record = self._paths(url)
        try:
            info = json.loads(record.read_text(encoding="utf-8"))
            size = data.stat().st_size
        except (OSError, ValueError):
            return None
        if info.get("url") != url or info.get("size") != size or not info.get("validator"):
            self.drop(url)
            return None
        return Partial(url, data, size, str(info["validator"]))

    def keep(self, url: str, path: Path, size: int, validator: str) -> Partial:
        """Keep the `size` bytes in `path` (renamed, or already the partial file) for a resume."""
        data, record = self._paths(url)
        self.folder.mkdir(parents=True, exist_ok=True)
        if path != data:
            os.replace(path, data)
        text = json.dumps({"url": url, "validator": validator, "size": size})
        temp = record.with_suffix(".json.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, record)
        return Partial(url, data, size, validator)

    def drop(self, url: str) -> None:
        """Forget the partial download of `url` (its bytes too, unless they were moved)."""
        for path in self._paths(url):
            path.unlink(missing_ok=True)

    def prune(self, days: float = KEEP_DAYS) -> int:
        """Delete partial downloads untouched for `days` (their URL was never tried again);
        returns how many files went."""
        cutoff = time.time() - days * 86400
        removed = 0
        for path in self.folder.glob("*") if self.folder.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed

    def forget(self, url: str) -> None:
        """Forget the record only: the bytes were moved into the store."""
        self._paths(url)[1].unlink(missing_ok=True)
