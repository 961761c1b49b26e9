"""Front matter in YAML, TOML and JSON: key paths, exact spans, invalid text, dates, config.

The span scanners for TOML and JSON are checked against the format's own parser on generated
documents: the same values, and a marker written into each span reads back at the same place.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mediatool.discover._toml_spans as toml_spans
from mediatool.config import DEFAULT_FRONTMATTER_KEYS, DiscoverSettings, load_settings
from mediatool.discover import scan_text
from mediatool.discover._json_spans import read_json, scan_json_lines
from mediatool.discover._keypaths import Items, Node, Table, Text, parse_key_path, texts_at
from mediatool.discover._toml_spans import read_toml, scan_toml_lines
from mediatool.errors import UsageError
from mediatool.models import PostScan, RefKind
from mediatool.pipeline.common import PostReader

KEYS = (
    "thumbnail",
    "header.image",
    "header.teaser",
    "gallery[].image_path",
    "images[]",
    "cover.image",
    "featuredImage",
    "resources[].src",
)


def scan(text: str, keys: tuple[str, ...] = KEYS, name: str = "post.md") -> PostScan:
    result = scan_text(text, Path(name), DiscoverSettings(frontmatter_keys=keys))
    for ref in result.references:
        assert result.text[ref.span.start : ref.span.end] == ref.raw
    return result


def found(result: PostScan) -> list[tuple[str, str, str]]:
    return [(r.context, r.raw, r.source_url) for r in result.references]


# ---------------------------------------------------------------- key paths


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("thumbnail", ("thumbnail",)),
        ("header.image", ("header", "image")),
        ("gallery[].image_path", ("gallery", "image_path")),
        ("images[]", ("images",)),
        ("feature-img", ("feature-img",)),
        ("", None),
        ("a..b", None),
        ("a[]b", None),
        ("a[0].b", None),
    ],
)
def test_parse_key_path(key: str, path: tuple[str, ...] | None) -> None:
    assert parse_key_path(key) == path


def test_lists_are_walked_on_the_way_and_at_the_end_but_not_nested() -> None:
    tree = Table(
        [
            ("images", Items([Text("a", 0, 1), Items([Text("nested", 2, 8)]), None])),
            ("gallery", Items([Table([("src", Text("g", 9, 10))]), Text("loose", 11, 16)])),
        ]
    )
    assert [t.value for t in texts_at(tree, ("images",))] == ["a"]
    assert [t.value for t in texts_at(tree, ("gallery", "src"))] == ["g"]
    assert list(texts_at(tree, ("images", "src"))) == []


def test_yaml_nested_and_list_keys() -> None:
    text = (
        "---\nheader:\n  image: /assets/h.jpg\n  teaser: 'https://a.example/t.jpg'\n"
        "  caption: https://a.example/not-a-key.jpg\ngallery:\n  - url: /full.jpg\n"
        '    image_path: "/th.jpg"\n  - image_path: /th2.jpg\nimages: [i1.png, "i2.png"]\n'
        "cover:\n  image: c.jpg\n---\nbody\n"
    )
    assert found(scan(text)) == [
        ("frontmatter:header.image", "/assets/h.jpg", "/assets/h.jpg"),
        ("frontmatter:header.teaser", "https://a.example/t.jpg", "https://a.example/t.jpg"),
        ("frontmatter:gallery[].image_path", "/th.jpg", "/th.jpg"),
        ("frontmatter:gallery[].image_path", "/th2.jpg", "/th2.jpg"),
        ("frontmatter:images[]", "i1.png", "i1.png"),
        ("frontmatter:images[]", "i2.png", "i2.png"),
        ("frontmatter:cover.image", "c.jpg", "c.jpg"),
    ]


def test_plain_names_stay_top_level_keys() -> None:
    text = "---\nparams:\n  thumbnail: https://a.example/no.jpg\nthumbnail: yes.jpg\n---\n"
    assert [r.raw for r in scan(text).references] == ["yes.jpg"]


def test_yaml_anchors_tags_and_aliases_one_reference_per_span_recursion_ends() -> None:
    text = (
        "---\nthumbnail: &t https://a.example/t.jpg\nimages: [*t]\nloop: &l [*l]\n"
        "cover: !!str 'c.jpg'\nbanner: &b !!str\n  b.jpg\n---\n"
    )
    result = scan(text, keys=("thumbnail", "images", "loop.x", "cover", "banner"))
    assert found(result) == [
        ("frontmatter:thumbnail", "https://a.example/t.jpg", "https://a.example/t.jpg"),
        ("frontmatter:cover", "c.jpg", "c.jpg"),
        ("frontmatter:banner", "b.jpg", "b.jpg"),
    ]


def test_a_local_glob_is_a_pattern_not_a_reference() -> None:
    # Hugo page resources: `src` is a glob over the bundle's files.
    text = (
        '+++\n[[resources]]\nsrc = "images/*.jpg"\n[[resources]]\nsrc = "images/a.jpg"\n'
        '[[resources]]\nsrc = "https://cdn-images-1.medium.com/max/800/0*Reb1.png"\n+++\n'
    )
    assert [r.raw for r in scan(text).references] == [
        "images/a.jpg",
        "https://cdn-images-1.medium.com/max/800/0*Reb1.png",
    ]


def test_keys_compare_without_regard_to_case_as_hugo_reads_them() -> None:
    # wordpress/kamilpro-hyper-v-template.md (corpus): a WordPress export's `featuredimage`.
    text = "---\nfeaturedimage: /wp-content/uploads/a.jpg\nHeader:\n  Image: h.png\n---\n"
    assert found(scan(text)) == [
        ("frontmatter:featuredImage", "/wp-content/uploads/a.jpg", "/wp-content/uploads/a.jpg"),
        ("frontmatter:header.image", "h.png", "h.png"),
    ]


def test_guessed_keys_take_image_files_under_image_like_paths() -> None:
    # Theme keys from the corpus: beautifulhugo `bigimg`, minimal-mistakes `gallery2`,
    # `specialImg`, `summary_img`, `metaImage`, `ogimage`.
    text = (
        '---\nbigimg: [{src: "/img/path.jpg", desc: "Path"}]\nspecialImg: 4.jpg\n'
        "gallery2:\n  - url: https://farm2.example/a_b.jpg\n    title: not-an-image.html\n"
        "summary_img: /images/css-hack-1.png\nmetaImage: IMG_8034.jpeg\n"
        "image_caption: a photo of a cat\nog:\n  imageAlt: cat.png\n---\n"
    )
    keys = ("*img*", "*gallery*", "*image*")
    assert found(scan(text, keys=keys)) == [
        ("frontmatter:bigimg[].src", "/img/path.jpg", "/img/path.jpg"),
        ("frontmatter:specialImg", "4.jpg", "4.jpg"),
        (
            "frontmatter:gallery2[].url",
            "https://farm2.example/a_b.jpg",
            "https://farm2.example/a_b.jpg",
        ),
        ("frontmatter:summary_img", "/images/css-hack-1.png", "/images/css-hack-1.png"),
        ("frontmatter:metaImage", "IMG_8034.jpeg", "IMG_8034.jpeg"),
        ("frontmatter:og.imageAlt", "cat.png", "cat.png"),
    ]
    assert scan(text, keys=("thumbnail",)).references == ()


def test_an_exact_key_names_the_reference_before_a_guess() -> None:
    text = "+++\n[header]\nimage = 'h.jpg'\n+++\n"
    assert found(scan(text, keys=("*image*", "header.image"))) == [
        ("frontmatter:header.image", "h.jpg", "h.jpg")
    ]


def test_hexo_front_matter_without_the_opening_fence() -> None:
    # hexo/hexo-unit-test-gallery-post.md (corpus), from hexo's own unit-test site.
    text = (
        "title: Gallery Post\ndate: 2013-12-25 00:16:18\nphotos:\n"
        "- /assets/wallpaper-2572384.jpg\n- https://via.placeholder.com/350x150.jpg\n---\n\n"
        "![x](body.png)\n"
    )
    result = scan(text, keys=("photos",))
    assert [r.raw for r in result.references] == [
        "/assets/wallpaper-2572384.jpg",
        "https://via.placeholder.com/350x150.jpg",
        "body.png",
    ]
    assert result.date == "2013-12-25 00:16:18"


@pytest.mark.parametrize(
    "text",
    [
        "Note: one key only\n---\n![x](body.png)\n",
        "Title\n---\n![x](body.png)\n",
        "a: 1\nb: [unclosed\n---\n![x](body.png)\n",
    ],
)
def test_text_before_a_rule_is_body_unless_it_is_a_yaml_mapping(text: str) -> None:
    result = scan(text, keys=("photos",))
    assert [r.raw for r in result.references] == ["body.png"]
    assert result.problems == ()


# ---------------------------------------------------------------- TOML


HUGO_TOML = (
    '+++\ntitle = "Hello \\"TOML\\"" # a comment with "quotes" and = signs\n'
    "date = 2021-03-04T05:06:07+08:00\n"
    "images = ['https://a.example/1.jpg', \"https://a.example/2.jpg\",\n"
    "  # a comment inside the array ]\n"
    '  """https://a.example/3.jpg""",\n]\n'
    'featuredImage = "https://a.example/\\u0041.jpg"\n'
    'cover = { image = "/c.jpg", alt = "a { brace" }\n'
    "header.image = '''\nhttps://a.example/h.jpg'''\n"
    '"thumbnail" = "t.png"\n'
    '[[resources]]\nname = "x"\nsrc = "img/a.png"\n'
    "[[resources]]\nsrc = 'img/b.png'\n"
    '[params]\nthumbnail = "not-top-level.png"\n'
    "[params.header]\nimage = 'no.png'\n"
    "+++\n\n![body](b.png)\n"
)


