"""What downloaded bytes are, judged by their first bytes, never by Content-Type or extension."""

from __future__ import annotations

import re

SNIFF_BYTES = 4096  # enough for an SVG behind an XML declaration, comments and a doctype

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_PROLOG = re.compile(r"\s*(<\?xml.*?\?>|<!--.*?-->|<!doctype\s[^\[>]*(\[.*?\])?\s*>)", re.I | re.S)
_HTML_STARTS = ("<html", "<head", "<body", "<meta", "<title", "<script", "<div", "<p>", "<br")
_CONTROL = set(range(0, 32)) - {9, 10, 12, 13}


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
