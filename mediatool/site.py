"""Which static site generator a folder belongs to, and where mediatool puts things in it.

`detect_site(root, overrides)` looks at a site root and returns a frozen `SiteLayout`:

    generator    "hexo", "hugo", "jekyll", "custom" ([site] settings only) or "plain"
    posts        the folders of posts to scan (never node_modules, public, themes, _site, ...)
    exclude      folders under `posts` that are not posts (Hexo post asset folders)
    media_dir    the folder the generator publishes as static files: the store's originals and
                 thumbnails go there (Hexo source/media, Hugo static/media, Jekyll assets/media)
    media_url    the URL path under which the built site serves media_dir (root or baseURL
                 path + "media/"): rewrite writes media_url + the path inside media_dir
    state_dir    a folder the generator does not publish (.mediatool/): manifest, temp files,
                 report
    reasons      what was found and why it was chosen, one line each

A plain folder of posts (no generator found) keeps mediatool's own layout: the cache folder
holds everything and rewrite writes relative links. Every choice can be overridden in
mediatool.toml `[site]` (config.SiteSettings). docs/sites.md tells the whole story.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mediatool.config import Settings, SiteSettings
from mediatool.discover import find_posts
from mediatool.errors import UsageError

GENERATORS = ("auto", "hexo", "hugo", "jekyll", "plain")
STATE_DIR = ".mediatool"
MEDIA = "media"
# Folders that hold no posts of the site: dependencies, build output, themes, caches.
NEVER_POSTS = ("node_modules", "public", "themes", "_site", "resources", STATE_DIR)
HUGO_CONFIGS = tuple(
    f"{stem}.{ext}" for stem in ("hugo", "config") for ext in ("toml", "yaml", "yml", "json")
)


@dataclass(frozen=True, slots=True)
class SiteLayout:
    generator: str
    root: Path
    posts: tuple[Path, ...]
    exclude: tuple[Path, ...]
    media_dir: Path | None  # None for a plain folder: the cache folder holds everything
    media_url: str | None  # None: relative links
    state_dir: Path | None
    reasons: tuple[str, ...]
    # The prefix for Markdown, tag and front matter references when the generator prepends its
    # root to them itself (Hexo's url_for); media_url otherwise.
    markup_url: str | None = None

    @property
    def is_plain(self) -> bool:
        return self.generator == "plain"

    def text(self) -> str:
        """What `mediatool site` prints: the choices, then why."""
        posts = ", ".join(p.as_posix() for p in self.posts)
        lines = [f"generator: {self.generator}", f"posts:     {posts}"]
        if self.exclude:
            lines.append(f"not posts: {', '.join(p.as_posix() for p in self.exclude)}")
        if self.media_dir is not None and self.state_dir is not None:
            lines += [
                f"media:     {self.media_dir.as_posix()} (originals and thumbnails, published)",
                f"media url: {self.media_url}" + self._markup_note(),
                f"state:     {self.state_dir.as_posix()} (manifest, temp files, report; "
                "not published)",
            ]
        else:
            lines.append("media:     the cache folder (--cache, default ./cache), relative links")
        return "\n".join([*lines, "why:", *(f"  - {reason}" for reason in self.reasons)])

    def _markup_note(self) -> str:
        if self.markup_url == self.media_url:
            return ""
        return f" (Markdown images, tags, front matter: {self.markup_url})"

    def as_dict(self) -> dict[str, Any]:
        def shown(path: Path | None) -> str | None:
            return None if path is None else path.as_posix()

        return {
            "generator": self.generator,
            "root": self.root.as_posix(),
            "posts": [p.as_posix() for p in self.posts],
            "exclude": [p.as_posix() for p in self.exclude],
            "media_dir": shown(self.media_dir),
            "media_url": self.media_url,
            "state_dir": shown(self.state_dir),
            "markup_url": self.markup_url,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class _Found:
    """What a generator's detector saw: the defaults before [site] overrides."""

    generator: str
    posts: tuple[Path, ...]
    media_dir: Path
    media_url: str
    reasons: tuple[str, ...]
    exclude: tuple[Path, ...] = ()
    markup_url: str | None = None  # None: media_url


def detect_site(root: Path, overrides: SiteSettings | None = None) -> SiteLayout:
    """The layout of the site at `root` (see the module docstring)."""
    site = overrides or SiteSettings()
    if site.generator not in GENERATORS:
        raise UsageError(
            f"[site] generator is {site.generator!r}; use one of {', '.join(GENERATORS)}."
        )
    found = _detect(root, site.generator)
    if found is None:
        if not _has_overrides(site):
            reason = "plain" if site.generator == "plain" else "no generator found"
            return _plain(root, reason)
        found = _Found(
            "custom",
            (root,),
            root / MEDIA,
            "/media/",
            ("no generator found; [site] settings in mediatool.toml",),
        )
    return _with_overrides(root, found, site)


