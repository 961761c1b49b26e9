"""TOML front matter (`+++` ... `+++`) as a tree with the exact span of every string.

tomllib says whether the TOML is valid and what its values are, but not where they are; this
scanner walks the same text and records, for each string, the offsets of the text between its
quotes. It handles what TOML 1.0 allows: basic strings ("..." with escapes), literal strings
('...'), both multi-line forms, arrays over several lines with comments, inline tables, [table]
and [[array-of-tables]] headers, and dotted and quoted keys. Numbers, booleans and dates become
None. It expects text that tomllib has accepted (`read_toml` checks first); the caller compares
what it found with tomllib's values before trusting a span.

`scan_toml_lines` is the reader for TOML that tomllib rejects: each line on its own, headers
remembered, so one broken line costs only its own keys.
"""

from __future__ import annotations

import re
import tomllib
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
    unclosed_problem,
)

_BLANK = re.compile(r"(?:[ \t\r\n]|#[^\n]*)*")
_SPACE = re.compile(r"[ \t]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^\s,\]}#]+(?: [0-9][^\s,\]}#]*)?")
_BASIC = re.compile(r'(?:[^"\\\r\n]|\\.)*')
_LITERAL = re.compile(r"[^'\r\n]*")
_MULTI_BASIC = re.compile(r'(?:[^"\\]|\\.|"(?!""))*', re.DOTALL)
_LEADING_NEWLINE = re.compile(r"\r?\n")
_MULTI_LITERAL = re.compile(r"(?:[^']|'(?!''))*", re.DOTALL)


class TomlScanError(ValueError):
    """The scanner met text it does not expect at `position`."""


def read_toml(text: str, start: int, end: int) -> tuple[Table, dict[str, Any]]:
    """The span tree and tomllib's document for text[start:end]; TOMLDecodeError if invalid,
    TomlScanError if the scanner cannot follow text that tomllib accepted."""
    document = tomllib.loads(text[start:end])
    return _Scanner(text, start, end).document(), document


def scan_toml_lines(text: str, start: int, end: int) -> Table:
    """The strings of each `key = value` line that reads on its own, under the last header."""
    scanner = _Scanner(text, start, end)
    scanner.tolerant = True
    return scanner.document()


class _Scanner:
    def __init__(self, text: str, start: int, end: int) -> None:
        self.text, self.pos, self.end = text, start, end
        self.root = Table()
        self.tolerant = False

    def document(self) -> Table:
        current = self.root
        while self._skip(_BLANK) < self.end:
            line_start = self.pos
            try:
                current = self._statement(current)
            except (TomlScanError, IndexError):
                if not self.tolerant:
                    raise
                self._next_line(line_start)
        return self.root

    def _statement(self, current: Table) -> Table:
        if self.text.startswith("[[", self.pos):
            self.pos += 2
            keys = self._key()
            self._expect("]]")
            return _new_array_table(self.root, keys)
        if self.text.startswith("[", self.pos):
            self.pos += 1
            keys = self._key()
            self._expect("]")
            return _table_at(self.root, keys)
        keys = self._key()
        self._expect("=")
        _put(current, keys, self._value())
        return current

    def _next_line(self, line_start: int) -> None:
        newline = self.text.find("\n", line_start, self.end)
        self.pos = self.end if newline == -1 else newline + 1

    # -- pieces --------------------------------------------------------------------------

    def _skip(self, pattern: re.Pattern[str]) -> int:
        match = pattern.match(self.text, self.pos, self.end)
        self.pos = match.end() if match else self.pos
        return self.pos

    def _expect(self, token: str) -> None:
        self._skip(_SPACE)
        if not self.text.startswith(token, self.pos):
            raise TomlScanError(f"expected {token!r} at {self.pos}")
        self.pos += len(token)

    def _key(self) -> list[str]:
        keys = [self._simple_key()]
        while self._skip(_SPACE) < self.end and self.text[self.pos] == ".":
            self.pos += 1
            keys.append(self._simple_key())
        return keys

    def _simple_key(self) -> str:
        self._skip(_SPACE)
        if self.text[self.pos] in "\"'":
            return self._string().value
        match = _BARE_KEY.match(self.text, self.pos, self.end)
        if match is None:
            raise TomlScanError(f"expected a key at {self.pos}")
        self.pos = match.end()
        return match.group()

    def _value(self) -> Node:
        self._skip(_SPACE)
        char = self.text[self.pos]
        if char in "\"'":
            return self._string()
        if char == "[":
            return self._array()
        if char == "{":
            return self._inline_table()
        match = _SCALAR.match(self.text, self.pos, self.end)
        if match is None:
            raise TomlScanError(f"expected a value at {self.pos}")
        self.pos = match.end()
        return None

    def _array(self) -> Items:
        items = Items()
        self.pos += 1
        while self._skip(_BLANK) < self.end and self.text[self.pos] != "]":
            items.values.append(self._value())
            if self._skip(_BLANK) < self.end and self.text[self.pos] == ",":
                self.pos += 1
            elif self.pos >= self.end or self.text[self.pos] != "]":
                raise TomlScanError(f"expected ',' or ']' at {self.pos}")
        self._expect("]")
        return items

    def _inline_table(self) -> Table:
        table = Table()
        self.pos += 1
        while self._skip(_BLANK) < self.end and self.text[self.pos] != "}":
            keys = self._key()
            self._expect("=")
            _put(table, keys, self._value())
            if self._skip(_BLANK) < self.end and self.text[self.pos] == ",":
                self.pos += 1
        self._expect("}")
        return table

    def _string(self) -> Text:
        start = self.pos
        delimiter, body = next(f for f in _STRING_FORMS if self.text.startswith(f[0], start))
        inner = start + len(delimiter)
        match = body.match(self.text, inner, self.end)
        close = match.end() if match else inner
        if len(delimiter) == 3:  # up to two quotes may sit right before the closing three
            run = 0
            while run < 5 and self.text.startswith(delimiter[0], close + run):
                run += 1
            close += max(0, run - 3)
        if not self.text.startswith(delimiter, close):
            raise TomlScanError(f"unterminated string at {start}")
        self.pos = close + len(delimiter)
        value = _string_value(self.text[start : self.pos], delimiter)
        if len(delimiter) == 3:  # TOML drops a line break right after the opening quotes
            newline = _LEADING_NEWLINE.match(self.text, inner, close)
            inner = newline.end() if newline else inner
        return Text(value, inner, close)


