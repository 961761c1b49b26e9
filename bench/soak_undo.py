"""Soak `rewrite --undo` under SIGKILL: many kills of real `mediatool rewrite` processes, runs
repeated, then undo, round after round; every post must come back byte for byte.

    .venv/bin/python bench/soak_undo.py [--posts 300] [--rounds 10] [--seed 13]

An archive of `--posts` generated posts (HTML and Markdown images, front matter thumbnails,
declared sizes equal to the inserted ones, CRLF posts, a URL that fails) is fetched once from the
project's local origin server. Each round then:
- kills `rewrite` 1-3 times, each time either at an exact place of its write path (the
  MEDIATOOL_TEST_KILL_AT hook: right after a batch's records commit, or after the Nth post
  written) or after a random delay up to the length of a whole run (wherever it happens to be);
- runs a whole `rewrite` half of the time;
- kills an `rewrite --undo` half of the time (hook or random delay);
- runs `rewrite --undo --json` and compares every post with its original.
Printed per round and in total: kills, posts, restored (posts `--undo` wrote back), failures
(posts not byte-identical after undo, plus every line undo reported). Exit 1 on any failure.
Each run has a process group of its own, ended after it (with `workers = 1` rewrite starts
no workers; fetch's are ended with its group).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.pipeline.rewriting import KILL_ENV, WRITE_BATCH
from mediatool.testing import OriginServer

URLS = (
    "http://img.example.test/a.jpg",
    "https://cdn.example.test/b.jpg",
    "http://img.example.test/c.png",
    "http://img.example.test/gone.jpg",
)
ROOT = Path(__file__).resolve().parents[1]


def image(fmt: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


def post_text(rng: random.Random, number: int) -> bytes:
    thumbnail = f"thumbnail: {URLS[1]}\n" if rng.random() < 0.3 else ""
    blocks = [f"---\ntitle: post {number}\n{thumbnail}---\n\n"]
    for index in range(rng.randint(1, 5)):
        url = rng.choice(URLS)
        blocks.append(
            rng.choice(
                [
                    f'<p><img src="{URLS[0]}" width="64" height="48"></p>\n',
                    f'<p><img src="{url}" alt="{index}"></p>\n',
                    f"![image {index}]({url})\n",
                    f"Some text {rng.randrange(1000)}.\n",
                ]
            )
        )
    text = "".join(blocks)
    return (text.replace("\n", "\r\n") if number % 7 == 3 else text).encode()


def contents(posts: Path) -> dict[str, bytes]:
    return {
        p.relative_to(posts).as_posix(): p.read_bytes()
        for p in sorted(posts.rglob("*.md"))
        if not p.name.startswith(".")
    }


def run_group(
    command: list[str], env: dict[str, str], kill_after: float | None = None
) -> tuple[int, str, str]:
    """Run `command` in a process group of its own; SIGKILL it after `kill_after` seconds if it
    still runs; then end whatever it left behind in its group. (returncode, stdout, stderr)."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, out, err


class Soak:
    def __init__(self, archive: Path, seed: int) -> None:
        self.archive, self.rng = archive, random.Random(seed)
        self.posts, self.cache = archive / "posts", archive / "cache"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.full_run = 1.0  # seconds a whole rewrite takes, measured below

    def command(self, *extra: str) -> list[str]:
        command = [sys.executable, "-m", "mediatool.cli", "rewrite", str(self.posts)]
        config = str(self.archive / "mediatool.toml")
        return [*command, "--cache", str(self.cache), "--config", config, *extra]

    def run(self, *extra: str) -> tuple[int, str, str]:
        return run_group(self.command(*extra), self.env)

    def killed(self, *extra: str, points: int) -> bool:
        """One run killed by the hook or after a random delay; True when it was killed."""
        if self.rng.random() < 0.5:
            kind = "undo" if extra else "write"
            env = {**self.env, KILL_ENV: f"{kind}:{self.rng.randint(1, points)}"}
            return run_group(self.command(*extra), env)[0] == -signal.SIGKILL
        delay = self.rng.uniform(0.2, self.full_run)
        return run_group(self.command(*extra), self.env, kill_after=delay)[0] == -signal.SIGKILL

    def round(self, originals: dict[str, bytes]) -> tuple[int, int, list[str]]:
        kills = 0
        points = len(originals) + len(originals) // WRITE_BATCH + 1
        for _ in range(self.rng.randint(1, 3)):
            kills += self.killed(points=points)
        if self.rng.random() < 0.5:
            self.run()
        if self.rng.random() < 0.5:
            kills += self.killed("--undo", points=len(originals))
        _, out, err = self.run("--undo", "--json")
        failures = err.splitlines()
        restored = json.loads(out)["posts_restored"] if out else 0
        now = contents(self.posts)
        failures += [
            f"{name}: not restored" for name in originals if now.get(name) != originals[name]
        ]
        return kills, restored, failures


def build(archive: Path, count: int, server: OriginServer) -> dict[str, bytes]:
    server.add(URLS[0], image("JPEG", (64, 48)))
    server.add(URLS[1], image("JPEG", (80, 60)))
    server.add(URLS[2], image("PNG", (32, 24)))
    server.add(URLS[3], b"gone", status=404)
    rng = random.Random(count)
    for number in range(count):
        post = archive / "posts" / f"part{number % 5}" / f"post-{number:04}.md"
        post.parent.mkdir(parents=True, exist_ok=True)
        post.write_bytes(post_text(rng, number))
    (archive / "mediatool.toml").write_text("workers = 1\n")
    return contents(archive / "posts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        OriginServer(ca_path=Path(folder) / "ca.pem") as server,
    ):
        archive = Path(folder) / "archive"
        originals = build(archive, args.posts, server)
        proxies = {"HTTP_PROXY": server.proxy_url, "HTTPS_PROXY": server.proxy_url}
        soak = Soak(archive, args.seed)
        fetch = [sys.executable, "-m", "mediatool.cli", "fetch", str(soak.posts)]
        env = {**soak.env, **proxies, "SSL_CERT_FILE": str(server.ca_path)}
        config = ["--config", str(archive / "mediatool.toml")]
        run_group([*fetch, "--cache", str(soak.cache), *config], env)
        started = time.monotonic()
        soak.run()
        soak.full_run = time.monotonic() - started
        soak.run("--undo")
        total_kills = total_restored = 0
        total_failures: list[str] = []
        for number in range(1, args.rounds + 1):
            kills, restored, failures = soak.round(originals)
            total_kills, total_restored = total_kills + kills, total_restored + restored
            total_failures += failures
            print(
                f"round {number:3}: kills {kills}  posts {len(originals)}  restored {restored}"
                f"  failures {len(failures)}",
                flush=True,
            )
            for line in failures[:5]:
                print(f"    {line}")
    print(
        f"total: kills {total_kills}  posts {len(originals)}  restored {total_restored}"
        f"  failures {len(total_failures)}  (a whole rewrite took {soak.full_run:.2f} s)"
    )
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
