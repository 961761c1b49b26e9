"""Discover: post files -> image references with exact source spans.

    find_posts(paths, exclude)        the post files below PATHs
    find_posts_resolved(...)          the same, each with its resolved path
    read_post(path, settings)         read, decode and scan one post (raises PostError)
    scan_text(text, path, settings)   the same on already-decoded text

Every Reference satisfies `text[span.start:span.end] == raw`; references are sorted by offset.
Each has a `media` ("image", "video", "audio", "document", "track").

The rule table (discover/table.py) names every place looked at; docs/finding.md is rendered
from it (scripts/gen-docs), and every context a reference carries is built from its entries.
Users extend its tables in `[discover]`: attributes, shortcodes, tags, components.

Where references are found
- Front matter: YAML between `---` lines (`---` or `...` closes it), TOML between `+++` lines,
  or a leading JSON object, at the top (a BOM and blank lines may come first). The strings at
  the key paths of `settings.frontmatter_keys` (`thumbnail`, `header.image`,
  `gallery[].image_path`; see _keypaths); for a quoted string the span is inside the quotes, and
  when escapes make the text differ from the value, `raw` is the text and `source_url` the value.
  YAML block scalars are skipped. Invalid front matter is read by a line scanner (plus a problem
  message); an unclosed one is read as body (plus a problem message).
- HTML anywhere in the body (stdlib HTMLParser; <script>, <style>, <textarea> content and
  comments are skipped; <noscript> content is markup and counts): the attribute table
  (<img> src and its lazy-loading twins, srcset and data-srcset (every candidate, parsed by
  the HTML spec's algorithm, so a URL may hold commas), <source>, <video>, <audio>, <track>,
  <object>/<embed> with a media type, SVG <image href>, `url(...)` in any style attribute,
  data-avatar and data-bg on any element, `background` on tables, <param value> naming a
  file);
  <a href> when it names an image or media file; <meta content> of og:image and the like;
  capitalised components (`<Image imgUrl="...">`, JSX string values `{"..."}` too). An <img>
  inside HTML <pre>/<code> is real markup and counts. HTML values have character references
  decoded in `source_url` the way browsers decode attributes; `raw` keeps them.
- Generator syntax anywhere in the body, outside code: Hugo shortcodes (`{{< figure src=...
  >}}`, `{{% ... %}}`, parameters named or positional, quoted or bare, across lines), Hexo tag
  plugins (`{% img %}`, `{% asset_img %}`, ...) and Jekyll includes (`{% include figure
  image_path="..." %}`), WordPress `[video mp4=...]`, `[audio ...]`, `[embed]url[/embed]`;
  any other shortcode or tag argument that names an image or media file. The span is the
  value inside its quotes. Escaped shortcodes (`{{</* ... */>}}`) and `{% raw %}` blocks are
  text; `{% highlight %}`/`{% codeblock %}` blocks are code; one in a code span or an HTML
  comment shows nothing and is dropped. A template prefix in an URL (`{{ site.baseurl
  }}/x.png`, `{{ "/x.png" | relative_url }}`, `{% link x.png %}`) gives a local reference
  whose span is the path inside; a template with no readable path (`{{ page.image }}`) is no
  reference; `{{ site.url }}/x.png` written in text (a `{% capture %}` list) is one.
- Markdown (.md/.markdown/.mdx; .html/.htm bodies are pure HTML): `![alt](url "title")`,
  `![alt](<url>)`, links `[text](url)` ("markdown-link") when the url names an image or media
  file (`[![alt](img)](link)` too), and reference images `![alt][id]`, `![id][]`, `![id]`.
  Reference rule: a `[id]: url` definition is reported ONCE, as "markdown-ref" with the span
  of its URL, if at least one image uses it, or a link uses it and the url names an image or
  media file (the first definition of a label wins, as in CommonMark). Obsidian embeds
  `![[file.png|300]]` naming a file. In .mdx posts Markdown inside JSX blocks counts,
  indentation is never code, and `import x from "./x.png"` lines count. Markdown destinations have
  backslash escapes and `;`-terminated character references decoded in `source_url`
  (CommonMark).

What is not looked at
- Markdown code: fenced code blocks, indented code blocks and backtick code spans (nothing in
  them is a reference, HTML included), and Markdown syntax inside HTML blocks, comments, tags,
  <pre>, <code>, <script>, <style> or <textarea> (a backtick there opens no code span either:
  a first HTML pass finds those elements before code spans are blanked).
- Code-block rule: markdown-it-py decides which lines are code. Fenced blocks always are.
  Indented code blocks are code EXCEPT when the body's first block is raw HTML (an RSS mirror
  whose body is one big `<div>` with long runs of spaces and blank lines): there indentation is
  layout, the renderer shows the images, so the tags in those lines are scanned.

Image judgement
- In an image position (img@src, srcset, markdown, front matter, data-avatar, ...) any URL is a
  reference: the bytes served decide later. In a link position (a@href, markdown-link) the URL
  must name an image file: an extension jpg, jpeg, png, gif, webp, avif, bmp, svg, tif, tiff or
  awebp (any case) at the end or before "?", "#" or "!"; or a media file (mp4, m4v, webm,
  ogv, mov, mp3, m4a, ogg, oga, opus, wav, flac, aac, pdf, vtt) before any "?" or "#".
- Media: by the element (<video>, <audio>, <track>, <source> by its parent, <object>/<embed>
  by `type`), else by the file's extension, else "image".
- Kind: REMOTE for http(s) and protocol-relative (given "https:"), DATA for `data:` (reported,
  never fetched), LOCAL for everything else (relative, root-relative, file paths). Empty URLs
  are not references.

Decoding (read_post)
- NUL bytes: PostError "binary". Strict UTF-8 first (a BOM stays in the text as U+FEFF).
  Otherwise GB18030, accepted only if it decodes strictly, re-encodes to the same bytes, and at
  least 80 % of its non-ASCII characters belong to GB2312 (common simplified Chinese). Anything
  else: PostError "encoding". The text is never transcoded: `text.encode(encoding)` gives back
  the file's bytes.
- Lines end at "\\n" (a CRLF counts once); `column` counts characters from 1.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from mediatool.config import POST_SUFFIXES, DiscoverSettings
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
from mediatool.errors import PostError, UsageError
from mediatool.models import PostScan

__all__ = ["discover_signature", "find_posts", "find_posts_resolved", "read_post", "scan_text"]

# Raise when discover finds something new in posts it read before, so `fetch` reads them again.
RULES_REVISION = 3

_HTML_SUFFIXES = (".html", ".htm")


def discover_signature(settings: DiscoverSettings) -> list[object]:
    """What, besides the front-matter keys, decides what discover finds (for scan_fingerprint)."""
    tables = [settings.attributes, settings.shortcodes, settings.tags, settings.components]
    return [RULES_REVISION, *(json_ready(table) for table in tables)]


def _shown(found: list[Found], hidden: Sequence[tuple[int, int]]) -> list[Found]:
    """Generator references outside `hidden` spans: a shortcode in a code span or an HTML
    comment renders as text or inside the comment, so it shows no image."""
    inside = region_test(hidden)
    return [item for item in found if not inside(item.start)]


def json_ready(value: object) -> object:
    """`value` with mappings as dicts and sequences as lists (for json.dumps)."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def find_generator_syntax(text: str, tables: Tables) -> GeneratorScan:
    """Hugo shortcodes and Hexo/Liquid tags: their references, and the spans to blank (the
    tags themselves, escaped shortcodes and code blocks) before HTML and Markdown are read."""
    result = GeneratorScan()
    find_shortcodes(text, tables, result)
    find_liquid_tags(blank(text, result.spans), tables, result)
    find_wordpress_shortcodes(text, result)
    return result


