"""Shared fixtures: a real origin server that plays any host, tiny real images, a cache folder.

- `origin`: a started `OriginServer` (one per session, reset before each test: no routes, no
  recorded requests, no latency). `origin.add(url, body=...)`, `origin.url("/a.jpg")`,
  `origin.requests_for(url)`.
- `proxy_env`: HTTP_PROXY/HTTPS_PROXY point at `origin`, SSL_CERT_FILE at its test CA, NO_PROXY
  and ALL_PROXY cleared; any http(s) URL then reaches `origin`, whatever its host.
- `no_proxy_env`: every proxy and CA variable cleared (hermetic direct requests).
- `jpeg_bytes`, `png_bytes`: small real images made with Pillow, the same bytes every run.
- `tmp_cache`: an empty cache folder.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mediatool.testing import OriginServer

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
CA_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def _gradient(mode: str, size: tuple[int, int]) -> Image.Image:
    width, height = size
    image = Image.new(mode, size)
    image.putdata(
        [
            ((x * 255) // width, (y * 255) // height, ((x + y) * 7) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    return image


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A 64x48 RGB JPEG (a few KB)."""
    buffer = io.BytesIO()
    _gradient("RGB", (64, 48)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    """A 32x24 RGB PNG."""
    buffer = io.BytesIO()
    _gradient("RGB", (32, 24)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def _origin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OriginServer]:
    ca_path = tmp_path_factory.mktemp("origin") / "ca.pem"
    with OriginServer(ca_path=ca_path) as server:
        yield server


@pytest.fixture
def origin(_origin_server: OriginServer) -> Iterator[OriginServer]:
    _origin_server.reset()
    yield _origin_server
    _origin_server.reset()


def _clear(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> None:
    for name in names:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear(monkeypatch, PROXY_VARS + CA_VARS)


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch, origin: OriginServer) -> OriginServer:
    _clear(monkeypatch, PROXY_VARS + CA_VARS)
    monkeypatch.setenv("HTTP_PROXY", origin.proxy_url)
    monkeypatch.setenv("HTTPS_PROXY", origin.proxy_url)
    monkeypatch.setenv("SSL_CERT_FILE", str(origin.ca_path))
    return origin


@pytest.fixture
def tmp_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    return cache


# --- s3: a fresh bucket on moto's S3 server, in this process on loopback -----------------------
# (moto and boto3 are imported by these fixtures only: other tests do not pay for them)


def _counting_moto_server() -> Any:
    """moto's S3 on 127.0.0.1 (a free port) that records each request (method, path, query) in
    `requests` and answers one at a time: a real S3 decides conditional writes
    (If-None-Match) atomically, moto does only when its requests do not overlap."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class CountingMotoServer(ThreadedMotoServer):
        def __init__(self) -> None:
            super().__init__("127.0.0.1", 0, verbose=False)
            self.requests: list[tuple[str, str, str]] = []
            self._one_at_a_time = threading.Lock()

        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def recorded(environ: dict[str, Any], start_response: Any) -> list[bytes]:
                with self._one_at_a_time:
                    request = (environ["REQUEST_METHOD"], environ["PATH_INFO"])
                    self.requests.append((*request, environ.get("QUERY_STRING", "")))
                    return list(app(environ, start_response))

            self._server = make_server(
                self._ip_address, self._port, recorded, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return CountingMotoServer()


@dataclass
class S3Bucket:
    """A fresh bucket on the moto server (its `endpoint`), and a client of the test's own."""

    server: Any
    endpoint: str
    name: str
    client: Any

    @property
    def url(self) -> str:
        """The cache to give mediatool: s3://<bucket>/blog."""
        return f"s3://{self.name}/blog"

    def object_keys(self) -> list[str]:
        answer = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in answer.get("Contents", ()))

    def body(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return data

    def requests(self, method: str, below: str = "") -> list[str]:
        """Paths of the recorded requests with `method` whose path starts with `below`."""
        return [p for m, p, _ in self.server.requests if m == method and p.startswith(below)]


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[Any]:
    server = _counting_moto_server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(_moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A new empty bucket on moto's server; AWS_ENDPOINT_URL, test credentials and a region set
    for mediatool's own client, NO_PROXY covering the loopback endpoint; no request recorded
    yet (`s3.requests("PUT")`, `s3.object_keys()`)."""
    import boto3

    host, port = _moto_server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    values = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    name = f"media-{next(_bucket_numbers)}"
    client.create_bucket(Bucket=name)
    _moto_server.requests.clear()
    return S3Bucket(_moto_server, endpoint, name, client)


_bucket_numbers = itertools.count()
