"""Front matter: YAML between `---` lines, TOML between `+++` lines or a leading JSON object
at the top of a post, and the image values at its configured key paths (see _keypaths)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml

from mediatool.discover._json_spans import read_hexo_json_front_matter, read_json_front_matter
from mediatool.discover._keypaths import (
    FrontMatter,
    Items,
    KeyPaths,
    Node,
    Table,
    Text,
    found_at_paths,
    key_paths,
    unclosed_problem,
)
from mediatool.discover._text import Found
from mediatool.discover._toml_spans import read_toml_front_matter

_OPEN = re.compile(r"\ufeff?(?:[ \t]*\r?\n)*---[ \t]*\r?\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?(?:\n|\Z)", re.MULTILINE)
_STR_TAG = "tag:yaml.org,2002:str"
_PROPERTIES = re.compile(r"(?:[&!][^ \t\r\n]*[ \t\r\n]+)+")
_SEQUENCE_ITEM = re.compile(r"[ \t]*-[ \t]+(.*?)[ \t]*\r?$")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"")
_FLOW_ITEM = re.compile(r"""\s*('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^,\]]*?)\s*(?:,|\]|$)""")


def read_front_matter(text: str, path: Path, keys: Sequence[str]) -> FrontMatter:
    """Find the front matter of `text` (YAML, TOML or JSON) and the references of its `keys`."""
    paths = key_paths(tuple(keys))
    readers = (
        _yaml_front_matter,
        read_toml_front_matter,
        read_json_front_matter,
        read_hexo_json_front_matter,
        _unfenced_yaml_front_matter,
    )
    for reader in readers:
        result = reader(text, path, paths)
        if result is not None:
            return result
    return FrontMatter()


def _yaml_front_matter(text: str, path: Path, paths: KeyPaths) -> FrontMatter | None:
    opening = _OPEN.match(text)
    if opening is None:
        return None
    closing = _CLOSE.search(text, opening.end())
    if closing is None:
        return FrontMatter(problems=[unclosed_problem(path, text, opening.end(), "---")])
    result = FrontMatter(body_start=closing.end())
    start, end = opening.end(), closing.start()
    result.date = _date_line(text[start:end])
    try:
        tree = _yaml_tree(_compose(text[start:end]), text[start:end], start, {})
    except yaml.YAMLError as exc:
        top_level = {key_path[0]: key for key, key_path in paths if len(key_path) == 1}
        result.found = list(_from_lines(text, start, end, top_level))
        result.problems.append(_yaml_problem(exc, path, text.count("\n", 0, start)))
    else:
        result.found = found_at_paths(tree, paths)
    return result


_UNFENCED_START = re.compile(r"\ufeff?[A-Za-z_][\w-]*:(?:[ \t]|\r?\n)")
_UNFENCED_CLOSE = re.compile(r"^---[ \t]*\r?(?:\n|\Z)", re.MULTILINE)


def _unfenced_yaml_front_matter(text: str, path: Path, paths: KeyPaths) -> FrontMatter | None:
    """Hexo's front matter without the opening `---`: `key: value` lines up to the first `---`
    line. Taken only when that text is a YAML mapping of two keys or more, so a post whose first
    paragraph happens to hold a colon stays body."""
    if _UNFENCED_START.match(text) is None:
        return None
    closing = _UNFENCED_CLOSE.search(text)
    if closing is None:
        return None
    start = 1 if text.startswith("\ufeff") else 0
    try:
        root = _compose(text[start : closing.start()])
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode) or len(root.value) < 2:
        return None
    tree = _yaml_tree(root, text[start : closing.start()], start, {})
    result = FrontMatter(body_start=closing.end(), found=found_at_paths(tree, paths))
    result.date = _date_line(text[start : closing.start()])
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


def _yaml_tree(node: yaml.Node | None, yaml_text: str, base: int, made: dict[int, Node]) -> Node:
    """The composed YAML as a span tree; an alias shares its anchor's node (`made`), so a
    recursive document stays finite."""
    if id(node) in made:
        return made[id(node)]
    if isinstance(node, yaml.MappingNode):
        table = made[id(node)] = Table()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                table.pairs.append((key.value, _yaml_tree(value, yaml_text, base, made)))
        return table
    if isinstance(node, yaml.SequenceNode):
        items = made[id(node)] = Items()
        items.values.extend(_yaml_tree(item, yaml_text, base, made) for item in node.value)
        return items
    return _scalar(node, yaml_text, base) if isinstance(node, yaml.ScalarNode) else None


def _scalar(node: yaml.ScalarNode, yaml_text: str, base: int) -> Text | None:
    """A plain or quoted string scalar (span inside the quotes); None for anything else."""
    if node.tag != _STR_TAG or node.style in ("|", ">"):
        return None
    start, end = node.start_mark.index, node.end_mark.index
    properties = _PROPERTIES.match(yaml_text, start, end)  # an anchor or tag is not the value
    start = properties.end() if properties else start
    if node.style in ("'", '"'):
        start, end = start + 1, end - 1
    return Text(node.value, base + start, base + end)


def _from_lines(text: str, start: int, end: int, keys: Mapping[str, str]) -> Iterator[Found]:
    """Fallback for front matter that is not valid YAML: top-level `key: value` lines (`keys`
    maps each top-level name to the key as configured, which names the context)."""
    if not keys:
        return
    names = "|".join(map(re.escape, keys))
    key_line = re.compile(rf"({names}):(?:[ \t]+|(?=\r?$))(.*?)[ \t]*\r?$", re.IGNORECASE)
    lines = _lines(text, start, end)
    for index, (line_start, line) in enumerate(lines):
        match = key_line.match(line)
        if match is None:
            continue
        context = f"frontmatter:{keys[match.group(1).casefold()]}"
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
