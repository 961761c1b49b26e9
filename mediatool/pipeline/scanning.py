"""`mediatool scan`: every reference found, as records, with a summary by context and host.

Needs no cache and no network: discover + resolve only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from mediatool.config import Settings
from mediatool.discover import find_posts
from mediatool.models import PostScan, Reference, RefKind
from mediatool.pipeline.common import PostReader, Say
from mediatool.pipeline.summaries import ScanSummary
from mediatool.resolve import Rule, compile_rules, host_label, resolve

Emit = Callable[[dict[str, object]], None]


def run_scan(paths: Sequence[Path], settings: Settings, *, emit: Emit, say: Say) -> ScanSummary:
    """Emit one record per reference of every post; return the counts."""
    rules = compile_rules(settings.proxy_rules)
    by_context: Counter[str] = Counter()
    by_host: Counter[str] = Counter()
    by_media: Counter[str] = Counter()
    reader = PostReader(settings.discover, say, workers=settings.workers)
    posts = find_posts(paths, exclude=[settings.cache_dir])
    for scan in reader.scans(posts):
        for ref in scan.references:
            record = reference_record(scan, ref, rules)
            by_context[ref.context] += 1
            by_host[str(record["host"])] += 1
            by_media[ref.media] += 1
            emit(record)
    return ScanSummary(
        posts=len(posts),
        posts_failed=reader.unreadable + reader.with_problems,
        references=sum(by_context.values()),
        by_context=dict(by_context.most_common()),
        by_host=dict(by_host.most_common()),
        problems=tuple(reader.problems),
        by_media=dict(by_media.most_common()),
    )


def reference_record(scan: PostScan, ref: Reference, rules: Sequence[Rule]) -> dict[str, object]:
    """What `scan` prints for one reference (one JSON line)."""
    record: dict[str, object] = {
        "post": str(scan.path),
        "line": ref.line,
        "column": ref.column,
        "context": ref.context,
        "kind": ref.kind.value,
        "media": ref.media,
        "source_url": ref.source_url,
        "origin_url": None,
        "rules": [],
        "host": "(local)" if ref.kind is RefKind.LOCAL else "(data)",
    }
    if ref.raw != ref.source_url:
        record["raw"] = ref.raw
    if ref.kind is RefKind.REMOTE:
        resolution = resolve(ref.source_url, rules)
        record["origin_url"] = resolution.origin_url
        record["rules"] = list(resolution.rules)
        record["host"] = host_label(resolution.origin_url)
    return record
