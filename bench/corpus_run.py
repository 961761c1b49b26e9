"""One full run over ../shared/corpus/real served by the local origin server.

    .venv/bin/python bench/corpus_run.py [--corpus DIR] [--copies N]

Copies the corpus to a temporary folder, gives every origin URL a real photo (fakesite), starts
the origin server as HTTP(S) proxy, runs `mediatool fetch` and `mediatool rewrite` as a user
would (subprocess, HTTP_PROXY/HTTPS_PROXY/SSL_CERT_FILE) and prints the figures: fetch, rewrite,
fetch again (the rewritten posts are parsed again, nothing is downloaded) and once more on the
unchanged archive (nothing is parsed or downloaded). `--copies 200` makes a 10,200-post archive.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
        "--copies", type=int, default=1, help="copies of the corpus in the archive (scale test)"
    )
    args = parser.parse_args()
    for needed in (args.corpus, SHARED / "images"):
        if not needed.is_dir():
            parser.exit(
                2, f"{needed}: no such folder; this bench needs ../shared beside the repository\n"
            )
    photos = sorted(p for p in (SHARED / "images").iterdir() if p.suffix in (".png", ".jpg"))
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
            f3_s, _, unchanged = run([*cli, "fetch", str(work / "posts"), *cache], env)
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
    print(f"third fetch          {f3_s:.2f} s wall (archive unchanged), downloaded {got}")
    print(f"origin requests      {requests}")


if __name__ == "__main__":
    main()
