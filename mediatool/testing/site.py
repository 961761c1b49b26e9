"""A folder of files that the origin server serves as many hosts.

Layout:

    <root>/<host>/<path>          http(s)://<host>/<path>, for plain paths
    <root>/<host>/_urls/<sha>.bin any other URL (query string, `:` `~` `!` `%` ..., trailing `/`)
    <root>/urls.tsv               one line per such URL: "<url>\t<file relative to root>"

A plain path is made only of letters, digits and `._-/`, has no query, no empty or dot-only
segment and does not end with `/`. The host folder is the host as the URL writes it, lower-cased,
with the default port dropped (`img.example.com`, `127.0.0.1:8080`). The scheme is not kept: a
file answers for http and https alike. `save_site` writes this layout; `Site` reads it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

INDEX_NAME = "urls.tsv"
HASHED_FOLDER = "_urls"
_PLAIN_PATH = re.compile(r"^(/[A-Za-z0-9_][A-Za-z0-9._-]*)+$")


def host_key(netloc: str) -> str:
    """The host part of an URL as the server keys it: lower-case, no default port, no userinfo."""
    host = netloc.rpartition("@")[2].lower()
    for default in (":80", ":443"):
        if host.endswith(default):
            return host[: -len(default)]
    return host


def url_key(url: str) -> tuple[str, str]:
    """(host, path?query) of an absolute URL."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return host_key(parts.netloc), target


def relpath_for(url: str) -> tuple[str, bool]:
    """Where `save_site` puts `url`, relative to the root, and whether it needs an index line."""
    parts = urlsplit(url)
    host = host_key(parts.netloc)
    if not parts.query and _PLAIN_PATH.match(parts.path):
        return f"{host}{parts.path}", False
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
    return f"{host}/{HASHED_FOLDER}/{digest}.bin", True


def save_site(root: Path, pages: Mapping[str, bytes]) -> None:
    """Write `pages` (absolute URL -> body) below `root`, adding to an existing site."""
    index = _read_index(root)
    for url, body in pages.items():
        rel, indexed = relpath_for(url)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        if indexed:
            index[url] = rel
    if index:
        lines = [f"{url}\t{rel}\n" for url, rel in sorted(index.items())]
        (root / INDEX_NAME).write_text("".join(lines), encoding="utf-8")


def _read_index(root: Path) -> dict[str, str]:
    path = root / INDEX_NAME
    if not path.is_file():
        return {}
    index: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        url, sep, rel = line.partition("\t")
        if sep and url:
            index[url] = rel
    return index


class Site:
    """Read side of the layout: (host, path?query) -> file, looked up at request time."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._index: dict[tuple[str, str], str] = {}
        self._index_stamp: float | None = None

    def _reload(self) -> None:
        try:
            stamp: float | None = (self.root / INDEX_NAME).stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp != self._index_stamp:
            self._index = {url_key(url): rel for url, rel in _read_index(self.root).items()}
            self._index_stamp = stamp

    def find(self, host: str, target: str) -> Path | None:
        self._reload()
        rel = self._index.get((host, target)) or self._index.get((host, unquote(target)))
        if rel is None:
            path, _, query = target.partition("?")
            if query or not host or "/" in host:
                return None
            rel = f"{host}/{unquote(path).lstrip('/')}"
        candidate = (self.root / rel).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate
