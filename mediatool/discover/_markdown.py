"""Markdown: which lines are code (markdown-it-py's block map), code spans, and the images."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from mediatool.discover._liquid import template_span
from mediatool.discover._text import (
    Found,
    looks_like_image,
    media_by_extension,
    names_media,
    region_test,
    unescape_markdown,
)
from mediatool.discover.table import EMBED, MARKDOWN, MARKDOWN_LINK, MARKDOWN_REF, MDX_IMPORT

# Block structure only: inline parsing (2.6x the time) is never looked at, images are found below.
_PARSER = MarkdownIt("commonmark").enable("table").disable("inline")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
_INTERESTING = re.compile(r"[\\<`]")
_BACKTICKS = re.compile(r"`+")
_INLINE_HTML = re.compile(
    r"<[A-Za-z][A-Za-z0-9-]*"
    r"(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:[^\s\"'=<>`]+|'[^']*'|\"[^\"]*\"))?)*\s*/?>"
    r"|</[A-Za-z][A-Za-z0-9-]*\s*>"
    r"|<!--.*?-->"
    r"|<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^\s<>]*>",
    re.DOTALL,
)
_DEFINITION = re.compile(
    r"[ ]{0,3}\[((?:[^\[\]\\]|\\.){1,999}?)\]:[ \t]*(?:\r?\n[ \t]*)?"
    r"(?:<([^<>\r\n]*)>|([^\s<]\S*))"
)
_INLINE_BLOCKS = ("paragraph_open", "heading_open", "table_open")
# `![](x.png =300x200)`: the size of markdown-it-imsize, Typora and Gitea, before any title.
_IMAGE_SIZE = re.compile(r"=\d*%?x?\d*%?(?=[\s)])")
# Obsidian / Quartz embeds: `![[photo.png]]`, `![[photo.png|300]]`.
_EMBED = re.compile(r"!\[\[([^\[\]|#\r\n]+)(?:[|#][^\[\]\r\n]*)?\]\]")
# MDX: `import cover from './cover.png'` at the start of a line.
_MDX_IMPORT = re.compile(
    r"""^import[ \t]+[\w$][\w$]*[ \t]+from[ \t]+(["'])([^"'\r\n]+)\1""", re.MULTILINE
)
_SPACE = " \t\r\n"


@dataclass(slots=True)
class Layout:
    """Where things are in a Markdown body (character spans)."""

    code: list[tuple[int, int]] = field(default_factory=list)  # code blocks and code spans
    chunks: list[tuple[int, int]] = field(default_factory=list)  # paragraphs, headings, tables
    loose: list[tuple[int, int]] = field(default_factory=list)  # lines of no block: definitions


@dataclass(frozen=True, slots=True)
class _Bracket:
    """A `[...]` followed by `(destination)` or, for images, by a reference label."""

    start: int  # the "!" of an image, else the "["
    is_image: bool
    content: str
    destination: tuple[int, int] | None = None
    label: str | None = None


def markdown_layout(text: str, mdx: bool = False) -> Layout:
    """Code to blank, inline chunks to scan and loose lines, by markdown-it-py's block tokens.

    Fenced code blocks are always code. Indented code blocks are code unless the body's first
    block is raw HTML (an RSS mirror's `<div>`), where indentation is only layout, or the post
    is MDX (which has no indented code, and reads Markdown inside JSX blocks: their lines are
    chunks too)."""
    tokens = _PARSER.parse(text)
    lines = [(m.start(), m.end()) for m in _LINE.finditer(text) if m.end() > m.start()]
    html_body = mdx or (bool(tokens) and tokens[0].type == "html_block")
    layout, taken = Layout(), set[int]()
    for token in tokens:
        if token.map is None:
            continue
        first, last = token.map
        span = (lines[first][0], lines[last - 1][1])
        if token.type == "fence" or (token.type == "code_block" and not html_body):
            layout.code.append(span)
        elif token.type in _INLINE_BLOCKS or (mdx and token.type == "html_block"):
            layout.chunks.append(span)
        elif token.type not in ("html_block", "code_block"):
            continue
        taken.update(range(first, last))
    layout.loose = [line for index, line in enumerate(lines) if index not in taken]
    return layout


def inline_code(
    text: str, layout: Layout, regions: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The backtick code spans of every chunk; a backtick inside an HTML `regions` opens none."""
    inside = region_test(regions)
    return [code for chunk in layout.chunks for code in code_spans(text, *chunk, inside)]


def code_spans(
    text: str, start: int, end: int, skip: Callable[[int], bool] = lambda _: False
) -> list[tuple[int, int]]:
    """Backtick code spans in text[start:end], CommonMark-style: escapes and inline HTML first.

    A backtick run at an offset where `skip` is true is left as text."""
    spans: list[tuple[int, int]] = []
    position = start
    while (match := _INTERESTING.search(text, position, end)) is not None:
        position = match.start()
        if text[position] == "\\":
            position += 2
        elif text[position] == "<":
            html = _INLINE_HTML.match(text, position, end)
            position = html.end() if html else position + 1
        else:
            run = _BACKTICKS.match(text, position, end)
            assert run is not None
            if skip(position):
                position = run.end()
                continue
            close = _closing_run(text, run.end(), end, len(run.group()))
            if close is not None:
                spans.append((position, close))
            position = close if close is not None else run.end()
    return spans


def _closing_run(text: str, start: int, end: int, length: int) -> int | None:
    for run in _BACKTICKS.finditer(text, start, end):
        if len(run.group()) == length:
            return run.end()
    return None


def find_markdown(text: str, layout: Layout, regions: Sequence[tuple[int, int]]) -> list[Found]:
    """Markdown images (inline and by reference) and image links that wrap an image.

    `text` must have code blanked; matches starting inside an HTML `regions` are dropped."""
    inside = region_test(regions)
    found: list[Found] = []
    labels: set[str] = set()  # used by an image
    link_labels: set[str] = set()  # used by a link: counts when the URL names a file
    for start, end in layout.chunks:
        for bracket in _brackets(text, start, end):
            if inside(bracket.start):
                continue
            if bracket.label is not None:
                used = labels if bracket.is_image else link_labels
                used.add(_normal_label(bracket.label))
            elif bracket.destination is not None:
                found.extend(_inline_reference(text, bracket))
    definitions = _definitions(text, layout.loose, inside)
    for label in sorted(labels | link_labels):
        definition = definitions.get(label)
        if definition is not None and (label in labels or names_media(definition.source)):
            found.append(definition)
    return found


def find_embeds(text: str, layout: Layout, regions: Sequence[tuple[int, int]]) -> list[Found]:
    """Obsidian/Quartz `![[file.png]]` embeds naming an image or media file (notes are not)."""
    inside = region_test(regions)
    found = []
    for start, end in layout.chunks:
        for match in _EMBED.finditer(text, start, end):
            source = match.group(1).strip()
            if inside(match.start()) or not names_media(source):
                continue
            value_start = match.start(1) + len(match.group(1)) - len(match.group(1).lstrip())
            media = media_by_extension(source) or "image"
            found.append(Found(EMBED, value_start, value_start + len(source), source, media=media))
    return found


def find_mdx_imports(text: str) -> list[Found]:
    """MDX `import name from "./file.png"` lines naming an image or media file."""
    found = []
    for match in _MDX_IMPORT.finditer(text):
        source = match.group(2)
        if names_media(source):
            media = media_by_extension(source) or "image"
            found.append(Found(MDX_IMPORT, *match.span(2), source, media=media))
    return found


def _inline_reference(text: str, bracket: _Bracket) -> list[Found]:
    """An image's destination; a link's when it names an image or media file."""
    assert bracket.destination is not None
    start, end = template_span(text, *bracket.destination)
    source = unescape_markdown(text[start:end])
    media = media_by_extension(source)
    if bracket.is_image:
        return [Found(MARKDOWN, start, end, source, media=media or "image")]
    if media is not None or looks_like_image(source):
        return [Found(MARKDOWN_LINK, start, end, source, media=media or "image")]
    return []


def _brackets(text: str, start: int, end: int) -> Iterator[_Bracket]:
    """Every image and link, with an inline destination or a label, in one chunk (nested too)."""
    position = text.find("[", start, end)
    while position != -1:
        if not _escaped(text, position):
            bracket = _bracket_at(text, position, end)
            if bracket is not None:
                yield bracket
        position = text.find("[", position + 1, end)


def _bracket_at(text: str, open_at: int, limit: int) -> _Bracket | None:
    close = _matching_bracket(text, open_at, limit)
    if close is None:
        return None
    is_image = text[open_at - 1 : open_at] == "!" and not _escaped(text, open_at - 1)
    start = open_at - 1 if is_image else open_at
    content = text[open_at + 1 : close]
    if text.startswith("(", close + 1):
        destination = _inline_destination(text, close + 1, limit)
        if destination is not None:
            return _Bracket(start, is_image, content, destination=destination)
    if text.startswith("[", close + 1):
        label_end = text.find("]", close + 2, limit)
        if label_end != -1 and "[" not in text[close + 2 : label_end]:
            label = text[close + 2 : label_end]
            return _Bracket(start, is_image, content, label=label if label.strip() else content)
    return _Bracket(start, is_image, content, label=content)


def _matching_bracket(text: str, open_at: int, limit: int) -> int | None:
    depth = 0
    position = open_at
    while position < limit:
        char = text[position]
        if char == "\\":
            position += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return None


def _inline_destination(text: str, paren: int, limit: int) -> tuple[int, int] | None:
    """The destination span of `(dest "title")` starting at `paren`, or None if malformed."""
    position = _skip_space(text, paren + 1, limit)
    if text.startswith("<", position):
        close = text.find(">", position + 1, limit)
        if close == -1 or re.search(r"[<\r\n]", text[position + 1 : close]):
            return None
        destination, position = (position + 1, close), close + 1
    else:
        end = _bare_destination_end(text, position, limit)
        destination, position = (position, end), end
    position = _skip_space(text, position, limit)
    size = _IMAGE_SIZE.match(text, position, limit)
    if size is not None and position > destination[1]:
        position = _skip_space(text, size.end(), limit)
    if position < limit and text[position] in "\"'(" and position > destination[1]:
        title_end = _title_end(text, position, limit)
        if title_end is None:
            return None
        position = _skip_space(text, title_end, limit)
    return destination if text.startswith(")", position) else None


def _bare_destination_end(text: str, position: int, limit: int) -> int:
    """The end of a destination without <>; a `{{ ... }}` or `{% ... %}` template (Jekyll,
    Hexo) is part of it, spaces and all, since the generator replaces it before Markdown."""
    depth = 0
    while position < limit:
        char = text[position]
        if char == "\\" and position + 1 < limit:
            position += 2
            continue
        if char == "{" and text[position + 1 : position + 2] in ("{", "%"):
            line_end = text.find("\n", position, limit)
            line_end = limit if line_end == -1 else line_end
            close = text.find("}}" if text[position + 1] == "{" else "%}", position + 2, line_end)
            if close != -1:
                position = close + 2
                continue
        if char in _SPACE or ord(char) < 0x20 or (char == ")" and depth == 0):
            break
        depth += {"(": 1, ")": -1}.get(char, 0)
        position += 1
    return position


def _title_end(text: str, quote_at: int, limit: int) -> int | None:
    closer = ")" if text[quote_at] == "(" else text[quote_at]
    position = quote_at + 1
    while position < limit:
        if text[position] == "\\":
            position += 2
            continue
        if text[position] == closer:
            return position + 1
        position += 1
    return None


def _skip_space(text: str, position: int, limit: int) -> int:
    while position < limit and text[position] in _SPACE:
        position += 1
    return position


def _escaped(text: str, position: int) -> bool:
    """True when an odd run of backslashes precedes `position`."""
    count = 0
    while position - count - 1 >= 0 and text[position - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _definitions(
    text: str, loose: Sequence[tuple[int, int]], inside: Callable[[int], bool]
) -> dict[str, Found]:
    """`[label]: url` definitions on loose lines; the first one of a label wins."""
    definitions: dict[str, Found] = {}
    for start, _ in loose:
        match = _DEFINITION.match(text, start)
        if match is None or not match.group(1).strip() or inside(start):
            continue
        group = 2 if match.group(2) is not None else 3
        label = _normal_label(match.group(1))
        start, end = template_span(text, match.start(group), match.end(group))
        source = unescape_markdown(text[start:end])
        media = media_by_extension(source) or "image"
        definitions.setdefault(label, Found(MARKDOWN_REF, start, end, source, media=media))
    return definitions


def _normal_label(label: str) -> str:
    return " ".join(label.split()).casefold()
