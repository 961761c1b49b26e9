"""The HTML report page: one self-contained file in the cache folder that shows a run's images.

`render_html` turns a `GalleryData` into the page; `write_report` puts it into the cache root
atomically. The page has inline CSS only, no script and no external resource: every image `src`
is a percent-quoted path relative to the cache root, where the report sits, so the page opens
straight from the file system. Every text value is HTML-escaped. Images are not lazy-loaded, so
the page is complete once it has loaded. Each section is capped (`Caps`) and says how many rows
it left out, so a large archive still gives a page a browser opens.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from mediatool.files import atomic_write_bytes

__all__ = [
    "Boilerplate",
    "Caps",
    "DupGroup",
    "FailureRow",
    "GalleryData",
    "GalleryImage",
    "Mismatch",
    "render_html",
    "write_report",
]

#: Largest width and height an image is shown at on the page (aspect ratio kept).
DISPLAY_MAX_WIDTH = 160
DISPLAY_MAX_HEIGHT = 200
#: How many example URLs a failure row shows at most.
MAX_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class GalleryImage:
    sha256: str
    relpath: str  # shown: relative to the cache folder (a thumbnail if any, else the original)
    original_relpath: str  # link target: the original, relative to the cache folder
    width: int
    height: int
    bytes: int
    format: str


@dataclass(frozen=True, slots=True)
class DupGroup:
    canonical: GalleryImage
    members: tuple[GalleryImage, ...]  # excludes the canonical
    posts: tuple[str, ...] = ()  # the posts that show an image of the group


@dataclass(frozen=True, slots=True)
class FailureRow:
    reason: str
    host: str
    count: int  # failed URLs
    examples: tuple[str, ...]  # up to 3 example URLs
    references: int = 0  # references in the posts to these URLs
    posts: tuple[str, ...] = ()  # the posts that refer to these URLs


@dataclass(frozen=True, slots=True)
class Boilerplate:
    image: GalleryImage
    posts: int


@dataclass(frozen=True, slots=True)
class Mismatch:
    image: GalleryImage
    note: str


@dataclass(frozen=True, slots=True)
class GalleryData:
    title: str
    generated_at: str  # ISO time string, given by the caller
    totals: tuple[tuple[str, int | str], ...]  # ordered label/value pairs
    failures: tuple[FailureRow, ...]
    groups: tuple[DupGroup, ...]
    boilerplate: tuple[Boilerplate, ...]
    mismatches: tuple[Mismatch, ...]


@dataclass(frozen=True, slots=True)
class Caps:
    """How many rows each section shows at most; the rest are counted as "N more not shown"."""

    groups: int = 500
    failures: int = 200
    boilerplate: int = 200
    mismatches: int = 200


DEFAULT_CAPS = Caps()

_T = TypeVar("_T")

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0 auto; padding: 16px 24px 48px; max-width: 1200px; color: #1d2125; background: #fff; }
h1 { font-size: 22px; margin: 8px 0 2px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d8dde3; }
h2 .count { color: #5b6570; font-weight: normal; }
h3 { font-size: 14px; margin: 0 0 6px; font-weight: 600; }
nav { margin: 6px 0 0; }
nav a { margin-right: 14px; }
a { color: #0b57d0; }
.meta { color: #5b6570; margin: 0; }
.none { color: #5b6570; font-style: italic; }
.more { color: #8a4b00; font-weight: 600; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { text-align: left; vertical-align: top; padding: 4px 10px;
  border-bottom: 1px solid #e6e9ed; }
th { background: #f3f5f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
ul.examples { margin: 0; padding-left: 16px; }
.group { margin: 0 0 14px; padding: 10px; border: 1px solid #e6e9ed; border-radius: 6px; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-end; }
figure { margin: 0; padding: 6px; border: 2px solid transparent; border-radius: 6px;
  background: #f7f8fa; max-width: 172px; }
figure.kept { border-color: #1a7f37; background: #eef8f0; }
figure img { display: block; background: repeating-conic-gradient(#e9ecef 0 25%, #fff 0 50%)
  0 0 / 12px 12px; }
figcaption { font-size: 12px; color: #3d454d; margin-top: 4px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; background: #1a7f37;
  color: #fff; font-size: 11px; font-weight: 600; margin-left: 4px; }
"""


