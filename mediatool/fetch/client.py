"""The httpx client: TLS trust from the environment, proxies from the environment, timeouts."""

from __future__ import annotations

import importlib.util
import os
import ssl

import certifi
import httpx

from mediatool.config import FetchSettings
from mediatool.errors import UsageError
from mediatool.fetch.guard import CheckedBackend

ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
POOL_TIMEOUT = 120.0  # the fetcher never asks for more connections than the pool holds


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


def build_client(settings: FetchSettings) -> httpx.Client:
    """One client shared by every worker thread: connection reuse across the whole run."""
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
