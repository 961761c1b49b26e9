"""The rule table: every place discover looks, and the list of it in docs/finding.md.

The scanners build every context name they report from the entries below, and
`render_finding()` writes the same entries as the Markdown list of what is found, so `scan`'s
output and the documentation cannot drift apart:

    scripts/gen-docs            rewrite docs/finding.md
    scripts/gen-docs --check    exit 1 when docs/finding.md is stale

Users extend the tables in mediatool.toml (see `Tables.from_settings`):

    [discover]
    attributes = [{tag = "img", attribute = "data-lazy", kind = "url"}]
    shortcodes = {photo = ["src", "0"]}         # Hugo: name -> parameters
    tags = {myimage = ["0"]}                    # Hexo/Liquid `{% name ... %}`: name -> parameters
    components = {Hero = ["backdrop"]}        # MDX/Vue/Svelte: component -> attributes

A parameter is a name (`src`), a position counted from 0 (`0`), `*` (every positional one),
`:named` (every named one; the context names it), `:url` (the first positional that looks like
an URL, Hexo's `{% img %}` rule) or `:asset` (the first positional naming an image file, else
the first: Hexo's post asset folder). A trailing `?` takes the value only when it names an image
or media file (`link?`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mediatool.config import ATTRIBUTE_KINDS, DiscoverSettings
from mediatool.config import MEDIA_KINDS as MEDIA

__all__ = ["ATTRIBUTE_KINDS", "MEDIA", "Tables", "render_finding"]
# How an attribute's media is decided besides a fixed name: "parent" (<source>: the enclosing
# <video>/<audio>, else image), "type" (<object>/<embed>: the type attribute, else the
# extension), "extension" (a link: the file it names).
MEDIA_RULES = (*MEDIA, "parent", "type", "extension")


@dataclass(frozen=True, slots=True)
class AttributeRule:
    """An HTML attribute that holds URLs: `tag` is a lower-case element name or "*" (any)."""

    tag: str
    attribute: str
    kind: str = "url"  # "url": the value; "srcset": every candidate; "style": each url(...)
    media: str = "image"

    @property
    def context(self) -> str:
        if self.kind == "style":
            return "style@url"
        return f"{'attr' if self.tag == '*' else self.tag}@{self.attribute}"


def _attributes(
    tag: str, names: str, kind: str = "url", media: str = "image"
) -> list[AttributeRule]:
    return [AttributeRule(tag, name, kind, media) for name in names.split()]


# Lazy loaders: lazysizes/lozad (data-src, data-srcset, data-bg), jQuery lazyload (data-original),
# WordPress plugins (data-lazy-src, data-lazy-srcset), Jetpack carousel (data-orig-file,
# data-medium-file, data-large-file), Jianshu (data-original-src), echo.js (data-echo),
# Zhihu (data-actualsrc), WeChat (data-croporisrc, data-backsrc), Baidu (_src), Taobao
# (data-ks-lazyload), and others (data-url, data-lazyload, data-hi-res-src).
DEFAULT_ATTRIBUTES: tuple[AttributeRule, ...] = (
    *_attributes(
        "img",
        "src data-src data-original data-lazy-src data-actualsrc _src data-original-src "
        "data-echo data-url data-croporisrc data-backsrc data-lazyload data-ks-lazyload "
        "data-hi-res-src data-orig-file data-medium-file data-large-file",
    ),
    *_attributes("img", "srcset data-srcset data-lazy-srcset", "srcset"),
    *_attributes("source", "srcset data-srcset data-lazy-srcset", "srcset"),
    *_attributes("source", "src data-src", media="parent"),
    *_attributes("video", "poster data-poster"),
    *_attributes("video", "src data-src", media="video"),
    *_attributes("audio", "src data-src", media="audio"),
    *_attributes("track", "src", media="track"),
    *_attributes("object", "data", media="type"),
    *_attributes("embed", "src", media="type"),
    *_attributes("image", "href xlink:href"),
    *_attributes("param", "value", media="extension"),  # <object><param name=... value=...>
    *_attributes("*", "data-avatar data-logo data-bg data-background-image background"),
    AttributeRule("*", "style", "style"),
)

# Hugo shortcodes, `{{< name ... >}}` and `{{% name ... %}}`. "*" applies to every shortcode;
# a named entry adds to it.
DEFAULT_SHORTCODES: Mapping[str, tuple[str, ...]] = {
    "*": (
        "src",
        "image",
        "img",
        "poster",
        "thumb",
        "thumbnail",
        "cover",
        "url?",
        "link?",
        "href?",
        "file?",
        "*?",
        ":named?",
    ),
    "figure": (),
    "img": ("0",),
    "image": ("0",),
    "imgproc": ("0?",),
    "photo": ("0",),
    "picture": ("0",),
    "video": ("0",),
    "audio": ("0",),
}

# Hexo tag plugins and Liquid tags, `{% name ... %}` (named values as `key=value` or `key:value`).
DEFAULT_TAGS: Mapping[str, tuple[str, ...]] = {
    "*": ("*?", ":named?"),  # any other tag: an argument naming an image or media file
    "img": (":url",),  # {% img [class] URL [width] [height] [title [alt]] %}
    "image": ("0", "src", "url"),  # Stellar, Volantis: {% image URL [alt] [width:...] %}
    "asset_img": (":asset",),  # {% asset_img [class] name.jpg [title] %}: the post asset folder
    "asset_image": (":asset",),
    "inlineimg": ("0",),  # Butterfly {% inlineImg URL height %}
    "inlineimage": ("0",),
    "fancybox": ("0",),
    "photo": ("0",),
    "gallerygroup": ("3",),  # Butterfly {% galleryGroup name description link URL %}
    "video": ("0", "src", "url"),
    "audio": ("0", "src", "url"),
}

# Jekyll `{% include file.html key="value" %}`: these parameters hold an image in any include;
# INCLUDE_LINK_PARAMETERS when the include's name says it shows one (INCLUDE_IMAGE_WORDS); any
# parameter when its value names an image or media file.
INCLUDE_PARAMETERS = ("image_path", "image", "img", "src", "imgurl", "thumbnail", "teaser")
INCLUDE_LINK_PARAMETERS = ("url", "file", "path", "link", "href", "name")
INCLUDE_IMAGE_WORDS = ("image", "img", "figure", "photo", "picture", "gallery", "video")

# WordPress shortcodes in exported posts: `[video mp4="..."]`, `[audio mp3="..."]` (and
# `[embed]URL[/embed]` when the URL names an image or media file).
WORDPRESS_SHORTCODES: Mapping[str, tuple[str, ...]] = {
    "video": ("src", "mp4", "m4v", "webm", "ogv", "wmv", "flv", "mov", "poster"),
    "audio": ("src", "mp3", "m4a", "ogg", "oga", "wav", "wma", "flac"),
}

# <meta> elements whose content is the post's image (saved HTML pages).
META_IMAGE_NAMES = (
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
    "image",
    "thumbnail",
)

# Capitalised components in MDX / Vue / Svelte flavoured Markdown: `<Image imgUrl="...">`.
DEFAULT_COMPONENTS: Mapping[str, tuple[str, ...]] = {
    "*": ("src", "image", "imgUrl", "poster", "url?"),
    "Image": ("url",),
    "Img": ("url",),
    "Figure": ("url",),
    "Picture": ("url",),
    "Photo": ("url",),
}


@dataclass(frozen=True, slots=True)
class Parameter:
    """One entry of a shortcode, tag or component list (see the module docstring)."""

    name: str | None = None  # a named parameter (lower-cased for comparison)
    position: int | None = None  # a positional one
    every: bool = False  # every positional one
    special: str | None = None  # "url" or "asset"
    link: bool = False  # only when the value names an image or media file
    label: str = ""  # how the context names it

    @classmethod
    def parse(cls, text: str) -> Parameter:
        link = text.endswith("?")
        body = text.rstrip("?")
        if body.startswith(":"):
            label = {":url": "first-url", ":named": "<parameter>"}.get(body, body[1:])
            return cls(special=body[1:], link=link, label=label)
        if body == "*":
            return cls(every=True, link=link, label="*")
        if body.isdigit():
            return cls(position=int(body), link=link, label=body)
        return cls(name=body.lower(), link=link, label=body)


@dataclass(frozen=True, slots=True)
class Tables:
    """The compiled tables one scan uses: defaults plus the user's `[discover]` additions."""

    by_tag: Mapping[str, tuple[AttributeRule, ...]]
    any_tag: Mapping[str, AttributeRule]
    shortcodes: Mapping[str, tuple[Parameter, ...]]
    tags: Mapping[str, tuple[Parameter, ...]]
    components: Mapping[str, tuple[Parameter, ...]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: DiscoverSettings) -> Tables:
        attributes = [*DEFAULT_ATTRIBUTES, *(_user_attribute(a) for a in settings.attributes)]
        by_tag: dict[str, list[AttributeRule]] = {}
        any_tag: dict[str, AttributeRule] = {}
        for rule in attributes:
            if rule.tag == "*":
                any_tag.setdefault(rule.attribute, rule)
            else:
                by_tag.setdefault(rule.tag, []).append(rule)
        return cls(
            by_tag={tag: tuple(rules) for tag, rules in by_tag.items()},
            any_tag=any_tag,
            shortcodes=_merged(DEFAULT_SHORTCODES, settings.shortcodes, str.lower),
            tags=_merged(DEFAULT_TAGS, settings.tags, str.lower),
            components=_merged(DEFAULT_COMPONENTS, settings.components, lambda name: name),
        )

    def attribute(self, tag: str, name: str) -> AttributeRule | None:
        """The rule for attribute `name` on element `tag` (both lower-case), if any."""
        for rule in self.by_tag.get(tag, ()):
            if rule.attribute == name:
                return rule
        return self.any_tag.get(name)

    def shortcode(self, name: str) -> tuple[Parameter, ...]:
        return _with_default(self.shortcodes, name.lower())

    def tag(self, name: str) -> tuple[Parameter, ...]:
        return _with_default(self.tags, name.lower())

    def component(self, name: str) -> tuple[Parameter, ...]:
        return _with_default(self.components, name)


