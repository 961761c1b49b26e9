"""Benchmark the fetcher against the local origin server (run in its own process).

    .venv/bin/python bench/bench_fetch.py [--n 1000] [--latency-ms 20] [--concurrency 16]
        [--per-host 4] [--hosts 8] [--size-kb 130] [--repeat 3] [--no-tools] [--no-raw]

The server plays `--hosts` image hosts through its proxy port, each URL a distinct ~130 KB JPEG
(its own bytes, so its own file in the store), with `--latency-ms` added before every answer.
Rows printed:
- mediatool (direct): the fetch and store stages of `mediatool fetch` (Fetcher.fetch_all, each
  body moved into a fresh sha256 store) on the same direct URLs as raw, wget and curl; they
  all name 127.0.0.1, so per_host is set to the concurrency;
- mediatool (proxy): the same through HTTP_PROXY with `--hosts` hosts and `--per-host`, as the
  tests and the demo run it (httpx's forwarding-proxy path costs more per request);
- raw-threads / raw-async: bare httpx, a thread pool on one sync Client vs asyncio on one
  AsyncClient, same concurrency (the two structures the fetcher could have been built on);
- wget -i (sequential) and curl --parallel, when installed, on the same files by direct path.
Rows other than wget/curl are run --repeat times, interleaved, best kept.
`ideal` is requests x latency / min(concurrency, per_host x hosts). Each row also gives the CPU
time per request of the client (this process, or the tool) and of the origin server: on a small
machine the two share the cores, and their sum per request bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.config import FetchSettings
from mediatool.fetch import Fetcher
from mediatool.models import Download, FetchJob
from mediatool.store import Store
from mediatool.testing import save_site


def distinct(body: bytes, index: int) -> bytes:
    """`body` with a JPEG comment segment naming `index`: a valid JPEG with its own sha256."""
    comment = f"mediatool bench {index}".encode()
    return body[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + body[2:]


def make_jpeg(size_kb: int) -> bytes:
    """A noisy JPEG of about `size_kb` KB (noise does not compress)."""
    side = 128
    while True:
        buffer = io.BytesIO()
        noise = Image.effect_noise((side, side), 80).convert("RGB")
        noise.save(buffer, "JPEG", quality=95)
        if buffer.tell() >= size_kb * 1000 or side > 4000:
            return buffer.getvalue()
        side = int(side * 1.25)


def start_server(root: Path, latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "mediatool.testing.origin", "--root", str(root)]
    command += ["--latency-ms", str(latency_ms), "--ca-out", str(root.parent / "ca.pem")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdout is not None
    line = server.stdout.readline().strip()
    if not line.startswith("PROXY="):
        server.kill()
        raise SystemExit(f"origin server did not start: {line!r}")
    return server, line.removeprefix("PROXY=")


@dataclass(frozen=True)
class Run:
    """One timed row: wall seconds, and CPU seconds of this process (and the tools it ran) and
    of the origin server, which share the machine's cores."""

    wall: float
    client_cpu: float
    server_cpu: float


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    tools = resource.getrusage(resource.RUSAGE_CHILDREN)  # wget, curl (the server still runs)
    return own.ru_utime + own.ru_stime + tools.ru_utime + tools.ru_stime


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(run: Callable[[], float], server_pid: int) -> Run:
    client, server = cpu_seconds(), process_cpu_seconds(server_pid)
    wall = run()
    return Run(wall, cpu_seconds() - client, process_cpu_seconds(server_pid) - server)


def report(label: str, run: Run, count: int, total_bytes: int, ideal: float) -> None:
    ratio = f"{run.wall / ideal:5.2f}x ideal" if ideal > 0 else " " * 11
    print(
        f"{label:<22} {run.wall:7.2f} s {count / run.wall:6.0f} req/s "
        f"{total_bytes / run.wall / 1e6:6.1f} MB/s  {ratio}  cpu/req: client "
        f"{run.client_cpu * 1000 / count:4.2f} ms, server {run.server_cpu * 1000 / count:4.2f} ms",
        flush=True,
    )


def run_fetcher(urls: list[str], settings: FetchSettings, proxy: str | None, tmp: Path) -> float:
    """The fetch and store stages as `mediatool fetch` runs them: each body lands in the store."""
    if proxy:
        os.environ.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, NO_PROXY="")
    jobs = (FetchJob(origin_url=url, candidates=(url,)) for url in urls)
    # A new store per run, none deleted until the end: deleting thousands of files just before
    # making thousands more slows ext4's inode allocation, which a real store never sees.
    store = Store(Path(tempfile.mkdtemp(prefix="store-", dir=tmp)))
    store.prepare()
    started = time.perf_counter()
    failures = 0
    with Fetcher(settings, store.temp_dir, store.keep) as fetcher:
        for outcome in fetcher.fetch_all(jobs):
            failures += not isinstance(outcome, Download)
    seconds = time.perf_counter() - started
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        os.environ.pop(name, None)
    if failures:
        print(f"  ({failures} fetches failed)")
    return seconds


