"""HTML: the stdlib HTMLParser finds the tags; attribute spans are read from each tag's raw text.

HTMLParser already treats <script> and <style> content as text and skips comments; this module
also ignores tags inside <textarea>. Besides references it reports "regions" (start tags,
comments, <pre>, <code>, <script>, <style>, <textarea>) where Markdown syntax means nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser

from mediatool.discover._liquid import template_span
from mediatool.discover._text import (
    HTML_SPACE,
    Found,
    LineIndex,
    looks_like_image,
    media_by_extension,
    names_media,
    unescape_attribute,
)
from mediatool.discover.table import (
    ANCHOR,
    META,
    META_IMAGE_NAMES,
    AttributeRule,
    Tables,
    component_context,
)
from mediatool.models import DeclaredSize

# The same grammar as html.parser's tagfind_tolerant and attrfind_tolerant (Python 3.11).
_TAG_NAME = re.compile(r"([a-zA-Z][^\t\n\r\f />\x00]*)(?:\s|/(?!>))*")
_ATTRIBUTE = re.compile(
    r"((?<=['\"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*('[^']*'|\"[^\"]*\"|(?!['\"])[^>\s]*))?"
    r"(?:\s|/(?!>))*"
)
_COMMENT_CLOSE = re.compile(r"--!?\s*>")
_CSS_URL = re.compile(
    r"""url\(\s*(?:(?P<q>"|'|&quot;|&\#0*34;|&apos;|&\#0*39;)(?P<quoted>.*?)(?P=q)"""
    r"""|(?P<bare>[^)\s"']*))\s*\)""",
    re.IGNORECASE | re.DOTALL,
)
_LENGTH = re.compile(r"\s*(\d+)(?:\.\d*)?\s*(?:px)?\s*", re.IGNORECASE)
_PAIR = re.compile(r"\s*(\d+)\s*,\s*(\d+)\s*")

# A JSX attribute value that is a string: `{"x.png"}`, `{require('./x.png')}` (.default too).
_JSX_STRING = re.compile(
    r"""\{\s*(?:require\(\s*)?(["'`])([^"'`]*)\1\s*(?:\)(?:\.default)?\s*)?\}"""
)
_REGION_ELEMENTS = ("pre", "code", "script", "style", "textarea")
_MEDIA_PARENTS = ("video", "audio", "picture")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a start tag; offsets are in the post's text."""

    name: str  # lower-cased
    value: str | None  # the raw text between the quotes; None for a bare `onclick`
    value_start: int
    end: int  # after the value and its closing quote


@dataclass(frozen=True, slots=True)
class Tag:
    """A start tag: its lower-cased name, where its name ends, its attributes."""

    name: str
    name_end: int
    attributes: tuple[Attribute, ...]
    raw_name: str = ""  # as written: `Image` in `<Image src="...">` is a component

    @property
    def is_component(self) -> bool:
        """A capitalised tag that is not an HTML element in capitals (`<IMG>`)."""
        return self.raw_name[:1].isupper() and not self.raw_name.isupper()

    def get(self, name: str) -> Attribute | None:
        """The first attribute called `name`, as browsers use it."""
        return next((a for a in self.attributes if a.name == name), None)

    def value(self, name: str) -> str | None:
        """The decoded value of attribute `name`, or None."""
        attribute = self.get(name)
        if attribute is None or attribute.value is None:
            return None
        return unescape_attribute(attribute.value)


@dataclass(slots=True)
class HtmlScan:
    """References found in tags, and the regions where Markdown is not Markdown."""

    found: list[Found] = field(default_factory=list)
    regions: list[tuple[int, int]] = field(default_factory=list)
    comments: list[tuple[int, int]] = field(default_factory=list)  # <!-- ... -->


def scan_html(text: str, tables: Tables) -> HtmlScan:
    """Every reference held in a tag of `text` (which should be blanked outside HTML's reach)."""
    scanner = _Scanner(text, tables)
    scanner.feed(text)
    scanner.close()
    return scanner.result


def parse_tag(raw: str, start: int) -> Tag | None:
    """Read a start tag's raw text (from get_starttag_text) found at offset `start`."""
    name_match = _TAG_NAME.match(raw, 1)
    if name_match is None:
        return None
    attributes = []
    position = name_match.end()
    while position < len(raw):
        match = _ATTRIBUTE.match(raw, position)
        if match is None:
            break
        attributes.append(_attribute(match, start))
        position = match.end()
    name = name_match.group(1)
    return Tag(name.lower(), start + name_match.end(1), tuple(attributes), name)


def _attribute(match: re.Match[str], start: int) -> Attribute:
    name = match.group(1).lower()
    if match.group(2) is None:
        return Attribute(name, None, start + match.end(1), start + match.end(1))
    value, value_start = match.group(3), match.start(3)
    if value[:1] in ("'", '"') and len(value) >= 2 and value[-1] == value[0]:
        value, value_start = value[1:-1], value_start + 1
    return Attribute(name, value, start + value_start, start + match.end(3))


def tag_references(tag: Tag, tables: Tables, parent: str | None = None) -> list[Found]:
    """The references held in one start tag's attributes (not <a href>; see _Scanner).

    `parent` is the enclosing <video>, <audio> or <picture>, for a <source>."""
    declared = declared_size(tag)
    insert_at = None
    if tag.name == "img" and tag.get("width") is None and tag.get("height") is None:
        insert_at = tag.attributes[-1].end if tag.attributes else tag.name_end
    found = []
    for attribute in tag.attributes:
        rule = tables.attribute(tag.name, attribute.name)
        if rule is None:
            continue
        for start, end in _attribute_urls(rule, attribute):
            source = unescape_attribute(attribute_text(attribute, start, end))
            media = _media(rule, tag, source, parent)
            if media is not None:
                found.append(Found(rule.context, start, end, source, declared, insert_at, media))
    if tag.is_component:
        found.extend(_component_references(tag, tables, {f.start for f in found}))
    if tag.name == "meta":
        found.extend(_meta_reference(tag))
    return found


def _meta_reference(tag: Tag) -> list[Found]:
    """`<meta property="og:image" content="...">` and the like: the post's image."""
    says = {(tag.value(name) or "").strip().lower() for name in ("property", "name", "itemprop")}
    if not says & set(META_IMAGE_NAMES):
        return []
    content = single_url(META, tag.get("content"))
    return [content] if content is not None else []


def _anchor_reference(tag: Tag) -> list[Found]:
    """<a href> when it names an image or media file (the <a>'s declared size goes with it)."""
    href = single_url(ANCHOR, tag.get("href"))
    if href is None:
        return []
    media = media_by_extension(href.source)
    if media is None and not looks_like_image(href.source):
        return []
    return [replace(href, declared=declared_size(tag), media=media or "image")]


def _media(rule: AttributeRule, tag: Tag, source: str, parent: str | None) -> str | None:
    """What the URL in `rule`'s attribute is; None when it is nothing mediatool keeps."""
    if rule.media == "parent":
        return parent if parent in ("video", "audio") else "image"
    if rule.media == "type":
        declared = (tag.value("type") or "").split("/", 1)[0].strip().lower()
        if declared in ("image", "video", "audio"):
            return declared
        if declared == "application" and "pdf" in (tag.value("type") or "").lower():
            return "document"
        return _media_by_name(source)
    if rule.media == "extension":
        return _media_by_name(source)
    return rule.media


def _media_by_name(source: str) -> str | None:
    """The media a file name says, or None when it names neither an image nor a media file."""
    return media_by_extension(source) or ("image" if looks_like_image(source) else None)


def _component_references(tag: Tag, tables: Tables, taken: set[int]) -> list[Found]:
    """`<Image imgUrl="...">`: the attributes the component table names (string values only)."""
    found = []
    attributes = [a for a in tag.attributes if a.value is not None]
    for parameter in tables.component(tag.raw_name):
        for attribute in attributes:
            if attribute.name != parameter.name or attribute.value_start in taken:
                continue
            start, end = _component_value(attribute)
            if end <= start:
                continue
            source = unescape_attribute(attribute_text(attribute, start, end))
            if parameter.link and not names_media(source):
                continue
            taken.add(attribute.value_start)
            context = component_context(tag.raw_name, parameter.label)
            media = media_by_extension(source) or "image"
            found.append(Found(context, start, end, source, media=media))
    return found


def _component_value(attribute: Attribute) -> tuple[int, int]:
    """The URL span of a component attribute (see `_url_span`)."""
    assert attribute.value is not None
    start, end = _url_span(attribute.value)
    return attribute.value_start + start, attribute.value_start + end


def _url_span(value: str) -> tuple[int, int]:
    """The URL in an attribute value: the value without white space around it, the string of
    a JSX value (`{"x.png"}`, `{require("./x.png")}`), the path inside a template
    (`template_span`); an empty span for any other `{...}` expression."""
    jsx = _JSX_STRING.fullmatch(value.strip())
    if jsx is not None:
        offset = value.index("{")
        return offset + jsx.start(2), offset + jsx.end(2)
    if value.lstrip().startswith("{") and not value.lstrip().startswith(("{{", "{%")):
        return 0, 0  # an expression, not a string
    return template_span(value, *_trimmed(value, 0, len(value)))


def attribute_text(attribute: Attribute, start: int, end: int) -> str:
    """The raw text of attribute value between two post offsets."""
    assert attribute.value is not None
    return attribute.value[start - attribute.value_start : end - attribute.value_start]


def _attribute_urls(rule: AttributeRule, attribute: Attribute) -> list[tuple[int, int]]:
    """(start, end) of every URL in one attribute value, by the rule's kind."""
    if attribute.value is None:
        return []
    base, value = attribute.value_start, attribute.value
    if rule.kind == "srcset":
        spans = srcset_spans(value)
    elif rule.kind == "style":
        spans = css_url_spans(value)
    else:
        spans = [_url_span(value)]
    return [(base + start, base + end) for start, end in spans if end > start]


def single_url(context: str, attribute: Attribute | None) -> Found | None:
    """The one URL of an attribute such as <a href>, without surrounding whitespace."""
    if attribute is None or attribute.value is None:
        return None
    start, end = template_span(attribute.value, *_trimmed(attribute.value, 0, len(attribute.value)))
    if end <= start:
        return None
    source = unescape_attribute(attribute.value[start:end])
    return Found(context, attribute.value_start + start, attribute.value_start + end, source)


def _trimmed(value: str, start: int, end: int) -> tuple[int, int]:
    """The span [start, end) of `value` without HTML whitespace at either side."""
    while start < end and value[start] in HTML_SPACE:
        start += 1
    while end > start and value[end - 1] in HTML_SPACE:
        end -= 1
    return start, end


def srcset_spans(value: str) -> list[tuple[int, int]]:
    """The URL of each srcset candidate, by the HTML spec's parsing algorithm.

    A URL is a run of non-whitespace (so it may hold commas); trailing commas end the candidate;
    otherwise descriptors follow up to the next comma outside parentheses."""
    spans: list[tuple[int, int]] = []
    position = 0
    while True:
        while position < len(value) and value[position] in HTML_SPACE + ",":
            position += 1
        if position >= len(value):
            return spans
        start = position
        while position < len(value) and value[position] not in HTML_SPACE:
            position += 1
        end = position
        if value[end - 1] == ",":
            while end > start and value[end - 1] == ",":
                end -= 1
        else:
            position = _skip_descriptors(value, position)
        spans.append((start, end))


def _skip_descriptors(value: str, position: int) -> int:
    """The position after the comma that ends a candidate's descriptors (or the end)."""
    in_parens = False
    while position < len(value):
        char = value[position]
        position += 1
        if in_parens:
            in_parens = char != ")"
        elif char == "(":
            in_parens = True
        elif char == ",":
            return position
    return position


def css_url_spans(value: str) -> list[tuple[int, int]]:
    """The URL inside each `url(...)` of a style attribute's raw value."""
    spans: list[tuple[int, int]] = []
    for match in _CSS_URL.finditer(value):
        group = "quoted" if match.group("q") else "bare"
        spans.append(_trimmed(value, match.start(group), match.end(group)))
    return spans


def declared_size(tag: Tag) -> DeclaredSize | None:
    """The size a tag declares: data-size, data-img-size-val, data-width/-height, width/height."""
    for name in ("data-size", "data-img-size-val"):
        pair = _PAIR.fullmatch(tag.value(name) or "")
        if pair is not None:
            return DeclaredSize(_positive(pair.group(1)), _positive(pair.group(2)), name)
    for width_name, height_name in (("data-width", "data-height"), ("width", "height")):
        width, height = _length(tag.value(width_name)), _length(tag.value(height_name))
        if width is not None or height is not None:
            return DeclaredSize(width, height, width_name)
    return None


def _length(value: str | None) -> int | None:
    """A pixel count from "480" or "480px"; None for "100%", "auto" and the like."""
    match = _LENGTH.fullmatch(value or "")
    return _positive(match.group(1)) if match else None


def _positive(digits: str) -> int | None:
    number = int(digits)
    return number if number > 0 else None


class _Scanner(HTMLParser):
    """Collects references and regions while the stdlib parser walks the text."""

    def __init__(self, text: str, tables: Tables) -> None:
        super().__init__(convert_charrefs=True)
        self._text = text
        self._tables = tables
        self._lines = LineIndex(text)
        self._open: dict[str, list[int]] = {}
        self._media_parents: list[str] = []  # open <video>, <audio>, <picture>
        self.result = HtmlScan()

    def _here(self) -> int:
        return self._lines.offset(*self.getpos())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start, raw = self._here(), self.get_starttag_text() or ""
        if not self._text.startswith(raw, start):
            return
        self.result.regions.append((start, start + len(raw)))
        if self._open.get("textarea"):
            return
        if tag in _REGION_ELEMENTS:
            self._open.setdefault(tag, []).append(start)
        parsed = parse_tag(raw, start)
        if parsed is not None:
            parent = self._media_parents[-1] if self._media_parents else None
            self.result.found.extend(tag_references(parsed, self._tables, parent))
            if parsed.name == "a":
                self.result.found.extend(_anchor_reference(parsed))
        if tag in _MEDIA_PARENTS and not raw.endswith("/>"):
            self._media_parents.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._open.get("textarea") and tag != "textarea":
            return
        if tag in _MEDIA_PARENTS and tag in self._media_parents:
            while self._media_parents.pop() != tag:
                pass
        starts = self._open.get(tag)
        if starts:
            here = self._here()
            close = self._text.find(">", here)
            self.result.regions.append((starts.pop(), close + 1 if close >= 0 else len(self._text)))

    def handle_comment(self, data: str) -> None:
        start = self._here()
        end = start + 4 + len(data)
        close = _COMMENT_CLOSE.match(self._text, end)
        self.result.regions.append((start, close.end() if close else end))
        self.result.comments.append(self.result.regions[-1])

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        """Python < 3.13 fails an assertion on a malformed `<![`; browsers skip it as a comment."""
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            return self.parse_bogus_comment(i)
