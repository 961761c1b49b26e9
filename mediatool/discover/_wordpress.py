"""WordPress shortcodes left in exported posts: `[video mp4="..."]`, `[audio src="..."]`,
`[embed]URL[/embed]`.

`[caption]` needs nothing here: the <img> inside it is HTML. A `[name](...)` is a Markdown link,
not a shortcode.
"""

from __future__ import annotations

import re

from mediatool.discover._params import Token, found_for, media_of_name, select, split_arguments
from mediatool.discover._shortcodes import GeneratorScan
from mediatool.discover._text import names_media
from mediatool.discover.table import WORDPRESS_SHORTCODES, Parameter, wordpress_context

_NAMES = "|".join(WORDPRESS_SHORTCODES)
_SHORTCODE = re.compile(r"\[(" + _NAMES + r")((?:\s[^\[\]]{0,2000})?)\](?!\()", re.IGNORECASE)
_EMBED = re.compile(r"\[embed\b[^\[\]]{0,2000}\]\s*([^\s\[\]]+)\s*\[/embed\]", re.IGNORECASE)
_TABLES = {
    name: tuple(Parameter.parse(p) for p in parameters)
    for name, parameters in WORDPRESS_SHORTCODES.items()
}


def find_wordpress_shortcodes(text: str, result: GeneratorScan) -> None:
    """Add the media parameters of WordPress shortcodes and the URL of `[embed]` to `result`."""
    for match in _SHORTCODE.finditer(text):
        name = match.group(1).lower()
        tokens = split_arguments(text, match.start(2), match.end(2))
        for label, token in select(tokens, _TABLES[name]):
            media = "image" if label == "poster" else media_of_name(name)
            result.found.append(found_for(wordpress_context(name, label), token, media))
    for match in _EMBED.finditer(text):
        start, end = match.span(1)
        if names_media(text[start:end]):
            token = Token(None, start, end, text[start:end])
            result.found.append(found_for(wordpress_context("embed", "url"), token))
