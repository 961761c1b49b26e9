"""One full run over ../shared/corpus/real served by the local origin server.

    .venv/bin/python bench/corpus_run.py [--corpus DIR] [--images DIR] [--copies N] [--reruns N]

Copies the corpus to a temporary folder, gives every origin URL a real photo (fakesite), starts
the origin server as HTTP(S) proxy, runs `mediatool fetch` and `mediatool rewrite` as a user
would (subprocess, HTTP_PROXY/HTTPS_PROXY/SSL_CERT_FILE) and prints the figures: fetch, rewrite,
fetch again (the rewritten posts are parsed again, nothing is downloaded) and `--reruns` more
times on the unchanged archive (nothing is parsed or downloaded), with the ratio of that re-run
to the first fetch (the target: at most 3 %). `--copies 200` makes a 10,200-post archive.

mediatool's modules are byte-compiled first, as `pip install` leaves them (with
PYTHONDONTWRITEBYTECODE set, every run would compile them again, a cost users do not pay).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mediatool
from mediatool.testing.fakesite import build_site
from mediatool.testing.origin import OriginServer

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the repository; for a git worktree in a folder of worktrees, one level up
SHARED = next(
    (p / "shared" for p in (REPO.parent, REPO.parent.parent) if (p / "shared").is_dir()),
    REPO.parent / "shared",
)


def run(args: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    return seconds, done.returncode, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "real")
    parser.add_argument(
        "--images", type=Path, default=SHARED / "images", help="photos the origin serves"
    )
    parser.add_argument(
        "--copies", type=int, default=1, help="copies of the corpus in the archive (scale test)"
    )
    parser.add_argument(
        "--reruns", type=int, default=3, help="fetches timed on the unchanged archive (>= 1)"
    )
    args = parser.parse_args()
    if args.reruns < 1:
        parser.exit(2, "--reruns must be at least 1\n")
    for needed in (args.corpus, args.images):
        if not needed.is_dir():
            parser.exit(
                2, f"{needed}: no such folder; this bench needs ../shared beside the repository\n"
            )
    compileall.compile_dir(Path(mediatool.__file__).parent, quiet=1)
    photos = sorted(p for p in args.images.iterdir() if p.suffix in (".png", ".jpg"))
    with tempfile.TemporaryDirectory(prefix="mediatool-corpus-") as tmp:
        work = Path(tmp)
        if args.copies == 1:
            shutil.copytree(args.corpus, work / "posts")
        for copy in range(args.copies if args.copies > 1 else 0):
            shutil.copytree(args.corpus, work / "posts" / f"copy-{copy:04}")
        size = build_site(work / "posts", photos, work / "site", near_dup=True)
        with OriginServer(root=work / "site", ca_path=work / "ca.pem") as origin:
            env = dict(os.environ)
            env.update(
                HTTP_PROXY=origin.proxy_url,
                HTTPS_PROXY=origin.proxy_url,
                SSL_CERT_FILE=str(origin.ca_path),
                NO_PROXY="",
            )
            cli = [sys.executable, "-m", "mediatool.cli"]
            cache = ["--cache", str(work / "cache"), "--json"]
            f_s, f_code, fetched = run([*cli, "fetch", str(work / "posts"), *cache], env)
            r_s, r_code, rewritten = run([*cli, "rewrite", str(work / "posts"), *cache], env)
            f2_s, _, refetched = run([*cli, "fetch", str(work / "posts"), *cache], env)
            reruns = [
                run([*cli, "fetch", str(work / "posts"), *cache], env) for _ in range(args.reruns)
            ]
            unchanged = reruns[-1][2]
            requests = len(origin.requests)
    print(f"corpus               {args.corpus}")
    print(f"site served          {size / 1e6:.1f} MB of photos")
    for key in (
        "posts",
        "posts_failed",
        "references",
        "remote_references",
        "distinct_urls",
        "downloaded",
        "images_analyzed",
        "groups",
        "grouped_images",
    ):
        print(f"{key:<20} {fetched[key]}")
    print(f"failed URLs          {len(fetched['failed'])}")  # type: ignore[arg-type]
    print(f"fetch                {f_s:.2f} s wall (exit {f_code})")
    print(
        f"rewrite              {r_s:.2f} s wall (exit {r_code}), "
        f"{rewritten['references_rewritten']} rewritten, "
        f"{rewritten['references_left_remote']} left remote, "
        f"{rewritten['posts_changed']} posts changed"
    )
    print(f"second fetch         {f2_s:.2f} s wall, downloaded {refetched['downloaded']}")
    got = unchanged["downloaded"]
    times = [seconds for seconds, _, _ in reruns]
    shown = ", ".join(f"{seconds:.2f}" for seconds in times)
    print(f"unchanged re-runs    {shown} s wall (archive unchanged), downloaded {got}")
    best, middle = min(times), statistics.median(times)
    print(
        f"re-run / first run   {100 * best / f_s:.1f} % (best), {100 * middle / f_s:.1f} % "
        f"(median) of the first fetch's {f_s:.2f} s; target <= 3 %"
    )
    print(f"origin requests      {requests}")


if __name__ == "__main__":
    main()
