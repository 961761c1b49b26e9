"""resolve: proxy URLs from the real corpus unwrap to pinned origins; other URLs stay put."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediatool.config import ProxyRule
from mediatool.errors import UsageError
from mediatool.models import Resolution
from mediatool.resolve import BUILTIN_RULES, MAX_DEPTH, compile_rules, decode_target, resolve

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
        "rifx-proxy",
        "path-embedded",
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
