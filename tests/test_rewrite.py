"""rewrite: exact splices; property tests on generated posts with references built here."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from random import Random

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mediatool.cli import main
from mediatool.config import DiscoverSettings
from mediatool.discover import scan_text
from mediatool.models import PostScan, Reference, RefKind, Span
from mediatool.pipeline.rewriting import undo_records
from mediatool.pipeline.undoing import reverse_exactly
from mediatool.rewrite import (
    Edit,
    apply_edits,
    plan_edits,
    replacement_problem,
    rewrite_text,
    size_attributes,
    srcset_attributes,
    unified_diff,
)
from mediatool.testing.origin import OriginServer

FAST = settings(max_examples=150, deadline=None)

# --- a tiny post model: filler text and tags whose reference spans we know -------------------

SOURCES = (
    "https://e.example/a.jpg",
    "https://cors.zfour.workers.dev/?http://static.1sapp.com/qupost/b.png",
    "https://cn.bing.com/th?id=OHR.X_1920x1080.jpg&rf=L.jpg&pid=hp",
    "http://e.example/ü ñ.gif",
    "https://wsrv.nl/?url=https://cdn.example/1*x.png",
)
SAFE_TARGETS = (
    "../cache/originals/ab/cd/abcd01.jpg",
    "../cache/originals/01/23/0123ff.png",
    "/cache/originals/ff/ee/ffee.gif",
)
UNSAFE_TARGETS = ("../cache/bad\nname.jpg",)  # a line break is refused in every context
LOCAL = frozenset(SAFE_TARGETS)


@dataclass(frozen=True)
class Tag:
    """One image position: kind is img, srcset, markdown or frontmatter."""

    kind: str
    urls: tuple[str, ...]
    quote: str
    has_size: bool


Piece = str | Tag


def _render(
    pieces: Sequence[Piece], new_urls: dict[int, list[str]], sizes: dict[int, str]
) -> tuple[str, tuple[Reference, ...]]:
    """The text and references of `pieces`; new_urls/sizes override tag i's URLs / add a size."""
    out: list[str] = []
    refs: list[Reference] = []
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            out.append(piece)
            continue
        urls = new_urls.get(index, list(piece.urls))
        _render_tag(piece, urls, sizes.get(index, ""), out, refs)
    return "".join(out), tuple(refs)


def _render_tag(
    tag: Tag, urls: list[str], size: str, out: list[str], refs: list[Reference]
) -> None:
    def emit(text: str) -> int:
        out.append(text)
        return sum(map(len, out))

    def url(context: str, value: str, insert_at: int | None) -> None:
        start = sum(map(len, out))
        emit(value)
        span = Span(start, start + len(value))
        refs.append(Reference(context, value, value, span, 1, 1, RefKind.REMOTE, None, insert_at))

    q = tag.quote
    if tag.kind in ("img", "srcset"):
        at = emit("<img")
        emit(size)
        insert_at = None if (tag.has_size or size) else at
        if tag.has_size:
            emit(' width="3" height="4"')
        if tag.kind == "img":
            emit(f" src={q}")
            url("img@src", urls[0], insert_at)
            if len(urls) > 1:
                emit(f"{q} data-original={q}")
                url("img@data-original", urls[1], insert_at)
        else:
            emit(f" srcset={q}")
            for position, value in enumerate(urls):
                url("img@srcset", value, insert_at)
                emit(f" {position + 1}x" + (", " if position + 1 < len(urls) else ""))
        emit(f"{q} alt>")
    elif tag.kind == "markdown":
        emit("![alt](")
        url("markdown", urls[0], None)
        emit(' "title")')
    else:
        emit(f"\nthumbnail: {q}")
        url("frontmatter:thumbnail", urls[0], None)
        emit(f"{q}\n")


fillers = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["\r\n", "\n", "\u2028", "\u00a0", "<p>", "</div>\r\n", '"', ")", "é中"]),
)


