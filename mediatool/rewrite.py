"""References + new URLs -> an edited post: exact splices, nothing parsed back or reserialized.

Every byte outside the replaced reference spans stays as it was; the only other changes are one
inserted ` width="W" height="H"` per `<img>` whose reference changed and that had no size, and
(with `rewrite --srcset`) one inserted ` srcset="..." sizes="..."` per `<img>` of a localized
image that had no srcset, after its last attribute.

A new URL text is written as given (the caller quotes it); a text that would break the syntax
around it is refused, and the reference is left alone (`replacement_problem` says why):

    everywhere          empty, a control character or a line break (also U+2028, U+2029)
    HTML attribute      the attribute's own quote (the character before the span); both quotes,
                        white space, = < > ` when the value is unquoted; `&` before a letter,
                        digit or `#` (it could start a character reference)
    srcset candidate    also white space, and a comma at either end
    Markdown target     white space, ( ) and \\; inside <...>: < > and \\
    front matter        single-quoted: '; double-quoted: " and \\; plain: white space,
                        , [ ] { } #, and a YAML indicator as first character
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mediatool.discover._html import Tag, parse_tag
from mediatool.models import PostScan, Reference, Span

Localize = Callable[[Reference], str | None]
SizeFor = Callable[[Reference], tuple[int, int] | None]
# `rewrite --srcset`: the srcset/sizes text to insert into the <img> of a localized reference
SrcsetFor = Callable[[Reference], str | None]
TAG_LOOKBACK = 8  # '<' tried before a src value when finding its <img> tag
TAG_TAIL = 16_384  # characters of a tag read after its src value
_TAG_CLOSE = re.compile(r"[\s/]*>")  # what follows a tag's last attribute
OnSkip = Callable[[Reference, str], None]

_WHITESPACE = frozenset(
    " \t\n\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_YAML_FIRST = frozenset("-?:,[]{}#&*!|>'\"%@`")
_CHAR_REF = re.compile(r"&[A-Za-z0-9#]")
NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace text[span.start:span.end] with `new_text`; an insertion has start == end."""

    span: Span
    new_text: str


@dataclass(frozen=True, slots=True)
class UndoEdit:
    """One edit as `rewrite --undo` reverses it: at `offset` of the rewritten text stands `new`,
    where the text before the rewrite had `old` (empty for an inserted size)."""

    offset: int
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Generation:
    """One rewrite of one post: the sha256 of its bytes before and after, and the edits between
    them (ascending offsets of the rewritten text). `before`/`after` are None for records kept
    from a manifest older than schema 3; `--undo` then reverses the edits by their text alone."""

    post_key: str
    before: str | None
    after: str | None
    edits: tuple[UndoEdit, ...]
    run: str = ""
    id: int = 0  # the manifest's number; 0 until recorded


