"""Archive fidelity, end to end through discover and rewrite, on real and generated posts:
identity mapping changes nothing, rewriting is idempotent, only reference spans (and added
sizes) change, and undo gives back every byte."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediatool.config import DiscoverSettings
from mediatool.discover import scan_text
from mediatool.models import PostScan, Reference, RefKind
from mediatool.pipeline.rewriting import undo_records
from mediatool.pipeline.undoing import restore_text, reverse_exactly, reverse_tolerantly
from mediatool.rewrite import Generation, UndoEdit, apply_edits, plan_edits

CORPUS = Path(__file__).resolve().parent / "data" / "corpus" / "real"  # SOURCES.md
REAL_POSTS = sorted(CORPUS.glob("*.md"))
assert REAL_POSTS, f"{CORPUS} holds no posts"
SETTINGS = DiscoverSettings()


def _local_path(ref: Reference) -> str | None:
    if ref.kind is not RefKind.REMOTE:
        return None
    digest = hashlib.sha256(ref.source_url.encode()).hexdigest()
    # Hexo's {% img %} takes only a rooted URL (rewrite refuses a relative one): a site's media URL
    folder = "/media" if ref.context.startswith("tag:img@") else "../cache"
    return f"{folder}/originals/{digest[:2]}/{digest[2:4]}/{digest}.jpg"


def _size(ref: Reference) -> tuple[int, int]:
    declared = ref.declared
    if declared and declared.width and declared.height:
        return declared.width, declared.height
    return 640, 480


def _rewrite(scan: PostScan) -> tuple[str, list[UndoEdit]]:
    edits = plan_edits(scan, _local_path, _size)
    return apply_edits(scan.text, edits), list(undo_records(scan.text, edits))


def _check_fidelity(text: str, path: Path) -> None:
    scan = scan_text(text, path, SETTINGS)
    identity = plan_edits(scan, lambda ref: ref.raw, _size)
    assert apply_edits(text, identity) == text
    rewritten, records = _rewrite(scan)
    again = scan_text(rewritten, path, SETTINGS)
    assert [r for r in again.references if r.kind is RefKind.REMOTE] == []
    assert _rewrite(again)[0] == rewritten
    assert reverse_exactly(rewritten, records) == text
    assert reverse_tolerantly(rewritten, records) == text
    assert reverse_tolerantly("hand edit\n" + rewritten, records) == "hand edit\n" + text
    changed = [record.old for record in records if record.old]
    remote = [r.raw for r in scan.references if r.kind is RefKind.REMOTE]
    assert sorted(changed) == sorted(remote)


@pytest.mark.parametrize("post", REAL_POSTS, ids=lambda p: p.name[:40])
def test_real_post_rewrite_is_exact_idempotent_and_reversible(post: Path) -> None:
    data = post.read_bytes()
    _check_fidelity(data.decode("utf-8"), post)


# -- generated posts, through the real discover -------------------------------------------

URL = st.builds(
    lambda host, path, ext: f"http://{host}.example.com/{path}.{ext}",
    st.sampled_from(["img", "static", "zkres1"]),
    st.text("abcdefgh0123456789_-/", min_size=1, max_size=12).filter(
        lambda s: not s.startswith("/") and "//" not in s
    ),
    st.sampled_from(["jpg", "png", "jpeg"]),
)
PROXIED = st.one_of(URL, URL.map(lambda u: f"https://cors.zfour.workers.dev/?{u}"))
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<>&`![]()*_\\#"),
    max_size=30,
)
NEWLINE = st.sampled_from(["\n", "\r\n"])


@st.composite
def html_image(draw: st.DrawFn) -> str:
    quote = draw(st.sampled_from(['"', "'"]))
    tag = draw(st.sampled_from(["img", "IMG", "Img"]))
    url = draw(PROXIED)
    extra = draw(st.sampled_from(["", ' data-size="480,319"', ' width="10" height="20"', " alt"]))
    lazy = draw(st.sampled_from(["", f" data-original={quote}{draw(URL)}{quote}"]))
    return f'<{tag} src={quote}{url}{quote}{lazy}{extra} referrerpolicy="no-referrer">'


def generator_forms(url: str, quote: str, space: str, delimiters: tuple[str, str]) -> list[str]:
    """An image in each generator syntax: shortcodes, Hexo/Liquid tags, components, media,
    lazy attributes, with the quoting and layout given."""
    liquid_quote = quote if quote in ('"', "'") else '"'
    opening, closing = delimiters
    return [
        f'{opening} figure{space}caption="c"{space}src={quote}{url}{quote} {closing}',
        f"{opening} img {quote}{url}{quote} {closing}",
        f'| cell | {{{{< figure src="{url}" >}}}} |',
        f"{{% img left {url} 300 200 'title' 'alt' %}}",
        f"{{% include figure image_path={liquid_quote}{url}{liquid_quote} alt=x %}}",
        f'<Image imgUrl="{url}" />',
        f'<Figure src={{"{url}"}} />',
        f'<video poster="{url}"><source src="{url}" type="video/mp4"></video>',
        f'<img data-original-src="{url}" data-lazy-srcset="{url} 1x, {url} 2x">',
        f"[a video]({url.rsplit('?', 1)[-1]}.mp4)",
        f'[video width="640" mp4={liquid_quote}{url}{liquid_quote}][/video]',
        f"{{% asset_img left {url} 'a title' %}}",
        f'<meta property="og:image" content="{url}">',
    ]


QUOTES = ['"', "'", "`", ""]
SPACES = [" ", "\n  ", "\r\n\t"]
DELIMITERS = [("{{<", ">}}"), ("{{%", "%}}"), ("{{<", "/>}}")]


@st.composite
def generator_image(draw: st.DrawFn) -> str:
    quote, space = draw(st.sampled_from(QUOTES)), draw(st.sampled_from(SPACES))
    forms = generator_forms(draw(PROXIED), quote, space, draw(st.sampled_from(DELIMITERS)))
    return draw(st.sampled_from(forms))


@pytest.mark.parametrize("quote", QUOTES)
@pytest.mark.parametrize("delimiters", DELIMITERS)
def test_every_generator_form_is_found_and_rewritten_exactly(
    quote: str, delimiters: tuple[str, str]
) -> None:
    url = "https://cors.zfour.workers.dev/?http://img.example.com/a_b-1.jpg"
    for form in generator_forms(url, quote, "\r\n  ", delimiters):
        text = f"---\ntitle: x\n---\n\nBefore\n\n{form}\n\nafter\n"
        scan = scan_text(text, Path("generated.md"), SETTINGS)
        assert [r for r in scan.references if r.kind is RefKind.REMOTE], form
        _check_fidelity(text, Path("generated.md"))


@st.composite
def post_text(draw: st.DrawFn) -> str:
    nl = draw(NEWLINE)
    front = draw(st.one_of(*(form(nl) for form in FRONT_MATTER_FORMS)))  # defined below
    blocks = draw(
        st.lists(
            st.one_of(
                TEXT,
                html_image(),
                PROXIED.map(lambda u: f"![alt]({u})"),
                PROXIED.map(lambda u: f"`![code]({u})`"),
                PROXIED.map(lambda u: f'<!-- <img src="{u}"> -->'),
                generator_image(),
                PROXIED.map(lambda u: f'{{{{</* figure src="{u}" */>}}}}'),
                PROXIED.map(lambda u: f"{{% raw %}}{{% img {u} %}}{{% endraw %}}"),
            ),
            max_size=8,
        )
    )
    return front + nl + nl.join(f"{b}{nl}" for b in blocks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(post_text())
def test_generated_post_rewrite_is_exact_idempotent_and_reversible(text: str) -> None:
    _check_fidelity(text, Path("generated.md"))


@settings(max_examples=100, deadline=None)
@given(post_text())
def test_code_and_comments_are_never_rewritten(text: str) -> None:
    scan = scan_text(text, Path("generated.md"), SETTINGS)
    rewritten, _ = _rewrite(scan)
    for line_before in text.splitlines():
        if line_before.startswith(("`![code]", "<!--", "{{</*", "{% raw %}")):
            assert line_before in rewritten


def test_undo_skips_edits_recorded_by_a_run_killed_before_it_wrote() -> None:
    one, two, local = "https://a.example/1.jpg", "https://a.example/2.jpg", "../cache/1.jpg"
    text = f'<img src="{one}"><img src="{two}">'
    first_run = Generation("a.md", None, None, (UndoEdit(10, one, local),))  # written
    after_first = text.replace(one, local)
    at = after_first.index(two)
    size = UndoEdit(at + len(two) + 1, "", ' width="1" height="2"')
    killed_run = Generation("a.md", None, None, (UndoEdit(at, two, local), size))  # not written
    assert restore_text(after_first, "utf-8", [killed_run, first_run])[0] == text
    at = text.index(two)
    killed_only = Generation(
        "a.md", None, None, (UndoEdit(at, two, local), UndoEdit(at + len(two) + 1, "", size.new))
    )
    assert restore_text(text, "utf-8", [killed_only]) == (text, 0)


# -- TOML and JSON front matter -----------------------------------------------------------


@st.composite
def yaml_front(draw: st.DrawFn, nl: str) -> str:
    lead = draw(st.sampled_from(["", nl]))
    quote = draw(st.sampled_from(["'", '"', ""]))
    thumb = draw(PROXIED)
    return f"{lead}---{nl}title: {quote}x{quote}{nl}thumbnail: {quote}{thumb}{quote}{nl}---{nl}"


@st.composite
def toml_front(draw: st.DrawFn, nl: str) -> str:
    """Hugo's TOML front matter: every string form, a table, an array of tables, dotted keys."""
    quote = draw(st.sampled_from(['"', "'", '"' * 3, "'" * 3]))
    thumb, header, image = draw(PROXIED), draw(PROXIED), draw(URL)
    lines = [
        "+++",
        f'title = "a \\"quoted\\" title" # {draw(PROXIED)}',
        f"thumbnail = {quote}{thumb}{quote}",
        f"images = [ '{image}',{nl}  # {image}{nl}  \"{draw(URL)}\", ]",
        f"header.image = {quote}{header}{quote}",
        f'cover = {{ image = "{draw(URL)}", alt = "x" }}',
        "[[resources]]",
        f"src = '{draw(URL)}'",
        "[params]",
        f'thumbnail = "{draw(URL)}"',
        "+++",
    ]
    return nl.join(lines) + nl


