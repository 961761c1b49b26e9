"""What a command prints: its summary as text (with a failures table) or as JSON.

Not the HTML report page (gallery.py). The `*_summary_text` names keep these apart from
`discover.scan_text`, `rewrite.rewrite_text` and `pipeline.undoing.undo_text` (posts)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from mediatool.pipeline.summaries import (
    CheckSummary,
    FailedUrl,
    FetchSummary,
    GcSummary,
    LeftRemote,
    MaintenanceSummary,
    MergeSummary,
    RewriteSummary,
    ScanSummary,
    UndoSummary,
    VerifySummary,
)
from mediatool.resolve import host_label


def fetch_summary_text(summary: FetchSummary) -> str:
    lines = [
        f"posts              {summary.posts} ({summary.posts_failed} with problems)",
        f"references         {summary.references} ({summary.remote_references} remote)",
        f"distinct URLs      {summary.distinct_urls}",
        *_shard_line(summary),
        f"downloaded         {summary.downloaded}{_by_kind(summary.downloaded_by_kind)}",
        f"already stored     {summary.already_stored}",
    ]
    if summary.not_modified:
        lines.append(f"not modified       {summary.not_modified}")
    if summary.fresh:
        lines.append(f"still fresh        {summary.fresh} (not asked: Cache-Control/Expires)")
    if set(summary.stored_by_kind) - {"image"}:
        lines.append(f"stored             {_kinds(summary.stored_by_kind)}")
    lines += [
        f"images analyzed    {summary.images_analyzed}",
        f"near-dup groups    {summary.groups} ({summary.grouped_images} images)",
        f"boilerplate        {summary.boilerplate_images} (images in many posts: banners, logos)",
        f"failed             {_failed_line(summary)}",
        f"time               {summary.seconds:.2f} s",
    ]
    if summary.offline:
        lines.append(
            f"offline            no host answered; {summary.not_started} URLs left pending, "
            "run fetch again when the network is back"
        )
    if summary.resume_needed:
        lines.append(
            f"resume needed      {summary.not_started} URLs not started (time budget); "
            "run fetch again"
        )
    if summary.failed:
        lines += ["", *failures_table(summary.failed)]
    return "\n".join(lines)


def _shard_line(summary: FetchSummary) -> list[str]:
    """ "shard 2/4: N of M URLs" for `fetch --shard`, else nothing."""
    if summary.shard is None:
        return []
    return [f"shard {summary.shard}: {summary.shard_urls} of {summary.distinct_urls} URLs"]


def _by_kind(counts: dict[str, int]) -> str:
    """ " (3 images, 1 video)" when anything but images is counted, else ""."""
    return "" if set(counts) <= {"image"} else f" ({_kinds(counts)})"


def _kinds(counts: dict[str, int]) -> str:
    """ "3 images, 1 video, 2 audio files" """
    words = {"audio": ("audio file", "audio files")}
    parts = []
    for kind, count in counts.items():
        one, many = words.get(kind, (kind, kind + "s"))
        parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts)


def _failed_line(summary: FetchSummary) -> str:
    """ "0", or "N URLs, M references (K failed in earlier runs)" """
    if not summary.failed:
        return "0"
    urls = len(summary.failed)
    refs = summary.failed_references
    line = f"{urls} URL{'s' * (urls != 1)}, {refs} reference{'s' * (refs != 1)}"
    earlier = sum(f.earlier and not f.accepted for f in summary.failed)
    if earlier:
        line += f" ({earlier} failed in earlier runs; --retry-failed tries them again)"
    accepted = sum(f.accepted for f in summary.failed)
    if accepted:
        line += f"; {accepted} accepted by [check] allow"
    return line


def failures_table(failed: Sequence[FailedUrl]) -> list[str]:
    """Failures grouped by reason and host, most frequent first: URLs and references."""
    urls: Counter[tuple[str, str]] = Counter()
    refs: Counter[tuple[str, str]] = Counter()
    for failure in failed:
        key = (failure.reason, host_label(failure.url))
        urls[key] += 1
        refs[key] += failure.references
    width = max(len("reason"), *(len(reason) for reason, _ in urls))
    rows = [f"{'reason'.ljust(width)}   urls   refs  host"]
    for (reason, host), count in urls.most_common():
        rows.append(f"{reason.ljust(width)}  {count:>5}  {refs[(reason, host)]:>5}  {host}")
    return rows


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
    counts = Counter((item.reason, host_label(item.origin_url)) for item in left)
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
        {
            "url": f.url,
            "reason": f.reason,
            "message": f.message,
            "references": f.references,
            "posts": list(f.posts),
            "earlier": f.earlier,
            "accepted": f.accepted,
        }
        for f in summary.failed
    ]
    data["exit_code"] = 0 if summary.ok else 1
    return json.dumps(data, ensure_ascii=False, indent=2)


def rewrite_json(summary: RewriteSummary) -> str:
    data = summary.as_dict()
    if summary.dry_run:
        data["diffs"] = list(summary.diffs)  # stdout holds the JSON alone
    data["exit_code"] = 0 if summary.ok else 1
    return json.dumps(data, ensure_ascii=False, indent=2)


def scan_summary_text(summary: ScanSummary) -> str:
    """The summary `scan` prints on stderr (the records go to stdout)."""
    lines = [f"{summary.references} references in {summary.posts} posts", "", "by context:"]
    lines += [f"  {count:>6}  {name}" for name, count in summary.by_context.items()]
    lines += ["", "by media:"]
    lines += [f"  {count:>6}  {name}" for name, count in summary.by_media.items()]
    lines += ["", "by host (origin):"]
    lines += [f"  {count:>6}  {name}" for name, count in summary.by_host.items()]
    return "\n".join(lines)


def check_summary_text(summary: CheckSummary) -> str:
    verdict = "ok" if summary.ok else "FAILED"
    accepted = f" ({len(summary.accepted)} more accepted)" if summary.accepted else ""
    return (
        f"check {verdict}: {summary.posts} posts, {len(summary.localizable)} remote references "
        f"the cache could localize, {len(summary.failed)} remote references whose download "
        f"failed{accepted}, {len(summary.missing)} local references to missing files, "
        f"{len(summary.unfetched)} remote references not fetched, {len(summary.changed)} posts "
        "changed since the last fetch"
    )


def undo_summary_text(summary: UndoSummary) -> str:
    verb = "would restore" if summary.dry_run else "restored"
    return (
        f"posts              {summary.posts} ({summary.posts_restored} {verb})\n"
        f"edits undone       {summary.edits_undone}"
    )


def summary_json(
    summary: ScanSummary
    | CheckSummary
    | UndoSummary
    | MaintenanceSummary
    | VerifySummary
    | GcSummary
    | MergeSummary,
) -> str:
    data = summary.as_dict()
    if isinstance(summary, UndoSummary) and summary.dry_run:
        data["diffs"] = list(summary.diffs)  # stdout holds the JSON alone
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


def verify_summary_text(summary: VerifySummary) -> str:
    verdict = "ok" if summary.ok else "FAILED"
    return (
        f"verify {verdict}: {summary.originals} originals, {summary.thumbnails} thumbnails; "
        f"{summary.missing_originals} originals missing, {summary.damaged_originals} damaged, "
        f"{summary.missing_thumbnails} thumbnails missing, {summary.missing_references} "
        f"localized references to missing files; {summary.repaired} files repaired"
    )


def gc_summary_text(summary: GcSummary) -> str:
    verb = "would forget" if summary.dry_run else "forgot"
    gone = "would delete" if summary.dry_run else "deleted"
    return (
        f"gc: {verb} {summary.posts} posts that are gone and {summary.urls} URLs no post uses; "
        f"{gone} {summary.originals} originals and {summary.thumbnails} thumbnails"
    )


def merge_summary_text(summary: MergeSummary) -> str:
    taken = summary.taken
    urls = summary.urls
    lines = [
        f"merged             {summary.shards} shards into {summary.manifest}",
        f"taken              {taken.get('posts', 0)} posts, {taken.get('urls', 0)} URLs, "
        f"{taken.get('images', 0)} images, {taken.get('thumbs', 0)} thumbnails, "
        f"{taken.get('generations', 0)} rewrites",
        f"files copied       {summary.files_copied} ({summary.files_present} already there)",
        f"URLs               {urls.get('ok', 0)} ok, {urls.get('failed', 0)} failed, "
        f"{urls.get('pending', 0)} pending",
        f"problems           {len(summary.problems)}",
        f"time               {summary.seconds:.2f} s",
    ]
    if urls.get("pending"):
        lines.append(
            "pending            some URLs were fetched by no shard: merge every shard, or run "
            "fetch once more on the merged cache"
        )
    lines.append("next               mediatool dedup, then mediatool rewrite")
    return "\n".join(lines)
