"""Text helpers shared by the discover parts: decoding, offsets, URL judgement, references."""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html.entities import html5 as HTML5_ENTITIES
from pathlib import Path

from mediatool.errors import PostError
from mediatool.models import DeclaredSize, Reference, RefKind, Span

HTML_SPACE = " \t\n\r\f"
IMAGE_EXTENSION = re.compile(
    r"\.(?:jpe?g|png|gif|webp|avif|bmp|svg|tiff?|awebp)(?=$|[?#!])", re.IGNORECASE
)
# Links (a@href, markdown-link) and <object>/<embed> count when they name one of these files.
MEDIA_EXTENSIONS = {
    "video": ("mp4", "m4v", "webm", "ogv", "mov"),
    "audio": ("mp3", "m4a", "ogg", "oga", "opus", "wav", "flac", "aac"),
    "document": ("pdf",),
    "track": ("vtt",),
}
_CHARREF = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_GB_PLAUSIBLE_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class Found:
    """A reference before it is checked and dressed: offsets, context and the decoded URL."""

    context: str
    start: int
    end: int
    source: str  # the URL as the post means it, before whitespace stripping and `//` fixing
    declared: DeclaredSize | None = None
    size_insert_at: int | None = None
    media: str = "image"  # "image", "video", "audio", "document", "track"


class LineIndex:
    """Maps character offsets to 1-based (line, column); lines end at "\\n" (CRLF counts once)."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def offset(self, line: int, column0: int) -> int:
        """The offset of a 1-based line and a 0-based column (HTMLParser's getpos())."""
        return self.starts[line - 1] + column0

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based line and column of `offset`."""
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1


def blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with every character of `spans` except line breaks turned into a space.

    Offsets and line numbers stay valid, and nothing inside a span can be mistaken for markup."""
    pieces: list[str] = []
    last = 0
    for start, end in sorted(spans):
        start = max(start, last)
        if end <= start:
            continue
        pieces.append(text[last:start])
        pieces.append(re.sub(r"[^\r\n]", " ", text[start:end]))
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def unescape_attribute(value: str) -> str:
    """Decode character references the way browsers do inside an HTML attribute value.

    A legacy named reference without ";" (`&copy`) is left alone when "=" or a letter or digit
    follows it, so query strings such as `?a=1&copy=2` keep their meaning."""

    def decode(match: re.Match[str]) -> str:
        ref = match.group(0)
        if ref.endswith(";") or ref.startswith("&#"):
            return html.unescape(ref)
        following = value[match.end() : match.end() + 1]
        if ref[1:] in HTML5_ENTITIES and following != "=":
            return HTML5_ENTITIES[ref[1:]]
        return ref

    return _CHARREF.sub(decode, value) if "&" in value else value


def unescape_markdown(value: str) -> str:
    """Decode a CommonMark link destination: backslash escapes and ";"-terminated references."""
    value = _MD_ESCAPE.sub(r"\1", value)
    return re.sub(r"&#?[A-Za-z0-9]+;", lambda m: html.unescape(m.group(0)), value)


def normalize_url(source: str) -> str:
    """Strip surrounding whitespace and give a protocol-relative URL the https: scheme."""
    url = source.strip()
    return "https:" + url if url.startswith("//") else url


def kind_of(url: str) -> RefKind:
    """REMOTE for http(s), DATA for data:, LOCAL for everything else (left alone)."""
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        return RefKind.REMOTE
    if lowered.startswith("data:"):
        return RefKind.DATA
    return RefKind.LOCAL


def looks_like_image(url: str) -> bool:
    """True when the URL names an image file by extension (before the end, "?", "#" or "!")."""
    return IMAGE_EXTENSION.search(url) is not None


def media_by_extension(url: str) -> str | None:
    """ "video", "audio", "document" or "track" when the URL's path names such a file, else None."""
    name = url.split("#", 1)[0].split("?", 1)[0].rsplit("/", 1)[-1]
    if "." not in name:
        return None
    extension = name.rsplit(".", 1)[1].lower()
    return next((m for m, names in MEDIA_EXTENSIONS.items() if extension in names), None)


def names_media(url: str) -> bool:
    """True when the URL names an image or a media file by extension."""
    return looks_like_image(url) or media_by_extension(url) is not None


def build_references(text: str, found: Sequence[Found]) -> tuple[Reference, ...]:
    """Dress `found` as References sorted by offset, dropping empty URLs."""
    lines = LineIndex(text)
    references = []
    for item in sorted(found, key=lambda f: (f.start, f.end, f.context)):
        url = normalize_url(item.source)
        if not url or item.end <= item.start:
            continue
        line, column = lines.position(item.start)
        references.append(
            Reference(
                context=item.context,
                raw=text[item.start : item.end],
                source_url=url,
                span=Span(item.start, item.end),
                line=line,
                column=column,
                kind=kind_of(url),
                declared=item.declared,
                size_insert_at=item.size_insert_at,
                media=item.media,
            )
        )
    return tuple(references)


def decode_post(data: bytes, path: Path) -> tuple[str, str]:
    """The text of a post and the codec that gives back `data` exactly.

    UTF-8 first (plain "utf-8", so a BOM stays in the text as U+FEFF); then GB18030 when it
    decodes strictly, round-trips, and reads as Chinese (see `_plausibly_chinese`)."""
    if b"\x00" in data:
        raise PostError(
            "binary",
            f"{path}: holds NUL bytes, so it is not a text post; move it out of the archive.",
        )
    for codec in ("utf-8", "gb18030"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if text.encode(codec) != data:
            continue
        if codec == "utf-8" or _plausibly_chinese(text):
            return text, codec
    raise PostError(
        "encoding",
        f"{path}: is neither UTF-8 nor GB18030 text; convert it to UTF-8 (iconv) and run again.",
    )


def _plausibly_chinese(text: str) -> bool:
    """At least 80 % of the non-ASCII characters lie in GB2312, the common simplified-Chinese set.

    Latin-1 or random bytes that happen to decode as GB18030 land mostly in GBK's rare extension
    rows or in four-byte sequences, which GB2312 does not hold."""
    non_ascii = [ch for ch in text if ord(ch) > 0x7F]
    if not non_ascii:
        return False
    common = sum(1 for ch in non_ascii if _in_gb2312(ch))
    return common >= _GB_PLAUSIBLE_SHARE * len(non_ascii)


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def region_test(regions: Sequence[tuple[int, int]]) -> Callable[[int], bool]:
    """A test for "offset lies inside one of `regions`" (regions may overlap)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(regions):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    starts = [start for start, _ in merged]

    def inside(offset: int) -> bool:
        index = bisect.bisect_right(starts, offset) - 1
        return index >= 0 and offset < merged[index][1]

    return inside