_STRING_FORMS = (
    ('"""', _MULTI_BASIC),
    ("'''", _MULTI_LITERAL),
    ('"', _BASIC),
    ("'", _LITERAL),
)


def _string_value(token: str, delimiter: str) -> str:
    """The value of one string token: its text when nothing in it is special, else tomllib's."""
    inner = token[len(delimiter) : -len(delimiter)]
    if delimiter == "'" or (delimiter == '"' and "\\" not in inner):
        return inner
    try:
        value = tomllib.loads("v = " + token)["v"]
    except tomllib.TOMLDecodeError as exc:
        raise TomlScanError(f"bad string {token!r}") from exc
    return value if isinstance(value, str) else inner


# -- building the tree -------------------------------------------------------------------


def _child_table(table: Table, key: str) -> Table:
    """The table under `key` (the last one of an array of tables), made when missing."""
    for name, value in table.pairs:
        if name != key:
            continue
        if isinstance(value, Items) and value.values and isinstance(value.values[-1], Table):
            return value.values[-1]
        if isinstance(value, Table):
            return value
        raise TomlScanError(f"key {key!r} is not a table")
    child = Table()
    table.pairs.append((key, child))
    return child


def _table_at(root: Table, keys: list[str]) -> Table:
    table = root
    for key in keys:
        table = _child_table(table, key)
    return table


def _new_array_table(root: Table, keys: list[str]) -> Table:
    parent = _table_at(root, keys[:-1])
    table = Table()
    for name, value in parent.pairs:
        if name == keys[-1] and isinstance(value, Items):
            value.values.append(table)
            return table
    parent.pairs.append((keys[-1], Items([table])))
    return table


def _put(table: Table, keys: list[str], value: Node) -> None:
    _table_at(table, keys[:-1]).pairs.append((keys[-1], value))


# -- the front matter ----------------------------------------------------------------------

_OPEN = re.compile(r"\ufeff?(?:[ \t]*\r?\n)*\+\+\+[ \t]*\r?\n")
_CLOSE = re.compile(r"^\+\+\+[ \t]*\r?(?:\n|\Z)", re.MULTILINE)
_WHERE = re.compile(r"\s*\(at line (\d+), column \d+\)")
_DATE_LINE = re.compile(r"^date[ \t]*=[ \t]*(.*?)[ \t]*\r?$", re.MULTILINE)


def read_toml_front_matter(text: str, path: Path, paths: KeyPaths) -> FrontMatter | None:
    """The TOML front matter between `+++` lines at the top of `text`, or None if it has none."""
    opening = _OPEN.match(text)
    if opening is None:
        return None
    closing = _CLOSE.search(text, opening.end())
    if closing is None:
        return FrontMatter(problems=[unclosed_problem(path, text, opening.end(), "+++")])
    result = FrontMatter(body_start=closing.end())
    start, end = opening.end(), closing.start()
    lines_before = text.count("\n", 0, start)
    try:
        tree, document = read_toml(text, start, end)
    except (tomllib.TOMLDecodeError, TomlScanError, IndexError) as exc:
        result.problems.append(_toml_problem(exc, path, lines_before))
        tree = scan_toml_lines(text, start, end)
        match = _DATE_LINE.search(text, start, end)
        result.date = match.group(1).strip("'\"") or None if match else None
        result.found = found_at_paths(tree, paths)
        return result
    return agreed_references(result, tree, document, paths, (path, "TOML", "tomllib"))


def _toml_problem(exc: Exception, path: Path, lines_before: int) -> str:
    if not isinstance(exc, tomllib.TOMLDecodeError):
        return (
            f"{path}: mediatool cannot follow this TOML front matter ({exc}); image keys read "
            "line by line; please report it with the post"
        )
    message = str(exc)
    where = _WHERE.search(message)
    line = f"line {lines_before + int(where.group(1))}: " if where else ""
    return (
        f"{path}: front matter is not valid TOML ({line}{_WHERE.sub('', message)}); "
        "image keys read line by line; fix the TOML to silence this"
    )
