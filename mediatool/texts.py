"""What a command prints: its summary as text (with a failures table) or as JSON.

Not the HTML report page (gallery.py). The `*_summary_text` names keep these apart from
`discover.scan_text`, `rewrite.rewrite_text` and `pipeline.undoing.undo_text` (posts)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

from mediatool.pipeline.summaries import (
    CheckSummary,
    FailedUrl,
    FetchSummary,
    LeftRemote,
    MaintenanceSummary,
    RewriteSummary,
    ScanSummary,
    UndoSummary,
)


def fetch_summary_text(summary: FetchSummary) -> str:
    lines = [
        f"posts              {summary.posts} ({summary.posts_failed} with problems)",
        f"references         {summary.references} ({summary.remote_references} remote)",
        f"distinct URLs      {summary.distinct_urls}",
        f"downloaded         {summary.downloaded}",
        f"already stored     {summary.already_stored}",
    ]
    if summary.not_modified:
        lines.append(f"not modified       {summary.not_modified}")
    lines += [
        f"images analyzed    {summary.images_analyzed}",
        f"near-dup groups    {summary.groups} ({summary.grouped_images} images)",
        f"boilerplate        {summary.boilerplate_images} (images in many posts: banners, logos)",
        f"failed             {len(summary.failed)}",
        f"time               {summary.seconds:.2f} s",
    ]
    if summary.failed:
        lines += ["", *failures_table(summary.failed)]
    return "\n".join(lines)


def failures_table(failed: Sequence[FailedUrl]) -> list[str]:
    """Failures grouped by reason and host, most frequent first."""
    counts = Counter((f.reason, urlsplit(f.url).hostname or "?") for f in failed)
    return _table("reason", "urls", counts)


def rewrite_summary_text(summary: RewriteSummary) -> str:
    verb = "would change" if summary.dry_run else "changed"
    lines = [
        f"posts              {summary.posts} ({summary.posts_changed} {verb})",
        f"remote references  {summary.references}",
        f"rewritten          {summary.references_rewritten}",
        f"retargeted         {summary.references_retargeted} (moved to a better copy)",
        f"left remote        {summary.references_left_remote}",
        f"time               {summary.seconds:.2f} s",
    ]
    if summary.left_remote:
        lines += ["", *left_remote_table(summary.left_remote)]
    return "\n".join(lines)


def left_remote_table(left: Sequence[LeftRemote]) -> list[str]:
    counts = Counter((item.reason, urlsplit(item.origin_url).hostname or "?") for item in left)
    return _table("why left remote", "refs", counts)


def _table(title: str, unit: str, counts: Counter[tuple[str, str]]) -> list[str]:
    """Rows of `reason  count  host`, most frequent first, aligned."""
    width = max(len(title), *(len(reason) for reason, _ in counts))
    rows = [f"{title.ljust(width)}  {unit:>5}  host"]
    for (reason, host), count in counts.most_common():
        rows.append(f"{reason.ljust(width)}  {count:>5}  {host}")
    return rows


def fetch_json(summary: FetchSummary) -> str:
    data = summary.as_dict()
    data["failed"] = [
        {"url": f.url, "reason": f.reason, "message": f.message} for f in summary.failed
    ]
    data["exit_code"] = 0 if summary.ok else 1
    return json.dumps(data, ensure_ascii=False, indent=2)


def rewrite_json(summary: RewriteSummary) -> str:
    data = summary.as_dict()
    data["exit_code"] = 0 if summary.ok else 1
    return json.dumps(data, ensure_ascii=False, indent=2)


def scan_summary_text(summary: ScanSummary) -> str:
    """The summary `scan` prints on stderr (the records go to stdout)."""
    lines = [f"{summary.references} references in {summary.posts} posts", "", "by context:"]
    lines += [f"  {count:>6}  {name}" for name, count in summary.by_context.items()]
    lines += ["", "by host (origin):"]
    lines += [f"  {count:>6}  {name}" for name, count in summary.by_host.items()]
    return "\n".join(lines)


def check_summary_text(summary: CheckSummary) -> str:
    verdict = "ok" if summary.ok else "FAILED"
    return (
        f"check {verdict}: {summary.posts} posts, {len(summary.localizable)} remote references "
        f"the cache could localize, {len(summary.missing)} local references to missing files"
    )


def undo_summary_text(summary: UndoSummary) -> str:
    verb = "would restore" if summary.dry_run else "restored"
    return (
        f"posts              {summary.posts} ({summary.posts_restored} {verb})\n"
        f"edits undone       {summary.edits_undone}"
    )


def summary_json(
    summary: ScanSummary | CheckSummary | UndoSummary | MaintenanceSummary,
) -> str:
    data = summary.as_dict()
    data["exit_code"] = 0 if summary.ok else 1
    return json.dumps(data, ensure_ascii=False, indent=2)


def maintenance_summary_text(summary: MaintenanceSummary) -> str:
    return "\n".join(
        [
            f"images             {summary.images}",
            f"near-dup groups    {summary.groups} ({summary.grouped_images} images)",
            f"boilerplate        {summary.boilerplate_images}",
            f"thumbnails         {summary.thumbnails}",
            f"time               {summary.seconds:.2f} s",
        ]
    )