def size_attributes(width: int, height: int) -> str:
    """The text inserted into an `<img>` tag that has no size: ` width="W" height="H"`."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return f' width="{width}" height="{height}"'


def srcset_attributes(candidates: Sequence[tuple[str, int]], width: int) -> str:
    """The text inserted into an `<img>` for `rewrite --srcset`: each (URL, width) candidate as
    `URL Ww`, narrowest first (one per width), and `sizes` for a layout `width` pixels wide that
    shrinks with a narrower viewport."""
    if width < 1:
        raise ValueError(f"image width must be positive, got {width}")
    by_width: dict[int, str] = {}
    for url, candidate_width in candidates:
        by_width.setdefault(candidate_width, url)
    srcset = ", ".join(f"{by_width[w]} {w}w" for w in sorted(by_width))
    return f' srcset="{srcset}" sizes="(max-width: {width}px) 100vw, {width}px"'


def srcset_insert_at(text: str, ref: Reference) -> int | None:
    """Where `rewrite --srcset` inserts into the `<img>` whose `src` is `ref`: after its last
    attribute; None for any other reference, and for an `<img>` that already has a srcset."""
    if ref.context != "img@src":
        return None
    tag = _tag_of_src(text, ref.span)
    if tag is None or tag.get("srcset") is not None:
        return None
    at = tag.attributes[-1].end
    return at if _TAG_CLOSE.match(text, at) else None


def _tag_of_src(text: str, span: Span) -> Tag | None:
    """The `<img>` start tag whose `src` value is at `span`, read from the text."""
    lt = span.start
    for _ in range(TAG_LOOKBACK):
        lt = text.rfind("<", 0, lt)
        if lt < 0:
            return None
        tag = parse_tag(text[lt : span.end + TAG_TAIL], lt)
        if tag is not None and tag.name == "img":
            src = tag.get("src")
            if src is not None and src.value_start <= span.start < max(src.end, span.end):
                return tag
    return None


# --- planning -------------------------------------------------------------------------------


def plan_edits(
    scan: PostScan,
    localize: Localize,
    size_for: SizeFor,
    *,
    on_skip: OnSkip | None = None,
    srcset_for: SrcsetFor | None = None,
) -> list[Edit]:
    """The edits that point each reference at `localize(ref)`.

    None, or the text already there, leaves a reference alone. A changed reference of a tag with
    `size_insert_at` brings one size insertion per tag (from the first changed reference of the
    tag whose `size_for` is not None). A new text that would break its context is skipped and
    reported through `on_skip(ref, reason)`.

    With `srcset_for`, every `<img src>` without a srcset whose `srcset_for` is not None (a
    localized image, changed now or already local) also gets that text, after the size."""
    edits: list[Edit] = []
    sized: set[int] = set()
    with_srcset: set[int] = set()
    for ref in scan.references:
        new_text = localize(ref)
        if new_text is not None and new_text != ref.raw:
            problem = replacement_problem(scan.text, ref, new_text)
            if problem is not None:
                if on_skip is not None:
                    on_skip(ref, problem)
                continue
            edits.append(Edit(ref.span, new_text))
            edits.extend(_size_edit(ref, size_for, sized))
        if srcset_for is not None:
            edits.extend(_srcset_edit(scan.text, ref, srcset_for, with_srcset))
    return edits


def _size_edit(ref: Reference, size_for: SizeFor, sized: set[int]) -> list[Edit]:
    at = ref.size_insert_at
    if at is None or at in sized:
        return []
    size = size_for(ref)
    if size is None:
        return []
    sized.add(at)
    return [Edit(Span(at, at), size_attributes(*size))]


def _srcset_edit(text: str, ref: Reference, srcset_for: SrcsetFor, done: set[int]) -> list[Edit]:
    at = srcset_insert_at(text, ref)
    if at is None or at in done:
        return []
    inserted = srcset_for(ref)
    if inserted is None:
        return []
    done.add(at)
    return [Edit(Span(at, at), inserted)]


def rewrite_text(scan: PostScan, localize: Localize, size_for: SizeFor) -> str:
    """`scan.text` with every reference that can be localized pointing at its new text."""
    return apply_edits(scan.text, plan_edits(scan, localize, size_for))


# --- is a new text safe where it lands? -----------------------------------------------------


def replacement_problem(text: str, ref: Reference, new_text: str) -> str | None:
    """Why `new_text` cannot replace `ref` in `text`, or None when it can."""
    start, end = ref.span.start, ref.span.end
    if text[start:end] != ref.raw:
        return f"line {ref.line}: the post changed since it was scanned; scan it again"
    if not new_text:
        return f"line {ref.line}: the new URL is empty"
    if _BREAK.search(new_text):
        return f"line {ref.line}: the new URL {new_text!r} holds a line break or control character"
    if ref.context.startswith(HEXO_IMG_CONTEXT) and not _ROOTED.match(new_text):
        return (
            f"line {ref.line}: Hexo's {{% img %}} reads a path that does not start with / or a "
            "scheme as a class name; rewrite with --base-url (or from the site root)"
        )
    before = text[start - 1] if start > 0 else ""
    bad = _bad_chars(ref.context, before, new_text)
    if bad:
        return f"line {ref.line}: {bad} in {new_text!r} would break the {ref.context} around it"
    return None


HEXO_IMG_CONTEXT = "tag:img@"  # Hexo's {% img %}: its URL is the argument rooted at / or a scheme
_ROOTED = re.compile(r"/|[A-Za-z][A-Za-z0-9+.-]*:")
_BREAK = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # Unicode category Cc, LS and PS


def _bad_chars(context: str, before: str, new_text: str) -> str:
    if context.startswith("frontmatter"):
        return _bad_in_yaml(before, new_text)
    if context.startswith("markdown"):
        return _bad_in_markdown(before, new_text)
    return _bad_in_attribute(context, before, new_text)


def _found(chars: Iterable[str], new_text: str) -> str:
    hits = sorted(set(chars) & set(new_text))
    return " ".join(repr(c) for c in hits)


def _bad_in_yaml(before: str, new_text: str) -> str:
    if before == "'":
        return _found("'", new_text)
    if before == '"':
        return _found('"\\', new_text)
    if new_text[0] in _YAML_FIRST:
        return f"a leading {new_text[0]!r}"
    return _found(_WHITESPACE | set(",[]{}#"), new_text)


def _bad_in_markdown(before: str, new_text: str) -> str:
    if before == "<":
        return _found("<>\\", new_text)
    return _found(_WHITESPACE | set("()\\"), new_text)


def _bad_in_attribute(context: str, before: str, new_text: str) -> str:
    quoted = before in ("'", '"')
    forbidden: frozenset[str]
    if context.endswith("srcset"):
        if new_text[0] == "," or new_text[-1] == ",":
            return "a comma at the end"
        forbidden = _WHITESPACE | ({before} if quoted else set("'\""))
    elif quoted:
        forbidden = frozenset(before)
    else:
        forbidden = _WHITESPACE | set("'\"=<>`")
    found = _found(forbidden, new_text)
    if not found and _CHAR_REF.search(new_text):
        return "an '&' that could start a character reference"
    return found


# --- splicing -------------------------------------------------------------------------------


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Splice `edits` into `text`.

    Edits are sorted by (start, end), stably: insertions at one offset keep their given order,
    and an insertion at the start of a replaced span goes before the new text. Overlapping edits,
    or a span outside the text, raise ValueError."""
    ordered = sorted(edits, key=lambda edit: (edit.span.start, edit.span.end))
    _check_edits(len(text), ordered)
    pieces: list[str] = []
    position = 0
    for edit in ordered:
        pieces.append(text[position : edit.span.start])
        pieces.append(edit.new_text)
        position = edit.span.end
    pieces.append(text[position:])
    return "".join(pieces)


def _check_edits(length: int, ordered: Sequence[Edit]) -> None:
    previous: Span | None = None
    for edit in ordered:
        span = edit.span
        if not 0 <= span.start <= span.end <= length:
            raise ValueError(
                f"edit span [{span.start}, {span.end}) is outside the text (0-{length})"
            )
        if previous is not None and previous.end > span.start:
            raise ValueError(
                f"edits overlap: [{previous.start}, {previous.end}) and [{span.start}, {span.end})"
            )
        previous = span


# --- dry run --------------------------------------------------------------------------------


def unified_diff(path_label: str, old: str, new: str) -> str:
    """A unified diff of a post for `rewrite --dry-run`, "" when nothing changed.

    Lines are split on "\\n" only and keep their endings, so a CRLF file's lines end in "\\r\\n" in
    the diff (as `git diff` shows them) and the diff still applies as a patch; a last line
    without a newline gets the usual "\\ No newline at end of file" marker."""
    if old == new:
        return ""
    lines = difflib.unified_diff(
        _split_lines(old), _split_lines(new), fromfile=f"a/{path_label}", tofile=f"b/{path_label}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" + NO_NEWLINE for line in lines)


def _split_lines(text: str) -> list[str]:
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]
