"""`mediatool rewrite --undo`: give every rewritten post its original bytes back.

Each rewrite of a post is a generation in the manifest: the sha256 of the post's bytes before
and after, and its edits. Undo walks a post's generations newest to oldest, comparing the post's
current sha256 with theirs:

    equals this generation's `after`     reverse its edits exactly; the result must hash to
                                         `before`
    equals a `before`, or an older       this generation was never written (a killed run records
    generation's `after`                 before it writes) or was already undone: skipped
    anything else (edited by hand)       its edits are found by their text, near where the
                                         edits before them moved (`reverse_tolerantly`), and
                                         reversed; when one is nowhere, one line says so and
                                         the post is kept as it is

The restored post is written first, then its records are dropped, so a killed undo is simply
run again. A post that is a symlink is written through: the link stays a link."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediatool.config import DiscoverSettings, Settings
from mediatool.discover import find_posts, read_post
from mediatool.errors import PostError
from mediatool.files import atomic_write_bytes
from mediatool.manifest import Manifest
from mediatool.pipeline.common import Say, archive_root_of, existing_store, post_key, sha256_hex
from mediatool.pipeline.locking import one_run_per_cache
from mediatool.pipeline.rewriting import kill_point
from mediatool.pipeline.summaries import UndoSummary
from mediatool.rewrite import Generation, UndoEdit, unified_diff


class CannotUndo(Exception):
    """The post changed since it was rewritten so that an edit can no longer be found."""


@one_run_per_cache("rewrite --undo")
def run_undo(
    paths: Sequence[Path], settings: Settings, *, say: Say, dry_run: bool = False
) -> UndoSummary:
    store = existing_store(settings)
    root = archive_root_of(settings)
    results: list[PostUndo] = []
    with Manifest.open(store.manifest_path, read_only_ok=dry_run) as manifest:
        posts = find_posts(paths, exclude=[settings.cache_dir])
        recorded = manifest.rewritten_post_keys()
        key_of = {path: post_key(path, root) for path in posts}
        found = {key: path for path, key in key_of.items() if key in recorded}
        missing = [key for key in recorded - found.keys() if not (root / key).exists()]
        others = [path for path, key in key_of.items() if key not in recorded]
        found |= moved_posts(sorted(missing), others, manifest)
        for key, path in found.items():
            results.append(undo_one(path, key, manifest, settings.discover, dry_run))
            if results[-1].problem:
                say(results[-1].problem)
    problems = [result.problem for result in results if result.problem]
    if lost := sorted(set(missing) - found.keys()):
        problems.append(missing_message(lost, paths, root))
        say(problems[-1])
    return UndoSummary(
        posts=len(posts),
        posts_restored=sum(1 for result in results if result.edits),
        edits_undone=sum(result.edits for result in results),
        dry_run=dry_run,
        problems=tuple(problems),
        diffs=tuple(result.diff for result in results if result.diff),
    )


@dataclass(frozen=True, slots=True)
class PostUndo:
    """What `--undo` did to one post: edits reversed (0: nothing to restore), or a problem."""

    edits: int = 0
    problem: str | None = None
    diff: str = ""


def undo_one(
    path: Path, key: str, manifest: Manifest, settings: DiscoverSettings, dry_run: bool
) -> PostUndo:
    """Restore one post (written first), then drop its records; a dry run only diffs."""
    try:
        outcome = undo_post(path, manifest.generations_of(key), settings)
    except PostError as exc:
        return PostUndo(problem=exc.message)
    except CannotUndo as exc:
        return PostUndo(problem=f"{path}: cannot undo ({exc}); restore it from version control.")
    if outcome is not None:
        text, encoding, edits, current = outcome
        if dry_run:
            return PostUndo(edits, diff=unified_diff(str(path), current, text))
        if failure := write_restored(path, text.encode(encoding)):
            return PostUndo(problem=failure)
        kill_point("undo")
    if not dry_run:  # restored, or nothing of it was ever written (or it was already restored)
        with manifest.transaction():
            manifest.forget_rewrites(key)
    return PostUndo(outcome[2] if outcome else 0)


def moved_posts(
    missing: Sequence[str], candidates: Sequence[Path], manifest: Manifest
) -> dict[str, Path]:
    """Key -> post for rewritten posts that are not where they were rewritten: the one post among
    `candidates` (posts without records of their own) holding exactly the bytes one of the
    key's rewrites wrote. A post moved without its cache is found so, unless edited since."""
    key_of_after: dict[str, str | None] = {}
    for key in missing:
        for generation in manifest.generations_of(key):
            if generation.after:
                seen = key_of_after.setdefault(generation.after, key)
                key_of_after[generation.after] = key if seen == key else None  # None: ambiguous
    if not key_of_after:
        return {}
    holders: dict[str, list[Path]] = {}
    for path in candidates:
        try:
            digest = sha256_hex(path.read_bytes())
        except OSError:
            continue
        if key_of_after.get(digest):
            holders.setdefault(digest, []).append(path)
    return {
        owner: paths[0]
        for digest, paths in holders.items()
        if len(paths) == 1 and (owner := key_of_after[digest])
    }


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
            reversed_text = reverse_tolerantly(text, generation.edits)
            if reversed_text == text:
                continue
            text = reversed_text
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


