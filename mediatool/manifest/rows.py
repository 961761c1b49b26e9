"""The small frozen rows the manifest hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple


@dataclass(frozen=True, slots=True)
class PostState:
    """What the manifest remembers of a post file, to skip re-scanning it."""

    size: int
    mtime_ns: int
    fingerprint: str


class RecordedPost(NamedTuple):
    """A post as its last scan left it: its state (as in PostState), and the problem lines
    that scan said (said again, unread, while the post does not change). A tuple, as ten
    thousand of them are read at once."""

    size: int
    mtime_ns: int
    fingerprint: str
    problems: tuple[str, ...] = ()

    def same(self, size: int | None, mtime_ns: int | None, fingerprint: str) -> bool:
        """Whether the post's state now is the one recorded."""
        return (self.size, self.mtime_ns, self.fingerprint) == (size, mtime_ns, fingerprint)


@dataclass(frozen=True, slots=True)
class Localization:
    """Where a fetched origin URL lives in the cache."""

    origin_url: str
    relpath: str  # the canonical original
    width: int
    height: int
    thumb_relpath: str | None  # the largest thumbnail of the canonical, if any


@dataclass(frozen=True, slots=True)
class ImageRow:
    """A stored original as the report shows it."""

    sha256: str
    relpath: str
    thumb_relpath: str | None
    width: int
    height: int
    bytes: int
    format: str
    canonical: str
    post_count: int
    notes: tuple[str, ...]


ImageFilter = Literal["grouped", "boilerplate", "mismatched"]  # the report's image queries


@dataclass(frozen=True, slots=True)
class UrlStatus:
    origin_url: str
    status: str
    reason: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class FetchedPost:
    """A post as fetch last scanned it."""

    key: str
    size: int
    mtime_ns: int
    sha256: str | None  # None in manifests older than schema 5


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A stored original and the thumbnails made of it."""

    sha256: str
    relpath: str
    canonical: str | None
    thumbs: tuple[str, ...]
