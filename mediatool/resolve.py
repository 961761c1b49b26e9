"""source_url -> origin_url (+ fallbacks): unwrap image-proxy URLs with a table of rules.

A `Rule` is a name, a regex that must match the whole URL, and an `unwrap` function that turns
the match into the URL the proxy wraps, or None when the rule does not apply after all. User
rules (config `[[proxy_rules]]`) and built-in rules share that shape; user rules are tried first.

`resolve` applies the first rule whose `unwrap` yields a new absolute http(s) URL (scheme http or
https, a host with no `%` or white space), then starts again on that URL, until no rule applies
or MAX_DEPTH layers are gone. Only http(s) URLs are unwrapped.

Percent-decoding of a target (every rule, user rules included): a target is decoded only when it
does not start with `http://` or `https://` (any case) and the part before its first `/` holds
`%3A` or `%2F` (any case; or `%253A`, `%252F`), e.g. `https%3A%2F%2Fa.com%2Fx.jpg` or
`a.com%2Fx.jpg`. It is decoded again while that still holds (at most 3 times, for double
encoding). A target that is already `https://a.com/x%20y.jpg` is kept byte for byte: its escapes
belong to the origin. `+` is never read as a space.

Built-in rules, in the order tried:

    cors-workers   https://<x>.workers.dev/?<URL>           the whole query is the URL
    weserv         https://images.weserv.nl/?url=<URL>      also wsrv.nl; scheme may be left out
                                                            (`http://` implied, `ssl:` = https)
    wp-photon      https://i0.wp.com/<host>/<path>?w=...    https if ssl=1; Photon params dropped
    github-camo    https://camo.githubusercontent.com/<hmac>/<hex URL>
    camo-b64       https://<host>/camo/<sig>,...,b64/<base64url URL>   (Inoreader)
    baidu-down     https://image.baidu.com/search/down?url=<URL>
    query-url      a `?url=`/`?u=` parameter of a known proxy host only (QUERY_PROXIES)
    gadgets-proxy  https://<any host>/gadgets/proxy?url=<URL>&container=...
    next-image     https://<site>/_next/image?url=<URL or /path>&w=..&q=..   (also /_vercel/image)
    substack       https://substackcdn.com/image/fetch/<transforms>/<URL>
    cloudinary-fetch  https://<host>/<cloud>/image/fetch/<transforms>/<URL>
    cdn-cgi-image  https://<site>/cdn-cgi/image/<options>/<URL or path on the site>
    nuxt-ipx       https://<site>/_ipx/<options>/<URL or path on the site>
    imgproxy-plain https://<host>/<signature>/<options>/plain/<URL>[@<format>]
    imgproxy-base64  https://<host>/<signature>/<options>/<base64url URL, may be split by />[.ext]
    jsdelivr-github  https://cdn.jsdelivr.net/gh/<user>/<repo>[@<ref>]/<path>  (and its mirrors)
                   -> https://raw.githubusercontent.com/<user>/<repo>/<ref or HEAD>/<path>
    statically-github, githack   the same GitHub files on cdn.statically.io and (raw|rawcdn).githack
    statically-img https://cdn.statically.io/img/<host>/[<options>/]<path> -> https://<host>/<path>
    rifx-proxy     https://proxy.rifx.online/<URL>
    path-embedded  https://<any host>/<URL>                 the path starts with /http(s):
    path-embedded-deep  https://<any host>/<segments>/<URL>   an URL after some path segments
                                                            (thumbor; not web.archive.org)

A percent-encoded URL embedded in a path ends at the first raw `?` or `#` (what follows is the
proxy's own query). An HTML escaper's `&amp;`/`&#038;` (or `#038;` whose `&` was lost) in a
Photon query reads as `&`; in a query proxy's raw target it ends the target (the proxy splits
at the `&` and sees a parameter named `amp;...`). Every unwrapped layer stays a candidate, after the
origin. `resolve_reference` adds the http: form of a protocol-relative reference (`//host/x`,
given https: by discover) right after the https: form.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from urllib.parse import unquote, urlsplit

from mediatool.config import ProxyRule
from mediatool.errors import UsageError
from mediatool.models import Reference, Resolution

MAX_DEPTH = 8
MAX_DECODES = 3

Unwrap = Callable[[re.Match[str]], str | None]

_HTTP_PREFIX = re.compile(r"https?://", re.IGNORECASE)
_ENCODED_HEAD = re.compile(r"%(?:25)*(?:3A|2F)", re.IGNORECASE)
_COLLAPSED_SCHEME = re.compile(r"(https?):/+", re.IGNORECASE)
_FLAGS = re.IGNORECASE | re.DOTALL


@dataclass(frozen=True, slots=True)
class Rule:
    """One way to unwrap a proxy URL: `pattern` must match the whole URL."""

    name: str
    pattern: re.Pattern[str]
    unwrap: Unwrap


@dataclass(frozen=True, slots=True)
class QueryProxy:
    """A proxy that carries its target in one query parameter.

    `path` is a regex over the URL path ("" when the URL has none). A raw (not encoded) target
    may hold `&` of its own: the `&key=value` pieces after it belong to the target until a key in
    `own_params` (the proxy's own parameters) comes. `implied_scheme`: a target without a scheme
    gets `http://` (`ssl:` prefix: `https://`), as weserv documents."""

    host: str
    path: str
    param: str
    own_params: frozenset[str] = field(default_factory=frozenset)
    implied_scheme: bool = False


# --- target helpers -------------------------------------------------------------------------


_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f]")


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a plausible host."""
    if not _HTTP_PREFIX.match(url) or _CONTROL_CHAR.search(url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    netloc = parts.netloc
    return bool(host) and "%" not in netloc and not any(c.isspace() for c in netloc)


MAX_URL_LENGTH = 65_536  # httpx refuses longer URLs (servers usually refuse far shorter ones)
SHOWN_URL_LENGTH = 200  # a longer URL is cut in messages


def url_problem(url: str) -> str | None:
    """Why the http(s) `url` cannot be requested as written ("it has no host", ...), or None
    when it can be tried. Never raises: malformed URLs are data, not errors."""
    if len(url) > MAX_URL_LENGTH:
        return f"it is {len(url)} characters long, more than {MAX_URL_LENGTH}"
    if control := _CONTROL_CHAR.search(url):
        return f"it holds the control character {control[0]!r}"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number 0-65535)
    except ValueError as exc:
        return f"it cannot be parsed ({exc})"
    if not host:
        return "it has no host"
    if any(c.isspace() for c in host):
        return f"its host {host!r} holds white space"
    return None


def host_label(url: str) -> str:
    """The host of `url` for tables and summaries; "?" when it has none or is malformed."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def shown_url(url: str) -> str:
    """`url` fit for a one-line message: control characters escaped, cut when very long."""
    shown = _CONTROL_CHAR.sub(lambda m: f"\\x{ord(m[0]):02x}", url)
    if len(shown) <= SHOWN_URL_LENGTH:
        return shown
    return f"{shown[: SHOWN_URL_LENGTH - 40]}... ({len(url)} characters)"


def _looks_encoded(value: str) -> bool:
    if _HTTP_PREFIX.match(value):
        return False
    return bool(_ENCODED_HEAD.search(value.split("/", 1)[0]))


def decode_target(value: str) -> str:
    """Percent-decode `value` when it looks encoded (see the module docstring), else keep it."""
    for _ in range(MAX_DECODES):
        if not _looks_encoded(value):
            break
        value = unquote(value)
    return value


def _imply_scheme(value: str) -> str:
    if _HTTP_PREFIX.match(value):
        return value
    if value.lower().startswith("ssl:"):
        return "https://" + value[4:].lstrip("/")
    return "http:" + value if value.startswith("//") else "http://" + value


# --- unwrap functions -----------------------------------------------------------------------


def _unwrap_target(match: re.Match[str]) -> str | None:
    """The `target` group, decoded, with `https:/x` collapsed back to `https://x`."""
    target = decode_target(match["target"])
    return _COLLAPSED_SCHEME.sub(lambda m: m[1] + "://", target, count=1)


def _query_value(query: str, proxy: QueryProxy) -> str | None:
    pieces = query.split("&")
    for index, piece in enumerate(pieces):
        key, sep, value = piece.partition("=")
        if key == proxy.param and sep:
            if _looks_encoded(value):
                return value
            rest = _until_own_param(pieces[index + 1 :], proxy.own_params)
            return "&".join([value, *rest])
    return None


def _until_own_param(pieces: Sequence[str], own_params: frozenset[str]) -> list[str]:
    taken: list[str] = []
    for piece in pieces:
        if piece.partition("=")[0] in own_params or _MANGLED_PIECE.match(piece):
            break
        taken.append(piece)
    return taken


def _unwrap_query(proxies: Sequence[QueryProxy], match: re.Match[str]) -> str | None:
    host, path = match["host"].lower(), match["path"] or ""
    for proxy in proxies:
        if proxy.host == host and re.fullmatch(proxy.path, path, re.IGNORECASE):
            return _query_target(proxy, match["query"])
    return None


def _query_target(proxy: QueryProxy, query: str) -> str | None:
    """The target in `query`, decoded."""
    value = _query_value(query, proxy)
    if value is None:
        return None
    value = decode_target(value)
    return _imply_scheme(value) if proxy.implied_scheme else value


PHOTON_PARAMS = frozenset(
    {"w", "h", "crop", "resize", "fit", "lb", "ulb", "filter", "brightness", "contrast"}
    | {"colorize", "smooth", "zoom", "quality", "strip", "ssl", "is-pending-load"}
)
_MANGLED_AMPERSAND = r"&(?:amp|#0*38|#[xX]0*26);|#0*38;"
# `&amp;v=4` in a query that was HTML-escaped twice: the proxy splits at the `&` and reads a
# parameter named `amp;v`; so such a piece ends a raw target.
_MANGLED_PIECE = re.compile(r"(?:amp|#0*38|#[xX]0*26);")


def unmangle_ampersands(query: str) -> str:
    """`&amp;`, `&#038;`, `&#x26;` (and a bare `#038;` whose `&` was lost) back to `&`: what an
    HTML escaper leaves in a query when the URL is then copied as text (Markdown, feeds)."""
    return re.sub(_MANGLED_AMPERSAND, "&", query)


def _unwrap_photon(match: re.Match[str]) -> str | None:
    pieces = [p for p in unmangle_ampersands(match["query"] or "").split("&") if p]
    scheme = "https" if "ssl=1" in pieces else "http"
    kept = [p for p in pieces if p.partition("=")[0] not in PHOTON_PARAMS]
    query = "?" + "&".join(kept) if kept else ""
    return f"{scheme}://{match['hostpath']}{query}{match['fragment'] or ''}"


def _unwrap_camo_hex(match: re.Match[str]) -> str | None:
    try:
        return bytes.fromhex(match["hex"]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _unwrap_b64(match: re.Match[str]) -> str | None:
    text = match["b64"].rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


# --- the built-in table ---------------------------------------------------------------------

WESERV_PARAMS = frozenset(
    {"w", "h", "dpr", "fit", "cx", "cy", "cw", "ch", "precrop", "a", "fpw", "fph", "mask"}
    | {"mtrim", "mbg", "flip", "flop", "ro", "rbg", "bg", "blur", "sharp", "sharpf", "sharpj"}
    | {"con", "gam", "mod", "sat", "hue", "filt", "tint", "trim", "q", "l", "af", "il", "n"}
    | {"page", "output", "maxage", "encoding", "default", "errorredirect", "filename", "t"}
    | {"crop"}
)

WESERV_PROXIES = tuple(
    QueryProxy(host, "/?", "url", WESERV_PARAMS, implied_scheme=True)
    for host in ("images.weserv.nl", "wsrv.nl")
)
BAIDU_PROXIES = (QueryProxy("image.baidu.com", "/search/down", "url"),)
QUERY_PROXIES = (
    QueryProxy("camo.githubusercontent.com", "/[0-9a-f]{40}|/[0-9a-f]{64}", "url"),
    QueryProxy("fly.webp.se", "/?", "url"),
    QueryProxy("external-content.duckduckgo.com", "/iu/?", "u", frozenset({"f"})),
    QueryProxy("proxy.duckduckgo.com", "/iu/?", "u", frozenset({"f"})),
)


def _query_rule(name: str, proxies: Sequence[QueryProxy]) -> Rule:
    hosts = "|".join(re.escape(p.host) for p in dict.fromkeys(proxies))
    pattern = rf"https?://(?P<host>{hosts})(?P<path>/[^?#]*)?\?(?P<query>.*)"
    return Rule(name, re.compile(pattern, _FLAGS), partial(_unwrap_query, tuple(proxies)))


def _rule(name: str, pattern: str, unwrap: Unwrap) -> Rule:
    return Rule(name, re.compile(pattern, _FLAGS), unwrap)


_EMBEDDED = r"(?P<target>https?(?::|%3A)(?:/|%2F).*)"

# --- CDN and image-service forms ------------------------------------------------------------


def unwrap_path_target(match: re.Match[str]) -> str | None:
    """An URL embedded in the path. A percent-encoded one ends at the first raw `?` or `#`:
    what follows is the proxy's own query (imgix web proxy, imgproxy, Substack)."""
    target = match["target"]
    if _looks_encoded(target):
        target = re.split("[?#]", target, maxsplit=1)[0]
    target = decode_target(target)
    return _COLLAPSED_SCHEME.sub(lambda m: m[1] + "://", target, count=1)


def _on_same_host(match: re.Match[str], target: str) -> str:
    """`target` made absolute against the proxy URL's scheme and host (a site's own resizer
    takes a path on the site: `/cdn-cgi/image/w=80/uploads/a.jpg`)."""
    target = _COLLAPSED_SCHEME.sub(lambda m: m[1] + "://", decode_target(target), count=1)
    if _HTTP_PREFIX.match(target):
        return target
    if target.startswith("//"):
        return f"{match['scheme']}:{target}"
    return f"{match['scheme']}://{match['host']}/{target.lstrip('/')}"


def _unwrap_site_path(match: re.Match[str]) -> str | None:
    return _on_same_host(match, match["target"])


NEXT_IMAGE = QueryProxy("", "", "url", frozenset({"w", "q"}))
GADGETS_PROXY = QueryProxy(
    "",
    "",
    "url",
    frozenset({"container", "gadget", "refresh", "rewriteMime", "resize_w", "resize_h"})
    | frozenset({"no_expand", "fallback_url"}),
)


def _unwrap_next_image(match: re.Match[str]) -> str | None:
    target = _query_target(NEXT_IMAGE, match["query"])
    return None if target is None else _on_same_host(match, target)


def _unwrap_gadgets(match: re.Match[str]) -> str | None:
    return _query_target(GADGETS_PROXY, match["query"])


_IMAGE_FORMAT_SUFFIX = r"(?:@(?:png|jpe?g|webp|avif|gif|ico|svg|heic|bmp|tiff|best))?"


def _unwrap_b64_path(match: re.Match[str]) -> str | None:
    """imgproxy's base64url source, which it lets you split with `/`."""
    text = match["b64"].replace("/", "")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


RAW_GITHUB = "https://raw.githubusercontent.com"


def _unwrap_github_cdn(match: re.Match[str]) -> str | None:
    """A GitHub file served by a CDN: the raw file; no ref means the default branch (HEAD)."""
    ref = match["ref"] or "HEAD"
    return f"{RAW_GITHUB}/{match['user']}/{match['repo']}/{ref}/{match['path']}"


def _unwrap_statically_img(match: re.Match[str]) -> str | None:
    return f"https://{match['host']}/{match['path']}"


_SITE = r"(?P<scheme>https?)://(?P<host>[^/?#]+)"
_GH_FILE = r"/(?P<user>[^/?#]+)/(?P<repo>[^/?#@]+)"
_PATH_REST = r"/(?P<path>[^?#]+)(?:[?#].*)?"
JSDELIVR_HOSTS = (
    r"(?:[a-z0-9-]+\.)?jsdelivr\.net|cdn\.jsdmirror\.com|jsd\.onmicrosoft\.cn"
    r"|jsd\.cdn\.zzko\.cn|jsdelivr\.b-cdn\.net"
)

# An archived copy is what the post links to on purpose: its origin is the archive itself.
ARCHIVE_HOSTS = r"(?:web\.)?archive\.org|archive\.(?:is|ph|today|li|vn|fo|md)"

CDN_RULES: tuple[Rule, ...] = (
    _rule(
        "gadgets-proxy",
        r"https?://[^/?#]+/gadgets/proxy/?\?(?P<query>[^#]*)(?:#.*)?",
        _unwrap_gadgets,
    ),
    _rule(
        "next-image",
        _SITE + r"(?:/[^?#]*)?/_(?:next|vercel)/image/?\?(?P<query>[^#]*)(?:#.*)?",
        _unwrap_next_image,
    ),
    _rule(
        "substack",
        r"https?://(?:substackcdn\.com|cdn\.substack\.com)/image/fetch/(?:[^/?#]*/)*?" + _EMBEDDED,
        unwrap_path_target,
    ),
    _rule(
        "cloudinary-fetch",
        r"https?://[^/?#]+/(?:[^/?#]+/)?image/fetch/(?:[^/?#]*/)*?" + _EMBEDDED,
        unwrap_path_target,
    ),
    _rule(
        "cdn-cgi-image", _SITE + r"/cdn-cgi/image/[^/?#]+/(?P<target>[^?#]+.*)", _unwrap_site_path
    ),
    _rule("nuxt-ipx", _SITE + r"/_ipx/[^/?#]+/(?P<target>[^?#]+.*)", _unwrap_site_path),
    _rule(
        "imgproxy-plain",
        r"https?://[^/?#]+/(?:[^/?#]+/)+?plain/(?P<target>[^?#]+?)"
        + _IMAGE_FORMAT_SUFFIX
        + r"(?:[?#].*)?",
        unwrap_path_target,
    ),
    _rule(
        "imgproxy-base64",
        r"https?://[^/?#]+/(?:[^/?#]+/)+?(?P<b64>aHR0c[A-Za-z0-9_\-/]*?)(?:\.[A-Za-z0-9]+)?"
        r"(?:[?#].*)?",
        _unwrap_b64_path,
    ),
    _rule(
        "jsdelivr-github",
        rf"https?://(?:{JSDELIVR_HOSTS})/gh" + _GH_FILE + r"(?:@(?P<ref>[^/?#]+))?" + _PATH_REST,
        _unwrap_github_cdn,
    ),
    _rule(
        "statically-github",
        r"https?://cdn\.statically\.io/gh" + _GH_FILE + r"(?:@|/)(?P<ref>[^/?#]+)" + _PATH_REST,
        _unwrap_github_cdn,
    ),
    _rule(
        "statically-img",
        r"https?://cdn\.statically\.io/img/(?P<host>[^/?#]+)/(?:[a-z]+=[^/?#]*/)?"
        r"(?P<path>[^?#]+)(?:[?#].*)?",
        _unwrap_statically_img,
    ),
    _rule(
        "githack",
        r"https?://(?:raw|rawcdn)\.githack\.com" + _GH_FILE + r"/(?P<ref>[^/?#]+)" + _PATH_REST,
        _unwrap_github_cdn,
    ),
)


BUILTIN_RULES: tuple[Rule, ...] = (
    _rule("cors-workers", r"https?://[^/?#]+\.workers\.dev/?\?(?P<target>.+)", _unwrap_target),
    _query_rule("weserv", WESERV_PROXIES),
    _rule(
        "wp-photon",
        r"https?://i[0-3]\.wp\.com/(?P<hostpath>[^/?#:@]+\.[^/?#:@]+/[^?#]*)"
        rf"(?:\?(?P<query>(?:{_MANGLED_AMPERSAND}|[^#])*))?(?P<fragment>#.*)?",
        _unwrap_photon,
    ),
    _rule(
        "github-camo",
        r"https?://camo\.githubusercontent\.com/(?:[0-9a-f]{40}|[0-9a-f]{64})"
        r"/(?P<hex>(?:[0-9a-f]{2})+)",
        _unwrap_camo_hex,
    ),
    _rule(
        "camo-b64",
        r"https?://[^/?#]+/camo/[^/?#]*,b64/(?P<b64>[A-Za-z0-9_\-+/]+=*)(?:[?#].*)?",
        _unwrap_b64,
    ),
    _query_rule("baidu-down", BAIDU_PROXIES),
    _query_rule("query-url", QUERY_PROXIES),
    *CDN_RULES,
    _rule("rifx-proxy", r"https?://proxy\.rifx\.online/+" + _EMBEDDED, _unwrap_target),
    _rule("path-embedded", r"https?://[^/?#]+/+" + _EMBEDDED, unwrap_path_target),
    _rule(
        "path-embedded-deep",
        rf"https?://(?!{ARCHIVE_HOSTS}/)[^/?#]+/(?:[^/?#]*/)+?" + _EMBEDDED,
        unwrap_path_target,
    ),
)


# --- user rules -----------------------------------------------------------------------------


def compile_rules(user_rules: Sequence[ProxyRule]) -> tuple[Rule, ...]:
    """The user's rules, in their order, then the built-in ones."""
    return tuple(_compile_user_rule(rule) for rule in user_rules) + BUILTIN_RULES


def _compile_user_rule(rule: ProxyRule) -> Rule:
    try:
        pattern = re.compile(rule.pattern)
    except re.error as exc:
        raise UsageError(
            f'proxy rule "{rule.name}": pattern {rule.pattern!r} is not a valid regex ({exc}); '
            "fix it in [[proxy_rules]]."
        ) from exc
    _check_template(rule, pattern)
    return Rule(rule.name, pattern, partial(_fill_template, rule.template))


def _check_template(rule: ProxyRule, pattern: re.Pattern[str]) -> None:
    groups = ", ".join(pattern.groupindex) or "none"
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(rule.template) if f is not None]
        for name in fields:
            if name not in pattern.groupindex:
                raise UsageError(
                    f'proxy rule "{rule.name}": template {rule.template!r} refers to {{{name}}}, '
                    f"which is not a named group of the pattern (named groups: {groups}); "
                    "use (?P<name>...) in the pattern."
                )
        rule.template.format(**dict.fromkeys(pattern.groupindex, ""))
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise UsageError(
            f'proxy rule "{rule.name}": template {rule.template!r} is not a valid '
            f"str.format template ({exc}); write the target as {{group}}."
        ) from exc


