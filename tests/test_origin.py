"""The origin server itself: proxy, CONNECT + TLS, folder layout, validators, the CLI."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mediatool.testing import OriginServer, save_site
from mediatool.testing.site import relpath_for

pytestmark = pytest.mark.timeout(20)
REPO = Path(__file__).resolve().parents[1]


def test_plays_any_host_as_proxy_and_through_connect(origin: OriginServer) -> None:
    origin.add("http://static.1sapp.com/a.jpg", b"\xff\xd8\xff-a")
    origin.add("https://img.example.org/b.png", b"\x89PNG-b")
    context = ssl.create_default_context(cafile=str(origin.ca_path))
    with httpx.Client(proxy=origin.proxy_url, verify=context, trust_env=False) as client:
        assert client.get("http://static.1sapp.com/a.jpg").content == b"\xff\xd8\xff-a"
        answer = client.get("https://img.example.org/b.png")
        assert (answer.status_code, answer.content) == (200, b"\x89PNG-b")
        assert answer.headers["content-type"] == "image/png"
    assert [(r.method, r.via) for r in origin.requests] == [
        ("GET", "proxy"),
        ("CONNECT", "proxy"),
        ("GET", "tunnel"),
    ]


def test_direct_requests_and_host_paths(origin: OriginServer) -> None:
    origin.add("/x.jpg", b"\xff\xd8\xff-x")
    origin.add("http://static.1sapp.com/a.jpg", b"\xff\xd8\xff-a")
    with httpx.Client(trust_env=False) as client:
        assert client.get(origin.url("/x.jpg")).content == b"\xff\xd8\xff-x"
        assert client.get(origin.url("/static.1sapp.com/a.jpg")).content == b"\xff\xd8\xff-a"
        assert client.get(origin.url("/nothing")).status_code == 404


def test_validators_and_304(origin: OriginServer) -> None:
    origin.add("/v.jpg", b"\xff\xd8\xff-v")
    with httpx.Client(trust_env=False) as client:
        first = client.get(origin.url("/v.jpg"))
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert client.get(origin.url("/v.jpg"), headers={"If-None-Match": etag}).status_code == 304
        since = {"If-Modified-Since": modified}
        assert client.get(origin.url("/v.jpg"), headers=since).status_code == 304
        other = {"If-None-Match": '"other"'}
        assert client.get(origin.url("/v.jpg"), headers=other).status_code == 200


def test_fail_first_then_succeed_with_retry_after(origin: OriginServer) -> None:
    origin.add("/r.jpg", b"\xff\xd8\xff", fail_first=1, fail_status=429, retry_after="7")
    with httpx.Client(trust_env=False) as client:
        limited = client.get(origin.url("/r.jpg"))
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
        assert client.get(origin.url("/r.jpg")).status_code == 200


def test_site_folder_with_index_for_awkward_urls(tmp_path: Path) -> None:
    pages = {
        "http://static.1sapp.com/image/a.jpg": b"plain",
        "https://img.example.org/p/~user/b!.jpg?w=100&h=1:2": b"awkward",
        "http://img.example.org:8080/c.png": b"port",
    }
    save_site(tmp_path, pages)
    assert (tmp_path / "static.1sapp.com/image/a.jpg").read_bytes() == b"plain"
    assert relpath_for("http://img.example.org:8080/c.png") == ("img.example.org:8080/c.png", False)
    index = (tmp_path / "urls.tsv").read_text().splitlines()
    assert len(index) == 1 and index[0].startswith("https://img.example.org/p/~user/b!.jpg?")
    with OriginServer(root=tmp_path) as server, httpx.Client(proxy=server.proxy_url) as client:
        for url, body in pages.items():
            assert client.get(url.replace("https://", "http://")).content == body
        OriginServer.save_site(tmp_path, {"http://late.example/new.jpg?v=2": b"late"})
        assert client.get("http://late.example/new.jpg?v=2").content == b"late"


def test_standalone_cli_prints_proxy_and_stops_on_sigterm(tmp_path: Path) -> None:
    save_site(tmp_path / "site", {"http://static.1sapp.com/a.jpg": b"\xff\xd8\xff-cli"})
    command = [sys.executable, "-m", "mediatool.testing.origin", "--root", str(tmp_path / "site")]
    command += ["--ca-out", str(tmp_path / "ca.pem")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as server:
        assert server.stdout is not None
        proxy = server.stdout.readline().strip().removeprefix("PROXY=")
        assert server.stdout.readline().strip() == f"CA={tmp_path / 'ca.pem'}"
        with httpx.Client(proxy=proxy, trust_env=False) as client:
            assert client.get("http://static.1sapp.com/a.jpg").content == b"\xff\xd8\xff-cli"
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0
