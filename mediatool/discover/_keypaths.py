"""Front matter as a small tree with exact string spans, and key paths that pick its image values.

YAML, TOML and JSON front matter are each read into the same three shapes: a `Table` (keys and
values, in order), `Items` (a list) and `Text` (a string: its value and where its text lies in
the post). Anything else (numbers, booleans, dates, null) is None.

A key path names values in that tree: `header.image` is the key `image` of the table `header`,
`gallery[].image_path` the key `image_path` of each table in the list `gallery`. `[]` marks a
list and may be left out: a list met on the way is always walked item by item, and a path that
ends at a list picks its string items (`images` and `images[]` are the same path). A plain name
(`thumbnail`) is a top-level key, as it always was. Keys compare without regard to case, as
Hugo reads them (`featuredimage` is `featuredImage`).

A key path with `*` or `?` is a guess: it is matched against the whole path of every string in
the tree (`bigimg[].src`, `gallery2[].image_path`, `params.ogImage`; `*` is any text, `?` one
character), and only a value that names an image file by its extension counts. Its references
are named by the path they were found at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mediatool.discover._text import Found, looks_like_image

_SEGMENT = re.compile(r"[^.\[\]]+(?:\[\])?")


@dataclass(slots=True)
class Text:
    """A string value; `start`/`end` are offsets in the post of its text (inside any quotes)."""

    value: str
    start: int
    end: int


@dataclass(slots=True)
class Table:
    pairs: list[tuple[str, Node]] = field(default_factory=list)


@dataclass(slots=True)
class Items:
    values: list[Node] = field(default_factory=list)


Node = Table | Items | Text | None


def parse_key_path(key: str) -> tuple[str, ...] | None:
    """`gallery[].image_path` -> ("gallery", "image_path"); None when `key` is not a key path."""
    segments = key.split(".")
    if not key or not all(_SEGMENT.fullmatch(segment) for segment in segments):
        return None
    return tuple(segment.removesuffix("[]").casefold() for segment in segments)


def is_guess(key: str) -> bool:
    """True for a key path with `*` or `?`: a pattern over the paths of the strings."""
    return "*" in key or "?" in key


def guess_pattern(key: str) -> re.Pattern[str]:
    """The regex of a guessed key path over whole string paths (`*` any text, `?` one char)."""
    return re.compile(re.escape(key).replace(r"\*", ".*").replace(r"\?", "."), re.IGNORECASE)


MAX_GUESS_DEPTH = 12


def strings_with_paths(node: Node, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Text]]:
    """Every string below `node` with its path (`a.b`, `list[]`, `list[].key`); a YAML alias
    that contains itself is followed MAX_GUESS_DEPTH levels deep, no further."""
    if depth > MAX_GUESS_DEPTH:
        return
    if isinstance(node, Table):
        for key, value in node.pairs:
            yield from strings_with_paths(value, f"{prefix}.{key}" if prefix else key, depth + 1)
    elif isinstance(node, Items):
        for item in node.values:
            yield from strings_with_paths(item, prefix + "[]", depth + 1)
    elif isinstance(node, Text):
        yield prefix, node


def texts_at(node: Node, path: Sequence[str]) -> Iterator[Text]:
    """The strings that `path` names below `node`, in document order."""
    if isinstance(node, Items):
        for item in node.values:  # tables on the way, strings at the end; never a list
            if isinstance(item, Table) if path else isinstance(item, Text):
                yield from texts_at(item, path)
    elif not path:
        if isinstance(node, Text):
            yield node
    elif isinstance(node, Table):
        for key, value in node.pairs:
            if key.casefold() == path[0]:
                yield from texts_at(value, path[1:])


def plain_strings(node: Node, path: Sequence[str]) -> list[str]:
    """The values `texts_at` gives, for comparing one reader with another."""
    return [text.value for text in texts_at(node, path)]


def python_tree(value: object) -> Node:
    """A parsed document (json.loads, tomllib.loads) as a tree without spans, for cross-checks."""
    if isinstance(value, dict):
        return Table([(str(key), python_tree(item)) for key, item in value.items()])
    if isinstance(value, list):
        return Items([python_tree(item) for item in value])
    if isinstance(value, str):
        return Text(value, 0, 0)
    return None


# -- what a front matter reader returns ------------------------------------------------------


@dataclass(slots=True)
class FrontMatter:
    """Where the body starts, the references found in the front matter and any problems."""

    body_start: int = 0
    found: list[Found] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    date: str | None = None  # the top-level `date` value as written (quotes removed)


KeyPaths = tuple[tuple[str, tuple[str, ...]], ...]  # (key as configured, its path)


@lru_cache(maxsize=16)
def key_paths(keys: tuple[str, ...]) -> KeyPaths:
    """Each configured key with its parsed path; keys that are not key paths are dropped."""
    parsed = ((key, parse_key_path(key)) for key in keys)
    return tuple((key, path) for key, path in parsed if path is not None)


def found_at_paths(tree: Node, paths: KeyPaths) -> list[Found]:
    """The strings at each key path that may be references (a span once, for its first key),
    then the image files at guessed key paths."""
    found: list[Found] = []
    spans: set[tuple[int, int]] = set()

    def add(key: str, text: Text) -> None:
        if _is_reference(text.value) and (text.start, text.end) not in spans:
            spans.add((text.start, text.end))
            found.append(Found(f"frontmatter:{key}", text.start, text.end, text.value))

    by_first_key, _ = _plan(paths)
    for name, value in tree.pairs if isinstance(tree, Table) else ():
        for key, key_path in by_first_key.get(name.casefold(), ()):
            for text in texts_at(value, key_path[1:]):
                add(key, text)
    for path, text in guessed_strings(tree, paths):
        add(path, text)
    return found


@lru_cache(maxsize=16)
def _plan(paths: KeyPaths) -> tuple[dict[str, list[tuple[str, tuple[str, ...]]]], re.Pattern[str]]:
    """The exact key paths by their first key, and one regex for all the guessed ones."""
    by_first_key: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for key, key_path in paths:
        if not is_guess(key):
            by_first_key.setdefault(key_path[0], []).append((key, key_path))
    guesses = [guess_pattern(key).pattern for key, _ in paths if is_guess(key)]
    any_guess = "|".join(f"(?:{guess})" for guess in guesses) or "(?!)"
    return by_first_key, re.compile(any_guess, re.IGNORECASE)


def guessed_strings(tree: Node, paths: KeyPaths) -> Iterator[tuple[str, Text]]:
    """(path, string) for each string whose path a guessed key matches and that names an image."""
    _, any_guess = _plan(paths)
    if any_guess.pattern == "(?!)":
        return
    for path, text in strings_with_paths(tree):
        if looks_like_image(text.value.strip()) and any_guess.fullmatch(path):
            yield path, text


_REMOTE = re.compile(r"\s*(?:https?:|//)", re.IGNORECASE)


def _is_reference(value: str) -> bool:
    """Not empty, and not a file pattern: a local value holding `*` is a glob (Hugo's
    `resources[].src = "images/*.jpg"`) that names many files or none."""
    return bool(value.strip()) and ("*" not in value or _REMOTE.match(value) is not None)


def unclosed_problem(path: Path, text: str, opening_end: int, fence: str) -> str:
    """The problem of a front matter whose opening fence (a line ending at `opening_end`) has
    no closing one."""
    line = text.count("\n", 0, opening_end)
    return (
        f"{path}: front matter opened with {fence!r} on line {line} is never closed; "
        f"the whole file was read as body; add a closing {fence!r} line"
    )


def disagreeing_keys(tree: Node, document: object, paths: KeyPaths) -> list[str]:
    """The keys whose strings the span scan and the format's own parser read differently."""
    parsed = python_tree(document)
    wrong = [
        key
        for key, key_path in paths
        if sorted(plain_strings(tree, key_path)) != sorted(plain_strings(parsed, key_path))
    ]
    guessed = sorted((path, text.value) for path, text in guessed_strings(tree, paths))
    if guessed != sorted((path, text.value) for path, text in guessed_strings(parsed, paths)):
        wrong.extend(key for key, _ in paths if is_guess(key))
    return wrong


def date_value(value: object) -> str | None:
    """A parsed top-level `date` as text: a string as written, a TOML date in ISO form."""
    if isinstance(value, str):
        return value.strip() or None
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else None


def disagreement_problem(path: Path, syntax: str, parser: str, keys: Sequence[str]) -> str:
    return (
        f"{path}: mediatool read the {syntax} front matter key(s) {', '.join(keys)} differently "
        f"from {parser}; those values were left out; please report it with the post"
    )


def agreed_references(
    result: FrontMatter, tree: Node, document: Any, paths: KeyPaths, where: tuple[Path, str, str]
) -> FrontMatter:
    """`result` with the date and the references at `paths` of a span tree whose strings the
    format's own parser (`where`: post, syntax, parser) read the same; keys it read otherwise
    are left out with one problem."""
    path, syntax, parser = where
    result.date = date_value(document.get("date"))
    wrong = disagreeing_keys(tree, document, paths)
    if wrong:
        result.problems.append(disagreement_problem(path, syntax, parser, wrong))
        paths = tuple(item for item in paths if item[0] not in wrong)
    result.found = found_at_paths(tree, paths)
    return result