def _detect(root: Path, generator: str) -> _Found | None:
    if generator == "plain":
        return None
    detectors = {"hexo": _hexo, "hugo": _hugo, "jekyll": _jekyll}
    names = list(detectors) if generator == "auto" else [generator]
    for name in names:
        found = detectors[name](root, forced=generator != "auto")
        if found is not None:
            return found
    return None


def _plain(root: Path, why: str) -> SiteLayout:
    reasons = (
        f"{root}: {why} (no Hexo _config.yml + source/_posts, no Hugo hugo.toml/config.* + "
        "content/, no Jekyll _config.yml + _posts); a plain folder of posts: the cache folder "
        "holds the store and the manifest, rewrite writes relative links",
    )
    return SiteLayout("plain", root, (root,), (), None, None, None, reasons)


def _has_overrides(site: SiteSettings) -> bool:
    return bool(site.posts or site.media_dir or site.media_url or site.state_dir)


def _with_overrides(root: Path, found: _Found, site: SiteSettings) -> SiteLayout:
    reasons = list(found.reasons)
    posts = tuple(root / p for p in site.posts) if site.posts else found.posts
    media_dir = root / site.media_dir if site.media_dir else found.media_dir
    media_url = _url_path(site.media_url) if site.media_url else found.media_url
    state_dir = root / (site.state_dir or STATE_DIR)
    for key in ("posts", "media_dir", "media_url", "state_dir"):
        if getattr(site, key):
            reasons.append(f"[site] {key} from mediatool.toml: {getattr(site, key)!r}")
    reasons.append(
        f"media: {media_dir.as_posix()} served as {media_url}; state (manifest, temp files, "
        f"report, not published): {state_dir.as_posix()}"
    )
    return SiteLayout(
        found.generator,
        root,
        posts,
        found.exclude,
        media_dir,
        media_url,
        state_dir,
        tuple(reasons),
        media_url if site.media_url else found.markup_url or media_url,
    )


# --- Hexo ----------------------------------------------------------------------------------


def _hexo(root: Path, forced: bool) -> _Found | None:
    config_path = root / "_config.yml"
    config = _read_config(config_path) if config_path.is_file() else {}
    source = root / str(config.get("source_dir") or "source")
    posts = source / "_posts"
    if not forced and not (config_path.is_file() and posts.is_dir()):
        return None
    url_root = _url_path(str(config.get("root") or "/"))
    reasons = [
        f"hexo: {config_path.name} and {posts.relative_to(root).as_posix()}/ found"
        if posts.is_dir()
        else "hexo: [site] generator = 'hexo'",
        f"hexo: source_dir = {source.relative_to(root).as_posix()}, root = {url_root}",
    ]
    markup_url = None
    if url_root != "/" and _prepends_root(config):
        markup_url = "/" + MEDIA + "/"
        reasons.append(
            f"hexo: root is {url_root}: Markdown images, tag plugins and front matter get "
            f"{markup_url} (hexo-renderer-marked's prependRoot and themes' url_for add the "
            "root), HTML attributes the full URL"
        )
    folders = tuple(f for f in (posts, source / "_drafts") if f.is_dir()) or (posts,)
    exclude: tuple[Path, ...] = ()
    if config.get("post_asset_folder") is True:
        exclude = _asset_folders(folders)
        reasons.append(
            f"hexo: post_asset_folder is true: {len(exclude)} post asset folder(s) are not "
            "scanned as posts"
        )
    media_url = url_root + MEDIA + "/"
    return _Found("hexo", folders, source / MEDIA, media_url, tuple(reasons), exclude, markup_url)


def _prepends_root(config: Mapping[str, Any]) -> bool:
    marked = config.get("marked")
    return not (isinstance(marked, dict) and marked.get("prependRoot") is False)


def _asset_folders(folders: tuple[Path, ...]) -> tuple[Path, ...]:
    """Hexo post asset folders: `name/` beside `name.md`."""
    found = []
    for folder in folders:
        for post in sorted(folder.rglob("*.md")):
            assets = post.with_suffix("")
            if assets.is_dir():
                found.append(assets)
    return tuple(found)


# --- Hugo ----------------------------------------------------------------------------------


