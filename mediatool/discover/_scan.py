"""Reading and scanning one post: decoding, front matter, generator syntax, HTML, Markdown.

Loaded by `mediatool.discover` on first use (its parsers import markdown-it, YAML and the
tables), so a command that reads no post does not pay for them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from mediatool.config import DiscoverSettings
from mediatool.discover._frontmatter import read_front_matter
from mediatool.discover._html import scan_html
from mediatool.discover._liquid import find_liquid_tags, find_template_paths
from mediatool.discover._markdown import (
    find_embeds,
    find_markdown,
    find_mdx_imports,
    inline_code,
    markdown_layout,
)
from mediatool.discover._shortcodes import GeneratorScan, find_shortcodes
from mediatool.discover._text import Found, blank, build_references, decode_post, region_test
from mediatool.discover._wordpress import find_wordpress_shortcodes
from mediatool.discover.table import Tables
from mediatool.errors import PostError
from mediatool.models import PostScan

_HTML_SUFFIXES = (".html", ".htm")


def _shown(found: list[Found], hidden: Sequence[tuple[int, int]]) -> list[Found]:
    """Generator references outside `hidden` spans: a shortcode in a code span or an HTML
    comment renders as text or inside the comment, so it shows no image."""
    inside = region_test(hidden)
    return [item for item in found if not inside(item.start)]


def find_generator_syntax(text: str, tables: Tables) -> GeneratorScan:
    """Hugo shortcodes and Hexo/Liquid tags: their references, and the spans to blank (the
    tags themselves, escaped shortcodes and code blocks) before HTML and Markdown are read."""
    result = GeneratorScan()
    find_shortcodes(text, tables, result)
    find_liquid_tags(blank(text, result.spans), tables, result)
    find_wordpress_shortcodes(text, result)
    return result


def read_post(path: Path, settings: DiscoverSettings) -> PostScan:
    """Read, decode and scan one post; PostError ("unreadable", "not_a_file", "binary",
    "encoding") if not."""
    try:
        data = read_regular_file(path)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise PostError(
            "unreadable",
            f"{path}: cannot read the file ({reason}); check it exists and is readable.",
        ) from exc
    text, encoding = decode_post(data, path)
    return scan_text(text, path, settings, encoding)


_FILE_TYPES = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def read_regular_file(path: Path) -> bytes:
    """The bytes of `path`; PostError "not_a_file" for a named pipe, socket or device, which
    would block the read or never end. Checked before opening, and again on the opened file
    (opened non-blocking, so a pipe swapped in meanwhile cannot hang the run)."""
    _refuse_special(path, os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as handle:
        _refuse_special(path, os.fstat(fd).st_mode)
        return handle.read()


def _refuse_special(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    what = next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")
    raise PostError(
        "not_a_file",
        f"{path}: skipped, it is {what}, not a regular file; move it out of the posts.",
    )


def scan_text(
    text: str, path: Path, settings: DiscoverSettings, encoding: str = "utf-8"
) -> PostScan:
    """Find every image reference in the decoded text of the post at `path`."""
    tables = Tables.from_settings(settings)
    front = read_front_matter(text, path, settings.frontmatter_keys)
    body = blank(text, [(0, front.body_start)])
    suffix = path.suffix.lower()
    if suffix in _HTML_SUFFIXES:
        generated = find_generator_syntax(body, tables)
        body = blank(body, generated.spans)
        html = scan_html(body, tables)
        found = front.found + _shown(generated.found, html.comments) + html.found
    else:
        layout = markdown_layout(body, mdx=suffix == ".mdx")
        body = blank(body, layout.code)
        generated = find_generator_syntax(body, tables)
        body = blank(body, generated.spans)
        code = inline_code(body, layout, scan_html(body, tables).regions)
        body = blank(body, code)
        html = scan_html(body, tables)
        markdown = find_markdown(body, layout, html.regions)
        markdown += find_embeds(body, layout, html.regions)
        if suffix == ".mdx":
            markdown += find_mdx_imports(body)
        kept = _shown(generated.found, [*code, *html.comments])
        found = front.found + kept + html.found + markdown
    found += find_template_paths(body, found)
    references = build_references(text, found)
    return PostScan(path, encoding, text, references, tuple(front.problems), front.date)