def _with_default(table: Mapping[str, tuple[Parameter, ...]], name: str) -> tuple[Parameter, ...]:
    """The parameters of `name` first (their labels win), then those of every name ("*")."""
    return (*(table.get(name, ()) if name != "*" else ()), *table.get("*", ()))


def _user_attribute(entry: Mapping[str, str]) -> AttributeRule:
    return AttributeRule(
        entry["tag"].lower(),
        entry["attribute"].lower(),
        entry.get("kind", "url"),
        entry.get("media", "image"),
    )


def _merged(
    defaults: Mapping[str, Sequence[str]],
    extra: Mapping[str, Sequence[str]],
    fold: Callable[[str], str],
) -> dict[str, tuple[Parameter, ...]]:
    merged: dict[str, list[str]] = {fold(n): list(v) for n, v in defaults.items()}
    for name, parameters in extra.items():
        merged.setdefault(fold(name), []).extend(parameters)
    return {name: tuple(Parameter.parse(p) for p in ps) for name, ps in merged.items()}


# ---------------------------------------------------------------- the rules as documentation


@dataclass(frozen=True, slots=True)
class Rule:
    """A row of docs/finding.md: a context `scan` prints (placeholders in <>) and what it finds."""

    context: str
    finds: str


MARKDOWN = "markdown"
MARKDOWN_LINK = "markdown-link"
MARKDOWN_REF = "markdown-ref"
ANCHOR = "a@href"
FRONTMATTER = "frontmatter:<key>"
TEMPLATE_PATH = "template-path"
META = "meta@content"


