"""Tests for mediatool.discover: post files -> image references with exact spans.

Most cases quote a line of a real post in /work/shared/corpus/real (named in the test); the
corpus test at the end scans every real post.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import runpy
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediatool.config import DiscoverSettings
from mediatool.discover import find_posts, read_post, scan_text
from mediatool.errors import PostError, UsageError
from mediatool.models import DeclaredSize, PostScan, Reference, RefKind

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"  # real posts (SOURCES.md)
SETTINGS = DiscoverSettings()


def scan(text: str, name: str = "post.md", keys: tuple[str, ...] | None = None) -> PostScan:
    """Scan `text` and check the span invariants on every reference."""
    discover = SETTINGS if keys is None else DiscoverSettings(frontmatter_keys=keys)
    result = scan_text(text, Path(name), discover)
    assert_invariants(result)
    return result


def assert_invariants(result: PostScan) -> None:
    starts = [r.span.start for r in result.references]
    assert starts == sorted(starts)
    for ref in result.references:
        assert result.text[ref.span.start : ref.span.end] == ref.raw
        line_start = result.text.rfind("\n", 0, ref.span.start) + 1
        assert ref.line == result.text.count("\n", 0, ref.span.start) + 1
        assert ref.column == ref.span.start - line_start + 1
        assert ref.source_url


def pairs(result: PostScan) -> list[tuple[str, str]]:
    return [(r.context, r.raw) for r in result.references]


def only(result: PostScan) -> Reference:
    assert len(result.references) == 1, pairs(result)
    return result.references[0]


# ---------------------------------------------------------------- front matter

ZAKER_HEAD = (
    "\n---\ntitle: '10 年后，英特尔 NUC 走向 Mac 的反面'\ncategories: \n - 新媒体\n - ZAKER\n"
    " - channel\nheadimg: 'https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/202205/"
    "6278e8248e9f095432703e61_1024.jpg'\nauthor: ZAKER\ncomments: false\n"
    "date: Mon, 09 May 2022 05:12:35 GMT\nthumbnail: 'https://cors.zfour.workers.dev/?http://"
    "zkres2.myzaker.com/202205/6278e8248e9f095432703e61_1024.jpg'\n---\n\n<div>   \n</div>\n"
)


def test_front_matter_single_quoted_after_a_leading_newline() -> None:
    # 10 年后，英特尔 NUC 走向 Mac 的反面.md: the file starts with "\n---".
    result = scan(ZAKER_HEAD)
    url = "https://cors.zfour.workers.dev/?http://zkres2.myzaker.com/202205/6278e8248e9f095432703e61_1024.jpg"
    assert pairs(result) == [("frontmatter:headimg", url), ("frontmatter:thumbnail", url)]
    first = result.references[0]
    assert result.text[first.span.start - 1] == "'" and result.text[first.span.end] == "'"
    assert (first.line, first.column) == (8, 11)
    assert first.kind is RefKind.REMOTE and first.declared is None
    assert first.size_insert_at is None
    assert result.problems == ()


def test_front_matter_double_quoted_and_site_relative() -> None:
    # gemini-1-5-flash-vs-gpt-4o-88b9d8da8152.md and post-1.md (rifx).
    text = (
        '---\ntitle: "New Gemini 1.5 FLASH Model"\n'
        'image: "https://images.weserv.nl/?url=https://cdn-images-1.readmedium.com/v2/'
        'resize:fit:800/0*Reb1owOmiw5DFd4A.png"\n'
        'categories: ["Programming", "Machine Learning", "Generative AI"]\ndraft: False\n\n---\n'
    )
    ref = only(scan(text))
    assert ref.context == "frontmatter:image"
    assert ref.raw.endswith("0*Reb1owOmiw5DFd4A.png") and ref.raw.startswith("https://images")
    local = only(scan('---\ntitle: "x"\nimage: "/images/image-placeholder.png"\n---\nbody\n'))
    assert local.kind is RefKind.LOCAL and local.source_url == "/images/image-placeholder.png"


@pytest.mark.parametrize(
    "line",
    ["thumbnail: ''", "thumbnail:", 'image: ""', "thumbnail: ~", "cover: null", "banner: 12"],
)
def test_empty_or_non_string_front_matter_values_are_not_references(line: str) -> None:
    # """""""'P232 非减数组 _ AlgoCasts 视频更新'""""""".md has `thumbnail: ''`.
    assert scan(f"---\ntitle: t\n{line}\n---\nbody\n").references == ()


def test_front_matter_plain_scalar_and_comment() -> None:
    text = "---\ncover: https://a.example/c.png   # the cover\n---\n"
    ref = only(scan(text))
    assert ref.raw == "https://a.example/c.png"


def test_front_matter_lists_block_and_flow() -> None:
    keys = ("photos", "cover")
    text = (
        "---\nphotos:\n  - https://a.example/1.jpg\n  - 'https://a.example/2.jpg'\n"
        '  - {not: scalar}\ncover: ["//cdn.example/3.png", plain/4.png]\n---\n'
    )
    result = scan(text, keys=keys)
    assert [r.raw for r in result.references] == [
        "https://a.example/1.jpg",
        "https://a.example/2.jpg",
        "//cdn.example/3.png",
        "plain/4.png",
    ]
    assert result.references[0].context == "frontmatter:photos"
    assert result.references[2].source_url == "https://cdn.example/3.png"
    assert result.references[2].kind is RefKind.REMOTE
    assert result.references[3].kind is RefKind.LOCAL


def test_front_matter_escapes_keep_raw_text_and_parse_value() -> None:
    text = (
        "---\ncover: 'https://a.example/it''s.png'\nimage: \"https://a.example/\\x41.png\"\n---\n"
    )
    result = scan(text)
    assert pairs(result) == [
        ("frontmatter:cover", "https://a.example/it''s.png"),
        ("frontmatter:image", "https://a.example/\\x41.png"),
    ]
    assert [r.source_url for r in result.references] == [
        "https://a.example/it's.png",
        "https://a.example/A.png",
    ]


def test_front_matter_skips_block_scalars_and_nested_keys() -> None:
    text = (
        "---\nimage: |\n  https://a.example/x.png\nmeta:\n  image: https://a.example/y.png\n---\n"
    )
    assert scan(text, keys=("image",)).references == ()


def test_invalid_yaml_front_matter_falls_back_to_lines() -> None:
    # The title line of """""""'P232 非减数组 _ AlgoCasts 视频更新'""""""".md, plus image keys.
    text = (
        '\n---\ntitle: """""""\'P232. 非减数组 _ AlgoCasts 视频更新\'"""""""\n'
        "categories: \n    - 编程\nthumbnail: 'https://a.example/t.jpg'\n"
        "headimg: https://a.example/h.jpg # note\ncover: 'https://a.example/c.jpg' # c\nimage:\n  - https://a.example/i1.png\n"
        "  - \"https://a.example/i2.png\"\nbanner: ['https://a.example/b.png', x.png]\n"
        "cover: ''\n---\n<div>   \n</div>\n"
    )
    result = scan(text, name="P232.md", keys=("thumbnail", "headimg", "image", "banner", "cover"))
    assert [r.raw for r in result.references] == [
        "https://a.example/t.jpg",
        "https://a.example/h.jpg",
        "https://a.example/c.jpg",
        "https://a.example/i1.png",
        "https://a.example/i2.png",
        "https://a.example/b.png",
        "x.png",
    ]
    assert result.references[3].context == "frontmatter:image"
    (problem,) = result.problems
    assert problem.startswith("P232.md: front matter is not valid YAML (line 3: ")
    assert problem.endswith("image keys read line by line; fix the YAML to silence this")
    assert "\n" not in problem


def test_unclosed_front_matter_is_body_with_a_problem() -> None:
    text = "---\ntitle: x\nthumbnail: https://a.example/t.jpg\n\n![](https://a.example/b.png)\n"
    result = scan(text, name="open.md")
    assert pairs(result) == [("markdown", "https://a.example/b.png")]
    (problem,) = result.problems
    assert problem.startswith("open.md: front matter opened with '---' on line 1 is never closed")


def test_front_matter_with_bom_and_crlf() -> None:
    text = "\ufeff---\r\ntitle: x\r\nthumbnail: 'https://a.example/t.jpg'\r\n---\r\nbody\r\n"
    ref = only(scan(text))
    assert ref.span.start == text.index("https://")
    assert (ref.line, ref.column) == (3, 13)


def test_front_matter_ends_with_dots_and_html_in_front_matter_is_not_body() -> None:
    text = '---\ndescription: \'<img src="https://a.example/no.png">\'\n...\n<img src="yes.png">\n'
    assert pairs(scan(text)) == [("img@src", "yes.png")]


# ---------------------------------------------------------------- HTML

ZAKER_IMG = (
    '<div class="img_box" id="id_imagebox_0" onclick><div class="content_img_div perview_img_div">'
    '<img class="lazy opacity_0 " id="img_0" data-original="http://zkres2.myzaker.com/202205/'
    '6278e8248e9f095432703e61_1024.jpg" data-height="653" data-width="1080" src="https://cors.'
    'zfour.workers.dev/?http://zkres2.myzaker.com/202205/6278e8248e9f095432703e61_1024.jpg" '
    'referrerpolicy="no-referrer"></div></div>'
)


def test_zaker_lazy_img_after_boolean_attribute() -> None:
    # 10 年后，英特尔 NUC 走向 Mac 的反面.md: `onclick` has no value; data-original + src.
    text = "<div>   \n<p></p>" + ZAKER_IMG + "\n</div>\n"
    result = scan(text)
    origin = "http://zkres2.myzaker.com/202205/6278e8248e9f095432703e61_1024.jpg"
    assert pairs(result) == [
        ("img@data-original", origin),
        ("img@src", "https://cors.zfour.workers.dev/?" + origin),
    ]
    declared = DeclaredSize(1080, 653, "data-width")
    assert all(r.declared == declared for r in result.references)
    insert = result.references[0].size_insert_at
    assert insert is not None and all(r.size_insert_at == insert for r in result.references)
    assert text[:insert].endswith('referrerpolicy="no-referrer"') and text[insert] == ">"


def test_1sapp_data_size_declared() -> None:
    # 00后自制火箭并发射，惊呆60w网友.md
    text = (
        '<img src="https://cors.zfour.workers.dev/?http://static.1sapp.com/qupost/images/2022/03/'
        '02/1646201213848861595.jpg" data-size="474,82" alt="6a87bd774bd277de4c85ace5c8d63d1e.jpg" '
        'referrerpolicy="no-referrer">'
    )
    ref = only(scan(text))
    assert ref.declared == DeclaredSize(474, 82, "data-size")
    assert ref.size_insert_at == len(text) - 1


def test_ithome_width_height_win_over_w_h_and_no_insert_point() -> None:
    # 通过浏览器直接写代码，微软推出 Visual Studio Code Server 远程开发服务.md
    text = (
        '<img src="https://img.ithome.com/newsuploadfiles/2022/7/6e8eb1bb-9bf8-461d-9a60-'
        'af24b0caf8c6.png" w="1440" h="631" title="通过浏览器直接写代码" width="1440" '
        'height="359" referrerpolicy="no-referrer">'
    )
    ref = only(scan(text))
    assert ref.declared == DeclaredSize(1440, 359, "width")
    assert ref.size_insert_at is None


@pytest.mark.parametrize(
    ("attributes", "declared"),
    [
        ('data-img-size-val="562,269" width="10"', DeclaredSize(562, 269, "data-img-size-val")),
        ('data-size="bad" width="480px" height="100%"', DeclaredSize(480, None, "width")),
        ('width="100%" height="auto"', None),
        ("HEIGHT=20", DeclaredSize(None, 20, "width")),
    ],
)
def test_declared_size_precedence(attributes: str, declared: DeclaredSize | None) -> None:
    ref = only(scan(f'<img src="https://a.example/x.png" {attributes}>'))
    assert ref.declared == declared
    assert (ref.size_insert_at is None) == ("width" in attributes.lower() or "HEIGHT" in attributes)


def test_gnn_data_srcset_without_space_after_comma() -> None:
    # _ETC_&nbsp;Ubisoft 收購反作弊系統 FairFight 開發商 GameBlocks.md
    base = "https://p2.bahamut.com.tw/B/2KU/71/a54a7cc5b47969752b3ab90e591c1575.JPG"
    text = (
        '<figcaption style="padding-bottom: 45.48%"><img alt="image" name="gnnPIC" '
        f'class="lazyload" data-sizes="auto" src="{base}?v=1617793671781" data-srcset="{base}?'
        f'w=1000 1x,{base} 2x" style="max-width: unset;" title="照片來源：i3D.net" '
        'referrerpolicy="no-referrer"></figcaption>'
    )
    assert pairs(scan(text)) == [
        ("img@src", f"{base}?v=1617793671781"),
        ("img@data-srcset", f"{base}?w=1000"),
        ("img@data-srcset", base),
    ]


def test_wordpress_srcset_candidates() -> None:
    # 终于等来下载版～『东方花映塚』Steam版将于4月25日发布.md
    url = "https://s3-ap-northeast-1.amazonaws.com/touhougarakuta-statics/putfykzd/wp-content/uploads/2022/04/08173643/220408-1"
    text = (
        f'<img class="alignnone size-thumbnail wp-image-24736" src="{url}-512x384.jpg" alt '
        f'width="512" height="384" srcset="{url}-512x384.jpg 512w, {url}.jpg 640w" '
        'sizes="(max-width: 512px) 100vw, 512px" referrerpolicy="no-referrer">'
    )
    result = scan(text)
    assert pairs(result) == [
        ("img@src", f"{url}-512x384.jpg"),
        ("img@srcset", f"{url}-512x384.jpg"),
        ("img@srcset", f"{url}.jpg"),
    ]
    assert {r.declared for r in result.references} == {DeclaredSize(512, 384, "width")}


def test_srcset_urls_may_hold_commas() -> None:
    # IT 之家 (PATTERNS.md D): `?x-bce-process=image/watermark,image_aW1n…=,g_7`.
    url = "https://img.ithome.com/a.jpg?x-bce-process=image/watermark,image_aW1nL3c=,g_7"
    text = f'<img src="{url}" srcset="{url} 2x, b.jpg,, c.jpg (a, b) 3x,d.jpg">'
    assert [r.raw for r in scan(text).references] == [url, url, "b.jpg", "c.jpg", "d.jpg"]


def test_dockone_lightbox_link_wrapping_img() -> None:
    # 聚焦支持边缘弱网环境，博云开源FabEdge边缘网络方案.md
    origin = "http://dockone.io/uploads/article/20210804/a077968413f8ce099a262effe5252516.jpg"
    text = (
        f'<a href="{origin}" target="_blank" data-fancybox-group="thumb" rel="lightbox">'
        f'<img src="https://cors.zfour.workers.dev/?{origin}" class="img-polaroid" '
        'title="微信图片_20210804170709.jpg" alt="微信图片_20210804170709.jpg" '
        'referrerpolicy="no-referrer"></a>'
    )
    assert pairs(scan(text)) == [
        ("a@href", origin),
        ("img@src", f"https://cors.zfour.workers.dev/?{origin}"),
    ]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<a href="https://a.example/big.PNG?x=1"><span><img src="s.png"></span></a>', 2),
        ('<a href="https://a.example/big.jpg!custom"><img src="s.png"></a>', 2),
        ('<a href="https://a.example/page.html"><img src="s.png"></a>', 1),
        ('<a href="https://a.example/big.jpg">text only</a><img src="s.png">', 2),
        ('<a href="https://a.example/big.jpg"><a href="x"></a><img src="s.png"></a>', 2),
        ('<a href="https://a.example/big.jpg"><img src="s.png">', 2),
        ('<a href="https://a.example/page.html">text</a>', 0),
    ],
)
def test_a_href_counts_when_it_names_an_image_file(html: str, expected: int) -> None:
    # A link to an image file is an image the post points at (issue 9's real posts: a photo
    # linked from text, an <a> around a Hugo shortcode); other links are not.
    assert len(scan(html).references) == expected


def test_woshipm_data_avatar_and_36kr_data_logo() -> None:
    # B端决策类产品｜任务中断回溯设计.md (data-avatar); 36kr data-logo from PATTERNS.md A.
    text = (
        '<button class="button--pay" data-post-id="5329031" data-author="1001792" '
        'data-avatar="http://image.woshipm.com/wp-files/2022/02/SADJQo8Sc1yuZkeItS7W.jpg">\n'
        '<a class="project-link" data-logo="https://img.36krcdn.com/20210901/v2_x_img_png">'
    )
    assert pairs(scan(text)) == [
        ("attr@data-avatar", "http://image.woshipm.com/wp-files/2022/02/SADJQo8Sc1yuZkeItS7W.jpg"),
        ("attr@data-logo", "https://img.36krcdn.com/20210901/v2_x_img_png"),
    ]


def test_bing_raw_ampersand_kept_and_entities_decoded() -> None:
    # Kamikōchi, Nagano Prefecture, Japan (© sadao_Shutterstock).md: raw `&` in src.
    bing = (
        "https://cn.bing.com/th?id=OHR.Kamikouchi_ZH-CN5677161294_1920x1080.jpg"
        "&rf=LaDigue_1920x1080.jpg&pid=hp"
    )
    ref = only(scan(f'<img src="{bing}" referrerpolicy="no-referrer">'))
    assert ref.raw == ref.source_url == bing
    text = '<img src="https://a.example/x.png?a=1&amp;b=2&#38;c=&copy=3&not;">'
    ref = only(scan(text))
    assert ref.raw == "https://a.example/x.png?a=1&amp;b=2&#38;c=&copy=3&not;"
    assert ref.source_url == "https://a.example/x.png?a=1&b=2&c=&copy=3¬"


def test_quoting_case_and_whitespace_variants() -> None:
    text = (
        "<IMG SRC='https://a.example/1.png'>\n<img src=https://a.example/2.png/>\n"
        '<Img\n  Data-Src = " https://a.example/3.png "\n  alt=\'it"s\'>\n<img/src="4.png">\n'
    )
    result = scan(text)
    assert pairs(result) == [
        ("img@src", "https://a.example/1.png"),
        ("img@src", "https://a.example/2.png/"),
        ("img@data-src", "https://a.example/3.png"),
        ("img@src", "4.png"),
    ]
    assert [r.line for r in result.references] == [1, 2, 4, 6]


def test_other_image_positions() -> None:
    text = (
        '<picture><source srcset="https://a.example/a.webp 1x, https://a.example/b.webp 2x">'
        '<img src="https://a.example/a.jpg"></picture>\n'
        '<video poster="https://a.example/p.jpg" src="movie.mp4"></video>\n'
        '<svg><image href="https://a.example/s.svg"/><image xlink:href="t.png"/></svg>\n'
        "<div style=\"background-image: url('https://a.example/bg.png'); color: red\"></div>\n"
        "<div style='background:url(https://a.example/bg2.png) no-repeat'></div>\n"
        '<span style="background: URL(&quot;bg3.png&quot;)"></span>\n'
        '<img data-lazy-src="l.png" data-actualsrc="z.png">'
    )
    assert pairs(scan(text)) == [
        ("source@srcset", "https://a.example/a.webp"),
        ("source@srcset", "https://a.example/b.webp"),
        ("img@src", "https://a.example/a.jpg"),
        ("video@poster", "https://a.example/p.jpg"),
        ("video@src", "movie.mp4"),
        ("image@href", "https://a.example/s.svg"),
        ("image@xlink:href", "t.png"),
        ("style@url", "https://a.example/bg.png"),
        ("style@url", "https://a.example/bg2.png"),
        ("style@url", "bg3.png"),
        ("img@data-lazy-src", "l.png"),
        ("img@data-actualsrc", "z.png"),
    ]


def test_kinds_protocol_relative_data_and_local() -> None:
    text = (
        '<img src="//cdn.example/x.png"><img src="data:image/png;base64,iVBORw0KGgo=">'
        '<img src="../a.png"><img src="/Users/me/b.png"><img src="">'
    )
    result = scan(text)
    assert [(r.kind, r.source_url) for r in result.references] == [
        (RefKind.REMOTE, "https://cdn.example/x.png"),
        (RefKind.DATA, "data:image/png;base64,iVBORw0KGgo="),
        (RefKind.LOCAL, "../a.png"),
        (RefKind.LOCAL, "/Users/me/b.png"),
    ]
    assert result.references[0].raw == "//cdn.example/x.png"


def test_script_style_textarea_and_comments_are_skipped() -> None:
    # 「1202 年了，谁还用 jQuery 啊」.md has a <style> block; PATTERNS.md E lists comments.
    text = (
        "<script>var s = '<img src=\"https://a.example/no1.png\">';</script>\n"
        '<style>.a { background-image: url("https://a.example/no2.png"); }</style>\n'
        '<textarea><img src="https://a.example/no3.png"></textarea>\n'
        '<!-- <img src="https://a.example/no4.png"> -->\n'
        '<img src="https://a.example/yes.png">\n'
    )
    assert pairs(scan(text)) == [("img@src", "https://a.example/yes.png")]


def test_img_inside_html_code_counts() -> None:
    # The CSRF post of PATTERNS.md B: an <img> inside <code>, real markup, not escaped.
    text = (
        '<pre><code>&lt;img src="https://a.example/escaped.png"&gt;\n'
        '<img src="https://cors.zfour.workers.dev/?http://www.a.com:8002/content/delete/87343">'
        "</code></pre>\n"
    )
    ref = only(scan(text))
    assert ref.source_url.endswith("/content/delete/87343")


def test_size_insert_point_makes_a_valid_tag() -> None:
    for tag in ('<img src="a.png" alt>', "<img src=a.png/>", '<img\tsrc="a.png" />'):
        ref = only(scan(tag))
        assert ref.size_insert_at is not None
        edited = tag[: ref.size_insert_at] + ' width="3" height="4"' + tag[ref.size_insert_at :]
        again = only(scan(edited))
        assert again.declared == DeclaredSize(3, 4, "width") and again.source_url == ref.source_url


# ---------------------------------------------------------------- Markdown


def test_rifx_markdown_image() -> None:
    # the-real-reason-openai-abandoned-next-js-for-remix-a4b2622ee9b2.md style line.
    url = "https://wsrv.nl/?url=https://cdn-images-1.readmedium.com/v2/resize:fit:800/1*9LUHgLQbo9mzIt1A6BzpWQ.png"
    ref = only(scan(f"Intro.\n\n![]({url})\n\nMore.\n"))
    assert (ref.context, ref.raw, ref.line, ref.column) == ("markdown", url, 3, 5)


def test_marianopeck_image_inside_image_link() -> None:
    # marianopeck-blog-backup__ckgjjnnz2011nnzs15i5a35cd.md line 11.
    img = "https://i0.wp.com/marianopeck.blog/wp-content/uploads/2020/10/1_DMv_Km8Ml49BuRXwWHydpg.png?resize=335%2C335&ssl=1"
    link = "https://i0.wp.com/marianopeck.blog/wp-content/uploads/2020/10/1_DMv_Km8Ml49BuRXwWHydpg.png?ssl=1"
    assert pairs(scan(f"[![]({img})]({link})\n")) == [("markdown", img), ("markdown-link", link)]
    assert pairs(scan(f"[![]({img})](https://example.com/page)\n")) == [("markdown", img)]
    assert pairs(scan(f"[text]({link})\n")) == [("markdown-link", link)]
    assert pairs(scan("[text](https://example.com/page)\n")) == []


def test_local_filesystem_path_image() -> None:
    # building-a-collaborative-ai-agent-framework-for-automated-eda-using-crewai-351478b424ce.md
    path = (
        "/Users/manaranjanp/Documents/Work/MyLearnings/fastHTML/llmeda-12Sept/demo/q_0/"
        "sbp_distribution.png"
    )
    ref = only(scan(f"![sbp_distribution.png]({path})\n"))
    assert ref.kind is RefKind.LOCAL and ref.raw == path


def test_markdown_image_forms() -> None:
    text = (
        '![a [nested] alt](https://a.example/1.png "title")\n'
        "![x](<https://a.example/with space.png> 'title')\n"
        "![x](https://en.example/wiki/File_(1).png)\n"
        "![x](\n  https://a.example/4.png\n  (title)\n)\n"
        "\\![not](https://a.example/no.png) ![y](https://a.example/5.png?a=1&amp;b=\\_2)\n"
        '![bad](https://a.example/no2.png "unclosed)\n'
    )
    result = scan(text)
    assert [r.raw for r in result.references] == [
        "https://a.example/1.png",
        "https://a.example/with space.png",
        "https://en.example/wiki/File_(1).png",
        "https://a.example/4.png",
        "https://a.example/no.png",  # `\![...](...)` is a link, to an image file
        "https://a.example/5.png?a=1&amp;b=\\_2",
    ]
    assert result.references[-1].source_url == "https://a.example/5.png?a=1&b=_2"


def test_images_in_lists_quotes_and_tables() -> None:
    text = (
        "- ![](https://a.example/list.png)\n\n> quoted ![](https://a.example/quote.png)\n\n"
        "| a | b |\n|---|---|\n| ![](https://a.example/cell.png) | `![](no.png)` |\n\n"
        '<span title="![](https://a.example/attribute.png)">x</span>\n'
    )
    assert [r.raw for r in scan(text).references] == [
        "https://a.example/list.png",
        "https://a.example/quote.png",
        "https://a.example/cell.png",
    ]


def test_reference_images_report_each_used_definition_once() -> None:
    text = (
        "![one][logo] and ![Logo][] and ![logo] and ![two][other] and ![x][missing]\n\n"
        '[logo]: https://a.example/logo.png "Logo"\n'
        "[other]:\n  <https://a.example/other.png>\n"
        "[logo]: https://a.example/second-definition-ignored.png\n"
        "[unused]: https://a.example/unused.png\n"
    )
    assert pairs(scan(text)) == [
        ("markdown-ref", "https://a.example/logo.png"),
        ("markdown-ref", "https://a.example/other.png"),
    ]


def test_code_is_not_looked_at() -> None:
    # building-a-collaborative-ai-agent-framework-…md: `![{img}]({image_path})` in a fence.
    text = (
        '```python\nmarkdown_content += f"![{img}]({image_path})\\n"\n'
        '<img src="https://a.example/fenced.png">\n```\n\n'
        '    <img src="https://a.example/indented.png">\n    ![](https://a.example/i2.png)\n\n'
        'Inline `<img src="https://a.example/span.png">` and ``![](https://a.example/s2.png)``.\n\n'
        "<pre>\n![](https://a.example/pre.png)\n</pre>\n\n"
        "A <code>![](https://a.example/code.png)</code> and ![](https://a.example/yes.png)\n"
    )
    assert pairs(scan(text)) == [("markdown", "https://a.example/yes.png")]


def test_backticks_inside_html_code_open_no_code_span() -> None:
    # RSS bodies are long one-line paragraphs; a backtick inside <code> must not pair with a
    # later one and hide the <img> between them.
    text = (
        "Intro <pre><code>echo `date</code></pre><p>"
        '<img src="https://a.example/between.png"> and `<img src="https://a.example/no.png">`</p>\n'
    )
    assert pairs(scan(text)) == [("img@src", "https://a.example/between.png")]


def test_crlf_fences_and_lines() -> None:
    text = (
        "---\r\ncover: a.png\r\n---\r\n```\r\n![](no.png)\r\n```\r\n\r\n"
        '![](https://a.example/y.png)\r\n<img src="z.png">\r\n'
    )
    result = scan(text)
    assert pairs(result) == [
        ("frontmatter:cover", "a.png"),
        ("markdown", "https://a.example/y.png"),
        ("img@src", "z.png"),
    ]
    assert [r.line for r in result.references] == [2, 8, 9]


def test_markdown_inside_html_block_is_raw_until_a_blank_line() -> None:
    text = (
        "<div>\n![](https://a.example/raw.png)\n</div>\n\n<div>\n\n"
        "![](https://a.example/md.png)\n\n</div>\n"
    )
    assert pairs(scan(text)) == [("markdown", "https://a.example/md.png")]


def test_html_files_have_no_markdown() -> None:
    text = "    <img src='a.png'>\n![](b.png) `<img src='c.png'>`\n"
    assert pairs(scan(text, name="page.HTML")) == [("img@src", "a.png"), ("img@src", "c.png")]


RSS_BODY = (
    "\n---\ntitle: 'Alda 2 发布'\n---\n\n<div>   \n<p>Alda 2.0.0 已正式发布。</p>\n\n"
    '                                                        <p><img src="https://a.example/'
    'indented-in-rss.png" referrerpolicy="no-referrer"></p>\n\n\n\n'
    "            </div>\n            "
)


def test_rss_mirror_indentation_is_not_code() -> None:
    # Alda 2 发布，用于作曲的音乐编程语言.md: markdown-it sees an indented code block at a
    # 56-space `<p>` line inside the RSS `<div>` body; the tags there are still scanned.
    assert pairs(scan(RSS_BODY)) == [("img@src", "https://a.example/indented-in-rss.png")]
    markdown_post = RSS_BODY.replace("<div>   \n", "Some *Markdown* first.\n")
    assert pairs(scan(markdown_post)) == []


# ---------------------------------------------------------------- reading files


def test_read_post_utf8_with_bom(tmp_path: Path) -> None:
    data = "\ufeff---\nthumbnail: https://a.example/t.png\n---\n".encode()
    path = tmp_path / "bom.md"
    path.write_bytes(data)
    result = read_post(path, SETTINGS)
    assert result.encoding == "utf-8" and result.text.startswith("\ufeff")
    assert result.text.encode(result.encoding) == data
    assert only(result).span.start == 16


def test_read_post_gb18030(tmp_path: Path) -> None:
    text = (
        "---\ntitle: 微软封杀漏洞后，网友又挖出了新的离线激活方法\n---\n"
        '<p>IT 之家 9 月 12 日消息</p><img src="https://a.example/图.png">\r\n'
    )
    path = tmp_path / "gb.md"
    path.write_bytes(text.encode("gb18030"))
    result = read_post(path, SETTINGS)
    assert result.encoding == "gb18030" and result.text == text
    assert result.text.encode(result.encoding) == path.read_bytes()
    assert only(result).raw == "https://a.example/图.png"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"---\ntitle: x\n---\n\x00\x01\x02", "binary"),
        ("café crème brûlée à la carte\n".encode("latin-1"), "encoding"),
        ("Ünïcödé façade: élève, ça va?\n".encode("latin-1"), "encoding"),
        # Decodes as GB18030 and round-trips (S閛ul, B閘arus, Z黵ich) but is not Chinese:
        ("Séoul, Bélarus, Zürich\n".encode("latin-1"), "encoding"),
        (bytes(b | 0x80 for b in random.Random(7).randbytes(400)), "encoding"),
        (random.Random(8).randbytes(4000), "binary"),
    ],
)
def test_read_post_rejects_non_text(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.md"
    path.write_bytes(data)
    with pytest.raises(PostError) as caught:
        read_post(path, SETTINGS)
    assert caught.value.reason == reason
    assert str(path) in caught.value.message and "\n" not in caught.value.message


def test_read_post_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PostError) as caught:
        read_post(tmp_path / "missing.md", SETTINGS)
    assert caught.value.reason == "unreadable"
    assert "missing.md" in caught.value.message


def test_find_posts(tmp_path: Path) -> None:
    for name in (
        "a.md",
        "sub/b.markdown",
        "sub/c.HTML",
        "sub/d.txt",
        ".git/e.md",
        "sub/.hidden/f.md",
        "cache/g.md",
        "sub/.h.md",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = find_posts([tmp_path, tmp_path / "a.md", tmp_path / "sub/d.txt"], [tmp_path / "cache"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.md",
        "sub/b.markdown",
        "sub/c.HTML",
        "sub/d.txt",
    ]
    assert find_posts([tmp_path / "cache" / "g.md"], [tmp_path / "cache"]) == []
    with pytest.raises(UsageError, match="nope"):
        find_posts([tmp_path / "nope"])


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "---\n",
                "thumbnail: x.png\n",
                "<img src='a.png'",
                ">",
                ' srcset="b 1x,c"',
                "![",
                "](",
                ")",
                "[",
                "]",
                "`",
                "```\n",
                "\n",
                "\r\n",
                "    ",
                "<!--",
                "-->",
                "<a href=x.jpg>",
                "</a>",
                "{{< figure src=",
                "{{% img ",
                "{{</* ",
                " */>}}",
                ">}}",
                "%}}",
                "/>}}",
                "{% img ",
                "{% asset_img a.png %}",
                "{% include figure image_path=",
                "{% raw %}",
                "{% endraw %}",
                "{{ site.baseurl }}/",
                "{{ '/b.png' | relative_url }}",
                "%}",
                "<Image imgUrl=",
                '{"',
                '"}',
                "<video src=v.mp4>",
                "](x.pdf)",
                "<pre>",
                "<code>",
                "&amp;",
                "\ufeff",
                "é",
                "<",
                "<![",
                "<!",
                "<?",
                "</",
                "<![CDATA[",
                "]]>",
                "<textarea>",
                "<script>",
                "'",
                '"',
                "=",
            ]
        ),
        max_size=30,
    )
)
def test_spans_always_match_raw(parts: list[str]) -> None:
    scan("".join(parts))


# ---------------------------------------------------------------- the real corpus


def corpus_posts() -> list[Path]:
    posts = sorted((CORPUS / "real").glob("*.md"))
    assert posts, f"{CORPUS}/real holds no posts"
    return posts


def test_real_corpus_spans_and_counts() -> None:
    stats = json.loads((CORPUS / "stats.json").read_text(encoding="utf-8"))
    expected = dict(stats["refs_per_file"])
    posts = corpus_posts()
    assert len(posts) >= len(expected)
    total = 0
    for path in posts:
        result = read_post(path, SETTINGS)
        assert_invariants(result)
        assert result.text.encode(result.encoding) == path.read_bytes()
        counted = [r for r in result.references if r.kind in (RefKind.REMOTE, RefKind.LOCAL)]
        assert len(counted) >= expected.get(path.name, 0), path.name
        total += len(counted)
    assert total >= stats["image_references_total"]


def test_real_corpus_finds_every_url_the_analyzer_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["analyze_patterns.py", str(CORPUS / "real")])
    with contextlib.redirect_stdout(io.StringIO()):
        analyzer = runpy.run_path(str(CORPUS / "analyze_patterns.py"), run_name="analyzer")
    theirs: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for name, _kind, url in analyzer["refs"]:
        theirs[name][url] += 1
    for path in corpus_posts():
        ours = Counter(r.raw for r in read_post(path, SETTINGS).references)
        assert not theirs[path.name] - ours, path.name


def test_default_keys_cover_hexo_photos_and_theme_image_keys() -> None:
    text = (
        "---\ntitle: t\nphotos:\n  - //cdn.example.com/p1.jpg\n  - 'https://cdn.example.com/p2.png'\n"
        'cover_image: https://a.example/c.jpg\nfeatured_image: "https://a.example/f.jpg"\n'
        "feature_image: https://a.example/g.jpg\nog_image: https://a.example/o.jpg\n"
        "description: https://a.example/not-a-key.jpg\n---\nbody\n"
    )
    found = [(r.context, r.source_url) for r in scan(text).references]
    assert found == [
        ("frontmatter:photos", "https://cdn.example.com/p1.jpg"),
        ("frontmatter:photos", "https://cdn.example.com/p2.png"),
        ("frontmatter:cover_image", "https://a.example/c.jpg"),
        ("frontmatter:featured_image", "https://a.example/f.jpg"),
        ("frontmatter:feature_image", "https://a.example/g.jpg"),
        ("frontmatter:og_image", "https://a.example/o.jpg"),
    ]


def test_front_matter_offsets_are_the_same_with_and_without_libyaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mediatool.discover._frontmatter as frontmatter

    text = (
        "\n---\ntitle: '中文 😀 标题'\nheadimg: \"https://a.example/é.jpg\"\r\n"
        "thumbnail: https://a.example/t.jpg\nphotos:\n  - 'https://a.example/p.png'\n---\n"
    )
    fast = [(r.span, r.source_url) for r in scan(text).references]
    monkeypatch.setattr(frontmatter, "_C_LOADER", None)
    slow = [(r.span, r.source_url) for r in scan(text).references]
    assert fast == slow and len(fast) == 3


def test_invalid_front_matter_reads_the_same_with_and_without_libyaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mediatool.discover._frontmatter as frontmatter

    text = '---\ntitle: """"x"""\nheadimg: https://a.example/h.jpg\n---\nbody\n'
    fast = scan(text)
    monkeypatch.setattr(frontmatter, "_C_LOADER", None)
    slow = scan(text)
    assert fast.problems == slow.problems and len(fast.problems) == 1
    assert [r.span for r in fast.references] == [r.span for r in slow.references]
    assert [r.source_url for r in fast.references] == ["https://a.example/h.jpg"]