def _fill_template(template: str, match: re.Match[str]) -> str | None:
    return decode_target(template.format(**match.groupdict(default="")))


# --- resolving ------------------------------------------------------------------------------


def resolve(source_url: str, rules: Sequence[Rule]) -> Resolution:
    """Unwrap every proxy layer of `source_url`; the candidates list the origin first."""
    layers = [source_url]
    names: list[str] = []
    if is_http_url(source_url):
        while len(names) < MAX_DEPTH:
            step = _unwrap_once(layers[-1], rules, seen=layers)
            if step is None:
                break
            names.append(step[0])
            layers.append(step[1])
    return Resolution(
        source_url=source_url,
        origin_url=layers[-1],
        candidates=_unique(reversed(layers)),
        rules=tuple(names),
    )


def _unwrap_once(url: str, rules: Sequence[Rule], seen: Sequence[str]) -> tuple[str, str] | None:
    """(rule name, target) of the first rule that unwraps `url` to a new http(s) URL."""
    for rule in rules:
        match = rule.pattern.fullmatch(url)
        if match is None:
            continue
        target = rule.unwrap(match)
        if target is not None and target not in seen and is_http_url(target):
            return rule.name, target
    return None


def _unique(urls: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(urls))


def resolve_reference(ref: Reference, rules: Sequence[Rule]) -> Resolution:
    """`resolve` for a reference. A protocol-relative one (`//host/x.jpg`, which discover gave
    https:) also gets its http: form as a candidate, right after the https: one: old hosts
    often have no TLS."""
    resolution = resolve(ref.source_url, rules)
    if not scheme_was_implied(ref):
        return resolution
    http = "http:" + ref.source_url[len("https:") :]
    return replace(resolution, candidates=_unique([*resolution.candidates, http]))