def shortcode_context(name: str, label: str) -> str:
    return f"shortcode:{name.lower()}@{label}"


def tag_context(name: str, label: str) -> str:
    return f"tag:{name.lower()}@{label}"


def wordpress_context(name: str, label: str) -> str:
    return f"wp:{name}@{label}"


def include_context(name: str, parameter: str) -> str:
    return f"include:{name}@{parameter}"


def component_context(name: str, label: str) -> str:
    return f"component:{name}@{label}"


def _media_words(media: str) -> str:
    return {
        "parent": "media of the enclosing <video>/<audio>, else image",
        "type": "media by its type attribute, else by extension; neither: not a reference",
        "extension": "when it names an image or media file; media by extension",
    }.get(media, media)


def _parameter_words(parameters: Iterable[str]) -> str:
    return ", ".join(f"`{p}`" for p in parameters) or "(only the common ones)"


def rule_sections() -> list[tuple[str, list[Rule]]]:
    """Every rule, grouped by syntax, in the order docs/finding.md lists them."""
    html = [
        Rule(rule.context, _attribute_words(rule))
        for rule in DEFAULT_ATTRIBUTES
        if rule.kind != "style"
    ]
    html += [
        Rule("style@url", "every `url(...)` in a `style` attribute of any element"),
        Rule(ANCHOR, "<a href> when it names an image or media file (media by extension)"),
        Rule(
            META,
            "<meta content> when its property, name or itemprop is "
            f"{_parameter_words(META_IMAGE_NAMES)}",
        ),
        Rule(
            "component:<Component>@<attribute>",
            "a capitalised tag (MDX, Vue, Svelte): "
            + "; ".join(
                f"{'any component' if n == '*' else f'`<{n}>`'}: {_parameter_words(ps)}"
                for n, ps in DEFAULT_COMPONENTS.items()
            ),
        ),
    ]
    markdown = [
        Rule(MARKDOWN, '`![alt](url "title")`, `![alt](<url>)` (media by extension)'),
        Rule(
            MARKDOWN_LINK,
            "`[text](url)` and `[![alt](img)](url)` when the url names an image or media file",
        ),
        Rule(
            MARKDOWN_REF,
            "the `[id]: url` definition of a reference image (`![alt][id]`), or of a reference "
            "link (`[text][id]`) when the url names an image or media file; once",
        ),
    ]
    hugo = [
        Rule(
            "shortcode:<name>@<parameter>",
            "any shortcode, `{{< name ... >}}` or `{{% name ... %}}` (`{{< figure src=... >}}`):"
            f" {_parameter_words(DEFAULT_SHORTCODES['*'])} (media by extension)",
        ),
        *_parameter_rules(DEFAULT_SHORTCODES, shortcode_context, "`{{{{< {} ... >}}}}`"),
    ]
    hexo = [
        Rule(
            "tag:<name>@<parameter>",
            "any other tag `{% name ... %}`: an argument (`tag:<name>@*`) or a named argument "
            "(`key=value` or `key:value`) naming an image or media file (media by extension)",
        ),
        *_parameter_rules(DEFAULT_TAGS, tag_context, "`{{% {} ... %}}`"),
        Rule(
            "include:<file>@<parameter>",
            f'`{{% include file key="value" %}}` (quoted values only): '
            f"{_parameter_words(INCLUDE_PARAMETERS)}; "
            f"{_parameter_words(INCLUDE_LINK_PARAMETERS)} when the include's name holds "
            f"{_parameter_words(INCLUDE_IMAGE_WORDS)}; any other when it names an image or "
            "media file",
        ),
        Rule(
            TEMPLATE_PATH,
            "`{{ site.url }}/images/x.png` written in text (a `{% capture %}` list a gallery "
            "include reads), when the path names an image or media file",
        ),
    ]
    wordpress = [
        Rule(
            wordpress_context(name, "<parameter>"),
            f"`[{name} ...]`: {_parameter_words(parameters)} (media {name}; `poster` image)",
        )
        for name, parameters in WORDPRESS_SHORTCODES.items()
    ]
    wordpress.append(
        Rule(
            wordpress_context("embed", "url"),
            "`[embed]url[/embed]` when the url names an image or media file",
        )
    )
    front = [Rule(FRONTMATTER, "the configured front-matter keys (`frontmatter_keys`)")]
    return [
        ("HTML (any post)", html),
        ("Markdown (.md, .markdown, .mdx: Markdown inside JSX blocks too)", markdown),
        ("Hugo shortcodes (any post)", hugo),
        ("Hexo tag plugins and Jekyll/Liquid tags (any post)", hexo),
        ("WordPress shortcodes (any post)", wordpress),
        ("Front matter", front),
    ]


