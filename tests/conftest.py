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
from collections.abc import Iterator
from pathlib import Path

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
