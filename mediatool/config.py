"""Defaults and settings: DEFAULT_* constants, the config file and the flags merged into one
frozen Settings value.

The config file is TOML, `mediatool.toml` in the archive root or given with --config:

    [discover]
    frontmatter_keys = ["headimg", "thumbnail", "cover", "image", "banner", "gallery"]

    [fetch]
    concurrency = 16
    per_host = 4
    user_agent = "..."
    [fetch.headers."img.example.com"]
    Referer = "https://example.com/"

    [images]
    thumb_widths = [320, 640]
    phash_threshold = 8

    [[proxy_rules]]
    name = "my-cdn"
    pattern = '^https?://img\\.proxy\\.example/fetch\\?u=(?P<target>.+)$'
    template = "{target}"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mediatool import __version__
from mediatool.errors import UsageError

CONFIG_FILENAME = "mediatool.toml"
POST_SUFFIXES = (".md", ".markdown", ".html", ".htm")

DEFAULT_CACHE_DIR = Path("cache")
# Hexo (headimg, thumbnail, cover, banner, photos), Jekyll/Hugo themes (image, cover_image,
# featured_image, feature_image), and the Open Graph image some generators copy into posts.
DEFAULT_FRONTMATTER_KEYS = (
    "headimg",
    "thumbnail",
    "cover",
    "image",
    "banner",
    "photos",
    "cover_image",
    "featured_image",
    "feature_image",
    "og_image",
)
DEFAULT_THUMB_FRONTMATTER_KEYS = ("thumbnail",)

DEFAULT_CONCURRENCY = 16
DEFAULT_PER_HOST = 4
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_WAIT = 60.0
DEFAULT_MAX_REDIRECTS = 10
DEFAULT_MAX_BYTES = 50_000_000
DEFAULT_HOST_DOWN_AFTER = 5
DEFAULT_USER_AGENT = f"mediatool/{__version__} (archive image localizer)"

DEFAULT_THUMB_WIDTHS = (320, 640)
DEFAULT_THUMB_FORMAT = "webp"
DEFAULT_THUMB_QUALITY = 80
DEFAULT_MAX_PIXELS = 80_000_000
DEFAULT_BOILERPLATE_POSTS = 20  # an image in more posts is a banner or logo
DEFAULT_PHASH_THRESHOLD = 10  # bench/bench_phash_threshold.py: recall 1.0, precision 1.0


@dataclass(frozen=True, slots=True)
class ProxyRule:
    """A user rule: `pattern` matches a whole URL, `template` builds the target from its groups."""

    name: str
    pattern: str
    template: str


@dataclass(frozen=True, slots=True)
class DiscoverSettings:
    frontmatter_keys: tuple[str, ...] = DEFAULT_FRONTMATTER_KEYS


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
    max_bytes: int = DEFAULT_MAX_BYTES
    host_down_after: int = DEFAULT_HOST_DOWN_AFTER
    user_agent: str = DEFAULT_USER_AGENT
    allow_private: bool = False
    wayback: bool = False  # try the Internet Archive's copy after the origin and the proxies
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host -> headers


@dataclass(frozen=True, slots=True)
class ImageSettings:
    thumb_widths: tuple[int, ...] = DEFAULT_THUMB_WIDTHS
    thumb_format: str = DEFAULT_THUMB_FORMAT
    thumb_quality: int = DEFAULT_THUMB_QUALITY
    max_pixels: int = DEFAULT_MAX_PIXELS
    phash_threshold: int = DEFAULT_PHASH_THRESHOLD
    boilerplate_posts: int = DEFAULT_BOILERPLATE_POSTS


@dataclass(frozen=True, slots=True)
class Settings:
    cache_dir: Path = DEFAULT_CACHE_DIR
    discover: DiscoverSettings = field(default_factory=DiscoverSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    proxy_rules: tuple[ProxyRule, ...] = ()
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    wait_for_lock: bool = False  # wait for another run holding the cache instead of exiting


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
    for dotted, value in (overrides or {}).items():
        if value is not None:
            settings = _override(settings, dotted, value)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read config file ({exc.strerror}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); fix the file or drop --config.") from exc


def _section(cls: Any, data: Mapping[str, Any], name: str, where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{where}: unknown key(s) in [{name}]: {', '.join(sorted(unknown))}.")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise UsageError(f"{where}: bad [{name}] section ({exc}).") from exc


def _settings_from_mapping(data: Mapping[str, Any], path: Path | None) -> Settings:
    where = str(path) if path else "config"
    rules = tuple(_proxy_rule(r, where) for r in data.get("proxy_rules", []))
    unknown = set(data) - {"discover", "fetch", "images", "proxy_rules", "cache_dir", "workers"}
    if unknown:
        raise UsageError(f"{where}: unknown section(s): {', '.join(sorted(unknown))}.")
    images = _section(ImageSettings, data.get("images", {}), "images", where)
    _check_images(images, where)
    settings = Settings(
        discover=_section(DiscoverSettings, data.get("discover", {}), "discover", where),
        fetch=_section(FetchSettings, data.get("fetch", {}), "fetch", where),
        images=images,
        proxy_rules=rules,
    )
    if "cache_dir" in data:
        settings = replace(settings, cache_dir=Path(data["cache_dir"]))
    if "workers" in data:
        settings = replace(settings, workers=int(data["workers"]))
    return settings


THUMB_FORMATS = ("webp", "png", "jpeg")


def _check_images(images: ImageSettings, where: str) -> None:
    if images.thumb_format not in THUMB_FORMATS:
        raise UsageError(
            f"{where}: images.thumb_format is {images.thumb_format!r}; "
            f"use one of {', '.join(THUMB_FORMATS)}."
        )
    if not images.thumb_widths or min(images.thumb_widths) < 1:
        raise UsageError(f"{where}: images.thumb_widths needs one or more positive widths.")


def _proxy_rule(raw: Any, where: str) -> ProxyRule:
    try:
        return ProxyRule(
            name=str(raw["name"]), pattern=str(raw["pattern"]), template=raw["template"]
        )
    except (KeyError, TypeError) as exc:
        raise UsageError(
            f"{where}: each [[proxy_rules]] needs name, pattern and template."
        ) from exc


def _override(settings: Settings, dotted: str, value: Any) -> Settings:
    if "." not in dotted:
        return replace(settings, **{dotted: value})
    section_name, key = dotted.split(".", 1)
    section = getattr(settings, section_name)
    return replace(settings, **{section_name: replace(section, **{key: value})})