def test_toml_front_matter_every_form() -> None:
    result = scan(HUGO_TOML)
    assert found(result) == [
        ("frontmatter:images[]", "https://a.example/1.jpg", "https://a.example/1.jpg"),
        ("frontmatter:images[]", "https://a.example/2.jpg", "https://a.example/2.jpg"),
        ("frontmatter:images[]", "https://a.example/3.jpg", "https://a.example/3.jpg"),
        ("frontmatter:featuredImage", "https://a.example/\\u0041.jpg", "https://a.example/A.jpg"),
        ("frontmatter:cover.image", "/c.jpg", "/c.jpg"),
        ("frontmatter:header.image", "https://a.example/h.jpg", "https://a.example/h.jpg"),
        ("frontmatter:thumbnail", "t.png", "t.png"),
        ("frontmatter:resources[].src", "img/a.png", "img/a.png"),
        ("frontmatter:resources[].src", "img/b.png", "img/b.png"),
        ("markdown", "b.png", "b.png"),
    ]
    assert result.problems == ()
    assert result.date == "2021-03-04T05:06:07+08:00"
    header = result.references[5]
    assert result.text[header.span.start - 4 : header.span.start] == "'''\n"


def test_toml_crlf_bom_and_line_numbers() -> None:
    text = '\ufeff+++\r\ntitle = "x"\r\nthumbnail = "https://a.example/t.jpg"\r\n+++\r\nbody\r\n'
    (ref,) = scan(text).references
    assert ref.span.start == text.index("https://")
    assert (ref.line, ref.column) == (3, 14)