def find_posts(paths: Sequence[Path], exclude: Sequence[Path] = ()) -> list[Path]:
    """The post files named by `paths`, sorted and deduplicated.

    A file is taken whatever its suffix; a folder is searched recursively for POST_SUFFIXES
    (any case), skipping hidden folders and files and anything under an `exclude` folder.
    A path that does not exist is a UsageError."""
    return list(find_posts_resolved(paths, exclude))


def find_posts_resolved(paths: Sequence[Path], exclude: Sequence[Path] = ()) -> dict[Path, Path]:
    """Like `find_posts`, as {post path as found: its resolved path}, in the same order, so a
    caller need not resolve each post again (resolving is most of the cost of finding)."""
    excluded = [folder.resolve() for folder in exclude]
    posts: dict[Path, Path] = {}
    for path in paths:
        if path.is_dir():
            candidates: Iterator[tuple[Path, Path]] = _walk(path, excluded)
        elif path.exists():
            candidates = iter([(path, path.resolve())])
        else:
            raise UsageError(f"{path}: no such file or folder; check the path.")
        for candidate, resolved in candidates:
            if not _is_under(resolved, excluded):
                posts.setdefault(resolved, candidate)
    return {shown: resolved for resolved, shown in sorted(posts.items(), key=lambda p: p[1])}


def _walk(root: Path, excluded: Sequence[Path]) -> Iterator[tuple[Path, Path]]:
    """Each post below `root` with its resolved path: its folder is resolved once, and only a
    file that is itself a symbolic link is resolved on its own."""
    for folder, subfolders, files in os.walk(root):
        real_folder = Path(folder).resolve()
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".") and not _is_under(Path(folder, name).resolve(), excluded)
        )
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in POST_SUFFIXES:
                path = Path(folder, name)
                yield path, path.resolve() if os.path.islink(path) else real_folder / name


def _is_under(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == folder or path.is_relative_to(folder) for folder in folders)


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
