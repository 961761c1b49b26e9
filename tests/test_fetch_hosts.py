"""Per-host budgets ([fetch.hosts."HOST"]): the config keys, which key applies to a host, and the
fetcher keeping each host's requests at once, rate and delay, measured on the origin's clock.

Several hosts on loopback: `proxy_env` makes the origin a forward proxy, so a.example,
b.example, ... all reach it and it records each request with its host and arrival time."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from mediatool.config import (
    CDN_PER_HOST,
    DEFAULT_PER_HOST,
    FetchSettings,
    HostBudget,
    load_settings,
)
from mediatool.errors import UsageError
from mediatool.fetch import Fetcher
from mediatool.fetch.hosts import HostTable, budget_of
from mediatool.models import Download, FetchJob
from mediatool.testing import OriginServer

pytestmark = pytest.mark.timeout(30)

FAST = FetchSettings(backoff=0.01, retries=1, connect_timeout=5.0, read_timeout=5.0)
TOLERANCE = 0.15  # seconds: client start to server arrival may differ this much between requests


def _settings(tmp_path: Path, toml: str) -> FetchSettings:
    path = tmp_path / "mediatool.toml"
    path.write_text(toml, encoding="utf-8")
    return load_settings(path).fetch


def _config_error(tmp_path: Path, toml: str) -> str:
    with pytest.raises(UsageError) as caught:
        _settings(tmp_path, toml)
    message = str(caught.value)
    assert "\n" not in message
    return message.removeprefix(f"{tmp_path / 'mediatool.toml'}: ")


def _fetch(settings: FetchSettings, tmp_path: Path, urls: list[str]) -> list[object]:
    jobs = [FetchJob(origin_url=url, candidates=(url,)) for url in urls]
    with Fetcher(settings, tmp_path / "tmp") as fetcher:
        return list(fetcher.fetch_all(jobs))


def _starts(origin: OriginServer, host: str) -> list[float]:
    """When each GET for `host` arrived at the origin, in order."""
    prefix = f"http://{host}/"
    return sorted(r.time for r in origin.requests if r.url.startswith(prefix))


# -- config ------------------------------------------------------------------------------------
def test_a_host_table_loads_with_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMG_TOKEN", "s3cret")
    settings = _settings(
        tmp_path,
        '[fetch.hosts."Img.Example.com"]\nper_host = 2\nrequests_per_second = 0.5\n'
        'delay = 1\nheaders = { Authorization = "Bearer ${IMG_TOKEN}" }\n',
    )
    assert settings.hosts == {
        "img.example.com": HostBudget(2, 0.5, 1.0, {"Authorization": "Bearer s3cret"})
    }


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[fetch.hosts."x.com"]\nper_host = "abc"\n',
            'fetch.hosts."x.com".per_host must be an integer from 1 to 64, got "abc"',
        ),
        (
            '[fetch.hosts."x.com"]\nper_host = 65\n',
            'fetch.hosts."x.com".per_host must be an integer from 1 to 64, got 65',
        ),
        (
            '[fetch.hosts."x.com"]\nrequests_per_second = 0\n',
            'fetch.hosts."x.com".requests_per_second must be a number from 0.001 to 1000, got 0',
        ),
        (
            '[fetch.hosts."x.com"]\ndelay = -1\n',
            'fetch.hosts."x.com".delay must be a number from 0 to 3600, got -1',
        ),
        (
            '[fetch.hosts."x.com"]\nper_hots = 2\n',
            'unknown key fetch.hosts."x.com".per_hots; did you mean fetch.hosts."x.com".per_host?',
        ),
        (
            '[fetch.hosts."x.com"]\nheaders = { Referer = 1 }\n',
            'fetch.hosts."x.com".headers.Referer must be a string, got 1',
        ),
        (
            '[fetch.hosts."x.com"]\nheaders = { Cookie = "${MEDIATOOL_NOT_SET}" }\n',
            'fetch.hosts."x.com".headers.Cookie names ${MEDIATOOL_NOT_SET}, which is not set; '
            "set the environment variable MEDIATOOL_NOT_SET (e.g. from a CI secret) or drop "
            "the header.",
        ),
        ("[fetch]\nhosts = 3\n", 'fetch.hosts must be tables [fetch.hosts."HOST"].'),
        (
            '[fetch.hosts."https://x.com/"]\ndelay = 1\n',
            'fetch.hosts."https://x.com/" is not a host name; write the host alone, e.g. '
            '[fetch.hosts."img.example.com"] (it also matches its subdomains).',
        ),
    ],
)
def test_a_wrong_host_table_is_one_line_naming_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    assert _config_error(tmp_path, toml) == message


# -- which budget a host gets --------------------------------------------------------------------
def test_a_key_matches_its_host_and_subdomains_and_the_most_specific_wins() -> None:
    settings = FetchSettings(
        per_host=4,
        hosts={
            "example.com": HostBudget(per_host=2, delay=1.0, headers={"Referer": "r", "X": "1"}),
            "img.example.com": HostBudget(per_host=3, headers={"X": "2"}),
            "img.example.com:8080": HostBudget(requests_per_second=0.5),
        },
    )
    assert budget_of(settings, "example.com").per_host == 2
    assert budget_of(settings, "cdn.example.com") == budget_of(settings, "example.com")
    img = budget_of(settings, "img.example.com")
    assert (img.per_host, img.delay, img.rate) == (3, 1.0, None)  # delay from example.com
    assert img.headers == {"Referer": "r", "X": "2"}
    assert budget_of(settings, "img.example.com:8080").rate == 0.5
    assert budget_of(settings, "notexample.com").per_host == 4  # a suffix is not a subdomain
    assert budget_of(settings, "other.org").per_host == 4


def test_image_cdns_get_more_requests_at_once_unless_the_user_says_otherwise() -> None:
    assert budget_of(FetchSettings(), "i0.wp.com").per_host == CDN_PER_HOST
    assert budget_of(FetchSettings(), "pbs.twimg.com:443").per_host == CDN_PER_HOST
    assert budget_of(FetchSettings(), "example.com").per_host == DEFAULT_PER_HOST
    mine = FetchSettings(hosts={"wp.com": HostBudget(per_host=2)})
    assert budget_of(mine, "i2.wp.com").per_host == 2  # the user's key before the built-in
    polite = FetchSettings(per_host=1)  # fewer at once everywhere: the CDNs too
    assert budget_of(polite, "i0.wp.com").per_host == 1


# -- the fetcher keeps them --------------------------------------------------------------------
def test_each_host_gets_its_own_requests_at_once(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    urls = []
    for host in ("a.example", "b.example"):
        for i in range(8):
            url = f"http://{host}/{i}.jpg"
            proxy_env.add(url, jpeg_bytes, delay=0.3)
            urls.append(url)
    settings = _settings(tmp_path, '[fetch.hosts."a.example"]\nper_host = 2\n')
    settings = replace(FAST, per_host=4, concurrency=12, hosts=settings.hosts)
    outcomes = _fetch(settings, tmp_path, urls)
    assert all(isinstance(o, Download) for o in outcomes)
    assert proxy_env.max_in_flight("a.example") == 2
    assert 2 < proxy_env.max_in_flight("b.example") <= 4


def test_a_delay_spaces_the_starts_of_a_hosts_requests(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    urls = [f"http://slow.example/{i}.jpg" for i in range(4)]
    for url in urls:
        proxy_env.add(url, jpeg_bytes)
    hosts = {"slow.example": HostBudget(delay=0.3)}
    outcomes = _fetch(replace(FAST, per_host=4, hosts=hosts), tmp_path, urls)
    assert all(isinstance(o, Download) for o in outcomes)
    starts = _starts(proxy_env, "slow.example")
    assert len(starts) == 4
    for earlier, later in itertools.pairwise(starts):
        assert later - earlier >= 0.3 - TOLERANCE


def test_requests_per_second_is_a_token_bucket_of_one_second(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    rate = 5.0  # the bucket holds max(1, rate) = 5 tokens and gains 5 a second
    urls = [f"http://rated.example/{i}.jpg" for i in range(12)]
    for url in urls:
        proxy_env.add(url, jpeg_bytes)
    hosts = {"rated.example": HostBudget(requests_per_second=rate)}
    outcomes = _fetch(replace(FAST, per_host=8, concurrency=8, hosts=hosts), tmp_path, urls)
    assert all(isinstance(o, Download) for o in outcomes)
    starts = _starts(proxy_env, "rated.example")
    assert len(starts) == 12
    for i, first in enumerate(starts):  # any window holds at most burst + rate x its length
        for j in range(i, len(starts)):
            assert j - i + 1 <= rate + rate * (starts[j] - first + TOLERANCE)


def test_a_host_waiting_for_its_delay_holds_no_worker(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    slow = [f"http://waits.example/{i}.jpg" for i in range(3)]
    fast = [f"http://free.example/{i}.jpg" for i in range(3)]
    for url in slow + fast:
        proxy_env.add(url, jpeg_bytes)
    hosts = {"waits.example": HostBudget(delay=1.0)}
    # One worker, the waiting host's jobs queued first: the other host's run in its pauses.
    outcomes = _fetch(replace(FAST, concurrency=1, hosts=hosts), tmp_path, slow + fast)
    assert all(isinstance(o, Download) for o in outcomes)
    waits = _starts(proxy_env, "waits.example")
    assert all(start < waits[1] for start in _starts(proxy_env, "free.example"))


def test_host_table_headers_go_to_the_host_and_its_subdomains_only(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    urls = ["http://img.blog.example/a.jpg", "http://other.example/b.jpg"]
    for url in urls:
        proxy_env.add(url, jpeg_bytes)
    settings = _settings(
        tmp_path,
        '[fetch.hosts."blog.example"]\nheaders = { Referer = "https://blog.example/" }\n'
        '[fetch.headers."img.blog.example"]\nCookie = "a=1"\n',
    )
    outcomes = _fetch(replace(settings, retries=0), tmp_path, urls)
    assert all(isinstance(o, Download) for o in outcomes)
    [img] = proxy_env.requests_for(urls[0])
    assert (img.header("Referer"), img.header("Cookie")) == ("https://blog.example/", "a=1")
    [other] = proxy_env.requests_for(urls[1])
    assert other.header("Referer") is None


def test_failures_in_a_row_carry_over_to_the_next_table_of_the_same_work() -> None:
    """A Dask part's next task counts on from the failures its last task ended with: a host
    reaches host_down_after across the two, and one that answered starts again from 0."""
    first = HostTable(replace(FAST, host_down_after=5))
    for _ in range(3):
        first.connection_failed("dead.test")
    first.connection_failed("flaky.test")
    first.answered("flaky.test")
    assert first.failures_in_a_row() == {"dead.test": 3}
    second = HostTable(replace(FAST, host_down_after=5))
    second.continue_failures(first.failures_in_a_row())
    second.connection_failed("dead.test")
    assert not second.is_down("dead.test")
    second.connection_failed("dead.test")
    assert second.is_down("dead.test") and not second.is_down("flaky.test")
    third = HostTable(replace(FAST, host_down_after=5))
    third.continue_failures(second.failures_in_a_row())
    assert third.is_down("dead.test")  # down at once: no request of the next task asks it