def test_invalid_toml_is_read_line_by_line_with_one_problem() -> None:
    text = (
        '\n+++\ntitle = "unclosed\nthumbnail = "https://a.example/t.jpg"\n'
        "date = \"2020-05-06\"\n[header]\nimage = 'https://a.example/h.jpg' garbage\n"
        "teaser = 'https://a.example/te.jpg'\n+++\nbody\n"
    )
    result = scan(text, name="bad.md")
    assert found(result) == [
        ("frontmatter:thumbnail", "https://a.example/t.jpg", "https://a.example/t.jpg"),
        ("frontmatter:header.image", "https://a.example/h.jpg", "https://a.example/h.jpg"),
        ("frontmatter:header.teaser", "https://a.example/te.jpg", "https://a.example/te.jpg"),
    ]
    (problem,) = result.problems
    assert problem.startswith("bad.md: front matter is not valid TOML (line 3: ")
    assert problem.endswith("image keys read line by line; fix the TOML to silence this")
    assert "\n" not in problem
    assert result.date == "2020-05-06"


def test_unclosed_toml_is_body_with_a_problem() -> None:
    result = scan('+++\nthumbnail = "t.jpg"\n\n![x](b.png)\n', name="open.md")
    assert [r.raw for r in result.references] == ["b.png"]
    (problem,) = result.problems
    assert problem.startswith("open.md: front matter opened with '+++' on line 1 is never closed")


