"""Parameters of generator syntax (Hugo shortcodes, Liquid tags, components): which hold images.

A scanner turns its syntax into Tokens (a value's span and decoded text, with its name if it
was given as `name=value`); `select` picks the ones a table's Parameters name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mediatool.discover._text import Found, looks_like_image, media_by_extension, names_media
from mediatool.discover.table import Parameter

_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:|//|/")
_ARGUMENT = re.compile(
    r"""(?:(?P<key>[A-Za-z_][\w-]*)(?:=|:(?!//)))?"""
    r"""(?:"(?P<double>[^"]*)"|'(?P<single>[^']*)'|(?P<bare>[^\s"']+))"""
)


@dataclass(frozen=True, slots=True)
class Token:
    """One parameter value: [start, end) in the post's text, without its quotes."""

    key: str | None  # lower-cased name of a `name=value` parameter; None for a positional one
    start: int
    end: int
    source: str  # the value as the generator reads it (escapes decoded)
    quoted: bool = False


def select(tokens: Sequence[Token], parameters: Sequence[Parameter]) -> list[tuple[str, Token]]:
    """The tokens the `parameters` name, each once (the first parameter that takes it wins),
    with the label a context gives them."""
    positional = [token for token in tokens if token.key is None]
    chosen: list[tuple[str, Token]] = []
    taken: set[int] = set()
    for parameter in parameters:
        for token in _candidates(parameter, tokens, positional):
            if token.start in taken or not token.source.strip():
                continue
            if parameter.link and not names_media(token.source):
                continue
            taken.add(token.start)
            label = token.key if parameter.special == "named" and token.key else parameter.label
            chosen.append((label, token))
    return chosen


def _candidates(
    parameter: Parameter, tokens: Sequence[Token], positional: Sequence[Token]
) -> list[Token]:
    if parameter.name is not None:
        return [token for token in tokens if token.key == parameter.name]
    if parameter.every:
        return list(positional)
    if parameter.special == "named":
        return [token for token in tokens if token.key is not None]
    if parameter.position is not None:
        return list(positional[parameter.position : parameter.position + 1])
    if parameter.special == "url":
        first = next((t for t in positional if _URL_LIKE.match(t.source)), None)
        return [first] if first else _first_image(positional)
    if parameter.special == "asset":
        return _first_image(positional) or list(positional[:1])
    return []


def _first_image(tokens: Sequence[Token]) -> list[Token]:
    return [t for t in tokens if looks_like_image(t.source)][:1]


def found_for(context: str, token: Token, default_media: str = "image") -> Found:
    """A Found for a selected token; media by the file's extension, else `default_media`."""
    media = media_by_extension(token.source) or default_media
    return Found(context, token.start, token.end, token.source, media=media)


def media_of_name(name: str) -> str:
    """The media a shortcode or tag called `name` shows when its file does not say."""
    lowered = name.lower()
    return lowered if lowered in ("video", "audio") else "image"


def split_arguments(text: str, start: int, end: int) -> list[Token]:
    """Liquid/Hexo/WordPress arguments in text[start:end]: white-space separated, "double" or
    'single' quoted or bare (trailing commas dropped), named as `key=value` or `key:value`."""
    tokens = []
    for match in _ARGUMENT.finditer(text, start, end):
        group = next(g for g in ("double", "single", "bare") if match.group(g) is not None)
        value_start, value_end = match.start(group), match.end(group)
        if group == "bare":
            while value_end > value_start and text[value_end - 1] == ",":
                value_end -= 1
        key = match.group("key")
        source = text[value_start:value_end]
        key_name = key.lower() if key else None
        tokens.append(Token(key_name, value_start, value_end, source, quoted=group != "bare"))
    return tokens
