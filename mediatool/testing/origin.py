"""A real local HTTP server on 127.0.0.1 that plays many image hosts, politely or not.

It answers three ways, all on one port:
- direct: `GET /a.jpg` with `Host: 127.0.0.1:PORT` (or any Host a route was added for); a direct
  path `/<host>/<path>` also serves that host's file, for tools that cannot use a proxy;
- as a forward proxy: `GET http://static.1sapp.com/a.jpg HTTP/1.1`;
- through `CONNECT host:443`: the socket is then wrapped in TLS with a certificate for that host,
  issued by a test CA (`trustme`) whose PEM is written to `ca_path`; requests inside the tunnel
  are answered by their Host header.

So a client with HTTP_PROXY=HTTPS_PROXY=`proxy_url` and SSL_CERT_FILE=`ca_path` reaches any host.
Content comes from routes (`add`) and from a folder (`root`, layout in `mediatool.testing.site`).
Every request is recorded (`requests`), and handed to `on_request` (when set) before it is
answered. Misbehaviour is per route, see `Route`.

For benches: `record=False` keeps no request (runs of 100,000s of requests). With
`generated=True`, any host answers a path holding `sim<i>v<v>.<ext>` (see `generated_path`)
with picture number i, variant v: a small image drawn on the fly, the same bytes every time
(variants are crops, rescales and recompressions of the same picture: near-duplicates). The
most requests answered at once per host are kept (`max_in_flight`, `peaks`).

Standalone:  python -m mediatool.testing.origin --root DIR [--port N] [--ca-out ca.pem]
[--latency-ms N] [--generated]  prints PROXY=... and CA=... lines, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import functools
import hashlib
import http.server
import io
import random
import re
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from mediatool.testing.site import Site, host_key, save_site, url_key

if TYPE_CHECKING:
    import trustme

LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
_MAGIC_TYPES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG", "image/png"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
    (b"<svg", "image/svg+xml"),
)


@dataclass
class Route:
    """What one URL answers. Defaults: 200 with the body, ETag and Last-Modified, 304 on match.

    fail_first/fail_status/retry_after: the first N requests get `fail_status` (with Retry-After
    when given: seconds or an HTTP-date), later ones succeed. delay: seconds before the headers.
    body_delay/chunk_size: a slow body, `chunk_size` bytes every `body_delay` seconds.
    truncate_at: Content-Length says the whole body, only this many bytes are sent, then close
    (counted from the start of the file, also in a range); truncate_first: only the first N
    answers are cut (0: every answer). A drip: chunk_size=1 with a body_delay.
    ranges: `Range: bytes=N-` (and N-M) is answered 206 with Content-Range, `If-Range` honoured
    (a stale validator gets the whole file), 416 past the end; False plays a server that
    ignores Range (always 200, no Accept-Ranges).
    redirect: Location to send (status 301/302/303/307/308 from `status`, else 302).
    headers: sent with the answer; their Cache-Control and Expires with a 304 as well (a test
    may change them between requests: `add` returns the route).
    forbid_referer: 403 when any Referer is sent. allow_referers: 403 unless Referer starts with
    one of these. drop: close the connection without an answer; reset: same, with a TCP RST.
    """

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    fail_first: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    body_delay: float = 0.0
    chunk_size: int = 16384
    truncate_at: int | None = None
    truncate_first: int = 0
    ranges: bool = True
    redirect: str | None = None
    forbid_referer: bool = False
    allow_referers: tuple[str, ...] | None = None
    drop: bool = False
    reset: bool = False
    validators: bool = True
    hits: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. `via` is "direct", "proxy" or "tunnel" (inside CONNECT);
    a CONNECT itself is recorded with method "CONNECT" and url "host:port"."""

    method: str
    url: str
    headers: Mapping[str, str]  # lower-case names
    time: float  # time.monotonic()
    via: str
    client: tuple[str, int] = ("", 0)  # the (address, port) the request came from

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class OriginServer:
    """The server; a context manager, or `start()`/`stop()`. See the module docstring."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        port: int = 0,
        latency: float = 0.0,
        ca_path: Path | None = None,
        generated: bool = False,
        record: bool = True,
    ) -> None:
        self.root = root
        self.generated = generated  # answer sim<i>v<v>.<ext> paths on any host
        self.latency = latency  # seconds added before every answer
        self._port = port
        self._ca_path = ca_path
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], Route] = {}
        self._routes_unquoted: dict[tuple[str, str], Route] = {}
        # With record=False, a deque that keeps nothing: every append is dropped.
        self._requests: deque[RecordedRequest] = deque(maxlen=None if record else 0)
        self._tls: dict[str, ssl.SSLContext] = {}
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._site = Site(root) if root is not None else None
        self._ca = _test_ca()
        # Called with each request, on the thread answering it, before the answer is sent (a
        # test acts at a known point of a run: e.g. kill the process that asked).
        self.on_request: Callable[[RecordedRequest], None] | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> OriginServer:
        if self._ca_path is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="mediatool-origin-")
            self._ca_path = Path(self._tempdir.name) / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self._ca_path))
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), _Handler)
        self._server.origin = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> OriginServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OriginServer is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proxy_url(self) -> str:
        return self.base_url

    @property
    def ca_path(self) -> Path:
        if self._ca_path is None:
            raise RuntimeError("OriginServer is not started")
        return self._ca_path

    def url(self, path: str) -> str:
        """A direct URL on this server: url("/a.jpg") -> http://127.0.0.1:PORT/a.jpg."""
        return self.base_url + path

    # -- content ----------------------------------------------------------------------------
    def add(
        self,
        url: str,
        body: bytes = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        **options: Any,
    ) -> Route:
        """Answer `url` (absolute; a path alone means this server) as told; see `Route`."""
        if url.startswith("/"):
            url = self.url(url)
        route = Route(body=body, status=status, headers=dict(headers or {}))
        route = replace(route, content_type=content_type, **options)
        key = url_key(url)
        with self._lock:
            self._routes[key] = route
            self._routes_unquoted[(key[0], unquote(key[1]))] = route
        return route

    @staticmethod
    def save_site(root: Path, pages: Mapping[str, bytes]) -> None:
        """Write `pages` (URL -> body) below `root` in the layout `OriginServer(root=...)` serves
        (see `mediatool.testing.site`); a running server sees new files at once."""
        save_site(root, pages)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, url: str) -> list[RecordedRequest]:
        """Recorded GET/HEAD requests for `url` (absolute, or a path on this server)."""
        if url.startswith("/"):
            url = self.url(url)
        key = url_key(url)
        return [r for r in self.requests if r.method != "CONNECT" and url_key(r.url) == key]

    def max_in_flight(self, host: str) -> int:
        """The most requests for `host` (as in an URL) that were being answered at once."""
        with self._lock:
            return self._max_in_flight.get(host_key(host), 0)

    def reset_requests(self) -> None:
        """Forget the recorded requests (routes and their hit counts stay)."""
        with self._lock:
            self._requests.clear()

    def peaks(self) -> dict[str, int]:
        """The most requests answered at once, per host (as the server keys it), every host."""
        with self._lock:
            return dict(self._max_in_flight)

    def reset(self) -> None:
        """Forget routes, recorded requests, the latency and `on_request` (the TLS certificates
        stay)."""
        with self._lock:
            self._routes.clear()
            self._routes_unquoted.clear()
            self._requests.clear()
            self._max_in_flight.clear()
        self.latency = 0.0
        self.on_request = None

    # -- used by the handler ----------------------------------------------------------------
    def _record(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        via: str,
        client: tuple[str, int] = ("", 0),
    ) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        request = RecordedRequest(method, url, lowered, time.monotonic(), via, client)
        with self._lock:
            self._requests.append(request)
        hook = self.on_request
        if hook is not None:
            hook(request)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _is_self(self, host: str) -> bool:
        return host in (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def _lookup(self, host: str, target: str) -> Route | None:
        with self._lock:
            route = self._routes.get((host, target))
            route = route or self._routes_unquoted.get((host, unquote(target)))
        if route is not None:
            return route
        if self._site is not None:
            path = self._site.find(host, target)
            if path is not None:
                return Route(body=path.read_bytes())
        if self.generated and (found := GENERATED.search(target)) is not None:
            number, variant, ext = int(found[1]), int(found[2]), found[3]
            return Route(body=generated_image(number, variant, ext))
        if self._is_self(host) and target.count("/") >= 2:
            inner_host, _, rest = target[1:].partition("/")
            return self._lookup(host_key(inner_host), "/" + rest)
        return None

    @contextlib.contextmanager
    def _answering(self, host: str) -> Iterator[None]:
        with self._lock:
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self._max_in_flight[host] = max(self._max_in_flight.get(host, 0), self._in_flight[host])
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[host] -= 1

    def _hit(self, route: Route) -> int:
        with self._lock:
            route.hits += 1
            return route.hits

    def _tls_context(self, host: str) -> ssl.SSLContext:
        with self._lock:
            context = self._tls.get(host)
            if context is None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                self._ca.issue_cert(host).configure_cert(context)
                context.set_alpn_protocols(["http/1.1"])
                self._tls[host] = context
            return context


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    origin: OriginServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, cancelled fetches) are normal here: stay quiet."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | ssl.SSLError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    tunnel_host: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_CONNECT(self) -> None:
        origin = self.server.origin
        origin._record(
            "CONNECT", self.path, dict(self.headers.items()), "proxy", self._client_address()
        )
        host = self.path.rpartition(":")[0].strip("[]") or self.path
        self.send_response(200, "Connection Established")
        self.end_headers()
        try:
            tls = origin._tls_context(host).wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        self.connection = tls
        self.rfile = tls.makefile("rb")
        self.wfile = tls.makefile("wb")
        self.tunnel_host = host_key(self.path)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.close()

    # -- answering --------------------------------------------------------------------------
    def _client_address(self) -> tuple[str, int]:
        return str(self.client_address[0]), int(self.client_address[1])

    def _target(self) -> tuple[str, str, str]:
        """(scheme, host key, path?query) of the request."""
        if self.path.startswith(("http://", "https://")):
            parts = urlsplit(self.path)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            return parts.scheme, host_key(parts.netloc), target
        if self.tunnel_host is not None:
            return "https", host_key(self.headers.get("Host") or self.tunnel_host), self.path
        default_host = f"127.0.0.1:{self.server.origin.port}"
        return "http", host_key(self.headers.get("Host") or default_host), self.path

    def _answer(self, send_body: bool) -> None:
        origin = self.server.origin
        scheme, host, target = self._target()
        via = "tunnel" if self.tunnel_host else "proxy" if "://" in self.path else "direct"
        url = f"{scheme}://{host}{target}"
        origin._record(self.command, url, dict(self.headers.items()), via, self._client_address())
        with origin._answering(host):
            origin._sleep(origin.latency)
            route = origin._lookup(host, target)
            try:
                if route is None:
                    self._send_simple(404)
                else:
                    self._play(route, origin._hit(route), send_body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True

    def _play(self, route: Route, hit: int, send_body: bool) -> None:
        self.server.origin._sleep(route.delay)
        if route.drop or route.reset:
            self._abort(route.reset)
        elif hit <= route.fail_first:
            extra = {"Retry-After": route.retry_after} if route.retry_after else {}
            self._send_simple(route.fail_status, extra)
        elif self._hotlink_refused(route):
            self._send_simple(403)
        elif route.redirect is not None:
            status = route.status if 300 <= route.status < 400 else 302
            self._send_simple(status, {"Location": route.redirect, **route.headers})
        elif route.status != 200:
            self._send_simple(route.status, route.headers, route.body or None)
        elif route.validators and self._not_modified(route):
            self.send_response(304)
            self._send_headers({**self._validators(route), **_caching(route.headers)})
        else:
            self._send_body(route, send_body, hit)

    def _hotlink_refused(self, route: Route) -> bool:
        referer = self.headers.get("Referer")
        if route.forbid_referer and referer:
            return True
        if route.allow_referers is not None:
            return not (referer and referer.startswith(route.allow_referers))
        return False

    def _validators(self, route: Route) -> dict[str, str]:
        etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
        return {"ETag": etag, "Last-Modified": LAST_MODIFIED}

    def _not_modified(self, route: Route) -> bool:
        validators = self._validators(route)
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or validators["ETag"] in tags
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            asked = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return asked >= email.utils.parsedate_to_datetime(LAST_MODIFIED)

    def _send_headers(self, headers: Mapping[str, str]) -> None:
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_simple(
        self, status: int, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> None:
        if body is None:
            body = f"<!DOCTYPE html><html><body><h1>{status}</h1></body></html>\n".encode()
        self.send_response(status)
        all_headers = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}
        self._send_headers({**all_headers, **(headers or {})})
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_body(self, route: Route, send_body: bool, hit: int) -> None:
        body = route.body
        start, end = self._range(route)
        if start >= len(body) and start > 0:
            self._send_simple(416, {"Content-Range": f"bytes */{len(body)}"})
            return
        headers = {
            "Content-Type": route.content_type or _guess_type(body),
            "Content-Length": str(end - start),
            **(self._validators(route) if route.validators else {}),
            **({"Accept-Ranges": "bytes"} if route.ranges else {}),
            **route.headers,
        }
        if (start, end) != (0, len(body)):
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
        self.send_response(206 if "Content-Range" in headers else 200)
        self._send_headers(headers)
        if not send_body:
            return
        cut = self._cut_at(route, hit)
        data = body[start : end if cut is None else max(start, min(end, cut))]
        if route.body_delay > 0:
            self._send_slowly(data, route)
        else:
            self.wfile.write(data)
        if cut is not None and cut < end:
            self.wfile.flush()
            self._abort(reset=False)

    def _range(self, route: Route) -> tuple[int, int]:
        """[start, end) of the body to send: the whole body unless a Range is honoured."""
        whole = (0, len(route.body))
        asked = self.headers.get("Range", "")
        if not route.ranges or not asked.startswith("bytes=") or "," in asked:
            return whole
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range not in self._validators(route).values():
            return whole  # the client's copy is of another version: send it all
        first, _, last = asked[len("bytes=") :].partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            return whole
        end = min(int(last) + 1, len(route.body)) if last else len(route.body)
        return int(first), max(end, int(first))

    def _cut_at(self, route: Route, hit: int) -> int | None:
        if route.truncate_at is None:
            return None
        if route.truncate_first and hit > route.truncate_first:
            return None
        return route.truncate_at

    def _send_slowly(self, data: bytes, route: Route) -> None:
        for start in range(0, len(data), route.chunk_size):
            self.wfile.write(data[start : start + route.chunk_size])
            self.wfile.flush()
            self.server.origin._sleep(route.body_delay)

    def _abort(self, reset: bool) -> None:
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _test_ca() -> trustme.CA:
    """A new test certificate authority. trustme is not a dependency of mediatool itself (the
    package runs without it); it comes with the `testing` extra, so it is imported here."""
    try:
        import trustme
    except ImportError as exc:
        raise ImportError(
            "mediatool.testing.origin needs trustme to play HTTPS hosts; "
            "install it with: pip install 'mediatool[testing]'"
        ) from exc
    return trustme.CA()


def _caching(headers: Mapping[str, str]) -> dict[str, str]:
    """The caching headers among a route's own (Cache-Control, Expires), which a 304 repeats
    (RFC 9110 15.4.5): set `Route.headers` to change what the next answer says."""
    return {k: v for k, v in headers.items() if k.lower() in ("cache-control", "expires")}


GENERATED = re.compile(r"sim(\d+)v(\d+)\.(jpg|png)(?![A-Za-z0-9])")
GENERATED_SIDES = (64, 320)  # smallest and largest side of a generated picture


def closed_ports(count: int) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on (bound once, then closed): a connection to
    one is refused at once, as to a host that is down or a machine that is offline."""
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def generated_path(number: int, variant: int, ext: str = "jpg") -> str:
    """The file name that a server with `generated=True` answers with picture `number`,
    variant `variant` (0: the original), on any host and below any folder."""
    return f"sim{number}v{variant}.{ext}"


@functools.lru_cache(maxsize=512)
def generated_image(number: int, variant: int, ext: str = "jpg") -> bytes:
    """Picture `number` (shapes on a background, 64-320 px, drawn from a seeded random), as
    variant `variant`: 0 the original; then in turn cropped by 8 % on each side, rescaled to
    70 %, recompressed at low quality. The same arguments give the same bytes."""
    from PIL import Image, ImageDraw

    pick = random.Random(number)
    low, high = GENERATED_SIDES
    width, height = pick.randint(low, high), pick.randint(low, high)
    image = Image.new("RGB", (width, height), _colour(pick))
    draw = ImageDraw.Draw(image)
    for _ in range(pick.randint(3, 7)):
        box = (
            sorted(pick.randrange(width) for _ in "xx"),
            sorted(pick.randrange(height) for _ in "yy"),
        )
        shape = draw.ellipse if pick.random() < 0.5 else draw.rectangle
        shape((box[0][0], box[1][0], box[0][1], box[1][1]), fill=_colour(pick))
    quality = 85
    if variant % 3 == 1:
        image = image.crop((width // 12, height // 12, width - width // 12, height - height // 12))
    elif variant % 3 == 2:
        image = image.resize((max(width * 7 // 10, 1), max(height * 7 // 10, 1)))
    elif variant:
        quality = 30
    buffer = io.BytesIO()
    image.save(buffer, "PNG" if ext == "png" else "JPEG", quality=quality)
    return buffer.getvalue()


def _colour(pick: random.Random) -> tuple[int, int, int]:
    return (pick.randrange(256), pick.randrange(256), pick.randrange(256))


def _guess_type(body: bytes) -> str:
    for magic, content_type in _MAGIC_TYPES:
        if body.startswith(magic):
            return content_type
    return "application/octet-stream"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mediatool.testing.origin", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", type=Path, required=True, help="folder <root>/<host>/<path>")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    parser.add_argument("--ca-out", type=Path, default=None, help="where to write the CA PEM")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    parser.add_argument(
        "--generated", action="store_true", help="answer sim<i>v<v>.jpg|png paths on any host"
    )
    parser.add_argument("--no-record", action="store_true", help="keep no list of requests")
    args = parser.parse_args(argv)
    ca_path = args.ca_out or args.root.resolve().parent / "origin-ca.pem"
    server = OriginServer(
        root=args.root,
        port=args.port,
        latency=args.latency_ms / 1000,
        ca_path=ca_path,
        generated=args.generated,
        record=not args.no_record,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        print(f"PROXY={server.proxy_url}", flush=True)
        print(f"CA={server.ca_path}", flush=True)
        while not stop.wait(0.5):
            pass
    print("origin server stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