def test_a_toml_value_the_scanner_misreads_is_left_out_with_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cross-check with tomllib: a wrong value is never passed on with a span.
    monkeypatch.setattr(toml_spans, "_string_value", lambda token, delimiter: "wrong")
    text = '+++\nthumbnail = "t.jpg"\n+++\nbody\n'
    result = scan(text, keys=("thumbnail", "header.image"), name="x.md")
    assert result.references == ()
    (problem,) = result.problems
    assert "key(s) thumbnail differently from tomllib" in problem


# ---------------------------------------------------------------- JSON


def test_json_front_matter() -> None:
    text = (
        '{\n  "title": "x {not the end}",\n  "date": "2020-01-02T03:04:05Z",\n'
        '  "featuredImage": "https:\\/\\/a.example\\/j.jpg",\n'
        '  "header": {"image": "//cdn.example/h.png", "teaser": null},\n'
        '  "gallery": [{"image_path": "g1.jpg"}, {"image_path": "g2.jpg"}],\n'
        '  "thumbnail": "first", "thumbnail": "t.jpg",\n'
        '  "images": ["i.jpg", 3, ["nested.jpg"]]\n}\n\n![body](b.png)\n'
    )
    result = scan(text)
    assert found(result) == [
        ("frontmatter:featuredImage", "https:\\/\\/a.example\\/j.jpg", "https://a.example/j.jpg"),
        ("frontmatter:header.image", "//cdn.example/h.png", "https://cdn.example/h.png"),
        ("frontmatter:gallery[].image_path", "g1.jpg", "g1.jpg"),
        ("frontmatter:gallery[].image_path", "g2.jpg", "g2.jpg"),
        ("frontmatter:thumbnail", "t.jpg", "t.jpg"),
        ("frontmatter:images[]", "i.jpg", "i.jpg"),
        ("markdown", "b.png", "b.png"),
    ]
    assert result.references[1].kind is RefKind.REMOTE
    assert result.date == "2020-01-02T03:04:05Z"
    assert result.problems == ()


@pytest.mark.parametrize("start", ["{% include figure.html %}\n", "{{< figure src=x >}}\n"])
def test_liquid_and_shortcodes_at_the_top_are_not_json(start: str) -> None:
    assert scan(start + "![x](b.png)\n").problems == ()


def test_invalid_json_is_read_line_by_line_up_to_a_lone_brace() -> None:
    text = (
        '{\n  "title": "x" "y",\n  "thumbnail": "https://a.example/t.jpg",\n'
        '  "date": "2019-01-01",\n  "header": {\n    "thumbnail": "nested.jpg"\n  },\n'
        '  "images": ["a.jpg", "b.jpg"]\n}\n![x](body.png)\n'
    )
    result = scan(text, name="bad.md")
    assert [r.raw for r in result.references] == [
        "https://a.example/t.jpg",
        "a.jpg",
        "b.jpg",
        "body.png",
    ]
    (problem,) = result.problems
    assert problem.startswith("bad.md: front matter is not valid JSON (line 2: ")
    assert problem.endswith("image keys read line by line; fix the JSON to silence this")
    assert result.date == "2019-01-01"


def test_invalid_json_without_a_closing_line_is_body() -> None:
    result = scan('{"thumbnail": "t.jpg",\n![x](b.png)\n', name="j.md")
    assert [r.raw for r in result.references] == ["b.png"]
    (problem,) = result.problems
    assert "no line holds its closing '}' alone; the whole file was read as body" in problem