def _e(value: object) -> str:
    """HTML-escape any value's text (quotes too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def _num(value: int | str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _kb(size: int) -> str:
    """A byte count as "N KB": one decimal below 10 KB, whole numbers above."""
    kib = max(size, 0) / 1024
    if kib < 10:
        return f"{kib:.1f} KB"
    return f"{round(kib):,} KB"


def _src(relpath: str) -> str:
    """A cache-relative path as a percent-quoted URL relative to the report (in the cache root)."""
    return quote(relpath.replace("\\", "/").lstrip("/"), safe="/")


def display_size(width: int, height: int) -> tuple[int, int]:
    """The size an image is shown at: within the display box, aspect ratio kept, never enlarged.

    Unknown sizes (zero or negative) are shown in a square box."""
    if width <= 0 or height <= 0:
        return DISPLAY_MAX_WIDTH, DISPLAY_MAX_WIDTH
    scale = min(1.0, DISPLAY_MAX_WIDTH / width, DISPLAY_MAX_HEIGHT / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _dims(image: GalleryImage) -> str:
    if image.width <= 0 or image.height <= 0:
        return "?×?"
    return f"{image.width}×{image.height}"


def caption(image: GalleryImage) -> str:
    """ "W×H, N KB, FORMAT" """
    return f"{_dims(image)}, {_kb(image.bytes)}, {(image.format or '?').upper()}"


def _figure(image: GalleryImage, *, kept: bool = False, extra: str = "") -> str:
    width, height = display_size(image.width, image.height)
    fmt = (image.format or "?").upper()
    alt = f"{fmt} {_dims(image)}, {_kb(image.bytes)}"
    title = f"{image.sha256}\n{image.original_relpath}"
    badge = '<span class="badge">kept</span>' if kept else ""
    cls = ' class="kept"' if kept else ""
    return (
        f"<figure{cls}>"
        f'<a href="{_e(_src(image.original_relpath))}" title="{_e(title)}">'
        f'<img src="{_e(_src(image.relpath))}" width="{width}" height="{height}" alt="{_e(alt)}">'
        "</a>"
        f"<figcaption>{_e(caption(image))}{badge}{extra}</figcaption>"
        "</figure>"
    )


def _section(
    anchor: str,
    heading: str,
    count_text: str,
    items: Sequence[_T],
    cap: int,
    render: Callable[[Sequence[_T]], str],
) -> str:
    parts = [
        f'<section id="{anchor}">',
        f'<h2>{_e(heading)} <span class="count">({count_text})</span></h2>',
    ]
    if not items:
        parts.append('<p class="none">none</p>')
    else:
        shown = items[: max(cap, 0)]
        if shown:
            parts.append(render(shown))
        hidden = len(items) - len(shown)
        if hidden > 0:
            parts.append(f'<p class="more">{hidden:,} more not shown</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _totals(totals: Sequence[tuple[str, int | str]]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{_e(label)}</th><td class="num">{_e(_num(value))}</td></tr>'
        for label, value in totals
    )
    return f"<table>{rows}</table>"


def _failures(rows: Sequence[FailureRow]) -> str:
    body = []
    for row in rows:
        examples = "".join(
            f"<li><code>{_e(url)}</code></li>" for url in row.examples[:MAX_EXAMPLES]
        )
        body.append(
            f"<tr><td>{_e(row.reason)}</td><td>{_e(row.host)}</td>"
            f'<td class="num">{row.count:,}</td><td class="num">{row.references:,}</td>'
            f'<td><ul class="examples">{examples}</ul></td><td>{_posts(row.posts)}</td></tr>'
        )
    return (
        '<table><thead><tr><th>reason</th><th>host</th><th class="num">URLs</th>'
        '<th class="num">references</th><th>examples</th><th>posts</th></tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table>"
    )


def _groups(groups: Sequence[DupGroup]) -> str:
    parts = []
    for number, group in enumerate(groups, 1):
        copies = len(group.members) + 1
        spare = sum(max(m.bytes, 0) for m in group.members)
        figures = [_figure(group.canonical, kept=True)]
        figures += [_figure(member) for member in group.members]
        parts.append(
            '<div class="group">'
            f"<h3>Group {number}: {copies} copies, {_e(_kb(spare))} in the copies not kept</h3>"
            + (f'<p class="posts">in {_posts(group.posts)}</p>' if group.posts else "")
            + f'<div class="row">{"".join(figures)}</div>'
            "</div>"
        )
    return "\n".join(parts)


MAX_POSTS = 5  # posts named per failure row or group; the rest are counted


def _posts(posts: Sequence[str]) -> str:
    """Up to MAX_POSTS post names, then how many more."""
    named = ", ".join(f"<code>{_e(post)}</code>" for post in posts[:MAX_POSTS])
    more = len(posts) - MAX_POSTS
    return named + (f" and {more:,} more" if more > 0 else "")


def _boilerplate(items: Sequence[Boilerplate]) -> str:
    figures = []
    for item in items:
        posts = f"<br>in {item.posts:,} post{'' if item.posts == 1 else 's'}"
        figures.append(_figure(item.image, extra=posts))
    return f'<div class="row">{"".join(figures)}</div>'


def _mismatches(items: Sequence[Mismatch]) -> str:
    body = "".join(
        f"<tr><td>{_figure(item.image)}</td><td>{_e(item.note)}</td></tr>" for item in items
    )
    return (
        "<table><thead><tr><th>image</th><th>note</th></tr></thead><tbody>"
        + body
        + "</tbody></table>"
    )


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def render_html(data: GalleryData, *, caps: Caps = DEFAULT_CAPS) -> str:
    """The whole report page as one self-contained HTML document."""
    failed_urls = sum(row.count for row in data.failures)
    failed_refs = sum(row.references for row in data.failures)
    grouped = sum(len(g.members) + 1 for g in data.groups)
    sections = [
        _section(
            "totals",
            "Totals",
            _plural(len(data.totals), "value"),
            data.totals,
            len(data.totals),
            _totals,
        ),
        _section(
            "failures",
            "Failures",
            f"{_plural(failed_urls, 'URL')}"
            + (f", {_plural(failed_refs, 'reference')}" if failed_refs else "")
            + f" in {_plural(len(data.failures), 'row')}",
            data.failures,
            caps.failures,
            _failures,
        ),
        _section(
            "groups",
            "Near-duplicate groups",
            f"{_plural(len(data.groups), 'group')}, {_plural(grouped, 'image')}",
            data.groups,
            caps.groups,
            _groups,
        ),
        _section(
            "boilerplate",
            "Boilerplate images",
            _plural(len(data.boilerplate), "image"),
            data.boilerplate,
            caps.boilerplate,
            _boilerplate,
        ),
        _section(
            "mismatches",
            "Declared-size mismatches",
            _plural(len(data.mismatches), "image"),
            data.mismatches,
            caps.mismatches,
            _mismatches,
        ),
    ]
    nav = (
        "<nav>"
        '<a href="#totals">Totals</a><a href="#failures">Failures</a>'
        '<a href="#groups">Near-duplicates</a><a href="#boilerplate">Boilerplate</a>'
        '<a href="#mismatches">Size mismatches</a>'
        "</nav>"
    )
    csp = "default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="generator" content="mediatool">',
            f"<title>{_e(data.title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            "<header>",
            f"<h1>{_e(data.title)}</h1>",
            f'<p class="meta">generated {_e(data.generated_at)}</p>',
            nav,
            "</header>",
            "<main>",
            *sections,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def write_report(cache_root: Path, data: GalleryData, name: str = "report.html") -> Path:
    """Write the report page into the cache root (atomically) and return its path.

    `name` is a plain file name: the page's image paths are relative to the cache root."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"report name must be a plain file name in the cache root: {name!r}")
    path = cache_root / name
    atomic_write_bytes(path, render_html(data).encode("utf-8"))
    return path