def _parameter_description(parameter: Parameter) -> str:
    if parameter.special == "url":
        return (
            "the first argument that looks like an URL (scheme, `//` or `/`), else the first "
            "naming an image file"
        )
    if parameter.special == "asset":
        return "the first argument naming an image file, else the first (post asset folder)"
    if parameter.special == "named":
        return "every named argument"
    if parameter.every:
        return "every positional argument"
    if parameter.name is None:
        return f"argument {parameter.label} (counted from 0)"
    return f"`{parameter.label}=`"


def _parameter_rules(
    table: Mapping[str, Sequence[str]],
    context: Callable[[str, str], str],
    syntax: str,
) -> list[Rule]:
    """One row per (name, parameter) of a shortcode or tag table, "*" (any name) left out."""
    rules = []
    for name, texts in table.items():
        for parameter in (Parameter.parse(text) for text in texts):
            if name == "*":
                continue
            words = _parameter_description(parameter)
            if parameter.link:
                words += ", when it names an image or media file"
            rules.append(Rule(context(name, parameter.label), f"{syntax.format(name)}: {words}"))
    return rules


def _attribute_words(rule: AttributeRule) -> str:
    where = "any element" if rule.tag == "*" else f"`<{rule.tag}>`"
    what = "every candidate of " if rule.kind == "srcset" else ""
    return f"{what}`{rule.attribute}` on {where} ({_media_words(rule.media)})"