@st.composite
def json_front(draw: st.DrawFn, nl: str) -> str:
    """Hugo's JSON front matter; `/` may be written `\\/`, as some exporters do."""
    slash = draw(st.sampled_from(["/", "\\/"]))
    thumb, image = draw(PROXIED).replace("/", slash), draw(URL)
    lines = [
        "{",
        '  "title": "x {not the end}",',
        f'  "thumbnail": "{thumb}",',
        f'  "header": {{"image": "{image}", "caption": "{draw(URL)}"}},',
        f'  "images": ["{draw(URL)}", 3, null]',
        "}",
    ]
    return nl.join(lines) + nl


@st.composite
def hexo_front(draw: st.DrawFn, nl: str) -> str:
    """Hexo: YAML without the opening `---` (nested and guessed keys), or JSON closed by `;;;`."""
    if draw(st.booleans()):
        return (
            f'"title": "x",{nl}"photos": ["{draw(PROXIED)}", "{draw(URL)}"],{nl}'
            f'"cover": {{"image": "{draw(URL)}"}}{nl};;;{nl}'
        )
    quote = draw(st.sampled_from(["'", '"', ""]))
    return (
        f"title: x{nl}date: 2013-12-25 00:16:18{nl}photos:{nl}- {quote}{draw(PROXIED)}{quote}{nl}"
        f"header:{nl}  teaser: {quote}{draw(URL)}{quote}{nl}"
        f'bigimg: [{{src: "{draw(URL)}", desc: "Path"}}]{nl}---{nl}'
    )


