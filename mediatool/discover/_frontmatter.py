"""Front matter: the YAML between `---` lines at the top of a post, and its image keys."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mediatool.discover._text import Found

_OPEN = re.compile(r"\ufeff?(?:[ \t]*\r?\n)*---[ \t]*\r?\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?(?:\n|\Z)", re.MULTILINE)
_STR_TAG = "tag:yaml.org,2002:str"
_SEQUENCE_ITEM = re.compile(r"[ \t]*-[ \t]+(.*?)[ \t]*\r?$")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"")
_FLOW_ITEM = re.compile(r"""\s*('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^,\]]*?)\s*(?:,|\]|$)""")


@dataclass(slots=True)
class FrontMatter:
    """Where the body starts, the references found in the front matter and any problems."""

    body_start: int = 0
    found: list[Found] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    date: str | None = None  # the top-level `date:` value as written (quotes removed)


def read_front_matter(text: str, path: Path, keys: Sequence[str]) -> FrontMatter:
    """Find the front matter of `text` and the references of its image `keys`."""
    opening = _OPEN.match(text)
    if opening is None:
        return FrontMatter()
    closing = _CLOSE.search(text, opening.end())
    if closing is None:
        line = text.count("\n", 0, opening.end())
        problem = (
            f"{path}: front matter opened with '---' on line {line} is never closed; "
            "the whole file was read as body; add a closing '---' line"
        )
        return FrontMatter(problems=[problem])
    result = FrontMatter(body_start=closing.end())
    start, end = opening.end(), closing.start()
    result.date = _date_line(text[start:end])
    try:
        result.found = _from_yaml(text[start:end], start, keys)
    except yaml.YAMLError as exc:
        result.found = list(_from_lines(text, start, end, keys))
        result.problems.append(_yaml_problem(exc, path, text.count("\n", 0, start)))
    return result


_DATE = re.compile(r"^date:[ \t]*(.*?)[ \t]*\r?$", re.M)


def _date_line(front: str) -> str | None:
    """The post's `date:` as written: read by line, since YAML turns some dates into objects."""
    match = _DATE.search(front)
    value = match.group(1).strip("'\"") if match else ""
    return value or None


def _yaml_problem(exc: yaml.YAMLError, path: Path, lines_before: int) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {lines_before + mark.line + 1}: " if mark is not None else ""
    return (
        f"{path}: front matter is not valid YAML ({where}{problem}); "
        "image keys read line by line; fix the YAML to silence this"
    )


_C_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def _loader_for(yaml_text: str) -> type[yaml.SafeLoader] | type[yaml.CSafeLoader]:
    """libyaml's loader (13x faster here, the same nodes and character offsets) unless the text
    holds a BOM, which libyaml skips without counting, or PyYAML was built without libyaml."""
    if _C_LOADER is not None and "\ufeff" not in yaml_text:
        return _C_LOADER
    return yaml.SafeLoader


def _compose(yaml_text: str) -> yaml.Node | None:
    """The YAML node tree; when libyaml rejects the text, PyYAML's own parser decides, so its
    verdict and its error messages stay what they always were."""
    loader = _loader_for(yaml_text)
    try:
        return yaml.compose(yaml_text, Loader=loader)
    except yaml.YAMLError:
        if loader is yaml.SafeLoader:
            raise
        return yaml.compose(yaml_text, Loader=yaml.SafeLoader)


def _from_yaml(yaml_text: str, base: int, keys: Sequence[str]) -> list[Found]:
    """References from a composed YAML document: top-level keys with scalar or list values."""
    root = _compose(yaml_text)
    if not isinstance(root, yaml.MappingNode):
        return []
    found: list[Found] = []
    for key_node, value_node in root.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value not in keys:
            continue
        items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        context = f"frontmatter:{key_node.value}"
        for item in items:
            scalar = _scalar(item, base, context)
            if scalar is not None:
                found.append(scalar)
    return found


def _scalar(node: yaml.Node, base: int, context: str) -> Found | None:
    """A reference for a plain or quoted string scalar; None for anything else or empty."""
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG or not node.value.strip():
        return None
    if node.style in ("|", ">"):
        return None
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("'", '"'):
        start, end = start + 1, end - 1
    return Found(context, base + start, base + end, node.value)


def _from_lines(text: str, start: int, end: int, keys: Sequence[str]) -> Iterator[Found]:
    """Fallback for front matter that is not valid YAML: top-level `key: value` lines."""
    names = "|".join(map(re.escape, keys))
    key_line = re.compile(rf"({names}):(?:[ \t]+|(?=\r?$))(.*?)[ \t]*\r?$")
    lines = _lines(text, start, end)
    for index, (line_start, line) in enumerate(lines):
        match = key_line.match(line)
        if match is None:
            continue
        context = f"frontmatter:{match.group(1)}"
        value_start = line_start + match.start(2)
        value = match.group(2)
        if not value:
            yield from _block_items(lines[index + 1 :], context)
        elif value.startswith("["):
            yield from _flow_items(value, value_start, context)
        else:
            item = _line_scalar(value, value_start, context)
            if item is not None:
                yield item


def _lines(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """(offset, line) for the lines of text[start:end], line breaks dropped, a CR kept."""
    lines = []
    position = start
    while position < end:
        newline = text.find("\n", position, end)
        stop = end if newline == -1 else newline
        lines.append((position, text[position:stop]))
        position = stop + 1
    return lines


def _block_items(lines: Sequence[tuple[int, str]], context: str) -> Iterator[Found]:
    """`- value` lines right below a key, until the next top-level line."""
    for line_start, line in lines:
        match = _SEQUENCE_ITEM.match(line)
        if match is None:
            if line.strip() and not line[0].isspace():
                return
            continue
        item = _line_scalar(match.group(1), line_start + match.start(1), context)
        if item is not None:
            yield item


def _flow_items(value: str, value_start: int, context: str) -> Iterator[Found]:
    """Items of a one-line flow sequence `[a, 'b', "c"]`."""
    position = 1
    while position < len(value):
        match = _FLOW_ITEM.match(value, position)
        if match is None or match.end() == position:
            return
        item = _line_scalar(match.group(1), value_start + match.start(1), context)
        if item is not None:
            yield item
        position = match.end()


def _line_scalar(value: str, start: int, context: str) -> Found | None:
    """A reference for one scalar written on one line, quoted or plain (comment dropped)."""
    quoted = _QUOTED.match(value)
    if quoted is not None:
        inner = quoted.group(0)[1:-1]
        return Found(
            context, start + 1, start + quoted.end() - 1, _parse_quoted(quoted.group(0), inner)
        )
    plain = re.split(r"[ \t]#", value, maxsplit=1)[0].rstrip()
    if not plain or plain.startswith(("|", ">", "#", "'", '"', "{", "[")):
        return None
    return Found(context, start, start + len(plain), plain)


def _parse_quoted(value: str, inner: str) -> str:
    """The value of a quoted scalar as YAML reads it, or the text between the quotes."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return inner
    return parsed if isinstance(parsed, str) else inner
