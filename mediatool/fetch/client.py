"""The httpx client: TLS trust from the environment, proxies from the environment, timeouts.

Proxies: ALL_PROXY, HTTPS_PROXY and HTTP_PROXY (either case; NO_PROXY excludes hosts), as
httpx reads them: `http://`, `https://`, `socks5://` and `socks5h://` proxies (a value without a
scheme is `http://`). With socks5 too httpx sends the host name, so the proxy resolves every
name, as with socks5h. A value that is no such URL is a usage error naming the variable.
"""

from __future__ import annotations

import importlib.util
import os
import re
import ssl

import certifi
import httpx

from mediatool.config import FetchSettings
from mediatool.errors import UsageError
from mediatool.fetch.guard import CheckedBackend

ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
POOL_TIMEOUT = 120.0  # the fetcher never asks for more connections than the pool holds
PROXY_VARIABLES = ("ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY")
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_PROXY_HOST = re.compile(r"[A-Za-z0-9_.:-]+")  # a name, an IPv4 or an IPv6 address


def ssl_context_from_env() -> ssl.SSLContext:
    """Trust SSL_CERT_FILE and/or SSL_CERT_DIR when set (a private CA), else certifi's roots.

    httpx 0.28 reads these variables only when it builds its own context and only one of them;
    building the context here makes the rule explicit and the same for proxies and direct hosts."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    try:
        if cafile or capath:
            return ssl.create_default_context(cafile=cafile, capath=capath)
        return ssl.create_default_context(cafile=certifi.where())
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"SSL_CERT_FILE={cafile or ''} SSL_CERT_DIR={capath or ''}: cannot load the "
            f"certificates ({exc}); fix or unset these variables."
        ) from exc


def http2_available() -> bool:
    return importlib.util.find_spec("h2") is not None


def check_proxy_environment() -> None:
    """A UsageError naming the first proxy variable whose value httpx cannot use."""
    for name in PROXY_VARIABLES:
        for variable in (name.lower(), name):
            value = os.environ.get(variable, "").strip()
            problem = value and proxy_problem(value)
            if problem:
                raise UsageError(
                    f"{variable}={value}: {problem}; write http://HOST:PORT or "
                    f"socks5h://HOST:PORT, or unset {variable}."
                )


def proxy_problem(value: str) -> str | None:
    """Why `value` is not a proxy URL httpx can use, or None."""
    text = value if "://" in value else f"http://{value}"
    try:
        url = httpx.URL(text)
        port = url.port
    except (httpx.InvalidURL, ValueError) as exc:
        return f"not a proxy URL ({exc})"
    if url.scheme not in PROXY_SCHEMES:
        return f"proxy scheme {url.scheme}:// is not supported (use {', '.join(PROXY_SCHEMES)})"
    if not url.host:
        return "the proxy URL has no host"
    if not _PROXY_HOST.fullmatch(url.host):
        return f"{url.raw_host.decode('ascii', 'replace')!r} is not a host name"
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    return None


def build_client(settings: FetchSettings) -> httpx.Client:
    """One client shared by every worker thread: connection reuse across the whole run."""
    check_proxy_environment()
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=POOL_TIMEOUT,
    )
    limits = httpx.Limits(
        max_connections=max(settings.concurrency, 1),
        max_keepalive_connections=max(settings.concurrency, 1),
    )
    try:
        client = httpx.Client(
            verify=ssl_context_from_env(),
            http2=http2_available(),
            trust_env=True,  # HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY
            follow_redirects=False,  # each hop is checked and recorded by the fetcher
            timeout=timeout,
            limits=limits,
            headers={
                "User-Agent": settings.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "identity",
            },
        )
    except ImportError as exc:  # a SOCKS proxy without socksio (an install without it)
        raise UsageError(
            "a socks5:// proxy is set but the socksio package is missing; install it "
            "(pip install 'httpx[socks]') or unset the proxy variable (ALL_PROXY, "
            "HTTPS_PROXY, HTTP_PROXY)."
        ) from exc
    _check_direct_connections(client, settings.allow_private)
    return client


def _check_direct_connections(client: httpx.Client, allow_private: bool) -> None:
    """Direct connections (not through a proxy) connect only to addresses the guard allows,
    checked when the connection is made (guard.CheckedBackend). httpx 0.28 takes no network
    backend, so it is set on the direct transport's pool before any connection exists."""
    pool = getattr(client._transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx has no connection pool to guard; pin httpx<0.29")
    pool._network_backend = CheckedBackend(allow_private)


def is_proxied(client: httpx.Client, url: httpx.URL) -> bool:
    """Whether `client` sends a request for `url` through a proxy (httpx's own env rules)."""
    return client._transport_for_url(url) is not client._transport
