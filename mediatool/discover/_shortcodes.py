"""Hugo shortcodes: `{{< name params >}}` and `{{% name params %}}`, one reference per image
parameter the table names.

Parameters are `name=value` or positional, separated by white space (line breaks too); a value
is "double-quoted" (backslash escapes), `raw` in backticks, 'single-quoted' (Hugo reads these
literally; users mean a quoted value) or bare. A closing `{{< /name >}}` holds nothing; an
escaped `{{</* name */>}}` is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mediatool.discover._params import Token, found_for, media_of_name, select
from mediatool.discover._text import HTML_SPACE, Found
from mediatool.discover.table import Tables, shortcode_context

_OPEN = re.compile(r"\{\{([<%])")
_NAME = re.compile(r"[^\s\"'`=<>%{}/][^\s\"'`=<>%{}]*")
_KEY = re.compile(r"([A-Za-z0-9_-]+)[ \t]*=[ \t]*")
_ESCAPED_CLOSE = {"<": re.compile(r"\*/\s*>\}\}"), "%": re.compile(r"\*/\s*%\}\}")}
_DOUBLE_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
MAX_LENGTH = 4000  # characters from `{{<` to `>}}`; longer is not a shortcode


@dataclass(slots=True)
class GeneratorScan:
    """References found in generator syntax, and the spans to blank before HTML and Markdown."""

    found: list[Found] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)


def find_shortcodes(text: str, tables: Tables, result: GeneratorScan) -> None:
    """Add every shortcode's image parameters to `result`, and its span to blank."""
    position = 0
    while (match := _OPEN.search(text, position)) is not None:
        end = _shortcode(text, match.start(), match.group(1), tables, result)
        position = end if end is not None else match.end()


def _shortcode(
    text: str, start: int, delimiter: str, tables: Tables, result: GeneratorScan
) -> int | None:
    close = ">}}" if delimiter == "<" else "%}}"
    following = _OPEN.search(text, start + 3, start + MAX_LENGTH)
    limit = following.start() if following else start + MAX_LENGTH  # one shortcode at a time
    position = _skip_space(text, start + 3)
    if text.startswith("/*", position):
        escaped = _ESCAPED_CLOSE[delimiter].search(text, position, limit)
        if escaped is None:
            return None
        result.spans.append((start, escaped.end()))
        return escaped.end()
    closing = text.startswith("/", position)
    name = _NAME.match(text, position + closing)
    if name is None:
        return None
    parsed = _tokens(text, name.end(), close, limit)
    if parsed is None:
        return None
    tokens, end = parsed
    result.spans.append((start, end))
    if not closing:
        shortcode = name.group()
        for label, token in select(tokens, tables.shortcode(shortcode)):
            context = shortcode_context(shortcode, label)
            result.found.append(found_for(context, token, media_of_name(shortcode)))
    return end


def _tokens(text: str, position: int, close: str, limit: int) -> tuple[list[Token], int] | None:
    """The parameters from `position` up to the closing `>}}` / `%}}`, and the offset after it."""
    tokens: list[Token] = []
    limit = min(limit, len(text))
    while True:
        position = _skip_space(text, position)
        if position >= limit:
            return None
        if text.startswith(close, position):
            return tokens, position + len(close)
        if text.startswith("/" + close, position):
            return tokens, position + 1 + len(close)
        key = _KEY.match(text, position)
        if key is not None:
            position = key.end()
        token = _value(text, position, close, limit, key.group(1).lower() if key else None)
        if token is None:
            return None
        tokens.append(token[0])
        position = token[1]


def _value(
    text: str, position: int, close: str, limit: int, key: str | None
) -> tuple[Token, int] | None:
    quote = text[position : position + 1]
    if quote in ('"', "'", "`"):
        end = _closing_quote(text, position + 1, quote, limit)
        if end is None:
            return None
        raw = text[position + 1 : end]
        source = _DOUBLE_ESCAPE.sub(r"\1", raw) if quote == '"' else raw
        return Token(key, position + 1, end, source, quoted=True), end + 1
    end = position
    while end < limit and text[end] not in HTML_SPACE and not _at_close(text, end, close):
        end += 1
    if end == position:
        return None
    return Token(key, position, end, text[position:end]), end


def _closing_quote(text: str, position: int, quote: str, limit: int) -> int | None:
    while position < limit:
        char = text[position]
        if char == "\\" and quote == '"':
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return None


def _at_close(text: str, position: int, close: str) -> bool:
    return text.startswith(close, position) or text.startswith("/" + close, position)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in HTML_SPACE:
        position += 1
    return position
