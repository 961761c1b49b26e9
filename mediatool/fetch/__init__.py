"""URLs -> bytes on disk, politely and concurrently.

    with Fetcher(settings.fetch, temp_dir) as fetcher:
        for outcome in fetcher.fetch_all(jobs):   # Download | NotModified | FetchFailure
            ...

Modules: fetcher (workers, scheduling), candidate (one URL: redirects, retries, Range),
body (streaming a body: limits per kind, max_time, SVG policy), partial (kept partial downloads),
results (what the parts hand each other), client (httpx client, TLS trust, proxies),
guard (SSRF), hosts (per-host slots, host down),
sniff (an image? a media file?), svg (scripts and external references), messages (failure lines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediatool.fetch.sniff import describe, image_kind

if TYPE_CHECKING:
    from mediatool.fetch.fetcher import Fetcher

__all__ = ["Fetcher", "describe", "image_kind"]


def __getattr__(name: str) -> object:
    """`Fetcher`, imported when first asked for: importing this package (for `policy`, say)
    does not load httpx."""
    if name == "Fetcher":
        from mediatool.fetch.fetcher import Fetcher

        return Fetcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
