"""Which URLs may be fetched: http(s) only, and no private, loopback or otherwise internal
address unless `allow_private` (an archive's post must not make mediatool probe the local net).

When the request goes through a proxy (HTTP_PROXY/HTTPS_PROXY/ALL_PROXY apply and NO_PROXY does
not exclude the URL), names are resolved by the proxy: only literal addresses are checked then.
Otherwise the name is resolved here (once per host and port for the run) and refused if any of
its addresses is internal. The check is repeated for every redirect hop.

That check happens before the request; a name could resolve differently when the connection is
made (DNS rebinding). So direct connections also go through `CheckedBackend`, which resolves the
name itself, refuses an internal address, and connects to the very address it checked (TLS still
verifies the name).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterable

import httpcore
import httpx
from httpcore._backends.sync import SyncBackend

BLOCKED_AT_CONNECT = "refused to connect to the private/local address"  # reason blocked_private

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
_HOST_CHARS = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.I)


def is_internal(address: IPAddress) -> bool:
    """Loopback, private, link-local, multicast, reserved or unspecified (IPv4-mapped too)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, including the old forms `127.1`, `0x7f.0.0.1`,
    `2130706433` that resolvers accept."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class Guard:
    """Answers `check(url)` with None (go ahead) or (reason, what happened)."""

    def __init__(self, allow_private: bool, is_proxied: Callable[[httpx.URL], bool]) -> None:
        self.allow_private = allow_private
        self._is_proxied = is_proxied
        self._resolved: dict[tuple[str, int], str | None] = {}
        self._lock = threading.Lock()

    def check(self, url: httpx.URL) -> tuple[str, str] | None:
        if url.scheme not in ("http", "https"):
            return "blocked_scheme", f"scheme {url.scheme or '(none)'}: is not fetched"
        if not url.host:
            return "bad_url", "the URL has no host"
        raw_host = url.raw_host.decode("ascii", "replace")
        if not _HOST_CHARS.match(raw_host) and literal_address(raw_host) is None:
            return "bad_url", f"{raw_host!r} is not a host name"
        if url.port is not None and not 0 < url.port < 65536:
            return "bad_url", f"port {url.port} is out of range"
        if self.allow_private:
            return None
        host = url.host.lower()
        address = literal_address(host)
        if address is not None:
            return _blocked(host, str(address)) if is_internal(address) else None
        if host == "localhost" or host.endswith(".localhost"):
            return _blocked(host, "loopback")
        if self._is_proxied(url):
            return None
        internal = self._resolve(host, url.port or (443 if url.scheme == "https" else 80))
        return _blocked(host, internal) if internal else None

    def _resolve(self, host: str, port: int) -> str | None:
        """The first internal address `host` resolves to, or None (also when it does not resolve:
        the request then fails with connect_error, which says more)."""
        with self._lock:
            if (host, port) in self._resolved:
                return self._resolved[(host, port)]
        try:
            found = first_internal(resolved_addresses(host, port))
        except (OSError, UnicodeError):
            found = None
        internal = None if found is None else str(found)
        with self._lock:
            self._resolved[(host, port)] = internal
        return internal


def _blocked(host: str, address: str) -> tuple[str, str]:
    where = host if host == address else f"{host} ({address})"
    return "blocked_private", f"refused to fetch from the private/local address {where}"


class CheckedBackend(SyncBackend):
    """httpcore's network backend for direct connections: connects only to addresses the guard
    allows, resolving the name once and connecting to the address it checked."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        if self.allow_private:
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        last: Exception = httpcore.ConnectError(f"{host} did not resolve to any address")
        for address in _checked_addresses(host, port):
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last


def _checked_addresses(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to; ConnectError naming the first internal one."""
    try:
        addresses = resolved_addresses(host, port)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    internal = first_internal(addresses)
    if internal is not None:
        raise httpcore.ConnectError(f"{BLOCKED_AT_CONNECT} {host} ({internal})")
    return addresses


def resolved_addresses(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to (OSError when it does not), zone ids dropped."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def first_internal(addresses: Iterable[IPAddress]) -> IPAddress | None:
    return next((address for address in addresses if is_internal(address)), None)
