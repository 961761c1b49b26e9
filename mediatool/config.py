"""Defaults and settings: DEFAULT_* constants, the config file and the flags merged into one
frozen Settings value.

The config file is TOML, `mediatool.toml` in the archive root or given with --config:

    [discover]
    frontmatter_keys = ["thumbnail", "header.image", "gallery[].image_path", "images[]"]

    [fetch]
    concurrency = 16
    per_host = 4
    user_agent = "..."
    [fetch.headers."img.example.com"]
    Referer = "https://example.com/"
    [fetch.hosts."example.com"]           # this host and its subdomains
    per_host = 2
    requests_per_second = 0.5
    delay = 1.0
    headers = { Referer = "https://example.com/" }

    [images]
    thumb_widths = [320, 640]
    phash_threshold = 8

    [[proxy_rules]]
    name = "my-cdn"
    pattern = '^https?://img\\.proxy\\.example/fetch\\?u=(?P<target>.+)$'
    template = "{target}"

Every key is checked when the file is loaded, by type and by range (`KEYS`; the ranges are those
the command-line flags accept); the first wrong or unknown key is a UsageError naming the file
and the key path, e.g. `mediatool.toml: fetch.concurrency must be an integer from 1 to 256,
got "abc"`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mediatool import __version__
from mediatool.errors import UsageError

CONFIG_FILENAME = "mediatool.toml"
POST_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".mdx")

DEFAULT_CACHE_DIR = Path("cache")
# Front matter keys that hold an image, by generator and theme: key paths (docs/frontmatter.md):
# `header.image` is the key `image` of the table `header`, `gallery[].image_path` the key
# `image_path` of each item of the list `gallery`; a plain name is a top-level key whose value
# is a string or a list of strings; keys compare without regard to case. The default is every
# key of this table.
FRONTMATTER_KEYS_BY_GENERATOR: dict[str, tuple[str, ...]] = {
    "hexo": (
        "headimg",
        "thumbnail",
        "cover",
        "banner",
        "photos",
        "top_img",
        "index_img",
        "banner_img",
    ),
    "jekyll": (
        "image",
        "image.path",
        "image.feature",
        "image.thumb",
        "image.teaser",
        "header.image",
        "header.teaser",
        "header.overlay_image",
        "header.og_image",
        "gallery[].image_path",
        "gallery[].url",
        "feature-img",
        "cover-img",
        "thumbnail-img",
        "share-img",
        "cover_image",
        "featured_image",
        "feature_image",
    ),
    "hugo": (
        "images[]",
        "featured_image",
        "featuredImage",
        "featuredImagePreview",
        "featureImage",
        "cover.image",
        "resources[].src",
        "thumbnail",
        "banner",
    ),
    "ghost, wordpress exports": ("feature_image", "og_image", "twitter_image", "coverImage"),
    "open graph": ("og.image", "og_image", "twitter.image"),
    # Any generator, any theme: a key path with `*` is a guess, and only a value that names an
    # image file by its extension counts (`bigimg[].src`, `gallery2[].image_path`, `ogimage`).
    "guessed": (
        "*image*",
        "*img*",
        "*cover*",
        "*thumb*",
        "*banner*",
        "*photo*",
        "*picture*",
        "*poster*",
        "*hero*",
        "*gallery*",
    ),
}
DEFAULT_FRONTMATTER_KEYS = tuple(
    dict.fromkeys(key for keys in FRONTMATTER_KEYS_BY_GENERATOR.values() for key in keys)
)

DEFAULT_CONCURRENCY = 16
DEFAULT_PER_HOST = 4
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_WAIT = 60.0
DEFAULT_MAX_REDIRECTS = 10
DEFAULT_MAX_BYTES = 50_000_000
# fetch.max_bytes per category of what is stored ([fetch.max_bytes] in the config file; a single
# number, or the --max-bytes flag, applies to every category).
DEFAULT_MAX_BYTES_BY_KIND: Mapping[str, int] = {
    "image": DEFAULT_MAX_BYTES,
    "video": 2_000_000_000,
    "audio": 500_000_000,
    "document": 200_000_000,
}
DEFAULT_HOST_DOWN_AFTER = 5
DEFAULT_MAX_TIME = 300.0  # seconds one download may take, headers to last byte
CDN_PER_HOST = 16  # requests at once to an image CDN of DEFAULT_HOST_BUDGETS
DEFAULT_USER_AGENT = f"mediatool/{__version__} (archive image localizer)"

DEFAULT_THUMB_WIDTHS = (320, 640)
DEFAULT_THUMB_FORMAT = "webp"
DEFAULT_THUMB_QUALITY = 80
DEFAULT_THUMB_METHOD = 0  # WebP encoder effort 0..6 (bench/bench_analysis_floor.py)
DEFAULT_MAX_PIXELS = 80_000_000
DEFAULT_BOILERPLATE_POSTS = 20  # an image in more posts is a banner or logo
DEFAULT_PHASH_THRESHOLD = 10  # bench/bench_phash_threshold.py: recall 1.0, precision 1.0
SVG_POLICIES = ("sanitize", "refuse", "keep")  # SVGs with scripts or external references
DEFAULT_SVG_POLICY = "sanitize"


@dataclass(frozen=True, slots=True)
class ProxyRule:
    """A user rule: `pattern` matches a whole URL, `template` builds the target from its groups."""

    name: str
    pattern: str
    template: str


@dataclass(frozen=True, slots=True)
class HostBudget:
    """[fetch.hosts."HOST"]: what one host (and its subdomains) is asked at most; None: the
    value of a less specific key, else the [fetch] default (fetch/hosts.py merges them)."""

    per_host: int | None = None  # requests at once
    requests_per_second: float | None = None  # a token bucket holding one second of tokens
    delay: float | None = None  # seconds between the starts of two requests (wget --wait)
    headers: Mapping[str, str] = field(default_factory=dict)  # extra request headers


# Image CDNs built to be hotlinked by millions of pages, which answer many requests at once from
# one client: they get CDN_PER_HOST instead of fetch.per_host. Kept short on purpose; a user's
# [fetch.hosts."..."] overrides each of them.
DEFAULT_HOST_BUDGETS: Mapping[str, HostBudget] = {
    "wp.com": HostBudget(per_host=CDN_PER_HOST),  # Jetpack Photon: i0, i1, i2.wp.com
    "images.unsplash.com": HostBudget(per_host=CDN_PER_HOST),  # imgix, meant for hotlinking
    "cdn.jsdelivr.net": HostBudget(per_host=CDN_PER_HOST),  # Cloudflare + Fastly, no quota
    "pbs.twimg.com": HostBudget(per_host=CDN_PER_HOST),  # Twitter/X media, on a CDN
}


@dataclass(frozen=True, slots=True)
class DiscoverSettings:
    frontmatter_keys: tuple[str, ...] = DEFAULT_FRONTMATTER_KEYS
    # Additions to discover's rule tables (mediatool/discover/table.py holds the defaults).
    attributes: tuple[Mapping[str, str], ...] = ()  # {tag, attribute, kind[, media]}
    shortcodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # Hugo
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # Hexo/Liquid {% name %}
    components: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # <Image ...>


@dataclass(frozen=True, slots=True)
class FetchSettings:
    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    max_wait: float = DEFAULT_MAX_WAIT
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    max_bytes: int | Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_MAX_BYTES_BY_KIND)
    )
    host_down_after: int = DEFAULT_HOST_DOWN_AFTER
    user_agent: str = DEFAULT_USER_AGENT
    allow_private: bool = False
    wayback: bool = False  # try the Internet Archive's copy after the origin and the proxies
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host -> headers
    max_time: float = DEFAULT_MAX_TIME
    cookies_file: str | None = None  # a Netscape cookies.txt (--cookies), sent per host
    hosts: Mapping[str, HostBudget] = field(default_factory=dict)  # [fetch.hosts."HOST"]

    def max_bytes_for(self, kind: str | None) -> int:
        """The largest body of this category ("image", "video", "audio", "document"); for
        None (not known yet), the largest of them."""
        if isinstance(self.max_bytes, int):
            return self.max_bytes
        limits = {**DEFAULT_MAX_BYTES_BY_KIND, **self.max_bytes}
        return limits[kind] if kind in limits else max(limits.values())


@dataclass(frozen=True, slots=True)
class ImageSettings:
    thumb_widths: tuple[int, ...] = DEFAULT_THUMB_WIDTHS
    thumb_format: str = DEFAULT_THUMB_FORMAT
    thumb_quality: int = DEFAULT_THUMB_QUALITY
    max_pixels: int = DEFAULT_MAX_PIXELS
    phash_threshold: int = DEFAULT_PHASH_THRESHOLD
    boilerplate_posts: int = DEFAULT_BOILERPLATE_POSTS
    svg: str = DEFAULT_SVG_POLICY
    thumb_method: int = DEFAULT_THUMB_METHOD


@dataclass(frozen=True, slots=True)
class CheckSettings:
    allow: tuple[str, ...] = ()  # failure reasons the user accepts (e.g. "http_404")


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """[site]: overrides of what mediatool.site detects in a site root (docs/sites.md)."""

    generator: str = "auto"  # auto, hexo, hugo, jekyll, plain
    posts: tuple[str, ...] = ()  # folders of posts, relative to the site root
    media_dir: str = ""  # the published folder for originals and thumbnails
    media_url: str = ""  # the URL path the built site serves media_dir under
    state_dir: str = ""  # manifest, temp files and report: not published


@dataclass(frozen=True, slots=True)
class Settings:
    cache_dir: Path = DEFAULT_CACHE_DIR
    discover: DiscoverSettings = field(default_factory=DiscoverSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    proxy_rules: tuple[ProxyRule, ...] = ()
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    check: CheckSettings = field(default_factory=CheckSettings)
    wait_for_lock: bool = False  # wait for another run holding the cache instead of exiting
    site: SiteSettings = field(default_factory=SiteSettings)
    # Manifest, temp files and report, when they live apart from the store (a site's state
    # folder, mediatool.site); None: in cache_dir with the originals and thumbnails.
    state_dir: Path | None = None
    # The manifest file when it is not the store's own (--manifest): e.g. one per CI shard,
    # merged afterwards (docs/shards.md). Post keys stay relative to the archive root.
    manifest_path: Path | None = None
    # An object store instead of the cache folder (--cache s3://bucket/prefix, store_s3.py);
    # its manifest is the local file manifest_path (docs/object-store.md).
    cache_url: str | None = None
    # Where downloads and analyses run (--scheduler): None, this process and its pool; "local:N"
    # a Dask cluster of N worker processes here; "tcp://HOST:PORT" a running Dask scheduler.
    scheduler: str | None = None


OBJECT_STORE_SCHEMES = ("s3://",)


def with_cache(settings: Settings, cache: str | Path) -> Settings:
    """`settings` with the cache given by --cache or the cache_dir key: an object store URL
    (s3://bucket/prefix) or a folder."""
    if isinstance(cache, str) and cache.startswith(OBJECT_STORE_SCHEMES):
        return replace(settings, cache_url=cache)
    return replace(settings, cache_dir=Path(cache), cache_url=None)


def find_config(paths: list[Path]) -> Path | None:
    """The mediatool.toml of the archive: beside the first PATH, or in the current folder."""
    for start in [*paths, Path.cwd()]:
        folder = start if start.is_dir() else start.parent
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def load_settings(config_path: Path | None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from defaults, then the config file, then `overrides` (flags, dotted keys such as
    "fetch.concurrency"; None values are ignored)."""
    data = _read_toml(config_path) if config_path else {}
    settings = _settings_from_mapping(data, config_path)
    _check_frontmatter_keys(settings.discover, str(config_path or "config"))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            settings = _override(settings, dotted, value)
    if (overrides or {}).get("scheduler") is not None:
        parse_scheduler(str(settings.scheduler), "--scheduler")
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    if path.exists() and not path.is_file():  # a named pipe would block the read for ever
        raise UsageError(f"{path}: not a regular file; give --config a TOML file.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read config file ({exc.strerror}); fix its permissions or drop it."
        ) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
            "save the file as UTF-8."
        ) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); fix the file.") from exc


# --- validation: every key of the file by type and range -------------------------------------


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What one config key accepts: a TOML type (a list of it when `is_list`), for numbers an
    inclusive range, for strings maybe a fixed set of choices."""

    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    is_list: bool = False


THUMB_FORMATS = ("webp", "png", "jpeg", "avif")
SECTIONS: dict[str, Any] = {
    "discover": DiscoverSettings,
    "fetch": FetchSettings,
    "images": ImageSettings,
    "check": CheckSettings,
    "site": SiteSettings,
}
# The ranges match what the command-line flags accept (cli.py): the file refuses what they
# refuse. A settings field missing here is checked by the type of its default.
KEYS: dict[str, KeySpec] = {
    "cache_dir": KeySpec(str),
    "manifest_path": KeySpec(str),
    "workers": KeySpec(int, 1, 256),
    "discover.frontmatter_keys": KeySpec(str, is_list=True),
    "fetch.concurrency": KeySpec(int, 1, 256),
    "fetch.per_host": KeySpec(int, 1, 64),
    "fetch.connect_timeout": KeySpec(float, 0.1),
    "fetch.read_timeout": KeySpec(float, 0.1),
    "fetch.retries": KeySpec(int, 0, 20),
    "fetch.backoff": KeySpec(float, 0),
    "fetch.max_wait": KeySpec(float, 0),
    "fetch.max_redirects": KeySpec(int, 0, 100),
    "fetch.max_time": KeySpec(float, 0.1),
    "fetch.max_bytes": KeySpec(int, 1),  # or a table by kind: _check_max_bytes
    "fetch.host_down_after": KeySpec(int, 1),
    "fetch.user_agent": KeySpec(str),
    "fetch.allow_private": KeySpec(bool),
    "fetch.wayback": KeySpec(bool),
    "images.thumb_widths": KeySpec(int, 1, 10_000, is_list=True),
    "images.thumb_format": KeySpec(str, choices=THUMB_FORMATS),
    "images.thumb_quality": KeySpec(int, 1, 100),
    "images.max_pixels": KeySpec(int, 1),
    "images.phash_threshold": KeySpec(int, 0, 64),
    "images.boilerplate_posts": KeySpec(int, 1),
    "images.thumb_method": KeySpec(int, 0, 6),
    "check.allow": KeySpec(str, is_list=True),
    "site.generator": KeySpec(str, choices=("auto", "hexo", "hugo", "jekyll", "plain")),
    "site.posts": KeySpec(str, is_list=True),
    "site.media_dir": KeySpec(str),
    "site.media_url": KeySpec(str),
    "site.state_dir": KeySpec(str),
    "fetch.cookies_file": KeySpec(str),
    # [fetch.hosts."HOST"]: one table per host key (`*` stands for the host; _host_budgets)
    "fetch.hosts.*.per_host": KeySpec(int, 1, 64),
    "fetch.hosts.*.requests_per_second": KeySpec(float, 0.001, 1000),
    "fetch.hosts.*.delay": KeySpec(float, 0, 3600),
    "scheduler": KeySpec(str),  # local:N or tcp://HOST:PORT: parse_scheduler
}
HOST_KEYS = ("per_host", "requests_per_second", "delay", "headers")
_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_LIST_NAMES = {int: "a list of integers", float: "a list of numbers", str: "a list of strings"}


def _settings_from_mapping(data: Mapping[str, Any], path: Path | None) -> Settings:
    where = str(path) if path else "config"
    top_level = {"proxy_rules", *SECTIONS, *(k for k in KEYS if "." not in k)}
    _refuse_unknown(data, top_level, "", where)
    sections = {
        name: _section(cls, data.get(name, {}), name, where) for name, cls in SECTIONS.items()
    }
    _check_images(sections["images"], where)
    _check_discover(sections["discover"], where)
    _check_max_bytes(sections["fetch"], where)
    _check_max_time(sections["fetch"], where)
    _check_allow(sections["check"], where)
    settings = Settings(
        proxy_rules=tuple(_proxy_rules(data.get("proxy_rules", []), where)), **sections
    )
    if "cache_dir" in data:
        cache = _value(data["cache_dir"], "cache_dir", where)
        given = cache if cache.startswith(OBJECT_STORE_SCHEMES) else _beside(path, Path(cache))
        settings = with_cache(settings, given)
    if "manifest_path" in data:
        manifest = Path(_value(data["manifest_path"], "manifest_path", where))
        settings = replace(settings, manifest_path=_beside(path, manifest))
    if settings.fetch.cookies_file is not None:
        cookies = str(_beside(path, Path(settings.fetch.cookies_file)))
        settings = replace(settings, fetch=replace(settings.fetch, cookies_file=cookies))
    if "workers" in data:
        settings = replace(settings, workers=_value(data["workers"], "workers", where))
    if "scheduler" in data:
        scheduler = _value(data["scheduler"], "scheduler", where)
        parse_scheduler(scheduler, f"{where}: scheduler")
        settings = replace(settings, scheduler=scheduler)
    return settings


def _section(cls: Any, data: Any, name: str, where: str) -> Any:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: {name} must be a table ([{name}]), got {_shown(data)}.")
    defaults = {f.name: f.default for f in fields(cls)}
    _refuse_unknown(data, set(defaults), f"{name}.", where)
    values: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{name}.{key}"
        if dotted == "fetch.headers":
            values[key] = _headers(value, where)
        elif dotted == "fetch.hosts":
            values[key] = _host_budgets(value, where)
        elif dotted == "fetch.max_bytes":  # a number or a table by kind: _check_max_bytes
            values[key] = value
        elif dotted in DISCOVER_TABLES:  # checked by _check_discover
            values[key] = tuple(value) if isinstance(value, list) else value
        else:
            values[key] = _value(value, dotted, where, defaults[key])
    return cls(**values)


def _refuse_unknown(data: Mapping[str, Any], known: set[str], prefix: str, where: str) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            choices = f"; known keys: {', '.join(prefix + k for k in sorted(known))}"
            raise UsageError(f"{where}: unknown key {prefix}{key}{hint or choices}")


def _value(value: Any, dotted: str, where: str, default: Any = None) -> Any:
    """`value` checked against KEYS[dotted] (or the type of `default`); lists become tuples."""
    spec = KEYS.get(dotted) or _spec_of_default(default)
    if spec is None:
        return value
    if spec.is_list:
        if not isinstance(value, list) or not all(_fits(item, spec) for item in value):
            raise UsageError(f"{where}: {dotted} must be {_describe(spec)}, got {_shown(value)}")
        return tuple(float(v) if spec.kind is float else v for v in value)
    if not _fits(value, spec):
        raise UsageError(f"{where}: {dotted} must be {_describe(spec)}, got {_shown(value)}")
    return float(value) if spec.kind is float else value


def _spec_of_default(default: Any) -> KeySpec | None:
    if isinstance(default, tuple):
        return KeySpec(type(default[0]) if default else str, is_list=True)
    if isinstance(default, (bool, int, float, str)):
        return KeySpec(type(default))
    return None


def _fits(value: Any, spec: KeySpec) -> bool:
    if spec.kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif spec.kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, spec.kind)
    if not ok:
        return False
    if spec.choices:
        return value in spec.choices
    if spec.low is not None and value < spec.low:
        return False
    return spec.high is None or value <= spec.high


def _describe(spec: KeySpec) -> str:
    if spec.choices:
        return "one of " + ", ".join(f'"{choice}"' for choice in spec.choices)
    name = _LIST_NAMES[spec.kind] if spec.is_list else _TYPE_NAMES[spec.kind]
    if spec.low is not None and spec.high is not None:
        return f"{name} from {_number(spec.low)} to {_number(spec.high)}"
    if spec.low is not None:
        return f"{name} of {_number(spec.low)} or more"
    return name


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _shown(value: Any) -> str:
    """A config value as TOML would write it (strings quoted, true/false, lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _headers(value: Any, where: str, named: str = "") -> dict[str, dict[str, str]]:
    """[fetch.headers."HOST"] tables of header name = string value (`named`: the key path of
    the one table given as {host: table}, for a [fetch.hosts."HOST"] headers table)."""
    if not isinstance(value, dict):
        raise UsageError(f'{where}: fetch.headers must be tables [fetch.headers."HOST"].')
    for host, headers in value.items():
        path = named or _headers_path(host)
        if not isinstance(headers, dict):
            raise UsageError(
                f'{where}: {path} must be a table of header = "value", got {_shown(headers)}'
            )
        for name, text in headers.items():
            if not isinstance(text, str):
                raise UsageError(f"{where}: {path}.{name} must be a string, got {_shown(text)}")
    return {
        host: {
            name: _expand(text, f"{named or _headers_path(host)}.{name}", where)
            for name, text in h.items()
        }
        for host, h in value.items()
    }


def _headers_path(host: str) -> str:
    return f'fetch.headers."{host}"'


_HOST_KEY = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*(:[0-9]{1,5})?$")


def _host_budgets(value: Any, where: str) -> dict[str, HostBudget]:
    """[fetch.hosts."HOST"] tables: per_host, requests_per_second, delay, headers; the host
    key is a host name or address, with `:port` to match that port only."""
    if not isinstance(value, dict):
        raise UsageError(f'{where}: fetch.hosts must be tables [fetch.hosts."HOST"].')
    return {
        _host_key(host, where): _host_budget(host, table, where) for host, table in value.items()
    }


def _host_key(host: str, where: str) -> str:
    key = host.lower().strip(".")
    if not _HOST_KEY.match(key):
        raise UsageError(
            f'{where}: fetch.hosts."{host}" is not a host name; write the host alone, '
            'e.g. [fetch.hosts."img.example.com"] (it also matches its subdomains).'
        )
    return key


def _host_budget(host: str, table: Any, where: str) -> HostBudget:
    prefix = f'fetch.hosts."{host}".'
    if not isinstance(table, dict):
        raise UsageError(f"{where}: {prefix[:-1]} must be a table, got {_shown(table)}")
    _refuse_unknown(table, set(HOST_KEYS), prefix, where)
    values: dict[str, Any] = {}
    for key, item in table.items():
        if key == "headers":
            values[key] = _headers({host: item}, where, f'fetch.hosts."{host}".headers')[host]
            continue
        spec = KEYS[f"fetch.hosts.*.{key}"]
        if not _fits(item, spec):
            raise UsageError(
                f"{where}: {prefix}{key} must be {_describe(spec)}, got {_shown(item)}"
            )
        values[key] = float(item) if spec.kind is float else item
    return HostBudget(**values)


FRONTMATTER_KEY_PATH = re.compile(r"[^.\[\]\s]+(?:\[\])?(?:\.[^.\[\]\s]+(?:\[\])?)*")


def _check_frontmatter_keys(discover: DiscoverSettings, where: str) -> None:
    for key in discover.frontmatter_keys:
        if not isinstance(key, str) or not FRONTMATTER_KEY_PATH.fullmatch(key):
            raise UsageError(
                f"{where}: discover.frontmatter_keys holds {key!r}, which is not a key path; "
                'write names joined by dots, "[]" after a list: "header.image", '
                '"gallery[].image_path".'
            )


def _check_images(images: ImageSettings, where: str) -> None:
    if not images.thumb_widths:
        raise UsageError(f"{where}: images.thumb_widths needs one or more positive widths.")
    if images.svg not in SVG_POLICIES:
        raise UsageError(
            f"{where}: images.svg is {images.svg!r}; use one of {', '.join(SVG_POLICIES)}."
        )


def _proxy_rules(raw: Any, where: str) -> list[ProxyRule]:
    if not isinstance(raw, list):
        raise UsageError(f"{where}: proxy_rules must be [[proxy_rules]] tables, got {_shown(raw)}")
    return [_proxy_rule(rule, where) for rule in raw]


ATTRIBUTE_KINDS = ("url", "srcset", "style")
DISCOVER_TABLES = frozenset(
    {"discover.attributes", "discover.shortcodes", "discover.tags", "discover.components"}
)
MEDIA_KINDS = ("image", "video", "audio", "document", "track")


def _check_discover(discover: DiscoverSettings, where: str) -> None:
    """The `[discover]` table additions have the shapes discover/table.py reads."""
    for entry in discover.attributes:
        if not isinstance(entry, Mapping) or not {"tag", "attribute"} <= set(entry):
            raise UsageError(
                f"{where}: each discover.attributes entry needs tag and attribute, "
                'e.g. {tag = "img", attribute = "data-lazy", kind = "url"}.'
            )
        kind, media = entry.get("kind", "url"), entry.get("media", "image")
        if kind not in ATTRIBUTE_KINDS or media not in MEDIA_KINDS:
            raise UsageError(
                f"{where}: discover.attributes {entry.get('attribute')!r}: kind is one of "
                f"{', '.join(ATTRIBUTE_KINDS)}, media one of {', '.join(MEDIA_KINDS)}."
            )
    for key in ("shortcodes", "tags", "components"):
        table = getattr(discover, key)
        if not isinstance(table, Mapping) or not all(
            isinstance(v, list | tuple) and all(isinstance(p, str) for p in v)
            for v in table.values()
        ):
            raise UsageError(
                f"{where}: discover.{key} maps a name to a list of parameter names, "
                'e.g. {photo = ["src", "0"]}.'
            )


def _check_allow(check: CheckSettings, where: str) -> None:
    """check.allow must be a list of reason codes (strings)."""
    if isinstance(check.allow, str) or not all(isinstance(r, str) for r in check.allow):
        raise UsageError(f'{where}: check.allow must be a list of reasons, e.g. ["http_404"].')


def _check_max_bytes(fetch: FetchSettings, where: str) -> None:
    """fetch.max_bytes: a positive integer, or a table of them by category."""
    value = fetch.max_bytes
    table = value if isinstance(value, Mapping) else {"": value}
    unknown = set(table) - set(DEFAULT_MAX_BYTES_BY_KIND) - {""}
    if unknown:
        kinds = ", ".join(DEFAULT_MAX_BYTES_BY_KIND)
        raise UsageError(
            f"{where}: unknown kind(s) in [fetch.max_bytes]: {', '.join(sorted(unknown))}; "
            f"use {kinds}."
        )
    for kind, limit in table.items():
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            key = f"fetch.max_bytes.{kind}" if kind else "fetch.max_bytes"
            raise UsageError(f"{where}: {key} must be an integer of 1 or more, got {_shown(limit)}")


def _check_max_time(fetch: FetchSettings, where: str) -> None:
    """fetch.max_time: a positive number of seconds."""
    value = fetch.max_time
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise UsageError(f"{where}: fetch.max_time must be a positive number, got {value!r}.")


def _proxy_rule(raw: Any, where: str) -> ProxyRule:
    needed = {"name", "pattern", "template"}
    if not isinstance(raw, dict) or set(raw) != needed:
        raise UsageError(
            f"{where}: each [[proxy_rules]] needs name, pattern and template and nothing else, "
            f"got {', '.join(sorted(raw)) if isinstance(raw, dict) else _shown(raw)}."
        )
    for key in sorted(needed):
        if not isinstance(raw[key], str):
            raise UsageError(f"{where}: proxy_rules.{key} must be a string, got {_shown(raw[key])}")
    return ProxyRule(name=raw["name"], pattern=raw["pattern"], template=raw["template"])


def _override(settings: Settings, dotted: str, value: Any) -> Settings:
    if dotted == "cache_dir":
        return with_cache(settings, value)
    if "." not in dotted:
        return replace(settings, **{dotted: value})
    section_name, key = dotted.split(".", 1)
    section = getattr(settings, section_name)
    return replace(settings, **{section_name: replace(section, **{key: value})})


@dataclass(frozen=True, slots=True)
class Scheduler:
    """A parsed `scheduler` (--scheduler): `local_workers` processes of a Dask cluster started
    for the run (local:N), or the `address` of a running Dask scheduler (tcp://HOST:PORT)."""

    local_workers: int = 0
    address: str = ""


MAX_LOCAL_WORKERS = 256  # as --workers
_SCHEDULER_ADDRESS = re.compile(r"tcp://(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


def parse_scheduler(text: str, where: str = "--scheduler") -> Scheduler:
    """`local:N` (1 <= N <= 256) or `tcp://HOST:PORT`; a UsageError naming `where` otherwise."""
    kind, _, rest = text.partition(":")
    if kind == "local" and rest.isdigit() and 1 <= int(rest) <= MAX_LOCAL_WORKERS:
        return Scheduler(local_workers=int(rest))
    if _SCHEDULER_ADDRESS.fullmatch(text) and 0 < int(text.rpartition(":")[2]) < 65536:
        return Scheduler(address=text)
    raise UsageError(
        f"{where} {text!r} is not local:N (N Dask worker processes here, 1 to "
        f"{MAX_LOCAL_WORKERS}) or tcp://HOST:PORT (a running Dask scheduler); fix the value."
    )


DEFAULT_PROGRESS_EVERY = 10.0  # seconds between plain progress lines when stderr is a log
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """Seconds in "5h30m", "90m", "3600s" or "3600"; a UsageError for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise UsageError(
            f"{text!r} is not a duration; write hours, minutes and seconds like 5h30m, 90m or "
            "3600s."
        )
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UsageError(f"{text!r}: a duration must be more than 0 seconds.")
    return total


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(text: str, key: str, where: str) -> str:
    """A header value with each ${NAME} replaced by that environment variable (secrets stay in
    the CI's secret store, not in mediatool.toml); an unset one is a usage error naming it."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise UsageError(
                f"{where}: {key} names ${{{name}}}, which is not set; set the environment "
                f"variable {name} (e.g. from a CI secret) or drop the header."
            )
        return os.environ[name]

    return _ENV_REFERENCE.sub(value_of, text)


def _beside(config_path: Path | None, path: Path) -> Path:
    """A relative path in the config file is relative to the file's folder, not to the current
    one; a path given on the command line stays as given."""
    if config_path is None or path.is_absolute():
        return path
    return config_path.parent / path
