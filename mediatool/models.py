"""The small frozen values that the pipeline's stages pass to each other.

Naming: `source_url` is an URL as the post means it (entities decoded, `//` given a scheme);
`raw` is the exact text in the post; `origin_url` is the URL after every proxy layer is unwrapped;
`sha256` is an image's identity; `phash` its perceptual hash (16 hex digits).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class RefKind(StrEnum):
    """What a reference points at."""

    REMOTE = "remote"  # http(s):// or protocol-relative: mediatool can fetch it
    LOCAL = "local"  # relative, root-relative or file path: inside the site, left alone
    DATA = "data"  # data: URL, nothing to fetch


@dataclass(frozen=True, slots=True)
class Span:
    """Character offsets [start, end) in a post's decoded text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class DeclaredSize:
    """A size the post declares for an image, and the attribute it came from."""

    width: int | None
    height: int | None
    source: str  # "data-size", "data-img-size-val", "data-width", "width", ...


@dataclass(frozen=True, slots=True)
class Reference:
    """One occurrence of an image URL in an image position of a post."""

    context: str  # "img@src", "img@srcset", "markdown", "frontmatter:thumbnail", "a@href", ...
    raw: str  # exact text at `span`
    source_url: str
    span: Span
    line: int  # 1-based
    column: int  # 1-based, in characters
    kind: RefKind
    declared: DeclaredSize | None = None
    # For an <img> that has no width/height attributes: where ' width="W" height="H"' may be
    # inserted (an offset in the text), else None. References of one tag share the value.
    size_insert_at: int | None = None
    media: str = "image"  # what it is: "image", "video", "audio", "document" or "track"


@dataclass(frozen=True, slots=True)
class PostScan:
    """A post as discover read it."""

    path: Path
    encoding: str  # the codec that decodes the bytes and re-encodes them unchanged
    text: str
    references: tuple[Reference, ...]
    problems: tuple[str, ...] = ()  # one-line messages; the post was still scanned
    date: str | None = None  # the front matter's `date:` as written, for --wayback


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where an URL really points, and what to try, in order."""

    source_url: str
    origin_url: str
    candidates: tuple[str, ...]  # origin first, then the proxied forms, outermost last
    rules: tuple[str, ...]  # names of the rules that unwrapped a layer, outermost first


@dataclass(frozen=True, slots=True)
class FetchJob:
    """One origin URL to fetch, with every URL that may serve it."""

    origin_url: str
    candidates: tuple[str, ...]
    etag: str | None = None  # set for --refresh revalidation
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Download:
    """A fetch that succeeded: the body sits in `temp_path`, or, when the Fetcher was given a
    `keep` function (the store's), it is already kept at `relpath` and `temp_path` is gone."""

    origin_url: str
    fetched_url: str  # the candidate that answered (before redirects)
    final_url: str  # after redirects
    temp_path: Path
    sha256: str
    size: int
    content_type: str | None
    etag: str | None
    last_modified: str | None
    redirects: tuple[str, ...] = ()
    kind: str = ""  # the image format its first bytes show ("jpeg", "png", "svg", ...)
    relpath: str = ""  # where `keep` put it (inside the cache folder), "" when not kept
    notes: tuple[str, ...] = ()  # what was done to the bytes, e.g. an SVG sanitized
    category: str = "image"  # image, video, audio or document (media are plain assets)
    cache_control: str | None = None  # the Cache-Control header sent with it (fetch.policy)
    expires: str | None = None  # the Expires header sent with it


@dataclass(frozen=True, slots=True)
class NotModified:
    """A --refresh revalidation that the server answered with 304 (with the caching headers
    it sent, which replace the recorded ones: RFC 9111 4.3.4)."""

    origin_url: str
    fetched_url: str
    cache_control: str | None = None
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """A fetch that failed for every candidate."""

    origin_url: str
    reason: str  # short code, see errors.py
    message: str  # one line for humans, naming the URL and what to do
    attempts: tuple[str, ...] = ()  # "candidate -> reason" for each candidate tried
    limit: int | None = None  # the limit that refused it (fetch.max_bytes for too_large)
    limit_kind: str | None = None  # whose limit: "video"... (None: the largest); svg policy


FetchOutcome = Download | NotModified | FetchFailure


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """A derived, smaller copy of an original."""

    sha256: str  # of the original
    width: int
    height: int
    relpath: str  # path inside the cache folder, with forward slashes


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What mediatool knows of one stored original."""

    sha256: str
    format: str  # Pillow's name: JPEG, PNG, GIF, WEBP, ...
    width: int
    height: int
    bytes: int
    phash: str  # 16 hex digits (64-bit imagehash.phash)
    dhash: str = ""  # 16 hex digits (64-bit imagehash.dhash); confirms phash near-duplicates
    flat: bool = False  # near-blank (low pixel variance): never grouped as a near-duplicate
    grey: builtins.bytes = (
        b""  # 32x32 grey pixels (dedup.grey_of): confirms cropped near-duplicates
    )


@dataclass(frozen=True, slots=True)
class AnalyzeJob:
    """CPU work for one stored original: hash it and make its thumbnails in one decode."""

    sha256: str
    path: Path  # the original in the store
    cache_root: Path
    declared: tuple[DeclaredSize, ...] = ()
    rewrite_thumbnails: bool = False  # thumbs --rebuild: replace existing ones (new settings)


@dataclass(frozen=True, slots=True)
class Analysis:
    """The result of an AnalyzeJob."""

    info: ImageInfo
    thumbnails: tuple[Thumbnail, ...]
    notes: tuple[str, ...] = ()  # e.g. declared-size mismatches
