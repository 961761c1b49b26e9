"""The whole `mediatool fetch` beside its two floors: the network's and the analysis'.

    .venv/bin/python bench/bench_fetch_floor.py [--posts 200] [--images 740] [--latency-ms 50]
        [--hosts 8] [--concurrency 16] [--per-host 4] [--workers N] [--repeat 3]
        [--sample 20] [--floor SCRIPT] [--dir DIR] [--baseline CHECKOUT] [--json]

Builds an archive of `--posts` Markdown posts referencing `--images` distinct real originals
(the photos of tests/data/images, ../shared/images and examples/archive/origin, re-encoded at
400..2400 px as JPEG or PNG by bench_analysis_floor's generator), served by the local origin
server (mediatool.testing.origin, its own process) as `--hosts` image hosts through its proxy
port, every answer `--latency-ms` late. Then, `--repeat` times, one right after the other:
  1. the network floor: the same URLs through the same proxy, by bare httpx threads (one
     Client, `--concurrency` threads, at most `--per-host` per host), each body hashed and
     written to a file: no analysis, no manifest;
  2. the whole `mediatool fetch POSTS --cache FRESH --json` as a user runs it (the console
     script, a subprocess);
  3. the analysis floor: ../shared/bench/analysis_floor.py on the cache that fetch filled
     (its originals, and the thumbnails it made, from the encoder's fastest setting);
and prints each wall time (median and range over the rounds), max(floors) and the ratio of
fetch to it (per round, then median and range). With `--baseline CHECKOUT` (another copy of the
repository, e.g. `git worktree add /tmp/old HEAD~1`), each round also runs that copy's fetch
(before this one's in odd rounds, after the analysis floor in even ones), so a change is
measured before and after under the same load. Last, on one core, bytes and ms per 640-px and
320-px thumbnail for a few encodings (WebP method 0 and 4, JPEG, AVIF when available).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_analysis_floor import (  # noqa: E402
    FLOOR,
    encoding_rows,
    print_encoding_rows,
    source_photos,
    variants,
)
from bench_fetch import start_server  # noqa: E402

from mediatool.config import Settings  # noqa: E402
from mediatool.store import Store  # noqa: E402
from mediatool.testing import save_site  # noqa: E402

REPO = HERE.parent
LABELS = {  # the figures summed up over the rounds
    "network_floor_s": "network floor",
    "analysis_floor_s": "analysis floor",
    "max_floor_s": "max(floors)",
    "fetch_s": "mediatool fetch",
    "ratio": "ratio",
    "baseline_fetch_s": "baseline fetch",
    "baseline_ratio": "baseline ratio",
}
ENCODINGS = ("webp m0 q80", "webp m4 q80", "jpeg q80", "avif q80 speed 8")


@dataclass(frozen=True)
class Archive:
    posts: Path
    urls: list[str]
    bytes: int


def build_archive(folder: Path, posts: int, images: int, hosts: int) -> Archive:
    """`posts` posts sharing out `images` distinct originals, and the site serving them."""
    originals = variants(source_photos(), images)
    urls = [f"http://img{i % hosts}.bench.test/p/{i}.{ext}" for i, (_, ext) in enumerate(originals)]
    save_site(folder / "site", {url: data for url, (data, _) in zip(urls, originals, strict=True)})
    root = folder / "posts"
    root.mkdir(parents=True)
    for post in range(posts):
        mine = urls[images * post // posts : images * (post + 1) // posts]
        lines = [f"---\ntitle: post {post}\n---\n", f"Post {post} of the bench.\n"]
        lines += [f"![photo {i}]({url})\n" for i, url in enumerate(mine)]
        (root / f"post-{post:04}.md").write_text("\n".join(lines), encoding="utf-8")
    return Archive(root, urls, sum(len(data) for data, _ in originals))


def network_floor(urls: list[str], proxy: str, args: argparse.Namespace, out: Path) -> float:
    """Wall seconds for bare httpx threads to download every URL through the proxy, at most
    `concurrency` at once and `per_host` per host, each body hashed and written to a file."""
    out.mkdir(parents=True)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
    slots: dict[str, threading.BoundedSemaphore] = {}
    for url in urls:
        slots.setdefault(urlsplit(url).netloc, threading.BoundedSemaphore(args.per_host))
    with httpx.Client(proxy=proxy, limits=limits, trust_env=False, timeout=60) as client:

        def one(index_url: tuple[int, str]) -> None:
            index, url = index_url
            digest = hashlib.sha256()
            part = out / f"{index}.part"
            with slots[urlsplit(url).netloc], client.stream("GET", url) as response:
                response.raise_for_status()
                with part.open("wb") as file:
                    for chunk in response.iter_bytes(1 << 16):
                        digest.update(chunk)
                        file.write(chunk)
            part.rename(out / digest.hexdigest())

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, enumerate(urls)))
        return time.perf_counter() - started


def mediatool_command() -> list[str]:
    """The `mediatool` console script beside this Python, as a user runs it (its fork server
    then preloads the whole CLI for the pool workers); `python -m mediatool.cli` without it."""
    script = Path(sys.executable).with_name("mediatool")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mediatool.cli"]


def mediatool_fetch(
    posts: Path, cache: Path, proxy: str, args: argparse.Namespace, code: Path = REPO
) -> tuple[float, dict[str, object]]:
    """Wall seconds of `mediatool fetch` (a subprocess, as a user runs it) and its JSON summary;
    `code`: the checkout whose mediatool runs."""
    env = {**os.environ, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "NO_PROXY": ""}
    env["PYTHONPATH"] = str(code)
    command = [*mediatool_command(), "fetch", str(posts), "--cache", str(cache)]
    command += ["--json", "--concurrency", str(args.concurrency), "--per-host", str(args.per_host)]
    command += ["--workers", str(args.workers)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mediatool fetch exited {done.returncode}: {done.stderr.strip()[-500:]}")
    summary: dict[str, object] = json.loads(done.stdout)
    return wall, summary


def analysis_floor(script: Path, cache: Path, workers: int) -> dict[str, float]:
    command = [sys.executable, str(script), str(cache), "--workers", str(workers)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def one_round(
    archive: Archive, proxy: str, args: argparse.Namespace, tmp: Path, index: int
) -> dict[str, float]:
    """The three measurements back to back, on the same archive, server and cores."""
    network = network_floor(archive.urls, proxy, args, tmp / f"floor-{index}")
    baseline = None
    if args.baseline and index % 2:
        baseline, _ = mediatool_fetch(archive.posts, tmp / f"b{index}", proxy, args, args.baseline)
    cache = tmp / f"cache-{index}"
    fetch, summary = mediatool_fetch(archive.posts, cache, proxy, args)
    floor = analysis_floor(args.floor, cache, args.workers)
    floors = max(network, floor["wall_s"])
    if args.baseline and baseline is None:
        baseline, _ = mediatool_fetch(archive.posts, tmp / f"b{index}", proxy, args, args.baseline)
    before = {}
    if baseline is not None:
        before = {
            "baseline_fetch_s": round(baseline, 3),
            "baseline_ratio": round(baseline / floors, 3),
        }
    return {
        "network_floor_s": round(network, 3),
        "analysis_floor_s": floor["wall_s"],
        "fetch_s": round(fetch, 3),
        "fetch_reported_s": float(summary["seconds"]),  # type: ignore[arg-type]
        "max_floor_s": round(floors, 3),
        "ratio": round(fetch / floors, 3),
        "downloaded": float(summary["downloaded"]),  # type: ignore[arg-type]
        "images_analyzed": float(summary["images_analyzed"]),  # type: ignore[arg-type]
        "thumbnails": floor["thumbnails"],
        **before,
    }


def report(result: dict[str, object]) -> None:
    rounds: list[dict[str, float]] = result["rounds"]  # type: ignore[assignment]
    print(
        f"{result['posts']} posts, {result['urls']} URLs ({result['megabytes']} MB), latency "
        f"{result['latency_ms']} ms, concurrency {result['concurrency']}, per host "
        f"{result['per_host']}, {result['hosts']} hosts, {result['workers']} workers"
    )
    print(
        "   round  network floor  analysis floor  max(floors)  mediatool fetch  ratio"
        "  (images analyzed, thumbnails)"
    )
    for number, r in enumerate(rounds, 1):
        print(
            f"   {number:>5}  {r['network_floor_s']:11.2f} s  {r['analysis_floor_s']:12.2f} s  "
            f"{r['max_floor_s']:9.2f} s  {r['fetch_s']:13.2f} s  {r['ratio']:4.2f}x"
            f"  ({r['images_analyzed']:.0f}, {r['thumbnails']:.0f})"
        )
    for key, label in LABELS.items():
        if key not in result:
            continue
        s: dict[str, float] = result[key]  # type: ignore[assignment]
        unit = "x" if key.endswith("ratio") else " s"
        print(
            f"   {label:<16} median {s['median']:6.2f}{unit}  range {s['min']:.2f}..{s['max']:.2f}"
        )
    rows: list[dict[str, object]] = result["encodings"]  # type: ignore[assignment]
    if rows:
        print_encoding_rows(rows, int(result["encoding_sample"]))  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--images", type=int, default=740, help="distinct originals")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--hosts", type=int, default=8, help="distinct image hosts")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three measurements")
    parser.add_argument("--sample", type=int, default=20, help="originals in the encoding table")
    parser.add_argument("--floor", type=Path, default=FLOOR, help="analysis_floor.py")
    parser.add_argument("--dir", type=Path, default=None, help="where the archive and caches go")
    parser.add_argument("--baseline", type=Path, help="another checkout whose fetch runs too")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the origin server
    if not args.floor.is_file():
        parser.exit(2, f"{args.floor}: no such file; pass --floor PATH/analysis_floor.py\n")
    with tempfile.TemporaryDirectory(prefix="mediatool-fetchfloor-", dir=args.dir) as name:
        tmp = Path(name)
        archive = build_archive(tmp, args.posts, args.images, args.hosts)
        server, proxy = start_server(tmp / "site", args.latency_ms)
        try:
            rounds = [one_round(archive, proxy, args, tmp, i) for i in range(args.repeat)]
        finally:
            server.terminate()
            server.wait(10)
        settings = Settings(cache_dir=tmp / "cache-0", workers=args.workers)
        encodings = encoding_rows(Store(tmp / "cache-0"), settings.images, args.sample, ENCODINGS)
    result: dict[str, object] = {
        "bench": "bench_fetch_floor",
        "posts": args.posts,
        "urls": len(archive.urls),
        "megabytes": round(archive.bytes / 1e6, 1),
        "latency_ms": args.latency_ms,
        "hosts": args.hosts,
        "concurrency": args.concurrency,
        "per_host": args.per_host,
        "workers": args.workers,
        "rounds": rounds,
        **{key: spread([r[key] for r in rounds]) for key in LABELS if key in rounds[0]},
        "encoding_sample": args.sample,
        "encodings": encodings,
    }
    if args.json:
        print(json.dumps(result))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
