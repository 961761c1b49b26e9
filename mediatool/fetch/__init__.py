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

from mediatool.fetch.fetcher import OFFLINE_MESSAGE, Fetcher
from mediatool.fetch.sniff import describe, image_kind

__all__ = ["OFFLINE_MESSAGE", "Fetcher", "describe", "image_kind"]
