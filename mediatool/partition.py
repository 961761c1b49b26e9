"""How work is split over machines: every URL of one host goes to one part ("host-owned
partitions"), so each part can keep its hosts at their per-host limits with no coordination.

One function decides a host's part (`shard_of`): `fetch --shard I/N` keeps the URLs of shard I
(`Shard.holds`), and the Dask planner (`--scheduler`) makes its tasks from the same parts
(`host_partitions`), so a host is never fetched from two places at once whichever way the work
is split.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from mediatool.fetch.hosts import host_of
from mediatool.models import FetchJob

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count); written I/N on the command line, 1-based."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`"2/4"` -> Shard(1, 4). Raises ValueError with a message naming the value."""
        number, sep, total = text.partition("/")
        try:
            if not sep:
                raise ValueError
            i, n = int(number), int(total)
        except ValueError:
            raise ValueError(f"shard must be I/N (e.g. 1/4), got {text!r}") from None
        if not (n >= 1 and 1 <= i <= n):
            raise ValueError(f"shard must be I/N with 1 <= I <= N, got {text!r}")
        return cls(i - 1, n)

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"

    def holds(self, url: str) -> bool:
        """Whether this shard fetches `url` (decided by its host alone)."""
        return shard_of(host_of(url), self.count) == self.index


def shard_of(host: str, count: int) -> int:
    """The part (0..count-1) that owns `host`: a stable hash, the same on every machine and
    Python version (not `hash()`, which is salted per process)."""
    if count <= 1:
        return 0
    digest = hashlib.blake2b(host.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def host_partitions(jobs: Iterable[FetchJob], count: int) -> list[list[FetchJob]]:
    """The jobs split into at most `count` parts by `shard_of` of their origin host; in each
    part its hosts take turns (`hosts_taking_turns`), and the parts come biggest first (so the
    part bounding the wall time starts first). Empty parts are left out."""
    return _partitions(jobs, count, lambda job: job.origin_url)


def url_partitions(urls: Iterable[str], count: int) -> list[list[str]]:
    """`host_partitions` of origin URLs (a plan's, whose jobs are made part by part)."""
    return _partitions(urls, count, str)


def _partitions(items: Iterable[T], count: int, url_of: Callable[[T], str]) -> list[list[T]]:
    by_part: dict[int, dict[str, list[T]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        host = host_of(url_of(item))
        by_part[shard_of(host, count)][host].append(item)
    parts = [_taking_turns(hosts.values()) for hosts in by_part.values()]
    return sorted(parts, key=len, reverse=True)


def hosts_taking_turns(urls: Iterable[str]) -> list[str]:
    """`urls` reordered so hosts take turns (one URL of each host, then the next of each...),
    the busiest host first, each host's URLs in their order. Sorted URLs come host by host, and
    a Fetcher reads only LOOKAHEAD jobs ahead (a download task gets a few hundred): with one
    host filling that window, its per-host limit would cap the whole run; taking turns keeps
    every host with work as long as it has any."""
    whole = url_partitions(urls, 1)  # one part holding every host
    return whole[0] if whole else []


def _taking_turns(queues: Iterable[list[T]]) -> list[T]:
    """One item of each queue in turn, the longest queue first, until all are empty."""
    longest_first = sorted(queues, key=len, reverse=True)
    missing = object()
    turns = itertools.zip_longest(*longest_first, fillvalue=missing)
    return [item for turn in turns for item in turn if item is not missing]  # type: ignore[misc]
