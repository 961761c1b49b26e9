"""Hexo tag plugins and Jekyll/Liquid tags: `{% img ... %}`, `{% asset_img ... %}`,
`{% include figure image_path="..." %}`, and template prefixes inside URLs.

Tag arguments are separated by white space; a value may be "double" or 'single' quoted, and a
named one is `key=value` or `key:value`. `{% raw %}` blocks are text (nothing in them is a tag);
`{% highlight %}`, `{% codeblock %}` and `{% comment %}` blocks are code, blanked like fences.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mediatool.discover._params import Token, found_for, media_of_name, select, split_arguments
from mediatool.discover._shortcodes import GeneratorScan
from mediatool.discover._text import Found, media_by_extension, names_media, region_test
from mediatool.discover.table import (
    INCLUDE_IMAGE_WORDS,
    INCLUDE_LINK_PARAMETERS,
    INCLUDE_PARAMETERS,
    TEMPLATE_PATH,
    Tables,
    include_context,
    tag_context,
)

MAX_LENGTH = 4000  # characters of one tag
_TAG = re.compile(
    r"\{%-?[ \t\r\n]*([A-Za-z_][\w-]*)((?:(?!\{%).){0," + str(MAX_LENGTH) + r"}?)-?%\}",
    re.DOTALL,
)
_TEXT_BLOCKS = ("raw",)
_CODE_BLOCKS = ("highlight", "codeblock", "code", "comment")
_INCLUDES = ("include", "include_relative", "include_cached")
_URL_TAGS = ("link", "asset_path", "static_url")  # print an URL: read by template_span


def find_liquid_tags(text: str, tables: Tables, result: GeneratorScan) -> None:
    """Add the image arguments of Hexo/Liquid tags to `result`, and the spans to blank."""
    position = 0
    while (match := _TAG.search(text, position)) is not None:
        position = match.end()
        name = match.group(1).lower()
        if name in _TEXT_BLOCKS or name in _CODE_BLOCKS:
            end = _block_end(text, name, match.end())
            if name in _CODE_BLOCKS:
                result.spans.append((match.start(), end))
            position = end
            continue
        if name in _URL_TAGS:
            continue
        found = _tag_references(name, split_arguments(text, match.start(2), match.end(2)), tables)
        if found:
            result.found.extend(found)
            result.spans.append((match.start(), match.end()))


def _block_end(text: str, name: str, start: int) -> int:
    """The offset after `{% endNAME %}`, or the end of the text when it never comes."""
    closing = re.compile(r"\{%-?\s*end" + re.escape(name) + r"\s*-?%\}")
    match = closing.search(text, start)
    return match.end() if match else len(text)


def _tag_references(name: str, tokens: list[Token], tables: Tables) -> list[Found]:
    if name in _INCLUDES:
        return _include_references(tokens)
    return [
        found_for(tag_context(name, label), token, media_of_name(name))
        for label, token in select(tokens, tables.tag(name))
    ]


def _include_references(tokens: list[Token]) -> list[Found]:
    """`{% include file key="value" %}`: quoted values of image parameters (bare ones are
    Liquid variables, not paths)."""
    if not tokens or tokens[0].key is not None:
        return []
    file = tokens[0].source
    image_include = any(word in file.lower() for word in INCLUDE_IMAGE_WORDS)
    found = []
    for token in tokens[1:]:
        if token.key is None or not token.quoted:
            continue
        image = token.key in INCLUDE_PARAMETERS or names_media(token.source)
        link = token.key in INCLUDE_LINK_PARAMETERS and image_include and _path_like(token.source)
        if (image or link) and token.source.strip():
            found.append(found_for(include_context(file, token.key), token))
    return found


def _path_like(value: str) -> bool:
    """An URL or a file path rather than a word (`url='yes'` is a flag)."""
    return "/" in value or "." in value


# ---------------------------------------------------------------- template prefixes in URLs

# `{{ site.baseurl }}/x.png`, `{{ site.url }}{{ site.baseurl }}/x.png`, `{{ .Site.BaseURL }}x`.
_PREFIX = re.compile(r"(?:\{\{-?\s*\.?[A-Za-z_][\w.]*\s*-?\}\})+")
# `{{ "/x.png" | relative_url }}`, `{{ '/x.png' | absolute_url }}`, Hugo's relURL / absURL.
_FILTERED = re.compile(
    r"""\{\{-?\s*(?P<q>["'])(?P<path>[^"']*)(?P=q)\s*\|\s*"""
    r"""(?:relative_url|absolute_url|relURL|absURL|prepend:\s*site\.(?:base)?url)\b[^{}]*-?\}\}"""
)
# Liquid/Hexo tags that print an URL: `{% link assets/x.png %}`, `{% asset_path x.png %}`.
_URL_TAG = re.compile(r"\{%-?\s*(?:" + "|".join(_URL_TAGS) + r""")\s+(?P<path>[^\s"'%]+)\s*-?%\}""")


_PREFIXED_PATH = re.compile(_PREFIX.pattern + r"""(?P<path>/?[^\s"'<>()\[\]{}|,`]+)""")


def find_template_paths(text: str, taken: Sequence[Found]) -> list[Found]:
    """`{{ site.url }}/images/x.png` written in text (a `{% capture %}` list that a gallery
    include reads): the path, when it names an image or media file and no other reference
    holds it already."""
    inside = region_test([(item.start, item.end) for item in taken])
    found = []
    for match in _PREFIXED_PATH.finditer(text):
        start, end = match.span("path")
        source = text[start:end]
        if inside(start) or not names_media(source):
            continue
        found.append(Found(TEMPLATE_PATH, start, end, source, media=_media_of(source)))
    return found


def _media_of(source: str) -> str:
    return media_by_extension(source) or "image"


def template_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The part of an URL at text[start:end] that names the file, when a template wraps it.

    Without template syntax the span is unchanged; a template whose path cannot be read
    (`{{ page.image }}`) gives an empty span, which is no reference."""
    value = text[start:end]
    if "{{" not in value and "{%" not in value:
        return start, end
    for pattern in (_FILTERED, _URL_TAG):
        match = pattern.fullmatch(value)
        if match is not None:
            return start + match.start("path"), start + match.end("path")
    prefix = _PREFIX.match(value)
    if prefix is not None and "{" not in value[prefix.end() :]:
        return start + prefix.end(), end
    linked = _URL_TAG.fullmatch(value, prefix.end()) if prefix is not None else None
    if linked is not None:  # `{{ site.baseurl }}{% link assets/x.png %}`
        return start + linked.start("path"), start + linked.end("path")
    return start, start
