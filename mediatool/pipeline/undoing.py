"""`mediatool rewrite --undo`: give every rewritten post its original bytes back.

Each rewrite of a post is a generation in the manifest: the sha256 of the post's bytes before
and after, and its edits. Undo walks a post's generations newest to oldest, comparing the post's
current sha256 with theirs:

    equals this generation's `after`     reverse its edits exactly; the result must hash to
                                         `before`
    equals a `before`, or an older       this generation was never written (a killed run records
    generation's `after`                 before it writes) or was already undone: skipped
    anything else (edited by hand)       its edits are reversed by their text (`undo_text`);
                                         when that fails, one line says so and the post is kept

The restored post is written first, then its records are dropped, so a killed undo is simply
run again. A post that is a symlink is written through: the link stays a link."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from mediatool.config import DiscoverSettings, Settings
from mediatool.discover import find_posts, read_post
from mediatool.errors import PostError
from mediatool.files import atomic_write_bytes
from mediatool.manifest import Manifest, archive_root
from mediatool.pipeline.common import Say, existing_store, post_key
from mediatool.pipeline.rewriting import kill_point
from mediatool.pipeline.summaries import UndoSummary
from mediatool.rewrite import Generation, UndoEdit, unified_diff


class CannotUndo(Exception):
    """The post changed since it was rewritten so that an edit can no longer be found."""


def run_undo(
    paths: Sequence[Path], settings: Settings, *, say: Say, dry_run: bool = False
) -> UndoSummary:
    store = existing_store(settings)
    root = archive_root(settings.cache_dir)
    restored = undone = 0
    problems: list[str] = []
    diffs: list[str] = []

    def problem(message: str) -> None:
        say(message)
        problems.append(message)

    with Manifest.open(store.manifest_path) as manifest:
        posts = find_posts(paths, exclude=[settings.cache_dir])
        recorded = manifest.rewritten_post_keys()
        found = {key: path for path in posts if (key := post_key(path, root)) in recorded}
        for key, path in found.items():
            try:
                outcome = undo_post(path, manifest.generations_of(key), settings.discover)
            except PostError as exc:
                problem(exc.message)
                continue
            except CannotUndo as exc:
                problem(f"{path}: cannot undo ({exc}); restore it from version control.")
                continue
            if outcome is None:  # nothing of it was ever written, or it is already restored
                if not dry_run:
                    with manifest.transaction():
                        manifest.forget_rewrites(key)
                continue
            text, encoding, edits, original = outcome
            restored, undone = restored + 1, undone + edits
            if dry_run:
                diffs.append(unified_diff(str(path), original, text))
                continue
            if failure := write_restored(path, text.encode(encoding)):
                restored, undone = restored - 1, undone - edits
                problem(failure)
                continue
            kill_point("undo")
            with manifest.transaction():
                manifest.forget_rewrites(key)
        if missing := sorted(_missing(recorded - found.keys(), root)):
            problem(missing_message(missing, paths, root))
    return UndoSummary(len(posts), restored, undone, dry_run, tuple(problems), tuple(diffs))


def undo_post(
    path: Path, generations: Sequence[Generation], settings: DiscoverSettings
) -> tuple[str, str, int, str] | None:
    """(restored text, encoding, edits undone, current text) of a post, or None when none of
    its generations stands in it. PostError when it cannot be read, CannotUndo when an edit
    cannot be found."""
    scan = read_post(path, settings)
    text, edits = restore_text(scan.text, scan.encoding, generations)
    if edits == 0:
        return None
    return text, scan.encoding, edits, scan.text


def restore_text(text: str, encoding: str, generations: Sequence[Generation]) -> tuple[str, int]:
    """`text` with each generation that stands in it reversed, newest first (see the module
    docstring); and how many edits were reversed."""
    undone = 0
    for index, generation in enumerate(generations):
        current = sha256_hex(text.encode(encoding))
        if current == generation.after:
            text = reverse_exactly(text, generation.edits)
            if sha256_hex(text.encode(encoding)) != generation.before:
                raise CannotUndo("the restored text differs from the text rewrite recorded")
        elif _never_written(current, generations[index:]):
            continue
        else:
            text = undo_text(text, list(reversed(generation.edits)))
        undone += len(generation.edits)
    return text, undone


def _never_written(current: str, generations: Sequence[Generation]) -> bool:
    """The post's hash is the first generation's `before`, or a `before` or `after` of an older
    one: the first generation's bytes are not (or no longer) in the post."""
    newest, *older = generations
    known = {newest.before} | {g.before for g in older} | {g.after for g in older}
    return current in known - {None}


def reverse_exactly(text: str, edits: Sequence[UndoEdit]) -> str:
    """Put each edit's `old` back where its `new` stands, back to front."""
    for edit in reversed(edits):
        end = edit.offset + len(edit.new)
        if text[edit.offset : end] != edit.new:
            raise CannotUndo(f"the text {edit.new!r} written at offset {edit.offset} is not there")
        text = text[: edit.offset] + edit.old + text[end:]
    return text


def undo_text(text: str, records: Sequence[UndoEdit]) -> str:
    """Apply records, in the order given (newest first, back to front), putting `old` back where
    `new` stands, for a post edited since it was rewritten.

    An edit found elsewhere than its offset is still undone when its new text occurs exactly
    once; otherwise CannotUndo. An edit whose old text still stands at its offset, or an
    inserted size that is nowhere, has nothing to undo."""
    for record in records:
        start, old, new = record.offset, record.old, record.new
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


def write_restored(path: Path, data: bytes) -> str | None:
    """Write a restored post (through a symlink); None, or the one-line message of a failure."""
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return (
            f"{path}: cannot write the restored post ({reason}); make the file and its folder "
            "writable and run `mediatool rewrite --undo` again."
        )
    return None


def _missing(keys: set[str], root: Path) -> list[str]:
    """Keys of rewritten posts that are not where they were rewritten (a post still there but
    outside the given paths was simply not asked for)."""
    return [key for key in keys if not (root / key).exists()]


def missing_message(missing: Sequence[str], paths: Sequence[Path], root: Path) -> str:
    where = ", ".join(str(p) for p in paths)
    return (
        f"{len(missing)} rewritten post(s) recorded for --undo are neither under {where} nor "
        f"where they were rewritten (first: {root / missing[0]}); run `mediatool rewrite --undo` "
        "on the folder that holds them now, with --cache pointing at this cache (a moved "
        "archive is found when the cache moved with it)."
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
