"""What downloaded bytes are, judged by their first bytes, never by Content-Type or extension.

`image_kind` names an image format; `media_kind` names a media file stored as a plain asset
(no decoding, no hash but sha256, no thumbnail) with its category: video, audio or document."""

from __future__ import annotations

import re

SNIFF_BYTES = 4096  # enough for an SVG behind an XML declaration, comments and a doctype

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_PROLOG = re.compile(r"\s*(<\?xml.*?\?>|<!--.*?-->|<!doctype\s[^\[>]*(\[.*?\])?\s*>)", re.I | re.S)
_HTML_STARTS = ("<html", "<head", "<body", "<meta", "<title", "<script", "<div", "<p>", "<br")
_CONTROL = set(range(0, 32)) - {9, 10, 12, 13}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_VIDEO_BRANDS = {
    *(b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1"),
    *(b"dash", b"M4V ", b"M4VH", b"M4VP", b"qt  ", b"3gp4", b"3gp5", b"3gp6", b"3g2a"),
    *(b"mmp4", b"MSNV", b"NDAS", b"f4v ", b"av01"),
}
_WEBVTT = re.compile(rb"^(\xef\xbb\xbf)?WEBVTT([ \t\r\n]|$)")

# Categories of what is stored, each with its own fetch.max_bytes.
IMAGE, VIDEO, AUDIO, DOCUMENT = "image", "video", "audio", "document"
CATEGORIES = (IMAGE, VIDEO, AUDIO, DOCUMENT)


def image_kind(head: bytes) -> str | None:
    """The image format of bytes that start with `head`, or None if they are not an image."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\0\0\0\0":
        return "bmp"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "tiff"
    if head[:4] == b"\0\0\1\0" and head[4:6] not in (b"", b"\0\0"):
        return "ico"
    return _iso_image_kind(head) or ("svg" if _is_svg(head) else None)


def content_kind(head: bytes) -> tuple[str, str] | None:
    """(category, format) of bytes that start with `head`: ("image", "png"), ("video", "mp4")...
    or None when they are neither an image nor a media file mediatool stores."""
    image = image_kind(head)
    return (IMAGE, image) if image is not None else media_kind(head)


def media_kind(head: bytes) -> tuple[str, str] | None:
    """(category, format) of a media file stored as a plain asset, e.g. ("video", "mp4"), or
    None. Images are not media here: ask `image_kind` first (AVIF and HEIF are ISO files too)."""
    brands = _ftyp_brands(head)
    if brands:
        return _iso_media_kind(brands)
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or its WebM profile
        return (VIDEO, "webm") if b"webm" in head[:64] else (VIDEO, "mkv")
    if head.startswith(b"OggS"):
        return (VIDEO, "ogv") if b"\x80theora" in head else (AUDIO, "ogg")
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return AUDIO, "mp3"
    if head.startswith(b"%PDF-"):
        return DOCUMENT, "pdf"
    if _WEBVTT.match(head):
        return DOCUMENT, "vtt"
    return None


def category_of(fmt: str) -> str:
    """The category of a format `image_kind` or `media_kind` named ("" counts as an image)."""
    return _MEDIA_CATEGORIES.get(fmt, IMAGE)


_MEDIA_CATEGORIES = {
    **dict.fromkeys(("mp4", "webm", "mkv", "ogv", "mov"), VIDEO),
    **dict.fromkeys(("mp3", "m4a", "ogg"), AUDIO),
    **dict.fromkeys(("pdf", "vtt"), DOCUMENT),
}


def _iso_media_kind(brands: list[bytes]) -> tuple[str, str] | None:
    if set(brands) & _AUDIO_BRANDS:
        return AUDIO, "m4a"
    if brands[0] == b"qt  ":
        return VIDEO, "mov"
    if set(brands) & _VIDEO_BRANDS:
        return VIDEO, "mp4"
    return None


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a version, a layer and a bitrate that exist."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def describe(head: bytes) -> str:
    """What bytes that are not an image look like, for a message: "HTML", "JSON", "text"..."""
    if not head:
        return "nothing"
    brands = _ftyp_brands(head)
    if brands:
        return f"ISO media ({brands[0].decode('ascii', 'replace')}), not an image"
    for magic, name in ((b"%PDF", "PDF"), (b"PK\3\4", "a ZIP archive"), (b"\x1f\x8b", "gzip data")):
        if head.startswith(magic):
            return name
    text = _as_text(head)
    if text is None:
        return "binary data"
    start = _skip_prolog(text).lower()
    if text.lstrip().lower().startswith("<!doctype html") or start.startswith(_HTML_STARTS):
        return "HTML"
    if "<html" in start[:2000]:
        return "HTML"
    if start.startswith("<"):
        return "XML"
    if start.startswith(("{", "[")):
        return "JSON"
    return "text"


def _ftyp_brands(head: bytes) -> list[bytes]:
    if head[4:8] != b"ftyp" or len(head) < 12:
        return []
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    return [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]


def _iso_image_kind(head: bytes) -> str | None:
    brands = set(_ftyp_brands(head))
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIF_BRANDS:
        return "heif"
    return None


def _as_text(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", "ignore")
    if sum(byte in _CONTROL for byte in head) > len(head) // 20:
        return None
    return head.decode("utf-8", "replace").removeprefix("\ufeff")


def _skip_prolog(text: str) -> str:
    position = 0
    while match := _PROLOG.match(text, position):
        position = match.end()
    return text[position:].lstrip()


def _is_svg(head: bytes) -> bool:
    text = _as_text(head)
    return text is not None and _skip_prolog(text).startswith("<svg")
