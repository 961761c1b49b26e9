"""The network around the fetcher: proxies from the environment (http and SOCKS5, through a real
SOCKS5 server, mediatool.testing.socks) and a machine that is offline (hosts that refuse every
connection: closed ports on 127.0.0.1, and `.invalid` names that never resolve)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.config import FetchSettings
from mediatool.errors import EXIT_OFFLINE, EXIT_USAGE, UsageError
from mediatool.fetch import OFFLINE_MESSAGE, Fetcher
from mediatool.fetch.fetcher import OfflineWatch
from mediatool.models import Download, FetchFailure, FetchJob, FetchOutcome
from mediatool.testing import OriginServer, closed_ports
from mediatool.testing.socks import Socks5Server

pytestmark = pytest.mark.timeout(60)

FAST = FetchSettings(backoff=0.01, retries=1, connect_timeout=2.0, read_timeout=5.0)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PROXY_VARS, "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.fixture
def socks(origin: OriginServer) -> Iterator[Socks5Server]:
    """A SOCKS5 proxy that takes every CONNECT to the origin (which answers by Host)."""
    with Socks5Server(connect_to=("127.0.0.1", origin.port)) as server:
        yield server


def _fetch(
    settings: FetchSettings, tmp_path: Path, urls: list[str]
) -> tuple[list[FetchOutcome], bool]:
    jobs = [FetchJob(origin_url=url, candidates=(url,)) for url in urls]
    with Fetcher(settings, tmp_path / "tmp") as fetcher:
        outcomes = list(fetcher.fetch_all(jobs))
        return outcomes, fetcher.offline


def _post(folder: Path, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "post.html"
    path.write_text("".join(f'<p><img src="{url}"></p>\n' for url in urls), encoding="utf-8")
    return path


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


# -- SOCKS5 and other proxies ----------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_a_fetch_through_all_proxy_socks5_goes_through_the_proxy(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    origin: OriginServer,
    socks: Socks5Server,
    jpeg_bytes: bytes,
    scheme: str,
) -> None:
    urls = ["http://img.example/a.jpg", "http://img.example/b.jpg", "http://cdn.example/c.jpg"]
    for url in urls:
        origin.add(url, jpeg_bytes)
    clean_env.setenv("ALL_PROXY", socks.url.replace("socks5:", f"{scheme}:"))
    outcomes, _ = _fetch(FAST, tmp_path, urls)
    assert all(isinstance(o, Download) for o in outcomes), outcomes
    assert socks.connections >= 2  # one per host at least
    assert set(socks.targets) == {("img.example", 80), ("cdn.example", 80)}  # names, not IPs
    assert {r.via for r in origin.requests} == {"direct"}  # the origin saw no proxy request
    assert len(origin.requests) == 3


def test_a_literal_private_address_through_socks_still_needs_allow_private(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, origin: OriginServer, jpeg_bytes: bytes
) -> None:
    url = origin.url("/a.jpg")
    origin.add(url, jpeg_bytes)
    with Socks5Server() as proxy:  # connects where it is asked: the origin itself
        clean_env.setenv("ALL_PROXY", proxy.url)
        [refused], _ = _fetch(FAST, tmp_path, [url])
        assert isinstance(refused, FetchFailure) and refused.reason == "blocked_private"
        assert proxy.connections == 0
        [outcome], _ = _fetch(replace(FAST, allow_private=True), tmp_path, [url])
        assert isinstance(outcome, Download)
        assert proxy.targets == [("127.0.0.1", origin.port)]


def test_fetch_command_downloads_through_a_socks_proxy(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    origin: OriginServer,
    socks: Socks5Server,
    jpeg_bytes: bytes,
) -> None:
    origin.add("http://img.example/a.jpg", jpeg_bytes)
    post = _post(tmp_path / "posts", "http://img.example/a.jpg")
    env = {"ALL_PROXY": f"socks5h://127.0.0.1:{socks.port}"}
    result = _invoke("fetch", str(post), "--cache", str(tmp_path / "cache"), "--json", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["downloaded"] == 1
    assert socks.targets == [("img.example", 80)]


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        (
            "ALL_PROXY",
            "socks4://127.0.0.1:1080",
            "proxy scheme socks4:// is not supported (use http, https, socks5, socks5h)",
        ),
        (
            "HTTPS_PROXY",
            "ftp://proxy.example:21",
            "proxy scheme ftp:// is not supported (use http, https, socks5, socks5h)",
        ),
        ("https_proxy", "http://[bad", "'%5Bbad' is not a host name"),
        ("HTTP_PROXY", "http://proxy.example:99999", "port 99999 is out of range"),
        ("ALL_PROXY", "socks5://", "the proxy URL has no host"),
    ],
)
def test_a_malformed_proxy_variable_is_one_line_and_exit_2(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, variable: str, value: str, why: str
) -> None:
    post = _post(tmp_path / "posts", "http://img.example/a.jpg")
    clean_env.setenv(variable, value)
    result = _invoke("fetch", str(post), "--cache", str(tmp_path / "cache"))
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.stderr == (
        f"error: {variable}={value}: {why}; write http://HOST:PORT or socks5h://HOST:PORT, "
        f"or unset {variable}.\n"
    )


def test_a_socks_proxy_without_socksio_is_a_usage_error(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setitem(sys.modules, "socksio", None)  # `import socksio` fails as if not installed
    clean_env.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(UsageError) as caught:
        Fetcher(FAST, tmp_path / "tmp")
    assert str(caught.value).startswith("a socks5:// proxy is set but the socksio package")


def test_a_proxy_that_is_down_is_a_proxy_error_not_offline(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    [port] = closed_ports(1)
    clean_env.setenv("ALL_PROXY", f"socks5://127.0.0.1:{port}")
    urls = [f"http://host{i}.example/a.jpg" for i in range(4)]
    outcomes, offline = _fetch(FAST, tmp_path, urls)
    assert not offline
    assert sorted(o.reason for o in outcomes if isinstance(o, FetchFailure)) == ["proxy_error"] * 4


# -- offline -----------------------------------------------------------------------------------
def test_no_host_answering_stops_the_run_early_and_reports_nothing(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, origin: OriginServer, jpeg_bytes: bytes
) -> None:
    """One worker, five refusing hosts, then a live one: after 3 hosts refused and none answered,
    no download starts, so the live host listed last is never asked."""
    dead = [f"http://127.0.0.1:{port}/a.jpg" for port in closed_ports(5)]
    origin.add("/late.jpg", jpeg_bytes)
    settings = replace(FAST, allow_private=True, concurrency=1)
    outcomes, offline = _fetch(settings, tmp_path, [*dead, origin.url("/late.jpg")])
    assert offline
    assert outcomes == []  # the refusals are the network's, not the URLs' failures
    assert origin.requests == []


def test_names_that_never_resolve_are_offline_too(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    urls = [f"http://img{i}.mediatool.invalid/a.jpg" for i in range(4)]
    outcomes, offline = _fetch(FAST, tmp_path, urls)
    assert offline and outcomes == []


def test_refusing_hosts_are_reported_when_another_host_answers(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, origin: OriginServer, jpeg_bytes: bytes
) -> None:
    origin.add("/a.jpg", jpeg_bytes)
    dead = [f"http://127.0.0.1:{port}/a.jpg" for port in closed_ports(4)]
    settings = replace(FAST, allow_private=True, concurrency=1)
    outcomes, offline = _fetch(settings, tmp_path, [origin.url("/a.jpg"), *dead])
    assert not offline
    failures = {o.origin_url: o.reason for o in outcomes if isinstance(o, FetchFailure)}
    assert failures == dict.fromkeys(dead, "connect_error")


def test_one_refusing_host_alone_is_a_failure_not_offline(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    [port] = closed_ports(1)
    urls = [f"http://127.0.0.1:{port}/{i}.jpg" for i in range(3)]
    outcomes, offline = _fetch(replace(FAST, allow_private=True), tmp_path, urls)
    assert not offline
    assert len(outcomes) == 3 and all(isinstance(o, FetchFailure) for o in outcomes)


def test_fetch_offline_says_one_line_exits_4_and_the_next_run_tries_again(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, jpeg_bytes: bytes
) -> None:
    ports = closed_ports(3)
    urls = [f"http://127.0.0.1:{port}/photo.jpg" for port in ports]
    post = _post(tmp_path / "posts", *urls)
    args = ["fetch", str(post), "--cache", str(tmp_path / "cache"), "--allow-private"]
    offline = _invoke(*args, "--json")
    assert offline.exit_code == EXIT_OFFLINE == 4
    assert offline.stderr == OFFLINE_MESSAGE + "\n"
    summary = json.loads(offline.stdout)
    assert (summary["offline"], summary["failed"], summary["downloaded"]) == (True, [], 0)
    # The network is back for one of them: the next run (no --retry-failed) asks it again.
    with OriginServer(port=ports[0]) as back:
        back.add("/photo.jpg", jpeg_bytes)
        again = _invoke(*args, "--json")
        assert len(back.requests_for("/photo.jpg")) == 1
    assert again.exit_code == 1  # the two others now fail for good: a host answered
    summary = json.loads(again.stdout)
    assert summary["downloaded"] == 1 and not summary["offline"]
    assert sorted(f["url"] for f in summary["failed"]) == sorted(urls[1:])


# -- the run-wide verdict over parts fetched elsewhere (Dask tasks) -----------------------------
def _refused(url: str) -> FetchFailure:
    return FetchFailure(url, "connect_error", f"{url}: refused", (f"{url} -> connect_error",))


def test_parts_refused_on_three_hosts_and_no_answer_are_offline_and_report_nothing() -> None:
    watch = OfflineWatch()
    passed = [watch.passed(_refused(f"http://h{i}.test/a.jpg")) for i in range(3)]
    assert passed == [[], [], []]
    assert watch.looks_offline()  # no further part starts
    assert watch.finished() == [] and watch.offline


def test_held_refusals_are_reported_once_a_host_answers() -> None:
    watch = OfflineWatch()
    refused = [_refused(f"http://h{i}.test/a.jpg") for i in range(2)]
    assert [watch.passed(r) for r in refused] == [[], []]
    missing = FetchFailure("http://up.test/b.jpg", "http_404", "not found", ("x -> http_404",))
    assert watch.passed(missing) == [*refused, missing]  # a 404 is an answer
    later = _refused("http://h9.test/c.jpg")
    assert watch.passed(later) == [later]
    assert watch.finished() == [] and not watch.offline


def test_one_refusing_host_alone_over_parts_is_its_failure_not_offline() -> None:
    watch = OfflineWatch()
    refused = [_refused(f"http://h.test/{i}.jpg") for i in range(3)]
    for failure in refused:
        assert watch.passed(failure) == []
    watch.task_ended(False)
    assert watch.finished() == refused and not watch.offline


def test_a_part_that_stopped_offline_makes_the_run_offline_when_none_answered() -> None:
    watch = OfflineWatch()
    watch.task_ended(True)
    assert watch.looks_offline()
    assert watch.finished() == [] and watch.offline
