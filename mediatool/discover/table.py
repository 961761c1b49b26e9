"""The rule table: every place discover looks, and the context names it reports.

The scanners build every context name they report from the entries below, and
discover/finding.py renders the same entries as docs/finding.md, the list of what is found,
so `scan`'s output and the documentation cannot drift apart (scripts/gen-docs).

Users extend the tables in mediatool.toml (see `Tables.from_settings`):

    [discover]
    attributes = [{tag = "img", attribute = "data-lazy", kind = "url"}]
    shortcodes = {photo = ["src", "0"]}         # Hugo: name -> parameters
    tags = {myimage = ["0"]}                    # Hexo/Liquid `{% name ... %}`: name -> parameters
    components = {Hero = ["backdrop"]}          # MDX/Vue/Svelte: component -> attributes

A parameter is a name (`src`), a position counted from 0 (`0`), `*` (every positional one),
`:named` (every named one; the context names it), `:url` (the first positional that looks like
an URL, Hexo's `{% img %}` rule) or `:asset` (the first positional naming an image file, else
the first: Hexo's post asset folder). A trailing `?` takes the value only when it names an image
or media file (`link?`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mediatool.config import ATTRIBUTE_KINDS, DiscoverSettings
from mediatool.config import MEDIA_KINDS as MEDIA

__all__ = ["ATTRIBUTE_KINDS", "MEDIA", "Tables"]


@dataclass(frozen=True, slots=True)
class AttributeRule:
    """An HTML attribute that holds URLs: `tag` is a lower-case element name or "*" (any)."""

    tag: str
    attribute: str
    kind: str = "url"  # "url": the value; "srcset": every candidate; "style": each url(...)
    # A media name, or how to decide it: "parent" (<source>: the enclosing <video>/<audio>, else
    # image), "type" (<object>/<embed>: the type attribute, else the extension), "extension"
    # (only when the value names an image or media file).
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
# Zhihu (data-actualsrc, data-default-watermark-src), WeChat (data-croporisrc, data-backsrc),
# Baidu (_src), Taobao (data-ks-lazyload), zoom plugins (data-zoom-src, data-zoom-image), and
# others (data-url, data-lazyload, data-hi-res-src); AMP pages (amp-img, amp-video).
DEFAULT_ATTRIBUTES: tuple[AttributeRule, ...] = (
    *_attributes(
        "img",
        "src data-src data-original data-lazy-src data-actualsrc _src data-original-src "
        "data-echo data-url data-croporisrc data-backsrc data-lazyload data-ks-lazyload "
        "data-hi-res-src data-orig-file data-medium-file data-large-file data-zoom-src "
        "data-zoom-image data-default-watermark-src",
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
    *_attributes("iframe", "src", media="extension"),  # an embedded PDF or video file
    *_attributes("image", "href xlink:href"),
    *(rule for tag in ("amp-img", "amp-anim") for rule in _attributes(tag, "src")),
    *(rule for tag in ("amp-img", "amp-anim") for rule in _attributes(tag, "srcset", "srcset")),
    *_attributes("amp-video", "poster"),
    *_attributes("amp-video", "src", media="video"),
    *_attributes("amp-audio", "src", media="audio"),
    *_attributes("param", "value", media="extension"),  # <object><param name=... value=...>
    *_attributes("*", "data-avatar data-logo data-bg data-background-image"),
    *(
        rule
        for tag in ("body", "table", "tr", "td", "th")
        for rule in _attributes(tag, "background")
    ),
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
        "thumb?",  # hugo-easy-gallery's thumb="-thumb" is a file-name suffix
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
    "image": ("0", "path"),
    "imgproc": ("0?",),
    "photo": ("0",),
    "picture": ("0",),
    "video": ("0",),
    "audio": ("0",),
}

# Hexo tag plugins and Liquid tags, `{% name ... %}` (named values as `key=value` or `key:value`).
DEFAULT_TAGS: Mapping[str, tuple[str, ...]] = {
    "*": ("*?", ":named?"),  # any other tag: an argument naming an image or media file
    "img": (":url", "src"),  # {% img [class] URL [width] [height] [title [alt]] %}
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
    """The parameters of `name` first (their labels win), then those of every name ("*"); a
    name the table knows takes no `*` (every positional) from "*": its own list says which
    positional arguments are images (`{% img URL title.png %}`: title.png is the title)."""
    own = table.get(name) if name != "*" else None
    common = table.get("*", ())
    if own is None:
        return common
    return (*own, *(p for p in common if not p.every))


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


# ---------------------------------------------------------------- context names

MARKDOWN = "markdown"
MARKDOWN_LINK = "markdown-link"
MARKDOWN_REF = "markdown-ref"
ANCHOR = "a@href"
FRONTMATTER = "frontmatter:<key>"
TEMPLATE_PATH = "template-path"
META = "meta@content"
EMBED = "embed"
MDX_IMPORT = "mdx-import"


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
