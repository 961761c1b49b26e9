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

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mediatool.config import DiscoverSettings
from mediatool.discover.walk import PostFile, find_post_files, find_posts, find_posts_resolved

if TYPE_CHECKING:
    from mediatool.discover._scan import read_post, read_regular_file, scan_text

__all__ = [
    "PostFile",
    "discover_signature",
    "find_post_files",
    "find_posts",
    "find_posts_resolved",
    "read_post",
    "read_regular_file",
    "scan_text",
]

# Raise when discover finds something new in posts it read before, so `fetch` reads them again.
RULES_REVISION = 3

_SCANNING = frozenset({"read_post", "read_regular_file", "scan_text"})


def __getattr__(name: str) -> object:
    """read_post, read_regular_file and scan_text, from `_scan` on first use (its parsers are
    slow to import, and finding posts, or a run where no post changed, needs none of them)."""
    if name in _SCANNING:
        from mediatool.discover import _scan

        return getattr(_scan, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def discover_signature(settings: DiscoverSettings) -> list[object]:
    """What, besides the front-matter keys, decides what discover finds (for scan_fingerprint)."""
    tables = [settings.attributes, settings.shortcodes, settings.tags, settings.components]
    return [RULES_REVISION, *(json_ready(table) for table in tables)]


def json_ready(value: object) -> object:
    """`value` with mappings as dicts and sequences as lists (for json.dumps)."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value