@st.composite
def tags(draw: st.DrawFn) -> Tag:
    kind = draw(st.sampled_from(["img", "srcset", "markdown", "frontmatter"]))
    count = draw(st.integers(1, 3)) if kind == "srcset" else 1
    if kind == "img":
        count = draw(st.integers(1, 2))
    urls = tuple(draw(st.sampled_from(SOURCES + SAFE_TARGETS)) for _ in range(count))
    quotes = ["'", '"', ""] if kind == "frontmatter" else ["'", '"']
    quote = "" if kind == "markdown" else draw(st.sampled_from(quotes))
    has_size = kind in ("img", "srcset") and draw(st.booleans())
    return Tag(kind, urls, quote, has_size)


posts = st.lists(st.one_of(fillers, tags()), max_size=12)
mappings = st.dictionaries(st.sampled_from(SOURCES), st.sampled_from(SAFE_TARGETS + UNSAFE_TARGETS))
size_tables = st.dictionaries(
    st.sampled_from(SOURCES), st.tuples(st.integers(1, 5000), st.integers(1, 5000))
)


def _scan(text: str, refs: tuple[Reference, ...]) -> PostScan:
    return PostScan(Path("post.md"), "utf-8", text, refs)


def _localizer(mapping: dict[str, str]) -> Callable[[Reference], str | None]:
    """Like the pipeline: remote URLs map to local paths, local paths stay as they are."""
    return lambda ref: ref.raw if ref.raw in LOCAL else mapping.get(ref.raw)


def _sizer(table: dict[str, tuple[int, int]]) -> Callable[[Reference], tuple[int, int] | None]:
    return lambda ref: table.get(ref.source_url)


Sizes = dict[str, tuple[int, int]]


def _expected(
    pieces: Sequence[Piece], mapping: dict[str, str], table: Sizes
) -> tuple[dict[int, list[str]], dict[int, str]]:
    """New URLs and size insertions per tag, worked out from the post model alone."""
    new_urls: dict[int, list[str]] = {}
    sizes: dict[int, str] = {}
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            continue
        targets = [mapping.get(u) for u in piece.urls]
        changed = [
            t is not None and "\n" not in t and t != u
            for t, u in zip(targets, piece.urls, strict=True)
        ]
        new_urls[index] = [
            t if c and t else u for t, u, c in zip(targets, piece.urls, changed, strict=True)
        ]
        found = [table[u] for u, c in zip(piece.urls, changed, strict=True) if c and u in table]
        if piece.kind in ("img", "srcset") and not piece.has_size and found:
            sizes[index] = size_attributes(*found[0])
    return new_urls, sizes


# --- property tests -------------------------------------------------------------------------


@FAST
@given(posts, st.randoms(use_true_random=False), size_tables)
def test_identity_mapping_returns_the_text_unchanged(
    pieces: list[Piece], rnd: Random, table: Sizes
) -> None:
    text, refs = _render(pieces, {}, {})
    choice = {ref.span: rnd.random() < 0.5 for ref in refs}

    def localize(ref: Reference) -> str | None:
        return ref.raw if choice[ref.span] else None

    assert plan_edits(_scan(text, refs), localize, _sizer(table)) == []
    assert rewrite_text(_scan(text, refs), localize, _sizer(table)) == text


@FAST
@given(posts, mappings, size_tables)
def test_only_reference_spans_and_size_insertions_change(
    pieces: list[Piece], mapping: dict[str, str], table: Sizes
) -> None:
    text, refs = _render(pieces, {}, {})
    result = rewrite_text(_scan(text, refs), _localizer(mapping), _sizer(table))
    new_urls, sizes = _expected(pieces, mapping, table)
    assert result == _render(pieces, new_urls, sizes)[0]


@FAST
@given(posts, mappings, size_tables)
def test_rewriting_is_idempotent(
    pieces: list[Piece], mapping: dict[str, str], table: Sizes
) -> None:
    text, refs = _render(pieces, {}, {})
    once = rewrite_text(_scan(text, refs), _localizer(mapping), _sizer(table))
    rescanned_text, rescanned_refs = _render(pieces, *_expected(pieces, mapping, table))
    assert rescanned_text == once
    twice = rewrite_text(_scan(once, rescanned_refs), _localizer(mapping), _sizer(table))
    assert twice == once


