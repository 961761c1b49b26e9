"""`mediatool rewrite --undo`: give every rewritten post its original URLs back, byte for byte,
from the edits the manifest recorded (newest run first, back to front)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mediatool.config import Settings
from mediatool.discover import find_posts, read_post
from mediatool.errors import PostError
from mediatool.files import atomic_write_bytes
from mediatool.manifest import Manifest
from mediatool.pipeline.common import Say, existing_store, post_key
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.summaries import UndoSummary
from mediatool.rewrite import unified_diff


class CannotUndo(Exception):
    """The post changed since it was rewritten so that an edit can no longer be found."""


@one_run_per_cache("rewrite --undo")
def run_undo(
    paths: Sequence[Path], settings: Settings, *, say: Say, dry_run: bool = False
) -> UndoSummary:
    store = existing_store(settings)
    restored = undone = 0
    problems: list[str] = []
    diffs: list[str] = []
    with Manifest.open(store.manifest_path) as manifest:
        posts = find_posts(paths, exclude=[settings.cache_dir])
        for path in posts:
            records = manifest.rewrites_of(post_key(path))
            if not records:
                continue
            try:
                scan = read_post(path, settings.discover)
                text = undo_text(scan.text, records)
            except (PostError, CannotUndo) as exc:
                message = f"{path}: cannot undo ({exc}); restore it from version control."
                say(message)
                problems.append(message)
                continue
            restored, undone = restored + 1, undone + len(records)
            if dry_run:
                diffs.append(unified_diff(str(path), scan.text, text))
                continue
            atomic_write_bytes(path, text.encode(scan.encoding))
            with manifest.transaction():
                manifest.forget_rewrites(post_key(path))
    return UndoSummary(len(posts), restored, undone, dry_run, tuple(problems), tuple(diffs))


def undo_text(text: str, records: Sequence[tuple[int, str, str]]) -> str:
    """Apply (offset, old, new) records, newest first, putting `old` back where `new` stands.

    An edit found elsewhere than its offset (the post was edited since) is still undone when its
    new text occurs exactly once; otherwise CannotUndo. An edit that was recorded but never
    written (rewrite records before it writes, and a run can be killed in between) has nothing
    to undo: its old text still stands at its offset, or, for an inserted size, its text is
    nowhere."""
    for start, old, new in records:
        if text[start : start + len(new)] != new:
            if old and text[start : start + len(old)] == old:
                continue
            count = text.count(new)
            if count == 0 and not old:
                continue
            if count != 1:
                raise CannotUndo(f"the text {new!r} written at offset {start} is no longer there")
            start = text.index(new)
        text = text[:start] + old + text[start + len(new) :]
    return text