FRONT_MATTER_FORMS = (yaml_front, toml_front, json_front, hexo_front)


@st.composite
def toml_or_json_post(draw: st.DrawFn) -> tuple[str, str]:
    nl = draw(NEWLINE)
    syntax = draw(st.sampled_from(["toml", "json"]))
    front = draw(toml_front(nl) if syntax == "toml" else json_front(nl))
    return syntax, front + nl + "body" + nl


def _front_matter_values(syntax: str, text: str) -> dict[str, object]:
    if syntax == "json":
        return dict(json.JSONDecoder().raw_decode(text)[0])
    return tomllib.loads(text.split("+++")[1])


@settings(max_examples=100, deadline=None)
@given(toml_or_json_post())
def test_rewritten_toml_and_json_front_matter_parses_to_the_local_paths(
    post: tuple[str, str],
) -> None:
    syntax, text = post
    scan = scan_text(text, Path("generated.md"), SETTINGS)
    before = _front_matter_values(syntax, text)
    after = _front_matter_values(syntax, _rewrite(scan)[0])
    by_value = {ref.source_url: _local_path(ref) for ref in scan.references}
    assert after["thumbnail"] == by_value[str(before["thumbnail"])]
    header = before["header"]
    assert isinstance(header, dict)
    assert after["header"] == {**header, "image": by_value[header["image"]]}
    assert after["title"] == before["title"]
