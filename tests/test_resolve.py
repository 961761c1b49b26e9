"""resolve: proxy URLs from the real corpus unwrap to pinned origins; other URLs stay put."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mediatool.cli import main
from mediatool.config import DiscoverSettings, ProxyRule
from mediatool.discover import scan_text
from mediatool.errors import UsageError
from mediatool.models import Reference, Resolution
from mediatool.resolve import (
    BUILTIN_RULES,
    MAX_DEPTH,
    compile_rules,
    decode_target,
    resolve,
    resolve_reference,
)
from mediatool.testing.origin import OriginServer

# (source URL as found in /work/shared/corpus/real, origin, rule names outermost first)
REAL_PROXIED = [
    pytest.param(
        "https://cors.zfour.workers.dev/?http://static.1sapp.com/qupost/img/2021/08/07/"
        "3295c4cc5fc7dfb9d0d24cb52b6116aa.gif",
        "http://static.1sapp.com/qupost/img/2021/08/07/3295c4cc5fc7dfb9d0d24cb52b6116aa.gif",
        ("cors-workers",),
        id="workers-1sapp",
    ),
    pytest.param(
        "https://cors.zfour.workers.dev/?http://zkres1.myzaker.com/202205/"
        "6278e8248e9f095432703e64_1024.jpg",
        "http://zkres1.myzaker.com/202205/6278e8248e9f095432703e64_1024.jpg",
        ("cors-workers",),
        id="workers-zaker",
    ),
    pytest.param(
        "https://cors.zfour.workers.dev/?http://p1-juejin.byteimg.com/tos-cn-i-k3u1fbpfcp/"
        "064b0f93ea054f698f5eeacc70301418~tplv-k3u1fbpfcp-zoom-in-crop-mark:4536:0:0:0.awebp?",
        "http://p1-juejin.byteimg.com/tos-cn-i-k3u1fbpfcp/"
        "064b0f93ea054f698f5eeacc70301418~tplv-k3u1fbpfcp-zoom-in-crop-mark:4536:0:0:0.awebp?",
        ("cors-workers",),
        id="workers-juejin-trailing-question-mark",
    ),
    pytest.param(
        "https://cors.zfour.workers.dev/?http://img.jandan.net/news/2019/01/"
        "ce1740cb2daa1eb128bf74c4355f65d9.jpg!custom",
        "http://img.jandan.net/news/2019/01/ce1740cb2daa1eb128bf74c4355f65d9.jpg!custom",
        ("cors-workers",),
        id="workers-jandan-custom",
    ),
    pytest.param(
        "https://cors.zfour.workers.dev/?http://dockone.io/uploads/article/20210804/"
        "a077968413f8ce099a262effe5252516.jpg",
        "http://dockone.io/uploads/article/20210804/a077968413f8ce099a262effe5252516.jpg",
        ("cors-workers",),
        id="workers-dockone",
    ),
    pytest.param(
        "https://images.weserv.nl/?url=https://cdn-images-1.readmedium.com/v2/resize:fit:800/"
        "0*4AAFdAMfT_xyflmv.png",
        "https://cdn-images-1.readmedium.com/v2/resize:fit:800/0*4AAFdAMfT_xyflmv.png",
        ("weserv",),
        id="weserv",
    ),
    pytest.param(
        "https://images.weserv.nl/?url=https://proxy.rifx.online/https://cdn-images-1.readmedium"
        ".com/v2/resize:fit:800/0*6Hs8174FgiwTv87e.jpg",
        "https://cdn-images-1.readmedium.com/v2/resize:fit:800/0*6Hs8174FgiwTv87e.jpg",
        ("weserv", "rifx-proxy"),
        id="weserv-rifx-nested",
    ),
    pytest.param(
        "https://wsrv.nl/?url=https://cdn-images-1.readmedium.com/v2/resize:fit:800/"
        "0*_IlopXA8MAGDKGjh.png",
        "https://cdn-images-1.readmedium.com/v2/resize:fit:800/0*_IlopXA8MAGDKGjh.png",
        ("weserv",),
        id="wsrv",
    ),
    pytest.param(
        "https://i0.wp.com/marianopeck.blog/wp-content/uploads/2019/09/"
        "Screen-Shot-2019-09-04-at-10.57.27-AM.png?resize=768%2C389&ssl=1",
        "https://marianopeck.blog/wp-content/uploads/2019/09/Screen-Shot-2019-09-04-at-10.57.27-AM.png",
        ("wp-photon",),
        id="photon-resize-ssl",
    ),
    pytest.param(
        "https://i2.wp.com/marianopeck.blog/wp-content/uploads/2019/09/"
        "Screen-Shot-2019-09-11-at-3.11.07-PM.png?w=748&ssl=1",
        "https://marianopeck.blog/wp-content/uploads/2019/09/Screen-Shot-2019-09-11-at-3.11.07-PM.png",
        ("wp-photon",),
        id="photon-w-ssl",
    ),
    pytest.param(
        "https://i1.wp.com/marianopeck.blog/wp-content/uploads/2019/08/"
        "Screen-Shot-2019-08-18-at-11.42.24-AM.png?fit=748%2C455&ssl=1",
        "https://marianopeck.blog/wp-content/uploads/2019/08/Screen-Shot-2019-08-18-at-11.42.24-AM.png",
        ("wp-photon",),
        id="photon-fit-ssl",
    ),
    pytest.param(
        "https://i0.wp.com/img.skitch.com/20081112-qk57c7k634wt9ftcefejhwwnfu.jpg?resize=345%2C380",
        "http://img.skitch.com/20081112-qk57c7k634wt9ftcefejhwwnfu.jpg",
        ("wp-photon",),
        id="photon-third-party-no-ssl",
    ),
    pytest.param(
        "https://i0.wp.com/img.skitch.com/20081112-qeck3xg3e77h52yj8k6ap23i26.jpg?w=1225",
        "http://img.skitch.com/20081112-qeck3xg3e77h52yj8k6ap23i26.jpg",
        ("wp-photon",),
        id="photon-w-no-ssl",
    ),
]


@pytest.mark.parametrize(("source", "origin", "rules"), REAL_PROXIED)
def test_real_corpus_proxies_unwrap(source: str, origin: str, rules: tuple[str, ...]) -> None:
    resolution = resolve(source, BUILTIN_RULES)
    assert resolution.origin_url == origin
    assert resolution.rules == rules
    assert resolution.source_url == source
    assert resolution.candidates[0] == origin
    assert resolution.candidates[-1] == source


# Shapes seen outside the collected corpus (index examples) and documented variants.
OTHER_PROXIED = [
    pytest.param(
        "https://cors.zfour.workers.dev/?http%3A%2F%2Fexample.com%2Fa.jpg%3Fx%3D1",
        "http://example.com/a.jpg?x=1",
        ("cors-workers",),
        id="workers-percent-encoded",
    ),
    pytest.param(
        "https://other.someone.workers.dev/?http://example.com/a.jpg?x=1&y=2",
        "http://example.com/a.jpg?x=1&y=2",
        ("cors-workers",),
        id="workers-any-host-raw-query-and-ampersand",
    ),
    pytest.param(
        "https://cors.zfour.workers.dev/?http://www.a.com:8002/content/delete/87343",
        "http://www.a.com:8002/content/delete/87343",
        ("cors-workers",),
        id="workers-port-non-image",
    ),
    pytest.param(
        "https://proxy.example/https://origin.example/x.jpg",
        "https://origin.example/x.jpg",
        ("path-embedded",),
        id="path-embedded",
    ),
    pytest.param(
        "https://proxy.example/https:/origin.example/x.jpg",
        "https://origin.example/x.jpg",
        ("path-embedded",),
        id="path-embedded-collapsed-slash",
    ),
    pytest.param(
        "https://proxy.example/https%3A%2F%2Forigin.example%2Fx.jpg",
        "https://origin.example/x.jpg",
        ("path-embedded",),
        id="path-embedded-percent-encoded",
    ),
    pytest.param(
        "https://proxy.rifx.online/https://cdn-images-1.readmedium.com/v2/resize:fit:800/a.png",
        "https://cdn-images-1.readmedium.com/v2/resize:fit:800/a.png",
        ("rifx-proxy",),
        id="rifx-alone",
    ),
    pytest.param(
        "https://wsrv.nl/?w=300&url=example.com%2Fx.jpg&h=200",
        "http://example.com/x.jpg",
        ("weserv",),
        id="weserv-encoded-no-scheme-params-around",
    ),
    pytest.param(
        "https://images.weserv.nl/?url=example.com/x.jpg&w=300",
        "http://example.com/x.jpg",
        ("weserv",),
        id="weserv-no-scheme",
    ),
    pytest.param(
        "https://images.weserv.nl/?url=ssl:example.com/x.jpg",
        "https://example.com/x.jpg",
        ("weserv",),
        id="weserv-ssl-prefix",
    ),
    pytest.param(
        "https://wsrv.nl/?url=https%3A%2F%2Fexample.com%2Fa%2520b.jpg&w=10",
        "https://example.com/a%20b.jpg",
        ("weserv",),
        id="weserv-percent-encoded-decoded-once",
    ),
    pytest.param(
        "https://wsrv.nl/?url=https://cn.bing.com/th?id=OHR.X_1920x1080.jpg&rf=L.jpg&pid=hp&w=300",
        "https://cn.bing.com/th?id=OHR.X_1920x1080.jpg&rf=L.jpg&pid=hp",
        ("weserv",),
        id="weserv-raw-origin-keeps-its-own-ampersands",
    ),
    pytest.param(
        "https://wsrv.nl/?url=https://proxy.rifx.online/https://cdn.example/a.png",
        "https://cdn.example/a.png",
        ("weserv", "rifx-proxy"),
        id="wsrv-rifx-nested",
    ),
    pytest.param(
        "https://i3.wp.com/example.com/a/b.jpg?w=3&v=2&ssl=1",
        "https://example.com/a/b.jpg?v=2",
        ("wp-photon",),
        id="photon-keeps-non-photon-params",
    ),
    pytest.param(
        # github.com/.../README (index id 14772016655)
        "https://camo.githubusercontent.com/70edab54bba80edb7493cad3135e9606781cbb6b/"
        "687474703a2f2f692e696d6775722e636f6d2f377635415363382e706e67",
        "http://i.imgur.com/7v5ASc8.png",
        ("github-camo",),
        id="camo-hex-40",
    ),
    pytest.param(
        # index id 44381832470 (64-hex HMAC)
        "https://camo.githubusercontent.com/8b2dfb0bfaeaf7ea0f0ae387ce2cbb0da1ec8d88a2392962"
        "3cafc6bcbff044af/68747470733a2f2f63732d6e6f7465732d313235363130393739362e636f732e61702d"
        "6775616e677a686f752e6d7971636c6f75642e636f6d2f50506a77502e706e67",
        "https://cs-notes-1256109796.cos.ap-guangzhou.myqcloud.com/PPjwP.png",
        ("github-camo",),
        id="camo-hex-64",
    ),
    pytest.param(
        "https://camo.githubusercontent.com/70edab54bba80edb7493cad3135e9606781cbb6b"
        "?url=http%3A%2F%2Fi.imgur.com%2F7v5ASc8.png",
        "http://i.imgur.com/7v5ASc8.png",
        ("query-url",),
        id="camo-query-form",
    ),
    pytest.param(
        # Inoreader (index id 10295458409)
        "https://www.inoreader.com/camo/syTLE-a1MEdDXhwx3ApEOV-s5_G8gDPx0rW5DvgKbE2Q,b64/"
        "aHR0cHM6Ly90dmF4Mi5zaW5haW1nLmNuL2xhcmdlLzhkZmI2ZDA2Z3kxZ3pwY2ttZWJkemoyMHJzMGZtZGkwLmpwZw",
        "https://tvax2.sinaimg.cn/large/8dfb6d06gy1gzpckmebdzj20rs0fmdi0.jpg",
        ("camo-b64",),
        id="camo-b64-inoreader",
    ),
    pytest.param(
        # Inoreader with options before b64 (index id 19088786615)
        "https://www.inoreader.com/camo/s7o8TiOXaJo78fmgTm76oOBCXFpqJfcRaLbYizUdgxio,q80,x120,b64/"
        "aHR0cHM6Ly93d3cuc21iYy1jb21pY3MuY29tL2NvbWljcy8xNzE0MzQ0NzYxLTIwMjQwNDI4LnBuZw",
        "https://www.smbc-comics.com/comics/1714344761-20240428.png",
        ("camo-b64",),
        id="camo-b64-options",
    ),
    pytest.param(
        # index id 30576995725
        "https://image.baidu.com/search/down?url=https://tva1.sinaimg.cn/large/"
        "008i3skNly1grx3heccvkj31h30sp0wb.jpg",
        "https://tva1.sinaimg.cn/large/008i3skNly1grx3heccvkj31h30sp0wb.jpg",
        ("baidu-down",),
        id="baidu-down",
    ),
    pytest.param(
        "https://image.baidu.com/search/down?url=https%3A%2F%2Ftva1.sinaimg.cn%2Flarge%2Fa.jpg",
        "https://tva1.sinaimg.cn/large/a.jpg",
        ("baidu-down",),
        id="baidu-down-encoded",
    ),
    pytest.param(
        "https://external-content.duckduckgo.com/iu/?u=https%3A%2F%2Fexample.com%2Fa.jpg&f=1",
        "https://example.com/a.jpg",
        ("query-url",),
        id="duckduckgo",
    ),
]


@pytest.mark.parametrize(("source", "origin", "rules"), OTHER_PROXIED)
def test_other_proxy_shapes_unwrap(source: str, origin: str, rules: tuple[str, ...]) -> None:
    resolution = resolve(source, BUILTIN_RULES)
    assert (resolution.origin_url, resolution.rules) == (origin, rules)


NOT_PROXIED = [
    "https://picsum.photos/400/300?random=3617",
    # cnBeta affiliate link: `?u=` + encoded URL, but not a known proxy host.
    "https://apple.pvxt.net/c/1251234/435400/7639?u=https%3A%2F%2Fwww.apple.com%2Fcn%2Fiphone%2F",
    "https://img.ithome.com/newsuploadfiles/2022/7/6e8eb1bb-9bf8-461d-9a60-af24b0caf8c6.png"
    "?x-bce-process=image/watermark,image_aW1nL3dhdGVybWFyay5wbmc=,g_7",
    "https://cn.bing.com/th?id=OHR.MidAutumnFestival2021_ZH-CN7657484762_1920x1080.jpg"
    "&rf=LaDigue_1920x1080.jpg&pid=hp",
    "https://example.com/search?url=https://other.example/a.jpg",
    "https://i0.wp.com/",
    "https://cors.zfour.workers.dev/?url=nothing",
    "https://camo.githubusercontent.com/70edab54bba80edb7493cad3135e9606781cbb6b/zz",
]


@pytest.mark.parametrize("url", NOT_PROXIED)
def test_non_proxy_urls_are_untouched(url: str) -> None:
    assert resolve(url, BUILTIN_RULES) == _unchanged(url)


@pytest.mark.parametrize(
    "url",
    ["/images/image-placeholder.png", "data:image/png;base64,iVBORw0KGgo=", "ftp://h/x.jpg", ""],
)
def test_only_http_urls_are_unwrapped(url: str) -> None:
    assert resolve(url, BUILTIN_RULES) == _unchanged(url)


def test_scheme_less_or_bad_target_means_the_rule_does_not_apply() -> None:
    url = "https://proxy.example/https://"  # embedded URL without a host
    assert resolve(url, BUILTIN_RULES) == _unchanged(url)


def test_candidates_are_origin_first_then_inner_to_outer_layers() -> None:
    source = (
        "https://cors.zfour.workers.dev/?https://wsrv.nl/?url=https://proxy.rifx.online/"
        "https://cdn.example/a.png"
    )
    resolution = resolve(source, BUILTIN_RULES)
    assert resolution.rules == ("cors-workers", "weserv", "rifx-proxy")
    assert resolution.candidates == (
        "https://cdn.example/a.png",
        "https://proxy.rifx.online/https://cdn.example/a.png",
        "https://wsrv.nl/?url=https://proxy.rifx.online/https://cdn.example/a.png",
        source,
    )


def test_candidates_have_no_duplicates() -> None:
    rules = compile_rules([ProxyRule("same", r"https://same\.example/(?P<t>.*)", "{t}")])
    resolution = resolve("https://same.example/https://same.example/x", rules)
    assert len(resolution.candidates) == len(set(resolution.candidates))


def test_depth_limit_stops_a_growing_loop() -> None:
    grow = ProxyRule("grow", r"(?P<url>https://loop\.example/.*)", "{url}x")
    resolution = resolve("https://loop.example/", compile_rules([grow]))
    assert resolution.rules == ("grow",) * MAX_DEPTH
    assert resolution.origin_url == "https://loop.example/" + "x" * MAX_DEPTH
    assert len(resolution.candidates) == MAX_DEPTH + 1


def test_a_rule_that_maps_an_url_to_itself_or_back_does_not_loop() -> None:
    rules = compile_rules(
        [
            ProxyRule("self", r"(?P<url>https://self\.example/.*)", "{url}"),
            ProxyRule("a-to-b", r"https://a\.example/(?P<p>.*)", "https://b.example/{p}"),
            ProxyRule("b-to-a", r"https://b\.example/(?P<p>.*)", "https://a.example/{p}"),
        ]
    )
    assert resolve("https://self.example/x", rules).rules == ()
    cycle = resolve("https://a.example/x", rules)
    assert cycle.rules == ("a-to-b",)
    assert cycle.origin_url == "https://b.example/x"


def test_depth_limit_on_nested_builtin_wrappers() -> None:
    source = "https://cdn.example/a.png"
    for _ in range(MAX_DEPTH + 2):
        source = "https://proxy.example/" + source
    resolution = resolve(source, BUILTIN_RULES)
    assert resolution.rules == ("path-embedded",) * MAX_DEPTH
    assert resolution.origin_url == "https://proxy.example/https://proxy.example/" + (
        "https://cdn.example/a.png"
    )


def test_user_rule_runs_before_builtins_and_decodes_encoded_targets() -> None:
    rule = ProxyRule(
        "my-cdn", r"^https?://img\.proxy\.example/fetch\?u=(?P<target>.+)$", "{target}"
    )
    rules = compile_rules([rule])
    assert rules[0].name == "my-cdn"
    assert rules[1:] == BUILTIN_RULES
    resolution = resolve(
        "https://img.proxy.example/fetch?u=https%3A%2F%2Fwsrv.nl%2F%3Furl%3Dexample.com%2Fa.jpg",
        rules,
    )
    assert resolution.rules == ("my-cdn", "weserv")
    assert resolution.origin_url == "http://example.com/a.jpg"


def test_user_rule_template_builds_the_url_and_keeps_raw_escapes() -> None:
    rule = ProxyRule(
        "cdn-path", r"https://pics\.example/(?P<host>[^/]+)/(?P<path>.*)", "https://{host}/{path}"
    )
    resolution = resolve("https://pics.example/o.example/a%20b.jpg", compile_rules([rule]))
    assert resolution.origin_url == "https://o.example/a%20b.jpg"


def test_user_rule_must_match_the_whole_url() -> None:
    rule = ProxyRule("partial", r"https://p\.example/(?P<t>https://[^/]+/)", "{t}")
    url = "https://p.example/https://o.example/x.jpg"
    assert resolve(url, compile_rules([rule])).rules == ("path-embedded",)


def test_bad_user_regex_names_the_rule() -> None:
    with pytest.raises(UsageError, match=r'proxy rule "broken": pattern .* is not a valid regex'):
        compile_rules([ProxyRule("broken", r"https://(?P<target>.+", "{target}")])


@pytest.mark.parametrize("template", ["{url}", "{0}", "{}", "https://{target.real}"])
def test_template_with_missing_group_names_the_rule(template: str) -> None:
    with pytest.raises(UsageError, match=r'proxy rule "tmpl": template .* not a named group'):
        compile_rules([ProxyRule("tmpl", r"https://x\.example/(?P<target>.+)", template)])


def test_malformed_template_names_the_rule() -> None:
    with pytest.raises(UsageError, match=r'proxy rule "tmpl": template .* not a valid'):
        compile_rules([ProxyRule("tmpl", r"https://x\.example/(?P<target>.+)", "{target")])


def test_usage_error_exit_code() -> None:
    with pytest.raises(UsageError) as caught:
        compile_rules([ProxyRule("broken", "(", "{x}")])
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("https://a.com/x%20y.jpg", "https://a.com/x%20y.jpg"),
        ("https%3A%2F%2Fa.com%2Fx.jpg", "https://a.com/x.jpg"),
        ("HTTPS%3a%2f%2fa.com%2fx.jpg", "HTTPS://a.com/x.jpg"),
        ("https%253A%252F%252Fa.com%252Fx.jpg", "https://a.com/x.jpg"),
        ("a.com%2Fx.jpg", "a.com/x.jpg"),
        ("a.com/x%2Fy.jpg", "a.com/x%2Fy.jpg"),
        ("https://a.com/a+b.jpg", "https://a.com/a+b.jpg"),
    ],
)
def test_decode_target_rule(value: str, decoded: str) -> None:
    assert decode_target(value) == decoded


def test_camo_b64_accepts_standard_and_padded_base64() -> None:
    origin = "https://example.com/a/b.png?x=1"
    encoded = base64.b64encode(origin.encode()).decode()
    url = f"https://www.inoreader.com/camo/sig,b64/{encoded}"
    assert resolve(url, BUILTIN_RULES).origin_url == origin


def test_builtin_rule_names_are_stable() -> None:
    assert [rule.name for rule in BUILTIN_RULES] == [
        "cors-workers",
        "weserv",
        "wp-photon",
        "github-camo",
        "camo-b64",
        "baidu-down",
        "query-url",
        "gadgets-proxy",
        "next-image",
        "substack",
        "cloudinary-fetch",
        "cdn-cgi-image",
        "nuxt-ipx",
        "imgproxy-plain",
        "imgproxy-base64",
        "jsdelivr-github",
        "statically-github",
        "statically-img",
        "githack",
        "rifx-proxy",
        "path-embedded",
        "path-embedded-deep",
    ]


def _unchanged(url: str) -> Resolution:
    return Resolution(source_url=url, origin_url=url, candidates=(url,), rules=())


PREFIXES = [
    "",
    "https://cors.zfour.workers.dev/?",
    "https://wsrv.nl/?url=",
    "https://images.weserv.nl/?w=3&url=",
    "https://i0.wp.com/",
    "https://camo.githubusercontent.com/70edab54bba80edb7493cad3135e9606781cbb6b/",
    "https://www.inoreader.com/camo/x,b64/",
    "https://image.baidu.com/search/down?url=",
    "https://proxy.rifx.online/",
    "https://p.example/",
    "https://substackcdn.com/image/fetch/w_1456,c_limit/",
    "https://res.cloudinary.com/demo/image/fetch/",
    "https://s.example/_next/image?w=3&url=",
    "https://s.example/cdn-cgi/image/w=80/",
    "https://i.example/sig/rs:fit:3/plain/",
    "https://i.example/sig/aHR0c",
    "https://cdn.jsdelivr.net/gh/u/r@main/",
    "https://s.example/a/b/",
    "//",
    "&#038;",
    "%2F",
    "http://",
    "https://",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PREFIXES), max_size=4), st.text(max_size=30))
def test_resolve_never_fails_and_keeps_its_invariants(prefixes: list[str], tail: str) -> None:
    source = "".join(prefixes) + tail
    resolution = resolve(source, BUILTIN_RULES)
    assert resolution.source_url == source
    assert resolution.candidates[0] == resolution.origin_url
    assert resolution.candidates[-1] == source
    assert len(set(resolution.candidates)) == len(resolution.candidates)
    assert len(resolution.rules) <= MAX_DEPTH
    assert (resolution.origin_url == source) == (resolution.rules == ())


# CDN and image-service forms: path-embedded origins behind transforms, query-embedded ones,
# site resizers that take a path on the site, GitHub file CDNs. Where a line comes from a
# public post it names the public-code index id it was found under.
CDN_PROXIED = [
    pytest.param(
        # index id 53923456991 (Markdown mirror of a Substack post)
        "https://substackcdn.com/image/fetch/$s_!VV2-!,w_1456,c_limit,f_auto,q_auto:good,"
        "fl_progressive:steep/https%3A%2F%2Fsubstack-post-media.s3.amazonaws.com%2Fpublic%2F"
        "images%2F56432d4c-bdd0-4eed-afaf-2b4900ef83d6_2450x1374.png",
        "https://substack-post-media.s3.amazonaws.com/public/images/"
        "56432d4c-bdd0-4eed-afaf-2b4900ef83d6_2450x1374.png",
        ("substack",),
        id="substack-signed-transforms",
    ),
    pytest.param(
        # index id 43744775906: the transforms themselves percent-encoded
        "https://substackcdn.com/image/fetch/%24s_%21rycF%21%2Cf_auto%2Cq_auto%3Agood%2C"
        "fl_progressive%3Asteep/https%3A%2F%2Fsubstack-post-media.s3.amazonaws.com%2Fpublic%2F"
        "images%2Fd2785489-6c63-40cf-bb4a-1b8656a81d01_1600x1104.png",
        "https://substack-post-media.s3.amazonaws.com/public/images/"
        "d2785489-6c63-40cf-bb4a-1b8656a81d01_1600x1104.png",
        ("substack",),
        id="substack-encoded-transforms",
    ),
    pytest.param(
        # index id 55108939241: a raw (not encoded) origin
        "https://substackcdn.com/image/fetch/w_1456,c_limit,f_auto,q_auto:good,"
        "fl_progressive:steep/https://bucketeer-e05bbc84-baa3-437e-9518-adb32be77984.s3."
        "amazonaws.com/public/images/9c323e94-3eef-4568-90bb-3f72847376be_1456x1048.png",
        "https://bucketeer-e05bbc84-baa3-437e-9518-adb32be77984.s3.amazonaws.com/public/images/"
        "9c323e94-3eef-4568-90bb-3f72847376be_1456x1048.png",
        ("substack",),
        id="substack-raw-origin",
    ),
    pytest.param(
        # Cloudinary's documented fetch example
        "https://res.cloudinary.com/demo/image/fetch/w_300,h_300,c_fill,g_face/"
        "https://upload.wikimedia.org/wikipedia/commons/1/13/Benedict_Cumberbatch_2011.png",
        "https://upload.wikimedia.org/wikipedia/commons/1/13/Benedict_Cumberbatch_2011.png",
        ("cloudinary-fetch",),
        id="cloudinary-fetch-transforms",
    ),
    pytest.param(
        "https://res.cloudinary.com/demo/image/fetch/https%3A%2F%2Fa.example%2Fx.jpg%3Fv%3D2",
        "https://a.example/x.jpg?v=2",
        ("cloudinary-fetch",),
        id="cloudinary-fetch-encoded",
    ),
    pytest.param(
        "https://imgproxy.example.com/insecure/rs:fill:300:400/plain/https://a.example/x.jpg@webp",
        "https://a.example/x.jpg",
        ("imgproxy-plain",),
        id="imgproxy-plain-format-suffix",
    ),
    pytest.param(
        # imgproxy's documented examples: plain (encoded) and split base64url
        "https://imgproxy.example.com/AfrOrF3gWeDA6VOlDG4TzxMv39O7MXnF4CXpKUwGqRM/"
        "rs:fill:300:400:0/g:sm/plain/http%3A%2F%2Fexample.com%2Fimages%2Fcuriosity.jpg@png",
        "http://example.com/images/curiosity.jpg",
        ("imgproxy-plain",),
        id="imgproxy-plain-encoded",
    ),
    pytest.param(
        "https://imgproxy.example.com/AfrOrF3gWeDA6VOlDG4TzxMv39O7MXnF4CXpKUwGqRM/"
        "rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
        "http://example.com/images/curiosity.jpg",
        ("imgproxy-base64",),
        id="imgproxy-base64-split",
    ),
    pytest.param(
        "https://my-proxy.imgix.net/https%3A%2F%2Fexample.com%2Fimage.jpg?w=300&s=1a2b",
        "https://example.com/image.jpg",
        ("path-embedded",),
        id="imgix-web-proxy-own-query-dropped",
    ),
    pytest.param(
        "https://thumbor.example/unsafe/300x200/smart/https://a.example/x.jpg?v=1",
        "https://a.example/x.jpg?v=1",
        ("path-embedded-deep",),
        id="thumbor-after-options",
    ),
    pytest.param(
        "https://site.example/_next/image?url=%2Fimages%2Fhero.png&w=1080&q=75",
        "https://site.example/images/hero.png",
        ("next-image",),
        id="next-image-site-path",
    ),
    pytest.param(
        "https://site.example/blog/_next/image?url=https%3A%2F%2Fcdn.example%2Fa.png%3Fv%3D2&w=64&q=75",
        "https://cdn.example/a.png?v=2",
        ("next-image",),
        id="next-image-remote",
    ),
    pytest.param(
        "https://site.example/_vercel/image?url=%2Fa.png&w=640&q=100",
        "https://site.example/a.png",
        ("next-image",),
        id="vercel-image",
    ),
    pytest.param(
        # Cloudflare's documented form
        "https://example.com/cdn-cgi/image/width=80,quality=75/uploads/avatar1.jpg",
        "https://example.com/uploads/avatar1.jpg",
        ("cdn-cgi-image",),
        id="cdn-cgi-image-site-path",
    ),
    pytest.param(
        "http://example.com/cdn-cgi/image/fit=cover,f=auto/https://other.example/a.jpg",
        "https://other.example/a.jpg",
        ("cdn-cgi-image",),
        id="cdn-cgi-image-remote",
    ),
    pytest.param(
        "https://site.example/_ipx/w_300&f_webp/images/a.png",
        "https://site.example/images/a.png",
        ("nuxt-ipx",),
        id="nuxt-ipx",
    ),
    pytest.param(
        "https://images1-focus-opensocial.googleusercontent.com/gadgets/proxy?url="
        "http://a.example/x.jpg&container=focus&resize_w=300&refresh=2592000",
        "http://a.example/x.jpg",
        ("gadgets-proxy",),
        id="gadgets-proxy-raw-params-after",
    ),
    pytest.param(
        "https://lh3.googleusercontent.com/gadgets/proxy?container=focus&url=https%3A%2F%2F"
        "a.example%2Fx.jpg%3Fa%3D1%26b%3D2",
        "https://a.example/x.jpg?a=1&b=2",
        ("gadgets-proxy",),
        id="gadgets-proxy-any-host-encoded",
    ),
    pytest.param(
        "https://images.weserv.nl/?url=https://a.example/x.jpg?v=3&w=300&h=200&fit=cover"
        "&output=webp&q=80&il&n=-1",
        "https://a.example/x.jpg?v=3",
        ("weserv",),
        id="weserv-many-params",
    ),
    pytest.param(
        # hexo/yukiyalien-fix-toc.md (corpus): `&amp;amp;` in an attribute, decoded once; weserv
        # splits at `&` and reads a parameter named `amp;v`.
        "https://images.weserv.nl/?w=100&url=ssl:avatars2.githubusercontent.com/u/36108601"
        "?s=400&amp;v=4",
        "https://avatars2.githubusercontent.com/u/36108601?s=400",
        ("weserv",),
        id="weserv-twice-escaped-ampersand-ends-the-target",
    ),
    pytest.param(
        "https://images.weserv.nl/?url=a.example/x.jpg&amp;w=300&#038;h=20",
        "http://a.example/x.jpg",
        ("weserv",),
        id="weserv-html-escaped-ampersands",
    ),
    pytest.param(
        # index id 38013342427: an HTML escaper's `&#038;` left in the query
        "https://i0.wp.com/paulcutler.org/blog/wp-content/uploads/2017/10/pythontesting.jpg"
        "?resize=190%2C228&#038;ssl=1",
        "https://paulcutler.org/blog/wp-content/uploads/2017/10/pythontesting.jpg",
        ("wp-photon",),
        id="photon-mangled-ssl",
    ),
    pytest.param(
        # index id 6486837279: Jetpack lazy loading, the `&` of `&#038;` lost
        "https://i1.wp.com/bdtechtalks.com/wp-content/uploads/2019/08/Artificial-Neuron.png"
        "?resize=696%2C331&is-pending-load=1#038;ssl=1",
        "https://bdtechtalks.com/wp-content/uploads/2019/08/Artificial-Neuron.png",
        ("wp-photon",),
        id="photon-pending-load-lost-ampersand",
    ),
    pytest.param(
        # index id 33805149595
        "https://i0.wp.com/vegecravings.com/wp-content/uploads/2017/03/samosa-recipe-step-by-"
        "step-instructions.jpg?fit=1801%2C1717&quality=65&strip=all&ssl=1&is-pending-load=1",
        "https://vegecravings.com/wp-content/uploads/2017/03/samosa-recipe-step-by-step-"
        "instructions.jpg",
        ("wp-photon",),
        id="photon-pending-load",
    ),
    pytest.param(
        "https://i2.wp.com/example.com/a.jpg?w=300&amp;ssl=1&amp;v=2#top",
        "https://example.com/a.jpg?v=2#top",
        ("wp-photon",),
        id="photon-amp-keeps-origin-query",
    ),
    pytest.param(
        "https://cdn.jsdelivr.net/gh/someone/blog-images@main/2021/05/a.png",
        "https://raw.githubusercontent.com/someone/blog-images/main/2021/05/a.png",
        ("jsdelivr-github",),
        id="jsdelivr-gh-ref",
    ),
    pytest.param(
        "https://fastly.jsdelivr.net/gh/someone/blog-images/img/a.png",
        "https://raw.githubusercontent.com/someone/blog-images/HEAD/img/a.png",
        ("jsdelivr-github",),
        id="jsdelivr-gh-mirror-no-ref",
    ),
    pytest.param(
        "https://cdn.statically.io/gh/someone/repo/main/img/a.png",
        "https://raw.githubusercontent.com/someone/repo/main/img/a.png",
        ("statically-github",),
        id="statically-gh",
    ),
    pytest.param(
        "https://cdn.statically.io/img/example.com/f=auto,w=300/img/a.png",
        "https://example.com/img/a.png",
        ("statically-img",),
        id="statically-img",
    ),
    pytest.param(
        "https://rawcdn.githack.com/someone/repo/0123abc/img/a.png",
        "https://raw.githubusercontent.com/someone/repo/0123abc/img/a.png",
        ("githack",),
        id="githack",
    ),
]


@pytest.mark.parametrize(("source", "origin", "rules"), CDN_PROXIED)
def test_cdn_and_image_service_forms_unwrap(
    source: str, origin: str, rules: tuple[str, ...]
) -> None:
    resolution = resolve(source, BUILTIN_RULES)
    assert (resolution.origin_url, resolution.rules) == (origin, rules)
    assert resolution.candidates == (origin, source)  # the proxied URL stays a candidate


@pytest.mark.parametrize(
    "url",
    [
        "https://res.cloudinary.com/demo/image/upload/w_300/sample.jpg",
        "https://site.example/_next/static/media/a.png",
        "https://site.example/_next/image?w=64&q=75",
        "https://cdn.jsdelivr.net/npm/package@1.0.0/dist/a.png",
        "https://imgproxy.example.com/sig/rs:fit:3/aHR0cCBpcyBhIHByb3RvY29s.png",  # "http is a..."
        "https://imgproxy.example.com/sig/plain/local/path.png",
        "https://example.com/blog/2020/the-http-and-https-protocols/",
        "https://github.blog/wp-content/uploads/2008/12/forkme.png?resize=149%2C149&is-pending-load=1",
        "https://web.archive.org/web/20200101000000im_/http://a.example/x.jpg",
        "https://archive.ph/o/AbCd/https://a.example/x.jpg",
    ],
)
def test_urls_like_cdn_forms_that_are_not_proxies_stay_put(url: str) -> None:
    assert resolve(url, BUILTIN_RULES) == _unchanged(url)


def test_a_jsdelivr_github_url_inside_weserv_unwraps_twice() -> None:
    source = "https://wsrv.nl/?url=https://cdn.jsdelivr.net/gh/u/r@v1.2/a.png&w=300"
    resolution = resolve(source, BUILTIN_RULES)
    assert resolution.rules == ("weserv", "jsdelivr-github")
    assert resolution.candidates == (
        "https://raw.githubusercontent.com/u/r/v1.2/a.png",
        "https://cdn.jsdelivr.net/gh/u/r@v1.2/a.png",
        source,
    )


# -- protocol-relative references --------------------------------------------------------------


def _references(text: str) -> list[Reference]:
    return list(scan_text(text, Path("post.md"), DiscoverSettings()).references)


def test_a_protocol_relative_url_gets_https_then_http() -> None:
    (ref,) = _references("![a](//img.example/a.jpg)\n")
    assert ref.source_url == "https://img.example/a.jpg"
    resolution = resolve_reference(ref, BUILTIN_RULES)
    assert resolution.origin_url == "https://img.example/a.jpg"
    assert resolution.candidates == ("https://img.example/a.jpg", "http://img.example/a.jpg")


def test_a_protocol_relative_proxy_keeps_the_origin_first_and_both_proxy_forms() -> None:
    (ref,) = _references('<img src="//i0.wp.com/old.example/a.jpg?w=300">\n')
    resolution = resolve_reference(ref, BUILTIN_RULES)
    assert resolution.candidates == (
        "http://old.example/a.jpg",
        "https://i0.wp.com/old.example/a.jpg?w=300",
        "http://i0.wp.com/old.example/a.jpg?w=300",
    )


@pytest.mark.parametrize(
    "text", ["![a](https://img.example/a.jpg)\n", "![a](HTTPS://img.example/a.jpg)\n"]
)
def test_a_url_written_with_https_gets_no_http_candidate(text: str) -> None:
    (ref,) = _references(text)
    assert resolve_reference(ref, BUILTIN_RULES) == resolve(ref.source_url, BUILTIN_RULES)


def test_fetch_falls_back_to_http_for_a_protocol_relative_image(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    """Through the real fetch command: the https: form fails, the http: form is downloaded.
    (The origin routes by host and path, so "fails first" stands for "no TLS there".)"""
    proxy_env.add("http://old.example.test/a.jpg", jpeg_bytes, fail_first=1, fail_status=404)
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "a.md").write_text("---\nthumbnail: //old.example.test/a.jpg\n---\nbody\n")
    result = CliRunner().invoke(
        main, ["fetch", str(posts), "--cache", str(tmp_path / "cache"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["failed"] == []
    assert [r.url for r in proxy_env.requests if r.method == "GET"] == [
        "https://old.example.test/a.jpg",
        "http://old.example.test/a.jpg",
    ]
