"""URLs -> bytes on disk, politely and concurrently.

    with Fetcher(settings.fetch, temp_dir) as fetcher:
        for outcome in fetcher.fetch_all(jobs):   # Download | NotModified | FetchFailure
            ...

Modules: fetcher (workers, scheduling), candidate (one URL: redirects, retries, Range),
body (streaming a body: limits per kind, max_time, SVG policy), partial (kept partial downloads),
results (what the parts hand each other), client (httpx client, TLS trust, proxies),
guard (SSRF), hosts (per-host budgets: slots, rate, delay, headers; host down; offline),
sniff (an image? a media file?), svg (scripts and external references), messages (failure lines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediatool.fetch.sniff import describe, image_kind

if TYPE_CHECKING:
    from mediatool.fetch.fetcher import OFFLINE_MESSAGE, Fetcher

__all__ = ["OFFLINE_MESSAGE", "Fetcher", "describe", "image_kind"]


def __getattr__(name: str) -> object:
    """`Fetcher` and `OFFLINE_MESSAGE`, imported when first asked for: importing this package
    (for `policy`, say) does not load httpx."""
    if name in ("Fetcher", "OFFLINE_MESSAGE"):
        from mediatool.fetch import fetcher

        return getattr(fetcher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