# ---------------------------------------------------------------- config and the run


def test_default_keys_cover_the_generators() -> None:
    for key in ("header.image", "gallery[].image_path", "cover.image", "featuredImage"):
        assert key in DEFAULT_FRONTMATTER_KEYS
    assert all(parse_key_path(key) for key in DEFAULT_FRONTMATTER_KEYS)


def test_config_key_paths_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text('[discover]\nfrontmatter_keys = ["header.image", "gallery[].image_path"]\n')
    keys = load_settings(config).discover.frontmatter_keys
    assert keys == ("header.image", "gallery[].image_path")
    config.write_text('[discover]\nfrontmatter_keys = ["header..image"]\n')
    with pytest.raises(UsageError, match=r"'header\.\.image', which is not a key path"):
        load_settings(config)


def _posts(folder: Path) -> list[Path]:
    folder.mkdir()
    one = folder / "a.md"
    one.write_text('+++\n[header]\nimage = "h.jpg"\n+++\n')
    two = folder / "b.md"
    two.write_text("---\ntitle: x\n---\n")
    return [one, two]


def test_a_configured_key_no_post_has_is_said_once(tmp_path: Path) -> None:
    said: list[str] = []
    keys = ("header.image", "header.imgae", "thumbnail")
    reader = PostReader(DiscoverSettings(frontmatter_keys=keys), said.append)
    scans = list(reader.scans(_posts(tmp_path / "posts")))
    assert len(scans) == 2
    assert said == [
        f"front matter key {key!r} (discover.frontmatter_keys) gave no reference in any of the "
        "2 posts read; check its spelling and path (docs/frontmatter.md)"
        for key in ("header.imgae", "thumbnail")
    ]
    assert reader.problems == []


def test_the_default_keys_are_not_reported(tmp_path: Path) -> None:
    said: list[str] = []
    list(PostReader(DiscoverSettings(), said.append).scans(_posts(tmp_path / "posts")))
    assert said == []


def test_scan_command_says_the_unmatched_key_and_exits_0(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mediatool.cli import main

    posts = _posts(tmp_path / "posts")
    (tmp_path / "posts" / "mediatool.toml").write_text(
        '[discover]\nfrontmatter_keys = ["header.image", "cover.imgae"]\n'
    )
    result = CliRunner().invoke(main, ["scan", str(tmp_path / "posts")])
    assert result.exit_code == 0
    assert "front matter key 'cover.imgae'" in result.stderr
    assert "'header.image'" not in result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["post"], record["context"]) == (str(posts[0]), "frontmatter:header.image")


# ---------------------------------------------------------------- generated TOML and JSON


def _plain(node: Node) -> Any:
    if isinstance(node, Table):
        return {key: _plain(value) for key, value in node.pairs}
    if isinstance(node, Items):
        return [_plain(value) for value in node.values]
    return node.value if isinstance(node, Text) else None


def _parsed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _parsed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_parsed(item) for item in value]
    return value if isinstance(value, str) else None


def _texts(node: Node) -> list[Text]:
    if isinstance(node, Table):
        return [t for _, value in node.pairs for t in _texts(value)]
    if isinstance(node, Items):
        return [t for value in node.values for t in _texts(value)]
    return [node] if isinstance(node, Text) else []


def _marked(text: str, tree: Table) -> tuple[str, Any]:
    """`text` with a marker in every string span, and the tree the markers should give."""
    marks = {(t.start, t.end): f"MARK{i}" for i, t in enumerate(_texts(tree))}
    for (start, end), mark in sorted(marks.items(), reverse=True):
        text = text[:start] + mark + text[end:]

    def expected(node: Node) -> Any:
        if isinstance(node, Table):
            return {key: expected(value) for key, value in node.pairs}
        if isinstance(node, Items):
            return [expected(value) for value in node.values]
        return marks[(node.start, node.end)] if isinstance(node, Text) else None

    return text, expected(tree)


CHARS = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs",), max_codepoint=0x1F600),
        st.sampled_from(list("\"'\\#,[]{}=\n\t .")),
    ),
    max_size=10,
)


