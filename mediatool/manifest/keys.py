"""How the manifest names posts: keys relative to the archive root."""

from __future__ import annotations

from pathlib import Path


def archive_root(cache_dir: Path) -> Path:
    """The folder post keys are relative to: the one that holds the cache folder. The cache
    folder itself may be a symlink to another disk; the folder holding that link counts."""
    return cache_dir.absolute().parent.resolve()


def relative_post_key(resolved: Path, root: Path) -> str:
    """How the manifest names a post (given its resolved path): its path relative to the archive
    root when it lies below it, so moving the archive with its cache keeps every key; else its
    absolute path (such keys start with "/" and hold only while the post stays put)."""
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return str(resolved)


def relative_key_text(resolved: str, root: str) -> str:
    """`relative_post_key` on normalized path texts (as `str(path)` gives them), without
    building a Path: the same answer for a POSIX path, at a fraction of the cost."""
    if resolved == root:
        return "."
    prefix = root if root.endswith("/") else root + "/"
    return resolved[len(prefix) :] if resolved.startswith(prefix) else resolved
