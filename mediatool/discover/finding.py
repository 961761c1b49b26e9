"""docs/finding.md, the list of what discover finds, rendered from discover/table.py.

    scripts/gen-docs            rewrite docs/finding.md
    scripts/gen-docs --check    exit 1 when docs/finding.md is stale

`known_context` says whether a context `scan` printed is one the list names (the tests check
every context the scanners produce with the default tables).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediatool.discover.table import (
    ANCHOR,
    DEFAULT_ATTRIBUTES,
    DEFAULT_COMPONENTS,
    DEFAULT_SHORTCODES,
    DEFAULT_TAGS,
    EMBED,
    FRONTMATTER,
    INCLUDE_IMAGE_WORDS,
    INCLUDE_LINK_PARAMETERS,
    INCLUDE_PARAMETERS,
    MARKDOWN,
    MARKDOWN_LINK,
    MARKDOWN_REF,
    MDX_IMPORT,
    MEDIA,
    META,
    META_IMAGE_NAMES,
    TEMPLATE_PATH,
    WORDPRESS_SHORTCODES,
    AttributeRule,
    Parameter,
    shortcode_context,
    tag_context,
    wordpress_context,
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A row of docs/finding.md: a context `scan` prints (placeholders in <>) and what it finds."""

    context: str
    finds: str


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
    return [
        ("HTML (any post)", _html_rules()),
        ("Markdown (.md, .markdown, .mdx: Markdown inside JSX blocks too)", _markdown_rules()),
        ("Hugo shortcodes (any post)", _hugo_rules()),
        ("Hexo tag plugins and Jekyll/Liquid tags (any post)", _liquid_rules()),
        ("WordPress shortcodes (any post)", _wordpress_rules()),
        ("Front matter", [Rule(FRONTMATTER, "the configured keys (`frontmatter_keys`)")]),
    ]


def _html_rules() -> list[Rule]:
    rules = [Rule(r.context, _attribute_words(r)) for r in DEFAULT_ATTRIBUTES if r.kind != "style"]
    components = "; ".join(
        f"{'any component' if name == '*' else f'`<{name}>`'}: {_parameter_words(parameters)}"
        for name, parameters in DEFAULT_COMPONENTS.items()
    )
    return [
        *rules,
        Rule("style@url", "every `url(...)` in a `style` attribute of any element"),
        Rule(ANCHOR, "<a href> when it names an image or media file (media by extension)"),
        Rule(
            META,
            "<meta content> when its property, name or itemprop is "
            f"{_parameter_words(META_IMAGE_NAMES)}",
        ),
        Rule(
            "component:<Component>@<attribute>",
            f"a capitalised tag (MDX, Vue, Svelte): {components}",
        ),
    ]


def _markdown_rules() -> list[Rule]:
    return [
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
        Rule(EMBED, "Obsidian/Quartz `![[file.png]]` and `![[file.png|300]]` (not notes)"),
        Rule(MDX_IMPORT, "`import cover from './cover.png'` in .mdx posts"),
    ]


def _hugo_rules() -> list[Rule]:
    return [
        Rule(
            "shortcode:<name>@<parameter>",
            "any shortcode, `{{< name ... >}}` or `{{% name ... %}}` (`{{< figure src=... >}}`):"
            f" {_parameter_words(DEFAULT_SHORTCODES['*'])} (media by extension; `*?`, every"
            " positional argument naming a file, only for shortcodes not listed below)",
        ),
        *_parameter_rules(DEFAULT_SHORTCODES, shortcode_context, "`{{{{< {} ... >}}}}`"),
    ]


def _liquid_rules() -> list[Rule]:
    return [
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
            f"{_parameter_words(INCLUDE_IMAGE_WORDS)} and the value is a path (holds / or .); "
            "any other when it names an image or media file",
        ),
        Rule(
            TEMPLATE_PATH,
            "`{{ site.url }}/images/x.png` written in text (a `{% capture %}` list a gallery "
            "include reads), when the path names an image or media file",
        ),
    ]


def _wordpress_rules() -> list[Rule]:
    rules = [
        Rule(
            wordpress_context(name, "<parameter>"),
            f"`[{name} ...]`: {_parameter_words(parameters)} (media {name}; `poster` image)",
        )
        for name, parameters in WORDPRESS_SHORTCODES.items()
    ]
    embed = "`[embed]url[/embed]` when the url names an image or media file"
    return [*rules, Rule(wordpress_context("embed", "url"), embed)]


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