def run_raw_threads(urls: list[str], concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(limits=limits, trust_env=False) as client:

        def one(url: str) -> str:
            digest = hashlib.sha256()
            with client.stream("GET", url) as response:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
            return digest.hexdigest()

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, urls))
        return time.perf_counter() - started


def run_raw_async(urls: list[str], concurrency: int) -> float:
    async def main() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

            async def one(url: str) -> None:
                async with gate:
                    digest = hashlib.sha256()
                    async with client.stream("GET", url) as response:
                        async for chunk in response.aiter_bytes():
                            digest.update(chunk)

            await asyncio.gather(*(one(url) for url in urls))

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


def run_tool(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def tool_runs(
    direct: list[str], args: argparse.Namespace, tmp: Path
) -> dict[str, Callable[[], float]]:
    runs: dict[str, Callable[[], float]] = {}
    url_list = tmp / "urls.txt"
    url_list.write_text("\n".join(direct) + "\n")
    if shutil.which("wget"):
        out = tmp / "wget"
        runs["wget -i (sequential)"] = lambda: run_tool(
            ["wget", "-q", "--no-proxy", "-i", str(url_list), "-P", str(out)]
        )
    if shutil.which("curl"):
        config = tmp / "curl.cfg"
        lines = [
            f'url = "{u}"\noutput = "{tmp / "curl" / f"{i}.jpg"}"' for i, u in enumerate(direct)
        ]
        config.write_text("\n".join(lines) + "\n")
        runs[f"curl --parallel {args.concurrency}"] = lambda: run_tool(
            [
                "curl",
                "-s",
                "--noproxy",
                "*",
                "--create-dirs",
                "--parallel",
                "--parallel-max",
                str(args.concurrency),
                "-K",
                str(config),
            ]
        )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="number of URLs")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--hosts", type=int, default=8, help="distinct image hosts")
    parser.add_argument("--size-kb", type=int, default=130)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row, best kept")
    parser.add_argument("--no-tools", action="store_true", help="skip wget and curl")
    parser.add_argument("--no-raw", action="store_true", help="skip the bare httpx rows")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the site, store and tool output go "
        "(default: the system temp folder; /dev/shm takes the disk out of the figures)",
    )
    args = parser.parse_args()

    body = make_jpeg(args.size_kb)
    with tempfile.TemporaryDirectory(prefix="mediatool-bench-", dir=args.dir) as name:
        tmp = Path(name)
        root = tmp / "site"
        urls = [f"http://img{i % args.hosts}.bench.test/photos/{i}.jpg" for i in range(args.n)]
        save_site(root, {url: distinct(body, i) for i, url in enumerate(urls)})
        server, proxy = start_server(root, args.latency_ms)
        try:
            direct = [f"{proxy}/{u.removeprefix('http://')}" for u in urls]
            parallel = min(args.concurrency, args.per_host * args.hosts)
            ideal = args.n * args.latency_ms / 1000 / parallel
            total = args.n * len(body)
            print(
                f"{args.n} x {len(body) / 1000:.0f} KB from {args.hosts} host(s), latency "
                f"{args.latency_ms:g} ms, concurrency {args.concurrency}, per_host "
                f"{args.per_host}; ideal {ideal:.2f} s"
            )
            raw_ideal = args.n * args.latency_ms / 1000 / args.concurrency
            hosts = FetchSettings(concurrency=args.concurrency, per_host=args.per_host)
            # Direct: every URL on 127.0.0.1, so one host; per_host = concurrency, as raw/curl.
            one_host = replace(hosts, per_host=args.concurrency, allow_private=True)
            rows: dict[str, tuple[Callable[[], float], float]] = {
                "mediatool (direct)": (lambda: run_fetcher(direct, one_host, None, tmp), raw_ideal),
                "mediatool (proxy)": (lambda: run_fetcher(urls, hosts, proxy, tmp), ideal),
            }
            if not args.no_raw:
                rows["raw-threads (direct)"] = (
                    lambda: run_raw_threads(direct, args.concurrency),
                    raw_ideal,
                )
                rows["raw-async (direct)"] = (
                    lambda: run_raw_async(direct, args.concurrency),
                    raw_ideal,
                )
            best: dict[str, Run] = {}
            for _ in range(args.repeat):  # interleaved, best of: the machine may be shared
                for label, (run, _ideal) in rows.items():
                    result = timed(run, server.pid)
                    if label not in best or result.wall < best[label].wall:
                        best[label] = result
            for label, (_run, row_ideal) in rows.items():
                report(label, best[label], args.n, total, row_ideal)
            if not args.no_tools:
                for label, run in tool_runs(direct, args, tmp).items():
                    report(label, timed(run, server.pid), args.n, total, ideal)
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