def _hugo(root: Path, forced: bool) -> _Found | None:
    config_path = next((root / n for n in HUGO_CONFIGS if (root / n).is_file()), None)
    if config_path is None and (root / "config" / "_default").is_dir():
        config_path = next(
            (
                root / "config/_default" / n
                for n in HUGO_CONFIGS
                if (root / "config/_default" / n).is_file()
            ),
            None,
        )
    config = _read_config(config_path) if config_path else {}
    content = root / str(_key(config, "contentDir") or "content")
    if not forced and not (config_path and content.is_dir()):
        return None
    static = root / str(_key(config, "staticDir") or "static")
    base_path = _url_path(urlsplit(str(_key(config, "baseURL") or "/")).path or "/")
    reasons = [
        f"hugo: {config_path.relative_to(root).as_posix()} and "
        f"{content.relative_to(root).as_posix()}/ found"
        if config_path
        else "hugo: [site] generator = 'hugo'",
        f"hugo: staticDir = {static.relative_to(root).as_posix()}, baseURL path = {base_path}",
    ]
    bundles = sum(1 for _ in content.rglob("index.md")) if content.is_dir() else 0
    if bundles:
        reasons.append(f"hugo: {bundles} page bundle(s) (index.md) scanned with their pages")
    return _Found("hugo", (content,), static / MEDIA, base_path + MEDIA + "/", tuple(reasons))


def _key(config: Mapping[str, Any], name: str) -> Any:
    """A Hugo config key, whose name compares without regard to case."""
    lowered = name.lower()
    return next((v for k, v in config.items() if str(k).lower() == lowered), None)


# --- Jekyll --------------------------------------------------------------------------------


def _jekyll(root: Path, forced: bool) -> _Found | None:
    config_path = root / "_config.yml"
    config = _read_config(config_path) if config_path.is_file() else {}
    source = root / str(config.get("source") or ".")
    posts = source / "_posts"
    if not forced and not (config_path.is_file() and posts.is_dir()):
        return None
    base = _url_path(str(config.get("baseurl") or "/"))
    reasons = [
        f"jekyll: _config.yml and {posts.relative_to(root).as_posix()}/ found"
        if posts.is_dir()
        else "jekyll: [site] generator = 'jekyll'",
        f"jekyll: baseurl = {base}",
    ]
    folders = tuple(f for f in (posts, source / "_drafts") if f.is_dir()) or (posts,)
    media = source / "assets" / MEDIA
    return _Found("jekyll", folders, media, base + "assets/" + MEDIA + "/", tuple(reasons))


# --- shared --------------------------------------------------------------------------------


def _url_path(path: str) -> str:
    """A URL path with one leading and one trailing slash ("/blog/", "/")."""
    inner = path.strip().strip("/")
    return f"/{inner}/" if inner else "/"


def _read_config(path: Path) -> Mapping[str, Any]:
    """A generator's config file (YAML, TOML or JSON) as a mapping; a clear error if broken."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise UsageError(
            f"{path}: cannot read the site's config ({_first_line(exc)}); fix it, or set "
            "[site] generator in mediatool.toml."
        ) from exc
    return data if isinstance(data, dict) else {}


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def settings_for_site(settings: Settings, layout: SiteLayout) -> Settings:
    """`settings` with the store in the site's media folder and the manifest, temp files and
    report in its state folder; unchanged for a plain folder."""
    if layout.media_dir is None or layout.state_dir is None:
        return settings
    return replace(settings, cache_dir=layout.media_dir, state_dir=layout.state_dir)


def run_layout(
    paths: Sequence[Path], settings: Settings, *, cache_given: bool
) -> tuple[list[Path], Settings, SiteLayout | None]:
    """The posts a command reads, its settings and the site's layout. Run with no PATH and no
    --cache in a site root, the site's layout decides them; otherwise the PATHs (default: .)
    with the cache folder holding everything, as in a plain folder (layout None)."""
    targets = list(paths) or [Path(".")]
    if paths or cache_given:
        return targets, settings, None
    layout = detect_site(Path("."), settings.site)
    if layout.is_plain:
        return targets, settings, None
    return post_targets(layout), settings_for_site(settings, layout), layout


def post_targets(layout: SiteLayout) -> list[Path]:
    """What fetch, rewrite and scan read in the site: its post folders, or (when some folders
    under them are not posts) the post files themselves."""
    if not layout.exclude:
        return list(layout.posts)
    existing = [folder for folder in layout.posts if folder.exists()]
    return find_posts(existing, exclude=layout.exclude)
