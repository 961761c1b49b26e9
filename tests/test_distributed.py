"""`fetch --scheduler` and `thumbs --scheduler`: the same results on a real Dask cluster as in
one process, a worker killed mid-run changing nothing but the time, hosts kept at per_host
across workers, and one-line errors for a bad, missing or unreachable scheduler.

One LocalCluster (2 worker processes of 1 thread, loopback, no dashboard) serves the module's
tcp:// runs; `local:2` starts its own. The origin server plays every host, through
HTTP_PROXY/HTTPS_PROXY, which the worker processes inherit when they start."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner
from distributed import Client
from PIL import Image

from mediatool.cli import main
from mediatool.errors import EXIT_OFFLINE
from mediatool.fetch import OFFLINE_MESSAGE
from mediatool.partition import shard_of
from mediatool.pipeline import distributing
from mediatool.pipeline.distributing import NEEDS_DASK, local_cluster
from mediatool.testing.origin import OriginServer, RecordedRequest, closed_ports

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "archive"


@pytest.fixture(scope="module")
def served() -> Iterator[OriginServer]:
    """The example archive's origin, reached through the proxy variables (set for the module,
    before any worker process starts, so the workers inherit them)."""
    with OriginServer(root=EXAMPLE / "origin") as server, pytest.MonkeyPatch.context() as env:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.setenv(name, server.proxy_url)
        env.setenv("SSL_CERT_FILE", str(server.ca_path))
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_DIR"):
            env.delenv(name, raising=False)
        yield server


@pytest.fixture(scope="module")
def cluster(served: OriginServer) -> Iterator[Client]:
    """A client of a running 2-worker cluster (its address is what --scheduler tcp:// gets),
    made as `--scheduler local:2` makes its own."""
    with local_cluster(2) as local, Client(local, set_as_default=False) as client:
        yield client


@pytest.fixture
def origin(served: OriginServer) -> Iterator[OriginServer]:
    yield served
    served.on_request = None


def _image(seed: int) -> bytes:
    """A real 96x64 JPEG, different for each seed."""
    image = Image.new("RGB", (96, 64))
    image.putdata(
        [
            ((x * seed) % 256, (y * 7 + seed * 31) % 256, (x * y + seed) % 256)
            for y in range(64)
            for x in range(96)
        ]
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _generated_archive(
    root: Path, origin: OriginServer, name: str, per_host: int = 8, delay: float = 0.0
) -> list[str]:
    """Posts under root/posts that show `per_host` images of each of 4 hosts named after
    `name` (a near-duplicate pair among them); the hosts' names."""
    hosts = [f"{letter}.{name}.test" for letter in "abcd"]
    urls = []
    for h, host in enumerate(hosts):
        for i in range(per_host):
            url = f"http://{host}/img/{i}.jpg"
            origin.add(url, _image(h * per_host + i + 1), delay=delay)
            urls.append(url)
    again = Image.open(io.BytesIO(_image(1)))
    buffer = io.BytesIO()
    again.save(buffer, "JPEG", quality=60)  # the same picture, other bytes: a near-duplicate
    origin.add(f"http://{hosts[-1]}/img/again.jpg", buffer.getvalue(), delay=delay)
    urls.append(f"http://{hosts[-1]}/img/again.jpg")
    posts = root / "posts"
    posts.mkdir(parents=True)
    for p in range(4):
        lines = [f"# post {p}", ""] + [f"![]({url})" for url in urls[p::4]]
        (posts / f"post-{p}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return hosts


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def _fetch(root: Path, *extra: str) -> dict[str, Any]:
    result = _invoke("fetch", str(root / "posts"), "--cache", str(root / "cache"), "--json", *extra)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _results(root: Path) -> dict[str, Any]:
    """What a run leaves: stored originals (checked against their names), thumbnails with their
    bytes, the canonical copy of each image, and the posts as `rewrite` makes them."""
    cache = root / "cache"
    originals = sorted(p.name for p in (cache / "originals").rglob("*") if p.is_file())
    for path in (cache / "originals").rglob("*.*"):
        assert path.stem == _sha256(path), f"{path} does not hold the bytes it is named for"
    thumbs = {
        p.relative_to(cache).as_posix(): _sha256(p)
        for p in (cache / "thumbs").rglob("*")
        if p.is_file()
    }
    with sqlite3.connect(cache / "manifest.sqlite") as db:
        canonical = dict(db.execute("SELECT sha256, coalesce(canonical, sha256) FROM images"))
    rewritten = _invoke("rewrite", str(root / "posts"), "--cache", str(cache))
    assert rewritten.exit_code == 0, rewritten.output
    posts = {p.name: p.read_bytes() for p in sorted((root / "posts").iterdir())}
    return {"originals": originals, "thumbs": thumbs, "canonical": canonical, "posts": posts}


def _same_summary(one: dict[str, Any], other: dict[str, Any]) -> None:
    keys = ("distinct_urls", "downloaded", "images_analyzed", "groups", "grouped_images")
    assert {k: other[k] for k in keys} == {k: one[k] for k in keys}
    assert other["failed"] == one["failed"] == []


def _worker_profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_the_local_cluster_runs_without_the_profiler_and_keeps_short_logs(
    cluster: Client,
) -> None:
    """local:N's workers start without the sampling profiler (the config reaches the worker
    processes as they start), and its scheduler (in this process) keeps short logs."""
    assert set(cluster.run(_worker_profiling).values()) == {False}
    scheduler = cluster.cluster.scheduler  # type: ignore[union-attr]
    assert scheduler.transition_log.maxlen == 100
    assert len(scheduler.computations) <= 1


# --- the same results --------------------------------------------------------------------


def test_local_cluster_gives_the_results_of_one_process(
    tmp_path: Path, origin: OriginServer, cluster: Client
) -> None:
    for name in ("one", "dask"):
        shutil.copytree(EXAMPLE / "posts", tmp_path / name / "posts")
    one = _fetch(tmp_path / "one")
    dask = _fetch(tmp_path / "dask", "--scheduler", "local:2")
    _same_summary(one, dask)
    assert dask["groups"] > 0
    expected = _results(tmp_path / "one")
    assert _results(tmp_path / "dask") == expected
    thumbs = _invoke(
        "thumbs",
        "--cache",
        str(tmp_path / "dask" / "cache"),
        "--scheduler",
        cluster.scheduler.address,
        "--json",
    )
    assert thumbs.exit_code == 0, thumbs.output
    assert _results(tmp_path / "dask")["thumbs"] == expected["thumbs"]


def _kill_the_asker(request_number: int, pids: list[int], killed: list[int]) -> Any:
    """An origin hook: at the `request_number`-th GET, kill -9 the worker process that sent
    it (the one holding the connection the request came on), while it waits for the answer."""
    seen = iter(range(1, 1_000_000))
    lock = threading.Lock()

    def hook(request: RecordedRequest) -> None:
        with lock:
            if request.method != "GET" or next(seen) != request_number:
                return
        for pid in pids:
            process = psutil.Process(pid)
            ports = {c.laddr.port for c in process.net_connections("tcp") if c.laddr}
            if request.client[1] in ports:
                process.kill()
                killed.append(pid)
                return

    return hook


def test_a_worker_killed_mid_run_changes_nothing_but_the_time(
    tmp_path: Path, origin: OriginServer, cluster: Client
) -> None:
    for name in ("one", "dask"):
        _generated_archive(tmp_path / name, origin, "killed", per_host=5)
    one = _fetch(tmp_path / "one")
    expected = _results(tmp_path / "one")
    pids = list(cluster.run(os.getpid).values())
    killed: list[int] = []
    origin.on_request = _kill_the_asker(4, pids, killed)
    before = len(origin.requests)
    try:
        dask = _fetch(tmp_path / "dask", "--scheduler", cluster.scheduler.address)
    finally:
        origin.on_request = None
        cluster.wait_for_workers(2, timeout=60)
    assert len(killed) == 1, "no worker was killed: the test did not test anything"
    asked = [r.url for r in origin.requests[before:] if r.method == "GET"]
    assert len(asked) > len(set(asked)), "the killed worker's part was not run again"
    _same_summary(one, dask)
    assert _results(tmp_path / "dask") == expected


def test_a_dead_host_is_given_up_after_host_down_after_failures_across_tasks(
    tmp_path: Path, origin: OriginServer, cluster: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 URLs of a host that closes every connection, 3 a task, one request at a time and no
    retries: the host is down after host_down_after (5) failures in a row, counted across
    tasks, as one process counts them; tasks counting anew would each ask all 3 (12)."""
    monkeypatch.setattr(distributing, "URLS_PER_TASK", 3)
    urls = [f"http://dead.down.test/img/{i}.jpg" for i in range(12)]
    for url in urls:
        origin.add(url, b"", drop=True)
    (tmp_path / "posts").mkdir()
    text = "\n".join(f"![]({url})" for url in urls) + "\n"
    (tmp_path / "posts" / "dead.md").write_text(text, encoding="utf-8")
    before = len(origin.requests)
    result = _invoke(
        "fetch", str(tmp_path / "posts"), "--cache", str(tmp_path / "cache"), "--json",
        "--scheduler", cluster.scheduler.address, "--per-host", "1", "--retries", "0",
    )  # fmt: skip
    summary = json.loads(result.stdout)
    asked = [r for r in origin.requests[before:] if "dead.down.test" in r.url]
    assert len(asked) == 5
    assert len(summary["failed"]) == 12
    reasons = {failure["reason"] for failure in summary["failed"]}
    assert reasons == {"connect_error", "host_down"}, reasons


def test_outcomes_come_back_as_each_task_of_a_host_ends_not_when_the_host_is_done(
    tmp_path: Path, origin: OriginServer, cluster: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slow host of 6 URLs, 2 a task, one request at a time: the first outcomes reach
    this process (to be recorded) while the host's later URLs are not yet asked; as one
    task for the whole host, nothing would come back before all 6 were."""
    from mediatool.config import FetchSettings, Settings
    from mediatool.models import FetchJob
    from mediatool.pipeline.common import store_of

    monkeypatch.setattr(distributing, "URLS_PER_TASK", 2)
    urls = [f"http://slow.tasks.test/img/{i}.jpg" for i in range(6)]
    for seed, url in enumerate(urls, 1):
        origin.add(url, _image(seed), delay=0.3)
    settings = Settings(cache_dir=tmp_path / "cache", fetch=FetchSettings(per_host=1))
    store_of(settings).prepare()
    before = len(origin.requests)
    remote = distributing.Cluster(cluster, settings, lambda line: None)
    outcomes = remote.fetch_all([FetchJob(url, (url,)) for url in urls])
    next(outcomes)
    asked_at_first = len([r for r in origin.requests[before:] if "slow.tasks.test" in r.url])
    rest = list(outcomes)
    assert asked_at_first < len(urls) and len(rest) == len(urls) - 1


def test_a_time_budget_stops_every_worker_and_the_next_run_does_the_rest(
    tmp_path: Path, origin: OriginServer, cluster: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--time-budget with --scheduler: no request starts after it on any worker, no further
    task is sent, the run says resume needed, and running it again fetches what was left."""
    import time

    monkeypatch.setattr(distributing, "URLS_PER_TASK", 2)
    _generated_archive(tmp_path, origin, "budget", per_host=10, delay=0.2)
    args = ["--scheduler", cluster.scheduler.address, "--per-host", "1"]
    before, started = len(origin.requests), time.monotonic()
    first = _fetch(tmp_path, *args, "--time-budget", "2")
    late = [r for r in origin.requests[before:] if r.time > started + 2 + 0.5]
    assert first["resume_needed"] and first["not_started"] > 0 and first["failed"] == []
    assert late == []
    second = _fetch(tmp_path, *args)
    assert not second["resume_needed"] and second["failed"] == []
    assert first["downloaded"] + second["downloaded"] == 4 * 10 + 1


@pytest.mark.parametrize("urls_per_task", [500, 3])
def test_no_host_gets_more_than_per_host_requests_at_once_across_workers(
    tmp_path: Path,
    origin: OriginServer,
    cluster: Client,
    monkeypatch: pytest.MonkeyPatch,
    urls_per_task: int,
) -> None:
    """Each host's URLs in one task, or (3 a task) in tasks that must run one after another:
    four threads running a host's tasks at once would ask it up to 8 at a time."""
    monkeypatch.setattr(distributing, "URLS_PER_TASK", urls_per_task)
    name = f"busy{urls_per_task}"
    hosts = _generated_archive(tmp_path, origin, name, per_host=10, delay=0.05)
    summary = _fetch(tmp_path, "--scheduler", cluster.scheduler.address, "--per-host", "2")
    assert summary["downloaded"] == 4 * 10 + 1
    peaks = {host: origin.max_in_flight(host) for host in hosts}
    assert all(1 <= peak <= 2 for peak in peaks.values()), peaks


def test_a_plan_split_in_more_parts_than_run_at_once_fetches_every_url_once(
    tmp_path: Path, origin: OriginServer, cluster: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One part per thread at a time (PARTS_PER_THREAD 1) for more host-owned parts than
    threads: the next part is submitted, its jobs read from the plan, as one completes."""
    monkeypatch.setattr(distributing, "PARTS_PER_THREAD", 1)
    monkeypatch.setattr(distributing, "URLS_PER_TASK", 1)  # a part per URL, hosts allowing
    summaries = []
    for name, extra in (("one", ()), ("dask", ("--scheduler", cluster.scheduler.address))):
        root = tmp_path / name
        hosts = [h for a in ("w1", "w2") for h in _generated_archive(root / a, origin, a, 2)]
        before = len(origin.requests)
        posts = [str(root / a / "posts") for a in ("w1", "w2")]
        result = _invoke("fetch", *posts, "--cache", str(root / "cache"), "--json", *extra)
        assert result.exit_code == 0, result.output
        summaries.append(json.loads(result.stdout))
    asked = [r.url for r in origin.requests[before:] if r.method == "GET"]
    urls = 2 * (4 * 2 + 1)
    threads = sum(cluster.nthreads().values())
    assert len({shard_of(host, urls) for host in hosts}) > threads  # more parts than threads
    assert len(asked) == len(set(asked)) == urls == summaries[1]["downloaded"]
    _same_summary(*summaries)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["local:0", "local:257", "local:x", "foo", "tcp://host"])
def test_a_scheduler_that_is_not_local_n_or_tcp_is_one_line_and_exit_2(
    tmp_path: Path, value: str
) -> None:
    (tmp_path / "posts").mkdir()
    result = _invoke(
        "fetch", str(tmp_path / "posts"), "--cache", str(tmp_path / "cache"), "--scheduler", value
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: --scheduler {value!r} is not local:N (N Dask worker processes here, 1 to 256) "
        "or tcp://HOST:PORT (a running Dask scheduler); fix the value."
    ]


def test_a_bad_scheduler_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "posts").mkdir()
    config = tmp_path / "mediatool.toml"
    config.write_text('scheduler = "local:0"\n', encoding="utf-8")
    result = _invoke("fetch", str(tmp_path / "posts"), "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {config}: scheduler 'local:0' is not local:N")


# Dask made unimportable (a None in sys.modules fails the import), then the command line runs:
# mediatool without Dask installed, and proof that nothing but --scheduler imports it.
BLOCK_DASK = (
    "import sys; sys.modules['dask'] = sys.modules['distributed'] = None; "
    "from mediatool.cli import main; main()"
)


def test_without_dask_the_scheduler_is_one_line_and_exit_2_and_the_rest_works(
    tmp_path: Path,
) -> None:
    (tmp_path / "posts").mkdir()
    args = [sys.executable, "-c", BLOCK_DASK, "fetch", str(tmp_path / "posts")]
    args += ["--cache", str(tmp_path / "cache")]
    with_scheduler = subprocess.run(
        [*args, "--scheduler", "local:2"], capture_output=True, text=True
    )
    assert with_scheduler.returncode == 2
    assert with_scheduler.stderr == f"error: {NEEDS_DASK}\n"
    assert NEEDS_DASK == "--scheduler needs Dask: pip install 'mediatool[dask]'"
    without = subprocess.run(args, capture_output=True, text=True)
    assert without.returncode == 0, without.stderr


def test_an_unreachable_scheduler_is_one_line_naming_it_and_exit_3(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    (tmp_path / "posts").mkdir()
    result = _invoke(
        "fetch", str(tmp_path / "posts"), "--cache", str(tmp_path / "cache"), "--scheduler", address
    )
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {address}: no Dask scheduler answered within 5 s; start one (`dask scheduler`, "
        f"and `dask worker {address}` on each machine) or fix --scheduler"
    ]


def test_workers_running_another_mediatool_are_one_line_and_exit_3(
    tmp_path: Path, cluster: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = distributing.__version__
    monkeypatch.setattr(distributing, "__version__", "0.0.0-other")  # this side only
    (tmp_path / "posts").mkdir()
    address = cluster.scheduler.address
    result = _invoke(
        "fetch", str(tmp_path / "posts"), "--cache", str(tmp_path / "cache"), "--scheduler", address
    )
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {address}: the Dask worker tcp://127.0.0.1:")
    assert line.endswith(
        f"runs mediatool {real}, this is 0.0.0-other (2 of 2 workers differ); install the same "
        "version on every worker"
    )


# --- offline -----------------------------------------------------------------------------


def test_no_host_answering_on_the_workers_is_offline_one_line_exit_4_nothing_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each host is a part of its own, so no worker's Fetcher can call the run offline: the
    run-wide verdict does (OfflineWatch), and the URLs stay pending for the next run."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # the workers started below inherit this
    urls = [f"http://127.0.0.1:{port}/photo.jpg" for port in closed_ports(3)]
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "post.md").write_text("".join(f"![]({url})\n" for url in urls), encoding="utf-8")
    cache = tmp_path / "cache"
    args = ["fetch", str(posts), "--cache", str(cache), "--allow-private", "--json"]
    result = _invoke(*args, "--scheduler", "local:1")
    assert result.exit_code == EXIT_OFFLINE, result.output
    assert result.stderr == OFFLINE_MESSAGE + "\n"
    summary = json.loads(result.stdout)
    assert (summary["offline"], summary["failed"], summary["downloaded"]) == (True, [], 0)
    with sqlite3.connect(cache / "manifest.sqlite") as db:
        statuses = dict(db.execute("SELECT origin_url, status FROM urls"))
    assert statuses == dict.fromkeys(urls, "pending")