@FAST
@given(st.text(max_size=40), st.data())
def test_apply_edits_matches_a_manual_splice(text: str, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    spans = [Span(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False)]
    edits = [Edit(span, data.draw(st.text(max_size=5))) for span in spans]
    expected, position = "", 0
    for edit in edits:
        expected += text[position : edit.span.start] + edit.new_text
        position = edit.span.end
    expected += text[position:]
    shuffled = data.draw(st.permutations(edits))
    same_offset = [e for e in edits if e.span.start == e.span.end]
    if len({e.span.start for e in same_offset}) == len(same_offset):  # order is then unambiguous
        assert apply_edits(text, shuffled) == expected
    assert apply_edits(text, edits) == expected


# --- unit tests -----------------------------------------------------------------------------


def _ref(text: str, raw: str, context: str = "img@src", insert_at: int | None = None) -> Reference:
    start = text.index(raw)
    span = Span(start, start + len(raw))
    return Reference(context, raw, raw, span, 1, start + 1, RefKind.REMOTE, None, insert_at)


def test_size_attributes() -> None:
    assert size_attributes(640, 480) == ' width="640" height="480"'
    with pytest.raises(ValueError, match="positive"):
        size_attributes(0, 10)


def test_insertions_at_one_offset_keep_their_order_and_go_before_a_replacement() -> None:
    text = "abcdef"
    edits = [
        Edit(Span(2, 4), "XY"),
        Edit(Span(2, 2), "1"),
        Edit(Span(2, 2), "2"),
        Edit(Span(4, 4), "3"),
        Edit(Span(0, 2), "_"),
    ]
    assert apply_edits(text, edits) == "_12XY3ef"


@pytest.mark.parametrize(
    "spans",
    [
        [Span(2, 5), Span(4, 6)],
        [Span(1, 4), Span(2, 2)],
        [Span(1, 3), Span(1, 3)],
        [Span(0, 7)],
        [Span(3, 2)],
    ],
)
def test_overlapping_or_out_of_range_edits_are_rejected(spans: list[Span]) -> None:
    with pytest.raises(ValueError, match=r"overlap|outside"):
        apply_edits("abcdef", [Edit(span, "x") for span in spans])


def test_adjacent_edits_are_fine() -> None:
    assert apply_edits("abcdef", [Edit(Span(3, 6), "Z"), Edit(Span(0, 3), "A")]) == "AZ"


TAG = '<img src="https://e.example/a.jpg" data-original="http://o.example/a.jpg" alt>'
INSERT_AT = len("<img")


def _tag_scan(text: str = TAG) -> PostScan:
    refs = (
        _ref(text, "https://e.example/a.jpg", "img@src", INSERT_AT),
        _ref(text, "http://o.example/a.jpg", "img@data-original", INSERT_AT),
    )
    return _scan(text, refs)


def test_size_is_inserted_once_per_tag() -> None:
    result = rewrite_text(_tag_scan(), lambda ref: "../c/x.jpg", lambda ref: (640, 480))
    assert (
        result == '<img width="640" height="480" src="../c/x.jpg" data-original="../c/x.jpg" alt>'
    )


def test_size_comes_from_the_first_changed_reference_that_has_one() -> None:
    sizes = {"http://o.example/a.jpg": (10, 20)}
    result = rewrite_text(_tag_scan(), lambda ref: "../c/x.jpg", lambda ref: sizes.get(ref.raw))
    assert result.startswith('<img width="10" height="20" src="../c/x.jpg"')


def test_no_size_when_size_for_gives_none() -> None:
    result = rewrite_text(_tag_scan(), lambda ref: "../c/x.jpg", lambda ref: None)
    assert result == '<img src="../c/x.jpg" data-original="../c/x.jpg" alt>'


def test_localized_text_equal_to_raw_gives_no_edit_and_no_size() -> None:
    assert plan_edits(_tag_scan(), lambda ref: ref.raw, lambda ref: (1, 1)) == []


def test_crlf_and_unicode_around_the_edit_are_kept() -> None:
    text = "---\r\nthumbnail: 'https://e.example/a.jpg'\r\n---\r\n\u00a0中文\u2028![](https://e.example/a.jpg)\r\n"
    first = _ref(text, "https://e.example/a.jpg", "frontmatter:thumbnail")
    md_start = text.rindex("https://e.example/a.jpg")
    second = replace(first, context="markdown", span=Span(md_start, md_start + 23))
    result = rewrite_text(_scan(text, (first, second)), lambda ref: "../c/x.jpg", lambda r: None)
    assert result == text.replace("https://e.example/a.jpg", "../c/x.jpg")


@pytest.mark.parametrize(
    ("text", "context", "new_text", "ok"),
    [
        ('<img src="https://e.example/a.jpg">', "img@src", '../c/"x.jpg', False),
        ('<img src="https://e.example/a.jpg">', "img@src", "../c/'x.jpg", True),
        ("<img src='https://e.example/a.jpg'>", "img@src", "../c/'x.jpg", False),
        ('<img src="https://e.example/a.jpg">', "img@src", "../c/x y.jpg", True),
        ("<img src=https://e.example/a.jpg>", "img@src", "../c/x y.jpg", False),
        ("<img src=https://e.example/a.jpg>", "img@src", "../c/x>.jpg", False),
        ('<img src="https://e.example/a.jpg">', "img@src", "../c/x.jpg?a=1&b=2", False),
        ('<img src="https://e.example/a.jpg">', "img@src", "../c/x&.jpg", True),
        ('<img src="https://e.example/a.jpg">', "img@src", "../c/x.jpg?a&amp;b", False),
        ('<img src="https://e.example/a.jpg">', "img@src", "../c/x\ny.jpg", False),
        ('<img src="https://e.example/a.jpg">', "img@src", "", False),
        ('<img srcset="x 1x, https://e.example/a.jpg 2x">', "img@srcset", "../c/x y.jpg", False),
        ('<img srcset="x 1x, https://e.example/a.jpg 2x">', "img@srcset", "../c/'.jpg", False),
        ('<img srcset="x 1x, https://e.example/a.jpg 2x">', "img@srcset", "../c/x.jpg,", False),
        ('<img srcset="x 1x, https://e.example/a.jpg 2x">', "img@srcset", "../c/x,1.jpg", True),
        ("![](https://e.example/a.jpg)", "markdown", "../c/x y.jpg", False),
        ("![](https://e.example/a.jpg)", "markdown", "../c/x).jpg", False),
        ("![](https://e.example/a.jpg)", "markdown", '../c/"x.jpg', True),
        ("![](<https://e.example/a.jpg>)", "markdown", "../c/x y.jpg", True),
        ("![](<https://e.example/a.jpg>)", "markdown", "../c/x>.jpg", False),
        ("thumbnail: 'https://e.example/a.jpg'", "frontmatter:thumbnail", "../c/x'.jpg", False),
        ("thumbnail: 'https://e.example/a.jpg'", "frontmatter:thumbnail", "../c/x y.jpg", True),
        ('thumbnail: "https://e.example/a.jpg"', "frontmatter:thumbnail", "../c/x\\.jpg", False),
        ("thumbnail: https://e.example/a.jpg", "frontmatter:thumbnail", "../c/x #.jpg", False),
        ("thumbnail: https://e.example/a.jpg", "frontmatter:thumbnail", "*c/x.jpg", False),
        ("thumbnail: https://e.example/a.jpg", "frontmatter:thumbnail", "../c/x.jpg", True),
    ],
)
def test_replacement_must_fit_its_context(text: str, context: str, new_text: str, ok: bool) -> None:
    ref = _ref(text, "https://e.example/a.jpg", context)
    problem = replacement_problem(text, ref, new_text)
    assert (problem is None) == ok, problem
    skipped: list[str] = []
    edits = plan_edits(
        _scan(text, (ref,)),
        lambda r: new_text,
        lambda r: None,
        on_skip=lambda r, why: skipped.append(why),
    )
    assert (len(edits), len(skipped)) == ((1, 0) if ok else (0, 1))


def test_a_stale_scan_is_refused() -> None:
    ref = _ref("<img src='https://e.example/a.jpg'>", "https://e.example/a.jpg")
    problem = replacement_problem("<img src='https://e.example/b.jpg'>", ref, "../c/x.jpg")
    assert problem is not None and "scan it again" in problem


def test_diff_of_a_crlf_file_keeps_its_line_endings() -> None:
    old = "---\r\ntitle: a\r\n---\r\n<img src='http://e.example/a.jpg'>\r\nend\r\n"
    new = old.replace("http://e.example/a.jpg", "../c/x.jpg")
    assert unified_diff("posts/a.md", old, new) == (
        "--- a/posts/a.md\n"
        "+++ b/posts/a.md\n"
        "@@ -1,5 +1,5 @@\n"
        " ---\r\n"
        " title: a\r\n"
        " ---\r\n"
        "-<img src='http://e.example/a.jpg'>\r\n"
        "+<img src='../c/x.jpg'>\r\n"
        " end\r\n"
    )


def test_diff_marks_a_missing_final_newline_and_splits_on_newline_only() -> None:
    old = "a\u2028b\nhttp://e.example/a.jpg"
    new = "a\u2028b\n../c/x.jpg"
    assert unified_diff("p.md", old, new) == (
        "--- a/p.md\n"
        "+++ b/p.md\n"
        "@@ -1,2 +1,2 @@\n"
        " a\u2028b\n"
        "-http://e.example/a.jpg\n"
        "\\ No newline at end of file\n"
        "+../c/x.jpg\n"
        "\\ No newline at end of file\n"
    )


def test_diff_of_identical_texts_is_empty() -> None:
    assert unified_diff("p.md", "same\r\n", "same\r\n") == ""


@pytest.mark.parametrize(
    ("new_text", "ok"),
    [
        ("../cache/originals/ab/cd/x.jpg", False),  # Hexo would read it as a class name
        ("/media/originals/ab/cd/x.jpg", True),
        ("https://media.example/originals/ab/cd/x.jpg", True),
    ],
)
def test_hexo_img_tag_takes_only_a_rooted_url(new_text: str, ok: bool) -> None:
    text = "{% img left https://e.example/a.jpg 300 200 %}"
    ref = _ref(text, "https://e.example/a.jpg", "tag:img@first-url")
    problem = replacement_problem(text, ref, new_text)
    assert (problem is None) == ok, problem
    assert ok or "--base-url" in str(problem)


# --- rewrite --srcset ---------------------------------------------------------------------------


def test_srcset_attributes_list_each_width_once_narrowest_first() -> None:
    candidates = [("/m/t-640.webp", 640), ("/m/o.jpg", 1200), ("/m/t-320.webp", 320)]
    assert srcset_attributes([*candidates, ("/m/t-320b.webp", 320)], 500) == (
        ' srcset="/m/t-320.webp 320w, /m/t-640.webp 640w, /m/o.jpg 1200w"'
        ' sizes="(max-width: 500px) 100vw, 500px"'
    )
    with pytest.raises(ValueError, match="positive"):
        srcset_attributes(candidates, 0)


SRCSET_POST = (
    "# t\r\n\r\n"
    '<p><img alt="a > b" src="http://o.example/a.jpg" width="500" /></p>\r\n'
    "<img src='http://o.example/b.jpg' srcset='http://o.example/b.jpg 2x'>\r\n\r\n"
    "![md](http://o.example/c.jpg) <IMG SRC=http://o.example/d.jpg>\r\n"
    '<img src="http://o.example/missing.jpg">\r\n'
)
LOCAL = {f"http://o.example/{name}.jpg": f"/media/{name}.jpg" for name in ("a", "b", "c", "d")}


def _srcset_rewrite(text: str) -> tuple[str, list[Edit]]:
    scan = scan_text(text, Path("post.md"), DiscoverSettings())

    def localize(ref: Reference) -> str | None:
        return LOCAL.get(ref.source_url)

    def srcset_for(ref: Reference) -> str | None:
        local = LOCAL.get(ref.source_url) or (ref.raw if ref.raw.startswith("/media/") else None)
        if local is None:
            return None
        width = ref.declared.width if ref.declared and ref.declared.width else 900
        return srcset_attributes([(local + ".320.webp", 320), (local, 900)], width)

    edits = plan_edits(scan, localize, lambda ref: (900, 600), srcset_for=srcset_for)
    return apply_edits(text, edits), edits


def test_srcset_goes_into_each_img_of_a_localized_image_that_has_none() -> None:
    rewritten, edits = _srcset_rewrite(SRCSET_POST)
    srcset_a = (
        ' srcset="/media/a.jpg.320.webp 320w, /media/a.jpg 900w"'
        ' sizes="(max-width: 500px) 100vw, 500px"'
    )
    srcset_d = (
        ' srcset="/media/d.jpg.320.webp 320w, /media/d.jpg 900w"'
        ' sizes="(max-width: 900px) 100vw, 900px"'
    )
    assert rewritten == (
        "# t\r\n\r\n"
        f'<p><img alt="a > b" src="/media/a.jpg" width="500"{srcset_a} /></p>\r\n'
        "<img src='/media/b.jpg' srcset='/media/b.jpg 2x' width=\"900\" height=\"600\">\r\n\r\n"
        f'![md](/media/c.jpg) <IMG SRC=/media/d.jpg width="900" height="600"{srcset_d}>\r\n'
        '<img src="http://o.example/missing.jpg">\r\n'
    )
    records = undo_records(SRCSET_POST, edits)
    assert [r for r in records if not r.old] == [
        r for r in records if r.new.startswith((" srcset", " width"))
    ]
    assert reverse_exactly(rewritten, records) == SRCSET_POST


def test_a_second_srcset_rewrite_changes_nothing() -> None:
    rewritten, _ = _srcset_rewrite(SRCSET_POST)
    assert _srcset_rewrite(rewritten) == (rewritten, [])


def test_an_img_already_local_gets_its_srcset_on_a_later_rewrite() -> None:
    text = '<img src="/media/a.jpg" width="500" height="333">\n'
    rewritten, edits = _srcset_rewrite(text)
    assert [e.span.start for e in edits] == [
        len('<img src="/media/a.jpg" width="500" height="333"')
    ]
    assert rewritten.startswith(text[:-2] + ' srcset="/media/a.jpg.320.webp 320w, ')


BIG = "http://img.example.test/big.jpg"


def test_rewrite_srcset_end_to_end_lists_real_thumbnails_and_undo_restores(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((800, 600)).convert("RGB").save(buffer, "JPEG")
    proxy_env.add(BIG, buffer.getvalue())
    posts = tmp_path / "posts"
    posts.mkdir()
    post = posts / "a.md"
    original = f'---\ntitle: t\n---\n\n<p><img src="{BIG}" width="500"></p>\n'.encode()
    post.write_bytes(original)
    cache = str(tmp_path / "cache")
    assert CliRunner().invoke(main, ["fetch", str(posts), "--cache", cache]).exit_code == 0
    result = CliRunner().invoke(main, ["rewrite", str(posts), "--cache", cache, "--srcset"])
    assert result.exit_code == 0, result.output
    text = post.read_text()
    tag = re.search(r'<img src="([^"]+)" width="500" srcset="([^"]+)" sizes="([^"]+)">', text)
    assert tag is not None, text
    src, srcset, sizes = tag.groups()
    assert sizes == "(max-width: 500px) 100vw, 500px"
    candidates = [candidate.split(" ") for candidate in srcset.split(", ")]
    assert [w for _, w in candidates] == ["320w", "500w", "640w", "800w"]
    assert candidates[-1][0] == src
    for url, width in candidates:
        with Image.open(posts / url) as image:
            assert image.width == int(width[:-1])
    again = CliRunner().invoke(main, ["rewrite", str(posts), "--cache", cache, "--srcset"])
    assert again.exit_code == 0 and post.read_text() == text
    undo = CliRunner().invoke(main, ["rewrite", str(posts), "--cache", cache, "--undo"])
    assert undo.exit_code == 0, undo.output
    assert post.read_bytes() == original
