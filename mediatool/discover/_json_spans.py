"""JSON front matter (a leading `{ ... }` object, as Hugo reads it) with exact string spans.

`json.JSONDecoder.raw_decode` finds where the object ends and what it holds; a small tokenizer
walks the same text for the offsets of every string (between its quotes). As in `json.loads`,
a key given twice keeps its last value. `scan_json_lines` reads JSON that does not parse: the
`"key": "value"` and `"key": ["a", "b"]` pairs of its top level, line by line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mediatool.discover._keypaths import (
    FrontMatter,
    Items,
    KeyPaths,
    Node,
    Table,
    Text,
    agreed_references,
    found_at_paths,
)

_WHITESPACE = " \t\r\n"
_STRING = re.compile(r'"((?:[^"\\\x00-\x1f]|\\.)*)"', re.DOTALL)
_SCALAR = re.compile(r"-?(?:Infinity|[0-9][0-9.eE+-]*)|true|false|null|NaN")
_DECODER = json.JSONDecoder()


class JsonScanError(ValueError):
    """The tokenizer met text it does not expect at `position`."""


def read_json(text: str, start: int) -> tuple[Table, Any, int]:
    """The span tree, json's value and the end offset of the JSON value at `start`;
    json.JSONDecodeError if it does not parse, JsonScanError if the tokenizer cannot follow."""
    document, end = _DECODER.raw_decode(text, start)
    scanner = _Scanner(text, start, end)
    tree = scanner.value()
    if not isinstance(tree, Table) or scanner.pos != end:
        raise JsonScanError(f"the front matter object ends at {end}, the scan at {scanner.pos}")
    return tree, document, end


class _Scanner:
    def __init__(self, text: str, start: int, end: int) -> None:
        self.text, self.pos, self.end = text, start, end

    def value(self) -> Node:
        self._skip()
        char = self.text[self.pos]
        if char == "{":
            return self._object()
        if char == "[":
            return self._array()
        if char == '"':
            return self._string()
        match = _SCALAR.match(self.text, self.pos, self.end)
        if match is None:
            raise JsonScanError(f"expected a value at {self.pos}")
        self.pos = match.end()
        return None

    def _skip(self) -> None:
        while self.text[self.pos] in _WHITESPACE:
            self.pos += 1

    def _expect(self, char: str) -> None:
        self._skip()
        if self.text[self.pos] != char:
            raise JsonScanError(f"expected {char!r} at {self.pos}")
        self.pos += 1

    def _object(self) -> Table:
        self.pos += 1
        table = self.members("}")
        self.pos += 1
        return table

    def members(self, closer: str | None) -> Table:
        """`"key": value` pairs up to `closer`, or up to the end when it is None."""
        table = Table()
        index: dict[str, int] = {}
        self._skip()
        while not self._at_close(closer):
            key = self._string().value
            self._expect(":")
            value = self.value()
            if key in index:  # json.loads keeps the last value in the first place
                table.pairs[index[key]] = (key, value)
            else:
                index[key] = len(table.pairs)
                table.pairs.append((key, value))
            self._next_or_close(closer)
        return table

    def _at_close(self, closer: str | None) -> bool:
        return self.pos >= self.end if closer is None else self.text[self.pos] == closer

    def _array(self) -> Items:
        items = Items()
        self.pos += 1
        self._skip()
        while self.text[self.pos] != "]":
            items.values.append(self.value())
            self._next_or_close("]")
        self.pos += 1
        return items

    def _next_or_close(self, closer: str | None) -> None:
        self._skip()
        if self.text[self.pos] == ",":
            self.pos += 1
            self._skip()
        elif not self._at_close(closer):
            raise JsonScanError(f"expected ',' or {closer!r} at {self.pos}")

    def _string(self) -> Text:
        self._skip()
        match = _STRING.match(self.text, self.pos, self.end)
        if match is None:
            raise JsonScanError(f"expected a string at {self.pos}")
        self.pos = match.end()
        raw = match.group(1)
        value = json.loads(match.group()) if "\\" in raw else raw
        return Text(value, match.start(1), match.end(1))


# -- JSON that does not parse ----------------------------------------------------------------

_PAIR = re.compile(r'[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*:[ \t]*')
_LIST = re.compile(r"\[[ \t]*")
_ITEM_END = re.compile(r"[ \t]*(,[ \t]*|\])")
_NESTING = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[{]|[\]}]')


def scan_json_lines(text: str, start: int, end: int, depth: int = 0) -> Table:
    """The top-level `"key": string` and `"key": [strings]` pairs, one line at a time; a line
    counts as top level when the brackets opened before it (outside strings) leave depth 1
    (`depth` is the depth at `start`: 1 for Hexo's object without braces)."""
    root = Table()
    for line_start, line_end in _line_bounds(text, start, end):
        pair = _PAIR.match(text, line_start, line_end)
        if depth == 1 and pair is not None:
            key = _json_string_value(pair.group(1))
            root.pairs.append((key, _line_value(text, pair.end(), line_end)))
        depth += _depth_change(text[line_start:line_end])
    return root


def _line_bounds(text: str, start: int, end: int) -> list[tuple[int, int]]:
    bounds = []
    position = start
    while position < end:
        newline = text.find("\n", position, end)
        stop = end if newline == -1 else newline
        bounds.append((position, stop))
        position = stop + 1
    return bounds


def _depth_change(line: str) -> int:
    change = 0
    for token in _NESTING.findall(line):
        if token in "[{":
            change += 1
        elif token in "]}":
            change -= 1
    return change


def _line_value(text: str, position: int, line_end: int) -> Node:
    string = _STRING.match(text, position, line_end)
    if string is not None:
        return _line_text(string)
    bracket = _LIST.match(text, position, line_end)
    if bracket is None:
        return None
    items = Items()
    position = bracket.end()
    while (string := _STRING.match(text, position, line_end)) is not None:
        items.values.append(_line_text(string))
        separator = _ITEM_END.match(text, string.end(), line_end)
        if separator is None or separator.group(1) == "]":
            break
        position = separator.end()
    return items


def _line_text(match: re.Match[str]) -> Text:
    return Text(_json_string_value(match.group(1)), match.start(1), match.end(1))


def _json_string_value(inner: str) -> str:
    if "\\" not in inner:
        return inner
    try:
        value = json.loads(f'"{inner}"')
    except json.JSONDecodeError:
        return inner
    return value if isinstance(value, str) else inner


# -- the front matter ----------------------------------------------------------------------

_OPEN = re.compile(r"\ufeff?[ \t\r\n]*(?=\{[ \t\r\n]*[\"}])")
_REST_OF_LINE = re.compile(r"[ \t]*(?:\r?\n|\Z)")
_CLOSING_LINE = re.compile(r"^\}[ \t]*\r?$", re.MULTILINE)
_DATE_PAIR = re.compile(r'"date"[ \t]*:[ \t]*"([^"\r\n]*)"')


def read_json_front_matter(text: str, path: Path, paths: KeyPaths) -> FrontMatter | None:
    """The JSON object at the top of `text` (`{` then a key or `}`), or None if there is none."""
    opening = _OPEN.match(text)
    if opening is None:
        return None
    start = opening.end()
    try:
        tree, document, end = read_json(text, start)
    except (json.JSONDecodeError, JsonScanError, IndexError) as exc:
        return _invalid_json(text, path, paths, start, exc)
    rest = _REST_OF_LINE.match(text, end)
    result = FrontMatter(body_start=rest.end() if rest else end)
    return agreed_references(result, tree, document, paths, (path, "JSON", "json.loads"))


def _invalid_json(
    text: str, path: Path, paths: KeyPaths, start: int, exc: Exception
) -> FrontMatter:
    """JSON that does not parse: read up to the first line that is a lone `}`."""
    if isinstance(exc, json.JSONDecodeError):
        why = f"line {exc.lineno}: {exc.msg}"
    else:
        why = f"mediatool cannot follow it: {exc}; please report it with the post"
    closing = _CLOSING_LINE.search(text, start)
    if closing is None:
        return FrontMatter(
            problems=[
                f"{path}: front matter is not valid JSON ({why}) and no line holds its closing "
                "'}' alone; the whole file was read as body; fix the JSON"
            ]
        )
    rest = _REST_OF_LINE.match(text, closing.end())
    result = FrontMatter(body_start=rest.end() if rest else closing.end())
    result.problems.append(
        f"{path}: front matter is not valid JSON ({why}); image keys read line by line; "
        "fix the JSON to silence this"
    )
    date = _DATE_PAIR.search(text, start, closing.start())
    result.date = date.group(1).strip() or None if date else None
    tree = scan_json_lines(text, start, closing.end())
    result.found = found_at_paths(tree, paths)
    return result


# -- Hexo: JSON without braces, closed by `;;;` ---------------------------------------------

_HEXO_OPEN = re.compile(r"\ufeff?;{3,}[ \t]*\r?\n")
_HEXO_FIRST_KEY = re.compile(r"\ufeff?(?=[ \t]*\")")
_HEXO_CLOSE = re.compile(r"^;{3,}[ \t]*\r?(?:\n|\Z)", re.MULTILINE)


def read_hexo_json_front_matter(text: str, path: Path, paths: KeyPaths) -> FrontMatter | None:
    """Hexo's JSON front matter: `"key": value` pairs without braces, closed by a `;;;` line
    (and opened by one, or not), read as Hexo does: `JSON.parse("{" + pairs + "}")`. Without
    the opening `;;;`, text that does not parse is body."""
    fenced = _HEXO_OPEN.match(text)
    opening = fenced or _HEXO_FIRST_KEY.match(text)
    if opening is None:
        return None
    start = opening.end()
    closing = _HEXO_CLOSE.search(text, start)
    if closing is None:
        return None
    end = closing.start()
    result = FrontMatter(body_start=closing.end())
    try:
        document = json.loads("{" + text[start:end] + "}")
        tree = _Scanner(text, start, end).members(None)
    except (json.JSONDecodeError, JsonScanError, IndexError) as exc:
        if fenced is None:  # text that starts with a quote and is not JSON: a post's body
            return None
        line = text.count("\n", 0, start) + getattr(exc, "lineno", 1)
        result.problems.append(
            f"{path}: front matter is not valid JSON (line {line}: {getattr(exc, 'msg', exc)}); "
            "image keys read line by line; fix the JSON to silence this"
        )
        tree = scan_json_lines(text, start, end, depth=1)
        date = _DATE_PAIR.search(text, start, end)
        result.date = date.group(1).strip() or None if date else None
        result.found = found_at_paths(tree, paths)
        return result
    return agreed_references(result, tree, document, paths, (path, "JSON", "json.loads"))
