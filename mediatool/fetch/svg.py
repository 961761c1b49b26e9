"""SVGs that could run script or load other resources, refused or cleaned before they are stored.

An SVG is a document: opened directly, or embedded with <object>/<iframe>, it runs its
`<script>` elements, its event handler attributes (`onload=`...) and its `javascript:` links, and
it loads what its `href`s, `url(...)`s and `<foreignObject>` HTML point at. A localized copy is
served from the archive's own site, so such an SVG would run there.

`vet_svg(data)` parses the document with defusedxml (no external entities; expat's limits stop
entity expansion bombs) and lists every such construct. `images.svg` decides what happens:
"sanitize" (default) stores a copy with them removed (a document without any is stored byte for
byte), "refuse" fails the URL with reason `unsafe_svg`, "keep" stores what was served. A document
that does not parse as XML cannot be checked, so it is refused (browsers do not show it either).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

import defusedxml
import defusedxml.ElementTree as SafeET

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XHTML_NS = "http://www.w3.org/1999/xhtml"
# Cleaned documents are written with SVG as the default namespace and the usual xlink prefix
# (ElementTree's registry is global: these are the only names mediatool serializes).
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

# Elements that run script or embed another document, removed with everything inside them.
ACTIVE_ELEMENTS = frozenset(
    {"script", "foreignobject", "handler", "listener", "iframe", "embed", "object"}
)
ANIMATIONS = frozenset({"animate", "set", "animatemotion", "animatetransform", "animatecolor"})
RASTER_DATA = re.compile(r"^data:image/(png|jpeg|jpg|gif|webp|avif|bmp);", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")
LINK_SCHEMES = ("http:", "https:", "mailto:")  # what a plain <a> may link to
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


@dataclass(frozen=True, slots=True)
class SvgVerdict:
    """What is unsafe in an SVG (empty when nothing is) and the document without it."""

    findings: tuple[str, ...]
    cleaned: bytes | None  # None when nothing had to go, or when the document did not parse
    error: str | None = None  # why the document could not be checked

    @property
    def safe(self) -> bool:
        return self.error is None and not self.findings

    def summary(self) -> str:
        """ "<script> (x2), onload handler": what was found, most frequent first."""
        if self.error is not None:
            return self.error
        counts = Counter(self.findings)
        return ", ".join(f"{what} (x{n})" if n > 1 else what for what, n in counts.most_common())


def vet_svg(data: bytes) -> SvgVerdict:
    """Parse an SVG safely and list (and remove, in `cleaned`) what could run or load."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=False)
    except (ET.ParseError, ExpatError, defusedxml.DefusedXmlException, ValueError) as exc:
        detail = str(exc) or type(exc).__name__
        return SvgVerdict((), None, f"it does not parse as safe XML ({detail})")
    findings: list[str] = []
    _clean_attributes(root, _local(root.tag), findings)
    _clean_children(root, findings)
    if not findings:
        return SvgVerdict((), None)
    return SvgVerdict(tuple(findings), _serialize(root))


def _clean_children(parent: ET.Element, findings: list[str]) -> None:
    for child in list(parent):
        if not isinstance(child.tag, str):
            continue
        danger = _element_danger(child)
        if danger is not None:
            findings.append(danger)
            _remove(parent, child)
            continue
        _clean_attributes(child, _local(child.tag), findings)
        _clean_children(child, findings)


def _element_danger(element: ET.Element) -> str | None:
    name = _local(element.tag)
    if element.tag.startswith(f"{{{XHTML_NS}}}"):
        return f"HTML <{name}>"
    if name.lower() in ACTIVE_ELEMENTS:
        return f"<{name}>"
    if name.lower() in ANIMATIONS:
        target = element.get("attributeName", "").strip().lower()
        if target.endswith("href") or target.startswith("on"):
            return f"<{name}> changing {target}"
    if name.lower() == "style" and _css_is_unsafe(element.text or ""):
        return "<style> loading an external resource"
    return None


def _clean_attributes(element: ET.Element, name: str, findings: list[str]) -> None:
    for attribute, value in list(element.attrib.items()):
        danger = _attribute_danger(name.lower(), _local(attribute), value)
        if danger is not None:
            findings.append(danger)
            del element.attrib[attribute]


def _attribute_danger(element: str, attribute: str, value: str) -> str | None:
    lowered = attribute.lower()
    plain = _INVISIBLE.sub("", value).lower()  # as a browser reads an URL: no spaces, any case
    if lowered.startswith("on"):
        return f"{attribute} handler"
    if "javascript:" in plain or "vbscript:" in plain:
        return f"script URL in {attribute}"
    if lowered in ("href", "src") and _is_external(plain):
        if element == "a" and plain.startswith(LINK_SCHEMES):
            return None  # a link is followed only when clicked, never loaded
        return f"external {attribute} {value.strip()[:80]}"
    if "url(" in plain and _css_is_unsafe(value):
        return f"external url() in {attribute}"
    return None


def _is_external(url: str) -> bool:
    """An URL (spaces removed, lower-case) that loads something from elsewhere: any scheme but
    a raster `data:` image, or protocol-relative."""
    if url.startswith("//"):
        return True
    return SCHEME.match(url) is not None and RASTER_DATA.match(url) is None


def _css_is_unsafe(css: str) -> bool:
    """CSS that imports a style sheet, names a script URL or loads an url() from elsewhere."""
    plain = _INVISIBLE.sub("", css).lower()
    if "javascript:" in plain or "@import" in plain:
        return True
    return any(_is_external(url.strip("'\"")) for url in re.findall(r"url\(([^)]*)\)", plain))


def _remove(parent: ET.Element, child: ET.Element) -> None:
    """Remove `child`, keeping the text that followed it."""
    if child.tail:
        index = list(parent).index(child)
        if index > 0:
            before = parent[index - 1]
            before.tail = (before.tail or "") + child.tail
        else:
            parent.text = (parent.text or "") + child.tail
    parent.remove(child)


def _serialize(root: ET.Element) -> bytes:
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
