"""The content-addressed store under the cache folder, and the one owner of its layout.

Everyone asks this module where a stored file lives (`original_relpath`, `thumb_relpath`) and
whether a path points into the store (`parse_relpath`, `find_relpath`); nobody else spells the
layout. `MediaStore` is the protocol the pipeline uses; `Store` (folders on a local file system)
is its first implementation, the seam an object store plugs into.

<cache>/originals/ab/cd/<sha256>.<ext>    write-once originals, named by their bytes
<cache>/thumbs/ab/<sha256>-<w>x<h>.<ext>  derived thumbnails (rebuildable)
<cache>/tmp/                              downloads in progress (.part files)
<cache>/manifest.sqlite                   what is known of posts, references, URLs, images
                                          (or the file --manifest names: one per CI shard)
<cache>/lock                              held by the run writing to the cache (mediatool.lock)

In a static site (mediatool.site) the store is split: originals and thumbnails under the
published media folder (`root`), tmp/ and manifest.sqlite under the private state folder
(`state_dir`, e.g. .mediatool/), which must be on the same file system (downloads are renamed
from tmp/ into place).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mediatool.errors import CacheNotWritable
from mediatool.files import publish, remove_stale_temp_files

ORIGINALS = "originals"
THUMBS = "thumbs"
SHARDS = 1 << 16  # originals/ab/cd: the first four hex digits of the sha256
THUMB_SHARDS = 1 << 8  # thumbs/ab
TEMP = "tmp"
MANIFEST = "manifest.sqlite"

# File extension for each format the fetcher sniffs or Pillow names.
EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
    "ICO": "ico",
    "AVIF": "avif",
    "HEIF": "heic",
    "SVG": "svg",
    "MPO": "jpg",
}
KIND_EXTENSIONS = {kind.lower(): ext for kind, ext in EXTENSIONS.items()} | {"tiff": "tif"}
# Media files (fetch.sniff.media_kind), stored as plain assets.
KIND_EXTENSIONS |= {
    fmt: fmt for fmt in ("mp4", "webm", "mkv", "ogv", "mov", "mp3", "m4a", "ogg", "pdf", "vtt")
}


class ShardFolders:
    """The shard folders of a store known to exist (`files.publish`'s `known_folders`): one
    byte per possible shard (originals/ab/cd: 65,536; thumbs/ab: 256), not an object per
    folder, so a run that fills every shard holds 64 KiB from start to end. Other folders are
    never known (made each time)."""

    def __init__(self) -> None:
        self._made = bytearray(SHARDS + THUMB_SHARDS)

    def __contains__(self, folder: object) -> bool:
        index = _shard_index(folder) if isinstance(folder, Path) else None
        return index is not None and bool(self._made[index])

    def add(self, folder: Path) -> None:
        index = _shard_index(folder)
        if index is not None:
            self._made[index] = 1


def _shard_index(folder: Path) -> int | None:
    """The shard number of originals/ab/cd (0..65535) or of thumbs/ab (65536..), else None."""
    parent, name = folder.parent.name, folder.name
    try:
        if folder.parent.parent.name == ORIGINALS and len(parent) == len(name) == 2:
            return int(parent + name, 16)
        if parent == THUMBS and len(name) == 2:
            return SHARDS + int(name, 16)
    except ValueError:
        return None
    return None


def original_relpath(sha256: str, ext: str) -> str:
    """Where an original lives inside the store, with forward slashes:
    "originals/ab/cd/<sha256>.<ext>"."""
    return f"{ORIGINALS}/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


def thumb_relpath(sha256: str, width: int, height: int, ext: str) -> str:
    """Where a thumbnail lives inside the store: "thumbs/ab/<sha256>-<w>x<h>.<ext>"."""
    return f"{THUMBS}/{sha256[:2]}/{sha256}-{width}x{height}.{ext}"


@dataclass(frozen=True, slots=True)
class StoredPath:
    """A path inside the store, recognised: the original's sha256 and whether it names a
    thumbnail of it."""

    sha256: str
    relpath: str
    thumbnail: bool


_SHA = "[0-9a-f]{64}"
_ORIGINAL = rf"{ORIGINALS}/[0-9a-f]{{2}}/[0-9a-f]{{2}}/(?P<original>{_SHA})\.\w+"
_THUMB = rf"{THUMBS}/[0-9a-f]{{2}}/(?P<thumb>{_SHA})-\d+x\d+\.\w+"
_STORED = re.compile(rf"{_ORIGINAL}|{_THUMB}")


def parse_relpath(relpath: str) -> StoredPath | None:
    """What a path inside the store names (None when it is no store path)."""
    match = _STORED.fullmatch(relpath)
    return _stored_path(match) if match else None


def find_relpath(text: str) -> StoredPath | None:
    """The first store path inside `text` (e.g. an URL below a --base-url, or a relative link)."""
    match = _STORED.search(text)
    return _stored_path(match) if match else None


def _stored_path(match: re.Match[str]) -> StoredPath:
    thumb = match.group("thumb")
    return StoredPath(thumb or match.group("original"), match.group(), thumbnail=bool(thumb))


def extension_of(kind: str) -> str:
    """The file extension for an image kind the fetcher sniffed (fetch.sniff.image_kind)."""
    return KIND_EXTENSIONS.get(kind, "bin")


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to the disk."""
    _fsync(path, os.O_RDONLY)


def fsync_folder(path: Path) -> None:
    """Flush a folder's entries (names renamed or created in it) to the disk."""
    _fsync(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MediaStore(Protocol):
    """What the pipeline needs of a store of originals and thumbnails (by relpath). `root` is
    the local folder the relpaths are below: links relative to a post point into it, and
    analysis writes new thumbnails under it (`put_thumbnails` then stores them). `state_dir`
    is the local folder of the run's lock and temp files.

    Implementations: `Store` (folders, below) and `store_s3.S3Store` (an S3 bucket)."""

    root: Path
    state_dir: Path

    @property
    def temp_dir(self) -> Path: ...

    @property
    def manifest_path(self) -> Path: ...

    def prepare(self) -> None: ...

    def has(self, relpath: str) -> bool: ...

    def size(self, relpath: str) -> int: ...

    def put_original(self, temp_path: Path, sha256: str, ext: str) -> str: ...

    def keep(self, temp_path: Path, sha256: str, kind: str) -> str: ...

    def local_copy(self, relpath: str) -> Path: ...

    def release(self, relpath: str) -> None: ...

    def put_thumbnails(self, relpaths: Iterable[str], *, replace: bool) -> None: ...

    def verify(self, relpath: str, sha256: str) -> bool: ...

    def delete(self, relpath: str) -> None: ...


class Store:
    """The folder store (a MediaStore): originals by sha256, thumbnails beside them, a temp
    folder on the same file system."""

    def __init__(
        self, root: Path, state_dir: Path | None = None, manifest: Path | None = None
    ) -> None:
        self.root = root
        self.state_dir = state_dir or root  # manifest and temp files: see the module docstring
        self._manifest = manifest  # another manifest file (--manifest), e.g. one per CI shard
        self._folders = ShardFolders()  # shard folders known to exist (fewer mkdir calls)

    @property
    def temp_dir(self) -> Path:
        return self.state_dir / TEMP

    @property
    def manifest_path(self) -> Path:
        """The manifest file: the one given (--manifest), else manifest.sqlite in the state
        folder."""
        return self._manifest or self.state_dir / MANIFEST

    def prepare(self) -> None:
        """Create the folders, check they are writable, drop .part files of killed runs."""
        try:
            folders = (self.root / ORIGINALS, self.root / THUMBS, self.temp_dir)
            for folder in (*folders, self.manifest_path.parent):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.temp_dir / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise CacheNotWritable(
                f"{self.root}: cache folder is not writable ({exc.strerror}); "
                "choose another with --cache or fix its permissions."
            ) from exc
        remove_stale_temp_files(self.temp_dir)
        if self.state_dir != self.root:  # a published media folder: no half-written thumbnail
            remove_stale_temp_files(self.root / THUMBS)

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def has(self, relpath: str) -> bool:
        return (self.root / relpath).is_file()

    def put_original(self, temp_path: Path, sha256: str, ext: str) -> str:
        """Move a finished download into the store; identical bytes are stored once.

        Durable before the manifest records it: the file's bytes are synced before the rename
        and its folder after (a new shard folder's parents too), so a power loss never leaves
        an original that is empty or missing while the manifest names it. Returns its relpath."""
        relpath = original_relpath(sha256, ext)
        final = self.root / relpath
        try:
            stored = final.stat().st_size == temp_path.stat().st_size
        except FileNotFoundError:
            stored = False
        if stored:
            temp_path.unlink(missing_ok=True)
            return relpath
        new_folder = final.parent not in self._folders
        fsync_file(temp_path)
        publish(temp_path, final, known_folders=self._folders)
        fsync_folder(final.parent)
        if new_folder:  # the shard folders may have been made just now
            fsync_folder(final.parent.parent)
            fsync_folder(final.parent.parent.parent)
        return relpath

    def keep(self, temp_path: Path, sha256: str, kind: str) -> str:
        """`put_original` for a download whose kind the fetcher sniffed (Fetcher's `keep`)."""
        return self.put_original(temp_path, sha256, extension_of(kind))

    def verify(self, relpath: str, sha256: str) -> bool:
        """True when the stored file exists and still has the bytes it is named for."""
        path = self.root / relpath
        return path.is_file() and sha256_of_file(path) == sha256

    def size(self, relpath: str) -> int:
        """The stored file's size in bytes (0 when it is missing)."""
        try:
            return (self.root / relpath).stat().st_size
        except OSError:
            return 0

    def local_copy(self, relpath: str) -> Path:
        """A local file with the stored bytes, for analysis: the stored file itself."""
        return self.root / relpath

    def release(self, relpath: str) -> None:
        """Done with `local_copy(relpath)`: nothing to drop, it is the stored file."""

    def put_thumbnails(self, relpaths: Iterable[str], *, replace: bool) -> None:
        """Thumbnails analysis wrote under `root` are already in place."""

    def delete(self, relpath: str) -> None:
        """Remove a stored file (gone already is fine)."""
        (self.root / relpath).unlink(missing_ok=True)