def scheme_was_implied(ref: Reference) -> bool:
    """True when the post wrote no scheme and discover gave the URL https:."""
    return ref.source_url[:8].lower() == "https://" and ref.raw.lstrip()[:6].lower() != "https:"


# -- the Internet Archive as a last candidate (fetch --wayback) ------------------------------

WAYBACK_PREFIX = "https://web.archive.org/web/"


def wayback_url(origin_url: str, post_date: str | None, today: datetime | None = None) -> str:
    """The Wayback Machine's raw copy (`id_`) of `origin_url` nearest the post's date.

    The archive redirects a timestamp to its nearest capture, so a day is precise enough;
    a post without a readable date asks for the newest capture (today)."""
    return f"{WAYBACK_PREFIX}{wayback_timestamp(post_date, today)}id_/{origin_url}"


def wayback_timestamp(post_date: str | None, today: datetime | None = None) -> str:
    """YYYYMMDDhhmmss for the date forms archives use: RFC 2822 (`Sun, 12 Sep 2021 18:08:39
    GMT`), ISO 8601 (`2024-11-08T00:25:31Z`, `2021-08-07 02:22:05`, `2008-11-12`)."""
    moment = _parse_date(post_date or "") or today or datetime.now(UTC)
    return moment.strftime("%Y%m%d%H%M%S")


def _parse_date(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
