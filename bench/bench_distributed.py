"""`mediatool fetch` in one process against `--scheduler local:N`, on the same generated archive.

    .venv/bin/python bench/bench_distributed.py [--images 400] [--hosts 20] [--per-post 10]
        [--latency-ms 50] [--workers 2] [--side 320]

The local origin server (in this process) plays `--hosts` image hosts through its proxy port,
each URL a distinct noise JPEG of `--side` x 3/4 `--side` pixels, with `--latency-ms` before
every answer. Each run is a `mediatool fetch` subprocess on its own copy of the posts and its own
cache. Printed: one row per run with its wall time (the command from start to exit: a local
cluster's start and stop included) and the summary's own time, URLs downloaded and images
analyzed; then whether both stored the same originals and thumbnails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.testing import OriginServer, save_site

MEDIATOOL = [sys.executable, "-m", "mediatool.cli"]


def noise_jpeg(side: int, seed: int) -> bytes:
    """A JPEG of random pixels (its own bytes and its own perceptual hash)."""
    width, height = side, side * 3 // 4
    pixels = random.Random(seed).randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def make_archive(root: Path, images: int, hosts: int, per_post: int, side: int) -> None:
    """root/site (what the origin serves) and root/posts (markdown posts showing the images)."""
    urls = [f"http://img{i % hosts}.bench.test/{i}.jpg" for i in range(images)]
    save_site(root / "site", {url: noise_jpeg(side, i) for i, url in enumerate(urls)})
    posts = root / "posts"
    posts.mkdir()
    for start in range(0, images, per_post):
        lines = [f"![]({url})" for url in urls[start : start + per_post]]
        (posts / f"post-{start // per_post}.md").write_text("\n".join(lines) + "\n")


def run_fetch(root: Path, name: str, env: dict[str, str], *extra: str) -> dict[str, object]:
    """One `mediatool fetch` on a fresh copy of the posts; its summary and wall time."""
    work = root / name
    shutil.copytree(root / "posts", work / "posts")
    command = [*MEDIATOOL, "fetch", str(work / "posts"), "--cache", str(work / "cache"), "--json"]
    started = time.monotonic()
    done = subprocess.run([*command, *extra], capture_output=True, text=True, env=env)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{name}: mediatool fetch exited {done.returncode}: {done.stderr.strip()}")
    summary: dict[str, object] = json.loads(done.stdout)
    summary["wall"] = wall
    return summary


def stored(cache: Path) -> tuple[set[str], set[str]]:
    """The names of the stored originals and of the thumbnails."""
    originals = {p.name for p in (cache / "originals").rglob("*") if p.is_file()}
    thumbs = {p.name for p in (cache / "thumbs").rglob("*") if p.is_file()}
    return originals, thumbs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--per-post", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--side", type=int, default=320)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mediatool-bench-dask-") as folder:
        root = Path(folder)
        make_archive(root, args.images, args.hosts, args.per_post, args.side)
        with OriginServer(root / "site", latency=args.latency_ms / 1000) as origin:
            env = {**os.environ, "HTTP_PROXY": origin.proxy_url, "HTTPS_PROXY": origin.proxy_url}
            env.pop("NO_PROXY", None)
            runs = {
                "one process": run_fetch(root, "one", env),
                f"local:{args.workers}": run_fetch(
                    root, "dask", env, "--scheduler", f"local:{args.workers}"
                ),
            }
        print(
            f"{args.images} images on {args.hosts} hosts, {args.latency_ms:g} ms latency, "
            f"{os.cpu_count()} cores"
        )
        print(f"{'run':<14}{'wall s':>8}{'summary s':>11}{'downloaded':>12}{'analyzed':>10}")
        for name, summary in runs.items():
            print(
                f"{name:<14}{summary['wall']:>8.2f}{summary['seconds']:>11.2f}"
                f"{summary['downloaded']:>12}{summary['images_analyzed']:>10}"
            )
        same = stored(root / "one" / "cache") == stored(root / "dask" / "cache")
        print(f"same originals and thumbnails: {'yes' if same else 'NO'}")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