def _basic(value: str, escape_unicode: bool) -> str:
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif (ord(char) < 0x20 and char != "\t") or char == "\x7f" or 0x80 <= ord(char) < 0xA0:
            out.append(f"\\u{ord(char):04X}")
        elif escape_unicode and ord(char) > 0x7F:
            out.append(f"\\U{ord(char):08X}")
        else:
            out.append(char)
    return "".join(out)


@st.composite
def toml_string(draw: st.DrawFn) -> str:
    value = draw(CHARS)
    plain = not any((ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in value)
    form = draw(st.sampled_from(["basic", "literal", "multi-basic", "multi-literal"]))
    lead = draw(st.sampled_from(["", "\n", "\r\n"]))
    if form == "literal" and plain and "'" not in value:
        return f"'{value}'"
    if (
        form == "multi-literal"
        and "'" not in value
        and not any(ord(c) < 0x20 and c not in "\t\n" for c in value)
    ):
        return f"'''{lead}{value}'''"
    escaped = _basic(value, draw(st.booleans()))
    if form == "multi-basic":
        return f'"""{lead}{escaped}{draw(st.sampled_from(["", chr(34), chr(34) * 2]))}"""'
    return f'"{escaped}"'


TOML_SCALARS = st.sampled_from(["1", "-2_000", "3.5e2", "true", "1979-05-27 07:32:00Z", "inf"])
SPACE = st.sampled_from(["", " ", "\t", "  "])


def toml_key(index: int) -> st.SearchStrategy[str]:
    return st.sampled_from([f"k{index}", f'"k{index}"', f"'k{index}'", f'"k\\u0030{index}"'])


def toml_value(depth: int = 2) -> st.SearchStrategy[str]:
    leaves = st.one_of(toml_string(), TOML_SCALARS)
    if depth == 0:
        return leaves
    return st.one_of(leaves, toml_array(depth), toml_inline_table(depth))


@st.composite
def toml_array(draw: st.DrawFn, depth: int) -> str:
    items = draw(st.lists(toml_value(depth - 1), max_size=4))
    separator = draw(st.sampled_from([", ", ",", ",\n  ", " , # c ]\n  "]))
    trailing = draw(st.sampled_from(["", ",", ",\n"])) if items else ""
    return "[" + draw(SPACE) + separator.join(items) + trailing + draw(SPACE) + "]"


@st.composite
def toml_inline_table(draw: st.DrawFn, depth: int) -> str:
    count = draw(st.integers(0, 3))
    pairs = [f"{draw(toml_key(i))} = {draw(toml_value(depth - 1))}" for i in range(count)]
    return "{" + draw(SPACE) + ", ".join(pairs) + draw(SPACE) + "}"


@st.composite
def toml_document(draw: st.DrawFn) -> str:
    lines = []
    for index in range(draw(st.integers(0, 4))):
        key = draw(toml_key(index))
        comment = draw(st.sampled_from(["", " # note = 'x'", "#"]))
        lines.append(f"{key}{draw(SPACE)}={draw(SPACE)}{draw(toml_value())}{comment}")
    for index in range(draw(st.integers(0, 2))):
        lines.append(f"d{index} . {draw(toml_key(0))} = {draw(toml_string())}")
    for index in range(draw(st.integers(0, 3))):
        header = draw(st.sampled_from([f"[t{index}]", f"[[a{index % 2}]]", f"[ t{index} . sub ]"]))
        lines.append(header)
        for inner in range(draw(st.integers(0, 2))):
            lines.append(f"{draw(toml_key(inner))} = {draw(toml_value(1))}")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + newline


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(toml_document())
def test_toml_scanner_agrees_with_tomllib_and_spans_are_exact(body: str) -> None:
    try:
        document = tomllib.loads(body)
    except tomllib.TOMLDecodeError:
        assume(False)
    text = "+++\n" + body + "+++\n"
    tree, parsed = read_toml(text, 4, 4 + len(body))
    assert _plain(tree) == _parsed(document) == _parsed(parsed)
    marked, expected = _marked(text, tree)
    assert _parsed(tomllib.loads(marked[4 : len(marked) - 4])) == expected
    assert _plain(scan_toml_lines(text, 4, 4 + len(body))) == _plain(tree)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a = 'x'", "[t", "b = [", '"c"', "= 1", "[[u]]", "d.e = 1"])))
def test_toml_line_reader_never_fails(lines: list[str]) -> None:
    text = "\n".join(lines)
    tree = scan_toml_lines(text, 0, len(text))
    for item in _texts(tree):
        assert 0 <= item.start <= item.end <= len(text)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), CHARS),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(CHARS, children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(CHARS, JSON_VALUES, max_size=5),
    st.booleans(),
    st.sampled_from([None, 0, 2, "\t"]),
)
def test_json_scanner_agrees_with_json_and_spans_are_exact(
    document: dict[str, Any], ascii_only: bool, indent: int | str | None
) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only, indent=indent)
    text = "\n" + body + "\nbody"
    tree, parsed, end = read_json(text, 1)
    assert end == 1 + len(body)
    assert _plain(tree) == _parsed(document) == _parsed(parsed)
    marked, expected = _marked(text, tree)
    assert _parsed(json.JSONDecoder().raw_decode(marked, 1)[0]) == expected