def reverse_tolerantly(text: str, edits: Sequence[UndoEdit]) -> str:
    """Reverse one generation's edits (ascending) in a post edited by hand since it was written.

    Each replaced text is looked for where the edits before it say it should be (its offset
    moved as far as the previous edit moved), else at its nearest occurrence after the previous
    edit. When it is nowhere but the old text is, the edit was never written (a killed run) or
    was set back by hand: it is left, and so is the size inserted into its tag. An inserted size
    is looked for only within INSERT_REACH after its tag's reference (the rest of the tag); one
    found nowhere is left. A replaced text found nowhere, old or new, raises CannotUndo."""
    found: list[tuple[int, UndoEdit]] = []
    shift = floor = 0
    written = False  # was the previous edit (an inserted size's reference) found written?
    for edit in edits:
        if not edit.old and not written:
            continue
        located = _locate(text, edit, edit.offset + shift, floor)
        if located is None and edit.old:
            raise CannotUndo(f"the text {edit.new!r} written at offset {edit.offset} is not there")
        if located is None:
            continue
        stands, at = located
        written = stands == "new"
        if written:
            found.append((at, edit))
        shift = at - edit.offset + (0 if written else len(edit.old) - len(edit.new))
        floor = at + len(edit.new if written else edit.old)
    for at, edit in reversed(found):
        text = text[:at] + edit.old + text[at + len(edit.new) :]
    return text


def _locate(text: str, edit: UndoEdit, expected: int, floor: int) -> tuple[str, int] | None:
    """("new", where the edit's new text stands) or ("old", where its old text stands instead):
    at `expected`, else the occurrence nearest to it after `floor`; None when neither is."""
    if expected >= floor and text.startswith(edit.new, expected):
        return "new", expected
    if edit.old and expected >= floor and text.startswith(edit.old, expected):
        return "old", expected
    reach = len(text) if edit.old else INSERT_REACH
    if (at := _nearest(text, edit.new, expected, floor, floor + reach)) is not None:
        return "new", at
    if edit.old and (at := _nearest(text, edit.old, expected, floor, len(text))) is not None:
        return "old", at
    return None


INSERT_REACH = 500  # how far after the previous edit an inserted size is looked for


def _nearest(text: str, needle: str, near: int, start: int, stop: int) -> int | None:
    """The start of the occurrence of `needle` within text[start:stop] closest to `near`."""
    best: int | None = None
    at = text.find(needle, start, stop)
    while at != -1:
        if best is None or abs(at - near) < abs(best - near):
            best = at
        at = text.find(needle, at + 1, stop)
    return best


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


def missing_message(missing: Sequence[str], paths: Sequence[Path], root: Path) -> str:
    where = ", ".join(str(p) for p in paths)
    return (
        f"{len(missing)} rewritten post(s) recorded for --undo are neither under {where} nor "
        f"where they were rewritten (first: {root / missing[0]}); run `mediatool rewrite --undo` "
        "on the folder that holds them now, with --cache at this cache (keys are relative to "
        f"the folder holding the cache, {root}), or restore deleted ones from version control."
    )
