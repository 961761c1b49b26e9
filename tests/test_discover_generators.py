"""Tests for discover on generator syntax: Hugo shortcodes, Hexo tags, Jekyll/Liquid includes
and template prefixes, lazy-loading attributes, MDX components, media, and the rule table that
scan's contexts and docs/finding.md share."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mediatool.cli import main
from mediatool.config import DiscoverSettings, Settings, load_settings
from mediatool.discover import find_posts, scan_text
from mediatool.discover.finding import DOC_PATH, known_context, render_finding
from mediatool.errors import UsageError
from mediatool.models import PostScan, RefKind
from mediatool.pipeline.common import scan_fingerprint
from mediatool.pipeline.scanning import run_scan
from mediatool.testing.origin import OriginServer

SETTINGS = DiscoverSettings()


def scan(text: str, name: str = "post.md", settings: DiscoverSettings = SETTINGS) -> PostScan:
    """Scan `text`; every reference's span holds its raw text and, with the default tables, its
    context is one docs/finding.md lists."""
    result = scan_text(text, Path(name), settings)
    for ref in result.references:
        assert result.text[ref.span.start : ref.span.end] == ref.raw
        assert settings is not SETTINGS or known_context(ref.context), ref.context
    return result


def found(
    text: str, name: str = "post.md", settings: DiscoverSettings = SETTINGS
) -> list[tuple[str, str]]:
    return [(r.context, r.source_url) for r in scan(text, name, settings).references]


# ---------------------------------------------------------------- Hugo shortcodes

A = "https://a.example/x.png"


@pytest.mark.parametrize(
    "shortcode",
    [
        f'{{{{< figure src="{A}" >}}}}',
        f'{{{{< figure caption="A cat" src="{A}" alt="x" >}}}}',
        f"{{{{< figure src='{A}' >}}}}",
        f"{{{{< figure src=`{A}` >}}}}",
        f"{{{{< figure src={A} >}}}}",
        f'{{{{<figure src="{A}">}}}}',
        f'{{{{% figure src="{A}" %}}}}',
        f'{{{{< figure src="{A}" />}}}}',
        f'{{{{< figure\n    title="t"\n    src="{A}"\n>}}}}',
        f'{{{{< figure\r\n  src = "{A}" >}}}}',
        f'| a | {{{{< figure src="{A}" >}}}} |\n|---|---|\n',
    ],
)
def test_figure_shortcode_in_every_spelling(shortcode: str) -> None:
    result = scan(f"Before\n\n{shortcode}\n\nafter\n")
    assert [(r.context, r.raw, r.media) for r in result.references] == [
        ("shortcode:figure@src", A, "image")
    ]


def test_shortcode_double_quoted_escapes_keep_raw_text() -> None:
    ref = scan('{{< figure src="https://a.example/a\\"b.png" >}}').references[0]
    assert ref.raw == 'https://a.example/a\\"b.png'
    assert ref.source_url == 'https://a.example/a"b.png'


def test_figure_link_counts_only_when_it_names_an_image() -> None:
    text = (
        '{{< figure src="/img/s.jpg" link="https://a.example/big.jpg" >}}\n'
        '{{< figure src="/img/t.jpg" link="https://a.example/post/" >}}\n'
    )
    assert found(text) == [
        ("shortcode:figure@src", "/img/s.jpg"),
        ("shortcode:figure@link", "https://a.example/big.jpg"),
        ("shortcode:figure@src", "/img/t.jpg"),
    ]
    assert scan(text).references[0].kind is RefKind.LOCAL


def test_positional_and_gallery_shortcodes() -> None:
    text = (
        '{{< img "https://a.example/p.png" "alt text" >}}\n'
        "{{< image /local/q.jpg >}}\n"
        '{{< gallery "https://g.example/1.jpg" "https://g.example/2.webp" "caption" >}}\n'
        '{{< youtube "w7Ft2ymGmfc" >}}\n'
        '{{< myhero image="https://h.example/hero.jpg" title="x" >}}\n'
    )
    assert found(text) == [
        ("shortcode:img@0", "https://a.example/p.png"),
        ("shortcode:image@0", "/local/q.jpg"),
        ("shortcode:gallery@*", "https://g.example/1.jpg"),
        ("shortcode:gallery@*", "https://g.example/2.webp"),
        ("shortcode:myhero@image", "https://h.example/hero.jpg"),
    ]


def test_escaped_closing_and_code_shortcodes_are_text() -> None:
    text = (
        '{{</* figure src="https://a.example/escaped.png" */>}}\n'
        '{{%/* figure src="https://a.example/escaped2.png" */%}}\n'
        '`{{< figure src="https://a.example/span.png" >}}`\n\n'
        '```\n{{< figure src="https://a.example/fence.png" >}}\n```\n'
        '    {{< figure src="https://a.example/indented.png" >}}\n\n'
        '{{< gallery >}}\n{{< figure src="https://a.example/in.png" >}}\n{{< /gallery >}}\n'
    )
    assert found(text) == [("shortcode:figure@src", "https://a.example/in.png")]


def test_shortcode_that_looks_like_a_tag_is_found_once() -> None:
    text = '{{<img src="https://a.example/one.png">}}'
    assert found(text) == [("shortcode:img@src", "https://a.example/one.png")]


def test_unclosed_shortcode_is_not_a_reference() -> None:
    assert found('{{< figure src="https://a.example/x.png"\n\ntext') == []


def test_shortcodes_are_found_in_html_posts_too() -> None:
    text = '<p>{{< figure src="https://a.example/h.png" >}}</p>'
    assert found(text, "post.html") == [("shortcode:figure@src", "https://a.example/h.png")]


def test_shortcode_table_extends_from_config(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text(
        '[discover]\nshortcodes = {bigimg = ["0", "background"], figure = ["caption"]}\n'
    )
    settings = load_settings(config).discover
    # Values that name no image file: only the table says they are images.
    text = (
        '{{< bigimg "https://a.example/b?id=1" background="/bg" >}}\n'
        '{{< figure src="/a.png" caption="https://a.example/c" >}}\n'
    )
    assert found(text, settings=settings) == [
        ("shortcode:bigimg@0", "https://a.example/b?id=1"),
        ("shortcode:bigimg@background", "/bg"),
        ("shortcode:figure@src", "/a.png"),
        ("shortcode:figure@caption", "https://a.example/c"),
    ]
    assert found(text) == [("shortcode:figure@src", "/a.png")]


def test_any_shortcode_argument_naming_an_image_file_counts() -> None:
    text = (
        '{{< figure2 name="IMG_7927.jpeg" width="5712" title="Jen on the track" >}}\n'
        '{{< image src="/l.jpg" src_s="/l-small.jpg" src_l="/l-large.jpg" >}}\n'
        '{{< imgcap "https://a.example/cap.png" "caption.png is a word here" >}}\n'
        '{{< person name="Evgeny" picture="https://e.example/avatar.jpg" >}}\n'
        '{{< tweet user="x" id="123" >}}\n'
    )
    assert found(text) == [
        ("shortcode:figure2@name", "IMG_7927.jpeg"),
        ("shortcode:image@src", "/l.jpg"),
        ("shortcode:image@src_s", "/l-small.jpg"),
        ("shortcode:image@src_l", "/l-large.jpg"),
        ("shortcode:imgcap@*", "https://a.example/cap.png"),
        ("shortcode:person@picture", "https://e.example/avatar.jpg"),
    ]


# ---------------------------------------------------------------- Hexo and Jekyll/Liquid


def test_hexo_img_tag_arguments() -> None:
    text = (
        "{% img https://a.example/1.png %}\n"
        "{% img left shadow /images/2.png 300 200 'title text' 'alt text' %}\n"
        '{% img [class] "https://a.example/3.jpg" %}\n'
        "{%- img https://a.example/4.png -%}\n"
        "{% img pic.png %}\n"
    )
    assert found(text) == [
        ("tag:img@first-url", "https://a.example/1.png"),
        ("tag:img@first-url", "/images/2.png"),
        ("tag:img@first-url", "https://a.example/3.jpg"),
        ("tag:img@first-url", "https://a.example/4.png"),
        ("tag:img@first-url", "pic.png"),
    ]


def test_hexo_asset_img_is_local_and_theme_tags() -> None:
    text = (
        "{% asset_img slug.jpg This is a title %}\n"
        "{% asset_img wide banner.png %}\n"
        "{% image https://a.example/v.png, alt=每天下课回宿舍的路 %}\n"
        "{% image https://a.example/s.png 'caption' width:400px %}\n"
        "{% inlineImg https://a.example/i.png 150px %}\n"
        "{% note info %}text{% endnote %}\n"
    )
    result = scan(text)
    assert [(r.context, r.source_url) for r in result.references] == [
        ("tag:asset_img@asset", "slug.jpg"),
        ("tag:asset_img@asset", "banner.png"),
        ("tag:image@0", "https://a.example/v.png"),
        ("tag:image@0", "https://a.example/s.png"),
        ("tag:inlineimg@0", "https://a.example/i.png"),
    ]
    assert result.references[0].kind is RefKind.LOCAL


def test_jekyll_includes_pass_images() -> None:
    text = (
        '{% include figure image_path="/assets/images/fig.png" alt="a" caption="c" %}\n'
        "{% include image.html url='https://a.example/y' description='d' %}\n"
        '{% include figure.html src="https://a.example/s.jpg" %}\n'
        '{% include link.html url="https://a.example/about" %}\n'
        '{% include link.html url="https://a.example/doc.pdf" %}\n'
        "{% include figure image_path=page.teaser %}\n"
    )
    result = scan(text)
    assert [(r.context, r.source_url, r.media) for r in result.references] == [
        ("include:figure@image_path", "/assets/images/fig.png", "image"),
        ("include:image.html@url", "https://a.example/y", "image"),
        ("include:figure.html@src", "https://a.example/s.jpg", "image"),
        ("include:link.html@url", "https://a.example/doc.pdf", "document"),
    ]


def test_raw_blocks_are_text_and_highlight_blocks_are_code() -> None:
    text = (
        "{% raw %}{% img https://a.example/raw.png %}{% endraw %}\n"
        '{% highlight html %}\n<img src="https://a.example/code.png">\n{% endhighlight %}\n'
        "{% codeblock %}\n![x](https://a.example/code2.png)\n{% endcodeblock %}\n\n"
        '{% raw %}<img src="https://a.example/html-in-raw.png">{% endraw %}\n'
    )
    assert found(text) == [("img@src", "https://a.example/html-in-raw.png")]


def test_liquid_tag_table_extends_from_config(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text('[discover]\ntags = {cover = ["0"]}\n')
    settings = load_settings(config).discover
    assert found("{% cover https://a.example/c?id=1 %}", settings=settings) == [
        ("tag:cover@0", "https://a.example/c?id=1")
    ]
    assert found("{% cover https://a.example/c?id=1 %}") == []
    assert found("{% cover https://a.example/c.png %}") == [
        ("tag:cover@*", "https://a.example/c.png")
    ]


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("![a]({{ site.baseurl }}/assets/b.png)", "/assets/b.png"),
        ('![a]({{ site.baseurl }}/assets/b.png "title")', "/assets/b.png"),
        ("![a]({{site.url}}{{site.baseurl}}/assets/b.png)", "/assets/b.png"),
        ('<img src="{{ site.baseurl }}/assets/b.png">', "/assets/b.png"),
        ("<img src=\"{{ '/assets/b.png' | relative_url }}\">", "/assets/b.png"),
        ("<img src='{{ \"/assets/b.png\" | absolute_url }}'>", "/assets/b.png"),
        ('![a]({{ "/assets/b.png" | relative_url }})', "/assets/b.png"),
        ("![a]({% link assets/b.png %})", "assets/b.png"),
        ("![a]({% asset_path b.png %})", "b.png"),
        (
            '{{< figure src="{{ .Site.BaseURL }}/assets/b.png" >}}',
            "{{ .Site.BaseURL }}/assets/b.png",
        ),
    ],
)
def test_template_prefixes_name_the_local_path_inside(text: str, raw: str) -> None:
    result = scan(text)
    assert [r.raw for r in result.references] == [raw]
    assert result.references[0].kind is RefKind.LOCAL


def test_a_template_without_a_path_is_no_reference() -> None:
    assert found('<img src="{{ page.image }}">\n\n![x]({{ page.cover }})') == []


# ---------------------------------------------------------------- attributes and components


def test_lazy_loading_attributes() -> None:
    text = (
        '<img data-original-src="//upload-images.jianshu.io/a.png" data-original-width="800">\n'
        '<img src="data:image/gif;base64,R0lGOD" data-lazy-src="https://a.example/l.jpg" '
        'data-lazy-srcset="https://a.example/l-300.jpg 300w, https://a.example/l-600.jpg 600w">\n'
        '<img data-orig-file="https://a.example/o.jpg" data-medium-file="https://a.example/m.jpg"'
        ' data-large-file="https://a.example/g.jpg">\n'
        '<img data-echo="https://a.example/e.jpg" data-url="https://a.example/u.jpg">\n'
        '<img data-croporisrc="https://mmbiz.qpic.cn/c" data-backsrc="https://mmbiz.qpic.cn/b">\n'
        '<div data-bg="https://a.example/bg.jpg" data-url="https://a.example/not-img-tag"></div>\n'
    )
    assert found(text) == [
        ("img@data-original-src", "https://upload-images.jianshu.io/a.png"),
        ("img@src", "data:image/gif;base64,R0lGOD"),
        ("img@data-lazy-src", "https://a.example/l.jpg"),
        ("img@data-lazy-srcset", "https://a.example/l-300.jpg"),
        ("img@data-lazy-srcset", "https://a.example/l-600.jpg"),
        ("img@data-orig-file", "https://a.example/o.jpg"),
        ("img@data-medium-file", "https://a.example/m.jpg"),
        ("img@data-large-file", "https://a.example/g.jpg"),
        ("img@data-echo", "https://a.example/e.jpg"),
        ("img@data-url", "https://a.example/u.jpg"),
        ("img@data-croporisrc", "https://mmbiz.qpic.cn/c"),
        ("img@data-backsrc", "https://mmbiz.qpic.cn/b"),
        ("attr@data-bg", "https://a.example/bg.jpg"),
    ]


def test_noscript_fallback_is_scanned() -> None:
    # HTMLParser reads <noscript> content as markup, as browsers with scripting off do.
    text = (
        '<img class="lazy" data-src="https://a.example/n.jpg" src="/p.gif">'
        '<noscript><img src="https://a.example/n.jpg"></noscript>'
    )
    assert found(text) == [
        ("img@data-src", "https://a.example/n.jpg"),
        ("img@src", "/p.gif"),
        ("img@src", "https://a.example/n.jpg"),
    ]


def test_attribute_table_extends_from_config(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text(
        "[discover]\nattributes = [\n"
        '  {tag = "img", attribute = "data-lazy", kind = "url"},\n'
        '  {tag = "div", attribute = "data-set", kind = "srcset"},\n'
        '  {tag = "*", attribute = "data-movie", media = "video"},\n'
        "]\n"
    )
    settings = load_settings(config).discover
    text = (
        '<img data-lazy="https://a.example/1.png"><div data-set="a.png 1x, b.png 2x"></div>'
        '<p data-movie="https://a.example/m.mp4"></p>'
    )
    result = scan(text, settings=settings)
    assert [(r.context, r.raw, r.media) for r in result.references] == [
        ("img@data-lazy", "https://a.example/1.png", "image"),
        ("div@data-set", "a.png", "image"),
        ("div@data-set", "b.png", "image"),
        ("attr@data-movie", "https://a.example/m.mp4", "video"),
    ]
    assert found(text) == []


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ('attributes = [{tag = "img"}]', "needs tag and attribute"),
        ('attributes = [{tag = "img", attribute = "x", kind = "css"}]', "kind is one of"),
        ('attributes = [{tag = "img", attribute = "x", media = "movie"}]', "media one of"),
        ('shortcodes = {figure = "src"}', "discover.shortcodes maps a name"),
        ("components = {Image = [1]}", "discover.components maps a name"),
    ],
)
def test_bad_discover_tables_are_usage_errors(tmp_path: Path, config: str, words: str) -> None:
    path = tmp_path / "mediatool.toml"
    path.write_text(f"[discover]\n{config}\n")
    with pytest.raises(UsageError, match=words) as error:
        load_settings(path)
    assert str(path) in str(error.value)


def test_capitalised_components() -> None:
    text = (
        '<Image imgUrl="https://a.example/c.png" alt="x" />\n\n'
        '<Figure src={"https://a.example/j.png"} caption="c" />\n\n'
        "<Picture url={'/local/p.webp'} />\n\n"
        "<Image src={cover} />\n\n"
        '<Link url="https://a.example/about" />\n\n'
        '<Card url="https://a.example/card.jpg" />\n\n'
        '<Img src="https://a.example/i.png">\n\n'
        '<IMG SRC="https://a.example/caps.png">\n'
    )
    assert found(text) == [
        ("component:Image@imgUrl", "https://a.example/c.png"),
        ("component:Figure@src", "https://a.example/j.png"),
        ("component:Picture@url", "/local/p.webp"),
        ("component:Card@url", "https://a.example/card.jpg"),
        ("img@src", "https://a.example/i.png"),
        ("img@src", "https://a.example/caps.png"),
    ]


def test_component_table_extends_from_config(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text('[discover]\ncomponents = {Hero = ["backdrop"]}\n')
    settings = load_settings(config).discover
    text = '<Hero backdrop="https://a.example/h?id=1" />'
    assert found(text, settings=settings) == [
        ("component:Hero@backdrop", "https://a.example/h?id=1")
    ]
    assert found(text) == []


# ---------------------------------------------------------------- media


def test_media_elements() -> None:
    text = (
        '<video src="https://a.example/v.webm" poster="https://a.example/p.jpg">'
        '<source src="https://a.example/v.mp4" type="video/mp4">'
        '<track src="https://a.example/subs.vtt" kind="subtitles"></video>\n'
        '<audio controls><source src="https://a.example/a.ogg"></audio>\n'
        '<picture><source srcset="https://a.example/w.webp"><img src="https://a.example/w.jpg">'
        "</picture>\n"
        '<object data="https://a.example/paper.pdf" type="application/pdf"></object>\n'
        '<embed src="https://a.example/clip" type="video/mp4">\n'
        '<embed src="https://a.example/game.swf">\n'
    )
    result = scan(text)
    assert [(r.context, r.media) for r in result.references] == [
        ("video@src", "video"),
        ("video@poster", "image"),
        ("source@src", "video"),
        ("track@src", "track"),
        ("source@src", "audio"),
        ("source@srcset", "image"),
        ("img@src", "image"),
        ("object@data", "document"),
        ("embed@src", "video"),
    ]


def test_links_to_media_files() -> None:
    text = (
        "[the paper](https://a.example/paper.pdf) and [a song](https://a.example/s.MP3?dl=1)\n"
        "[a page](https://a.example/page.html)\n\n"
        "![clip](https://a.example/clip.mp4)\n\n"
        '<a href="https://a.example/talk.m4a">talk</a> <a href="https://a.example/x.html">x</a>\n'
    )
    result = scan(text)
    assert [(r.context, r.source_url, r.media) for r in result.references] == [
        ("markdown-link", "https://a.example/paper.pdf", "document"),
        ("markdown-link", "https://a.example/s.MP3?dl=1", "audio"),
        ("markdown", "https://a.example/clip.mp4", "video"),
        ("a@href", "https://a.example/talk.m4a", "audio"),
    ]


def test_scan_records_and_summary_show_media(tmp_path: Path) -> None:
    post = tmp_path / "p.md"
    post.write_text(
        "![i](https://a.example/i.png)\n\n[v](https://a.example/v.webm)\n\n"
        '{{< figure src="https://a.example/f.png" >}}\n'
    )
    records: list[dict[str, object]] = []
    summary = run_scan(
        [post], Settings(cache_dir=tmp_path / "cache"), emit=records.append, say=print
    )
    assert [(r["context"], r["media"]) for r in records] == [
        ("markdown", "image"),
        ("markdown-link", "video"),
        ("shortcode:figure@src", "image"),
    ]
    assert summary.by_media == {"image": 2, "video": 1}
    assert summary.by_context["shortcode:figure@src"] == 1


# ---------------------------------------------------------------- the rule table


def test_docs_finding_is_rendered_from_the_table() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render_finding(), (
        "docs/finding.md is stale: run scripts/gen-docs"
    )


def test_every_default_attribute_is_documented_and_unknown_contexts_are_not() -> None:
    rendered = render_finding()
    for context in ("img@data-original-src", "img@data-lazy-srcset", "track@src", "a@href"):
        assert f"`{context}`" in rendered
    assert known_context("shortcode:figure@src") and known_context("frontmatter:cover")
    assert not known_context("img@data-nothing") and not known_context("bogus")


# ---------------------------------------------------------------- through fetch and rewrite


def test_fetch_and_rewrite_localize_shortcode_images_and_media_links(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    image, paper = "http://img.example.test/fig.jpg", "http://img.example.test/paper.pdf"
    proxy_env.add(image, jpeg_bytes)
    pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    proxy_env.add(paper, pdf)
    post = tmp_path / "posts" / "p.md"
    post.parent.mkdir()
    text = f'{{{{< figure\n  caption="c"\n  src="{image}" >}}}}\n\n[the paper]({paper})\n'
    post.write_text(text)
    cache = str(tmp_path / "cache")
    fetched = CliRunner().invoke(main, ["fetch", str(post), "--cache", cache, "--json"])
    assert fetched.exit_code == 0, fetched.stderr
    assert len(proxy_env.requests_for(paper)) == 1  # a document: stored as a plain asset
    rewritten = CliRunner().invoke(main, ["rewrite", str(post), "--cache", cache, "--json"])
    assert rewritten.exit_code == 0, rewritten.stderr
    after = post.read_text()
    assert image not in after and paper not in after
    local = after.split('src="', 1)[1].split('"', 1)[0]
    assert (post.parent / local).resolve().read_bytes() == jpeg_bytes
    local_paper = after.split("[the paper](", 1)[1].split(")", 1)[0]
    assert local_paper.endswith(".pdf")
    assert (post.parent / local_paper).resolve().read_bytes() == pdf
    undone = CliRunner().invoke(main, ["rewrite", str(post), "--cache", cache, "--undo"])
    assert undone.exit_code == 0 and post.read_text() == text


# ---------------------------------------------------------------- from the generator corpus


def test_generator_syntax_in_an_html_comment_shows_nothing() -> None:
    # hexo/ops_blog-post-img.md: a commented-out `{% asset_img %}` renders inside the comment.
    text = (
        "<!-- {% asset_img 'https://a.example/c.jpg' title %} -->\n\n"
        '<!-- {{< figure src="https://a.example/h.jpg" >}} -->\n\n'
        "{% asset_img shown.jpg %}\n"
    )
    assert found(text) == [("tag:asset_img@asset", "shown.jpg")]


def test_mdx_reads_markdown_inside_jsx_blocks(tmp_path: Path) -> None:
    # mdx/tailwind-starter-pictures-of-canada.mdx: images inside a flexbox <div>.
    text = (
        '<div className="flex flex-wrap">\n  <div className="w-full">\n'
        "    ![Maple](/static/images/canada/maple.jpg)\n  </div>\n</div>\n"
    )
    assert found(text, "post.mdx") == [("markdown", "/static/images/canada/maple.jpg")]
    assert found(text, "post.md") == []
    (tmp_path / "p.mdx").write_text(text)
    assert find_posts([tmp_path]) == [tmp_path / "p.mdx"]


def test_template_paths_written_in_text() -> None:
    # jekyll/halve-theme.md: a `{% capture %}` list that a gallery include reads.
    text = (
        "{% capture images %}\n\t{{ site.url }}/images/halve-1.png\n"
        "\t{{ site.url }}/images/notes.html\n{% endcapture %}\n"
        "{% include gallery images=images caption='Screens' %}\n\n"
        '<img src="{{ site.url }}/images/tag.png">\n'
    )
    assert found(text) == [
        ("template-path", "/images/halve-1.png"),
        ("img@src", "/images/tag.png"),
    ]


def test_reference_links_to_image_files_count() -> None:
    # hexo/git-blog-markdown-tutorial.md: `[wt][1]` with `[1]: http://…jpg`.
    text = (
        "See [wt][1], [图片地址] and [the site][2].\n\n"
        "[1]: http://ww3.sinaimg.cn/large/a.jpg\n"
        "[图片地址]: http://ww3.sinaimg.cn/large/b.jpg\n"
        "[2]: https://a.example/about\n"
    )
    assert found(text) == [
        ("markdown-ref", "http://ww3.sinaimg.cn/large/a.jpg"),
        ("markdown-ref", "http://ww3.sinaimg.cn/large/b.jpg"),
    ]


def test_include_parameter_naming_an_image_and_object_param_value() -> None:
    # jekyll/ironjan-trip-home.md and jekyll/sqsuki-ar-vr.md (a Tableau embed).
    text = (
        '{% include image name="Stockholm_Sea.jpg" caption="The sea" %}\n\n'
        '<object><param name="static_image" value="https:&#47;&#47;p.example&#47;1.png">'
        '<param name="tabs" value="no"></object>\n'
    )
    assert found(text) == [
        ("include:image@name", "Stockholm_Sea.jpg"),
        ("param@value", "https://p.example/1.png"),
    ]


def test_wordpress_shortcodes_in_exported_posts() -> None:
    text = (
        '[video width="640" height="360" mp4="https://a.example/v.mp4" '
        'poster="https://a.example/p.jpg"][/video]\n'
        "[audio mp3='https://a.example/s.mp3']\n\n"
        "[embed]https://a.example/x.pdf[/embed]\n"
        "[embed]https://www.youtube.com/watch?v=1[/embed]\n\n"
        "[video](https://a.example/link.mp4)\n\n"
        '```\n[video src="https://a.example/code.mp4"]\n```\n'
    )
    result = scan(text)
    assert [(r.context, r.source_url, r.media) for r in result.references] == [
        ("wp:video@mp4", "https://a.example/v.mp4", "video"),
        ("wp:video@poster", "https://a.example/p.jpg", "image"),
        ("wp:audio@mp3", "https://a.example/s.mp3", "audio"),
        ("wp:embed@url", "https://a.example/x.pdf", "document"),
        ("markdown-link", "https://a.example/link.mp4", "video"),
    ]


def test_meta_images_and_background_attributes() -> None:
    text = (
        '<meta property="og:image" content="https://a.example/og.png">'
        '<meta name="twitter:image" content="https://a.example/tw">'
        '<meta name="description" content="https://a.example/no.png">'
        '<table><tr><td background="https://a.example/bg.gif">x</td></tr></table>'
        '<Hero background="#fff" /><div background="red"></div>'
    )
    assert found(text, "page.html") == [
        ("meta@content", "https://a.example/og.png"),
        ("meta@content", "https://a.example/tw"),
        ("td@background", "https://a.example/bg.gif"),
    ]


def test_changing_a_discover_table_makes_fetch_read_posts_again() -> None:
    base = scan_fingerprint(Settings())
    assert scan_fingerprint(Settings()) == base
    changed = [
        DiscoverSettings(shortcodes={"hero": ("0",)}),
        DiscoverSettings(tags={"cover": ("0",)}),
        DiscoverSettings(components={"Hero": ("backdrop",)}),
        DiscoverSettings(attributes=({"tag": "img", "attribute": "data-lazy"},)),
    ]
    for discover in changed:
        assert scan_fingerprint(Settings(discover=discover)) != base


def test_jsx_string_values_and_expressions() -> None:
    text = (
        "<img src={require('./a.png')} />\n\n"
        '<Image src={require("../c.jpg").default} alt="x" />\n\n'
        '<img src={"/b.png"} />\n\n'
        "<img src={cover} />\n"
    )
    assert found(text, "post.mdx") == [
        ("img@src", "./a.png"),
        ("component:Image@src", "../c.jpg"),
        ("img@src", "/b.png"),
    ]


def test_obsidian_embeds_and_mdx_imports() -> None:
    text = (
        "import cover from './cover.png'\n"
        "import Chart from '../components/Chart'\n\n"
        "See ![[photo one.png|300]], ![[Some Note]] and ![[clip.mp4]].\n\n"
        "`![[code.png]]`\n"
    )
    result = scan(text, "post.mdx")
    assert [(r.context, r.raw, r.media) for r in result.references] == [
        ("mdx-import", "./cover.png", "image"),
        ("embed", "photo one.png", "image"),
        ("embed", "clip.mp4", "video"),
    ]
    assert [r.context for r in scan(text, "post.md").references] == ["embed", "embed"]


def test_image_size_suffix_link_tag_after_baseurl_zoom_and_iframe() -> None:
    text = (
        '![a](x.png =300x200) ![b](y.png =50%x) ![c](z.png =100x "t") [no](w.png =x=y)\n\n'
        "![d]({{ site.baseurl }}{% link assets/l.png %})\n\n"
        '<iframe src="https://a.example/doc.pdf"></iframe>'
        '<iframe src="https://www.youtube.com/embed/x"></iframe>\n'
        '<img src="s.jpg" data-zoom-src="big.jpg">\n'
    )
    assert found(text) == [
        ("markdown", "x.png"),
        ("markdown", "y.png"),
        ("markdown", "z.png"),
        ("markdown", "assets/l.png"),
        ("iframe@src", "https://a.example/doc.pdf"),
        ("img@src", "s.jpg"),
        ("img@data-zoom-src", "big.jpg"),
    ]


def test_easy_gallery_thumb_suffix_is_not_a_reference() -> None:
    text = (
        '{{< figure link="/img/x.jpg" thumb="-thumb" >}}\n'
        '{{< figure src="/img/y.jpg" thumb="/img/y-small.jpg" >}}\n'
    )
    assert found(text) == [
        ("shortcode:figure@link", "/img/x.jpg"),
        ("shortcode:figure@src", "/img/y.jpg"),
        ("shortcode:figure@thumb", "/img/y-small.jpg"),
    ]


def test_amp_elements_and_zhihu_watermark_source() -> None:
    text = (
        '<amp-img src="https://a.example/a.jpg" srcset="https://a.example/a2.jpg 2x"></amp-img>'
        '<amp-video src="https://a.example/v.mp4" poster="https://a.example/p.jpg"></amp-video>'
        '<img src="https://pic1.zhimg.com/v2-a_b.jpg" '
        'data-default-watermark-src="https://pic1.zhimg.com/v2-w_b.jpg">'
    )
    result = scan(text)
    assert [(r.context, r.media) for r in result.references] == [
        ("amp-img@src", "image"),
        ("amp-img@srcset", "image"),
        ("amp-video@src", "video"),
        ("amp-video@poster", "image"),
        ("img@src", "image"),
        ("img@data-default-watermark-src", "image"),
    ]


def test_real_include_and_shortcode_variants() -> None:
    # Spellings from public posts: an include flag that is no URL, a Hugo image by path.
    text = (
        "{% include image.html file='trading-system/Snapshot-Path.PNG' url='yes' %}\n\n"
        '{% include image.html img="/assets/sim.png" title="Gazebo" %}\n\n'
        '{% include image.html\n   url="/assets/image/env.png"\n   id="fig1"\n%}\n\n'
        '{{% image path="/img/XamarinHyperV/WindowsFeaturesHyperV" alt="Enable" %}}\n\n'
        '{% image "./src/images/matdump-1.png", "Skärmdump" %}\n'
    )
    assert found(text) == [
        ("include:image.html@file", "trading-system/Snapshot-Path.PNG"),
        ("include:image.html@img", "/assets/sim.png"),
        ("include:image.html@url", "/assets/image/env.png"),
        ("shortcode:image@path", "/img/XamarinHyperV/WindowsFeaturesHyperV"),
        ("tag:image@0", "./src/images/matdump-1.png"),
    ]


def test_a_known_tag_takes_only_its_own_positional_arguments() -> None:
    # `{% img URL title %}`: the title may look like a file name; an unknown tag's may not.
    text = (
        "{% img https://farm8.example/z.jpg pcbus_structure.png %}\n\n"
        '{% Img src="image/T4.jpg", alt="Google", width="800" %}\n\n'
        "{% lightbox /img/a.png caption.png %}\n"
    )
    assert found(text) == [
        ("tag:img@first-url", "https://farm8.example/z.jpg"),
        ("tag:img@src", "image/T4.jpg"),
        ("tag:lightbox@*", "/img/a.png"),
        ("tag:lightbox@*", "caption.png"),
    ]
