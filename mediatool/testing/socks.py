"""A tiny real SOCKS5 proxy on 127.0.0.1 for tests (RFC 1928): no authentication, CONNECT only,
one thread per client, bytes relayed both ways as they come.

    with Socks5Server(connect_to=("127.0.0.1", origin.port)) as proxy:
        os.environ["ALL_PROXY"] = proxy.url          # socks5://127.0.0.1:PORT
        ...
        proxy.connections, proxy.targets             # what it was asked for

`connect_to`, when given, is where every CONNECT really goes (the host asked for is recorded):
names such as `img.example` then reach a local origin, which answers by the Host header.
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import struct
import threading
from types import TracebackType

VERSION = 5
NO_AUTH, NO_ACCEPTABLE = 0x00, 0xFF
CONNECT = 1
ATYP_IPV4, ATYP_NAME, ATYP_IPV6 = 1, 3, 4
SUCCEEDED, REFUSED, COMMAND_NOT_SUPPORTED = 0x00, 0x05, 0x07
RELAY_CHUNK = 65536


class Socks5Server:
    """The proxy; a context manager, or `start()`/`stop()`."""

    def __init__(self, *, port: int = 0, connect_to: tuple[str, int] | None = None) -> None:
        self.connect_to = connect_to
        self._port = port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self.connections = 0  # clients accepted
        self.targets: list[tuple[str, int]] = []  # (host, port) of each CONNECT, as asked

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Socks5Server:
        listener = socket.create_server(("127.0.0.1", self._port), backlog=128)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:  # wakes the relays, which then close them
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Socks5Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("Socks5Server is not started")
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    # -- serving ----------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            with self._lock:
                self.connections += 1
                self._open.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = self._handshake(client)
            if upstream is not None:
                _relay(client, upstream)
        except (OSError, ValueError):
            pass  # a client that hangs up or speaks something else
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._open.discard(sock)
                    sock.close()

    def _handshake(self, client: socket.socket) -> socket.socket | None:
        """Greeting and request; the connected upstream socket, or None (refused)."""
        version, count = _read(client, 2)
        methods = _read(client, count)
        if version != VERSION or NO_AUTH not in methods:
            client.sendall(bytes([VERSION, NO_ACCEPTABLE]))
            return None
        client.sendall(bytes([VERSION, NO_AUTH]))
        _, command, _, kind = _read(client, 4)
        host = _read_address(client, kind)
        (port,) = struct.unpack("!H", _read(client, 2))
        if command != CONNECT:
            _reply(client, COMMAND_NOT_SUPPORTED)
            return None
        with self._lock:
            self.targets.append((host, port))
        try:
            upstream = socket.create_connection(self.connect_to or (host, port), timeout=10)
        except OSError:
            _reply(client, REFUSED)
            return None
        upstream.settimeout(None)
        with self._lock:
            self._open.add(upstream)
        _reply(client, SUCCEEDED)
        return upstream


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("the client hung up mid-handshake")
        data += chunk
    return data


def _read_address(sock: socket.socket, kind: int) -> str:
    if kind == ATYP_IPV4:
        return str(ipaddress.IPv4Address(_read(sock, 4)))
    if kind == ATYP_IPV6:
        return str(ipaddress.IPv6Address(_read(sock, 16)))
    if kind == ATYP_NAME:
        (length,) = _read(sock, 1)
        return _read(sock, length).decode("idna")
    raise ValueError(f"address type {kind}")


def _reply(sock: socket.socket, status: int) -> None:
    """VER REP RSV ATYP BND.ADDR BND.PORT, the bound address given as 0.0.0.0:0."""
    sock.sendall(bytes([VERSION, status, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0]))


def _relay(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peer = {one: other, other: one}
    with selectors.DefaultSelector() as selector:
        for side in peer:
            selector.register(side, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                source = key.fileobj
                assert isinstance(source, socket.socket)
                data = source.recv(RELAY_CHUNK)
                if not data:
                    return
                peer[source].sendall(data)
