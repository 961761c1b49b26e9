"""Credentials kept out of the repository, sent per host: a Netscape cookies.txt
(`--cookies`, http.cookiejar.MozillaCookieJar) and the user's `.netrc` (`$NETRC` or
`~/.netrc`, Basic auth for the hosts it names). Each request gets only what its own URL's host
is owed, so a redirect to another host carries none of it."""

from __future__ import annotations

import base64
import netrc
import os
import time
import urllib.request
from http.cookiejar import LoadError, MozillaCookieJar
from pathlib import Path

from mediatool.errors import UsageError


class Credentials:
    def __init__(self, cookies_file: Path | None, netrc_file: Path | None) -> None:
        self._jar = _cookie_jar(cookies_file) if cookies_file else None
        self._netrc = _netrc(netrc_file) if netrc_file else None

    @classmethod
    def from_environment(cls, cookies_file: str | None) -> Credentials:
        """The cookies file given, and `$NETRC` or `~/.netrc` when it exists."""
        netrc_file = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
        return cls(Path(cookies_file) if cookies_file else None, netrc_file)

    def headers_for(self, url: str, host: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._netrc is not None and (entry := self._netrc.authenticators(host)):
            login, _, password = entry
            token = base64.b64encode(f"{login}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if self._jar is not None:
            request = urllib.request.Request(url)
            self._jar.add_cookie_header(request)
            if cookie := request.get_header("Cookie"):
                headers["Cookie"] = cookie
        return headers


def _cookie_jar(path: Path) -> MozillaCookieJar:
    jar = MozillaCookieJar(str(path))
    try:
        jar.load(ignore_discard=True, ignore_expires=True)
    except (OSError, LoadError) as exc:
        raise UsageError(
            f"{path}: cannot read cookies ({exc}); give --cookies a Netscape-format "
            "cookies.txt (as browser extensions export it)."
        ) from exc
    now = int(time.time())
    for cookie in list(jar):
        if cookie.expires == 0:  # written by curl and browsers for a session cookie
            cookie.expires = None
        elif cookie.is_expired(now):
            jar.clear(cookie.domain, cookie.path, cookie.name)
    return jar


def _netrc(path: Path) -> netrc.netrc | None:
    if not path.is_file():
        return None
    try:
        return netrc.netrc(str(path))
    except (OSError, netrc.NetrcParseError) as exc:
        raise UsageError(
            f"{path}: cannot read .netrc ({exc}); fix the file or unset NETRC."
        ) from exc
