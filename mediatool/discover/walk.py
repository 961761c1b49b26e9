"""Finding the post files below the paths a command is given (no parsing: see `read_post`).

One `os.scandir` pass per folder: each post comes with its resolved path (its folder's real
path joined with its name; only symbolic links are resolved on their own) and, when asked, its
size and mtime from one `stat`, so `fetch` need not stat or resolve any post again. Paths are
kept as text (`PostFile.name`, `PostFile.real`) until a caller asks for a `Path`: building
ten thousand of them is most of the cost of a walk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediatool.config import POST_SUFFIXES
from mediatool.errors import UsageError


@dataclass(frozen=True, slots=True)
class PostFile:
    """A post as found: its path as given or below a given folder (`name`, as `str(path)`),
    its resolved path (`real`), and its size and mtime (None when it could not be stat'ed, or
    stat was not asked for)."""

    name: str
    real: str
    size: int | None = None
    mtime_ns: int | None = None

    @property
    def path(self) -> Path:
        return Path(self.name)

    @property
    def resolved(self) -> Path:
        return Path(self.real)


def find_posts(paths: Sequence[Path], exclude: Sequence[Path] = ()) -> list[Path]:
    """The post files named by `paths`, sorted and deduplicated.

    A file is taken whatever its suffix; a folder is searched recursively for POST_SUFFIXES
    (any case), skipping hidden folders and files and anything under an `exclude` folder.
    A path that does not exist is a UsageError."""
    return [post.path for post in find_post_files(paths, exclude)]


def find_posts_resolved(paths: Sequence[Path], exclude: Sequence[Path] = ()) -> dict[Path, Path]:
    """Like `find_posts`, as {post path as found: its resolved path}, in the same order, so a
    caller need not resolve each post again (resolving is most of the cost of finding)."""
    return {post.path: post.resolved for post in find_post_files(paths, exclude)}


def find_post_files(
    paths: Sequence[Path], exclude: Sequence[Path] = (), *, with_stat: bool = False
) -> list[PostFile]:
    """Like `find_posts`, each post as a `PostFile` (with its size and mtime if `with_stat`),
    sorted by path; a post found twice (through a link) is kept once, by its first path."""
    excluded = [folder.resolve() for folder in exclude]
    posts: dict[str, PostFile] = {}
    for path in paths:
        if path.is_dir():
            found: Iterator[PostFile] = _walk(path, excluded, with_stat)
        elif path.exists():
            found = _single(path, excluded, with_stat)
        else:
            raise UsageError(f"{path}: no such file or folder; check the path.")
        for post in found:
            posts.setdefault(post.real, post)
    return sorted(posts.values(), key=lambda post: _parts(post.name))


def _parts(name: str) -> tuple[str, ...]:
    """The parts of a normalized path text, as `Path.parts` gives them: sorting by these sorts
    as paths sort."""
    if name.startswith(os.sep):
        return (os.sep, *name[1:].split(os.sep))
    return tuple(name.split(os.sep))


def _walk(root: Path, excluded: Sequence[Path], with_stat: bool) -> Iterator[PostFile]:
    """Each post below `root` but not under `excluded`, in sorted order (hidden names skipped,
    symbolic links to folders not followed, folders that cannot be listed skipped, as os.walk
    does). Only a post that is a symbolic link is checked against `excluded` on its own: the
    folders are checked as they are entered. Names are as `str(Path)` gives them ("a.md", not
    "./a.md", below ".")."""
    real_root = root.resolve()
    if _is_under(real_root, excluded):
        return
    shown_root = str(root)
    folders = [(shown_root, "" if shown_root == "." else shown_root, str(real_root))]
    while folders:
        folder, shown, real = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name, real_name = _join(shown, entry.name), _join(real, entry.name)
            if _is_folder(entry):
                if not entry.is_symlink() and not (
                    excluded and _is_under(Path(real_name), excluded)
                ):
                    subfolders.append((entry.path, name, real_name))
            elif os.path.splitext(entry.name)[1].lower() in POST_SUFFIXES:
                post = _entry_post(entry, name, real_name, with_stat)
                if not entry.is_symlink() or not _is_under(Path(post.real), excluded):
                    yield post
        folders.extend(reversed(subfolders))


def _join(folder: str, name: str) -> str:
    """`name` in `folder`, as `str(Path(folder, name))` spells it ("" is the current folder)."""
    if not folder:
        return name
    return folder + name if folder.endswith(os.sep) else folder + os.sep + name


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _entry_post(entry: os.DirEntry[str], name: str, real: str, with_stat: bool) -> PostFile:
    if entry.is_symlink():
        real = str(Path(entry.path).resolve())
    if not with_stat:
        return PostFile(name, real)
    try:
        stat = entry.stat()
    except OSError:
        return PostFile(name, real)
    return PostFile(name, real, stat.st_size, stat.st_mtime_ns)


def _single(path: Path, excluded: Sequence[Path], with_stat: bool) -> Iterator[PostFile]:
    """A post named by its own path (taken whatever its suffix), unless under `excluded`."""
    resolved = path.resolve()
    if _is_under(resolved, excluded):
        return
    name, real = str(path), str(resolved)
    if not with_stat:
        yield PostFile(name, real)
        return
    try:
        stat = path.stat()
    except OSError:
        yield PostFile(name, real)
        return
    yield PostFile(name, real, stat.st_size, stat.st_mtime_ns)


def _is_under(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == folder or path.is_relative_to(folder) for folder in folders)