def test_json_line_reader_takes_only_the_top_level() -> None:
    text = '{\n"a": "1",\n"b": {\n"a": "2"\n},\n"c": ["3", "4"]\n}'
    assert _plain(scan_json_lines(text, 0, len(text))) == {"a": "1", "b": None, "c": ["3", "4"]}


@pytest.mark.parametrize("fence", ["", ";;;\n"])
def test_hexo_json_front_matter_closed_by_semicolons(fence: str) -> None:
    text = (
        f'{fence}"title": "Hello",\n"date": "2013/7/13 20:46:25",\n'
        '"photos": ["https://a.example/1.jpg", "2.jpg"],\n"cover": {"image": "c.png"}\n;;;\n'
        "![x](body.png)\n"
    )
    result = scan(text, keys=("photos", "cover.image"))
    assert found(result) == [
        ("frontmatter:photos", "https://a.example/1.jpg", "https://a.example/1.jpg"),
        ("frontmatter:photos", "2.jpg", "2.jpg"),
        ("frontmatter:cover.image", "c.png", "c.png"),
        ("markdown", "body.png", "body.png"),
    ]
    assert result.date == "2013/7/13 20:46:25"
    assert result.problems == ()


def test_invalid_hexo_json_is_read_line_by_line_only_when_fenced() -> None:
    text = ';;;\n"title": "x" "y",\n"photos": ["a.jpg"]\n;;;\n![x](body.png)\n'
    result = scan(text, keys=("photos",), name="h.md")
    assert [r.raw for r in result.references] == ["a.jpg", "body.png"]
    (problem,) = result.problems
    assert problem.startswith("h.md: front matter is not valid JSON (line 2: ")
    prose = '"Hello," she said.\n;;;\n![x](body.png)\n'
    assert [r.raw for r in scan(prose).references] == ["body.png"]
    assert scan(prose).problems == ()


FRONT_LINES = st.sampled_from(
    [
        "+++",
        "---",
        ";;;",
        "{",
        "}",
        '"thumbnail": "t.jpg",',
        "thumbnail = 't.jpg'",
        "thumbnail: t.jpg",
        "[header]",
        "[[gallery]]",
        "image = '''",
        '"""',
        "images = [",
        "],",
        '  "a.png", # c',
        "- x.png",
        'header.image = "h\\u0041.png"',
        "date = 2020-01-01",
        "&a [*a]",
        "",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(FRONT_LINES, max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_any_front_matter_reads_without_failing_and_spans_match(
    lines: list[str], newline: str
) -> None:
    text = newline.join(lines) + newline + "![x](body.png)" + newline
    result = scan(text, keys=(*KEYS, "*img*", "gallery[].image_path"))
    for ref in result.references:
        assert result.text[ref.span.start : ref.span.end] == ref.raw
    for problem in result.problems:
        assert "\n" not in problem and problem.startswith("post.md: ")