CONTEXT_PATTERNS = tuple(rule.context for _, rules in rule_sections() for rule in rules)


def context_matches(context: str, pattern: str) -> bool:
    """True when a context `scan` printed fits a rule's context (placeholders in <>)."""
    regex = re.sub(r"<[^>]+>", "\x00", pattern)
    regex = ".+".join(re.escape(piece) for piece in regex.split("\x00"))
    return re.fullmatch(regex, context) is not None


def known_context(context: str) -> bool:
    return any(context_matches(context, pattern) for pattern in CONTEXT_PATTERNS)


def render_finding() -> str:
    """docs/finding.md: the Markdown list of what discover finds, from the tables above."""
    lines = [
        "# What mediatool finds",
        "",
        "<!-- Generated by scripts/gen-docs from mediatool/discover/table.py;",
        "     do not edit by hand. -->",
        "",
        "Each line gives the context `scan` prints for a reference, then what it finds. Media",
        "is `image` unless said otherwise (`scan` prints it as `media`). Code blocks, code spans,",
        "escaped shortcodes (`{{</* ... */>}}`) and `{% raw %}` blocks are text; a shortcode or",
        "tag inside an HTML comment shows nothing and is not a reference.",
        "Jekyll/Hugo template prefixes in an URL (`{{ site.baseurl }}/x.png`,",
        '`{{ "/x.png" | relative_url }}`) are local references to the path inside.',
    ]
    for title, rules in rule_sections():
        lines += ["", f"## {title}", ""]
        lines += [f"- `{rule.context}`: {rule.finds}" for rule in rules]
    lines += [
        "",
        "## Extending the tables",
        "",
        "In `mediatool.toml`, `[discover]` adds to the defaults above:",
        "",
        "```toml",
        "[discover]",
        'attributes = [{tag = "img", attribute = "data-lazy", kind = "url"}]  # url, srcset, style',
        'shortcodes = {photo = ["src", "0"]}',
        'tags = {myimage = ["0"]}',
        'components = {Hero = ["backdrop"]}',
        "```",
        "",
        "A parameter is a name, a position from 0, `*` (every positional one), `:url` (the first",
        "positional that looks like an URL) or `:asset` (the first naming an image file); a",
        "trailing `?` takes the value only when it names an image or media file. An attribute",
        f"entry may add `media` ({', '.join(MEDIA)}).",
    ]
    return "\n".join(lines) + "\n"


DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "finding.md"


def main(argv: Sequence[str]) -> int:
    """scripts/gen-docs: write docs/finding.md, or with --check say whether it is stale."""
    text = render_finding()
    if "--check" in argv:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.is_file() else ""
        if current != text:
            print(f"{DOC_PATH}: stale; run scripts/gen-docs.", file=sys.stderr)
            return 1
        return 0
    DOC_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0
