"""How fast does `mediatool merge` merge shard manifests?

    .venv/bin/python bench/bench_merge.py                  # 4 shards, 20,000 posts, 5 refs each
    .venv/bin/python bench/bench_merge.py --shards 8 --posts 50000

Builds the manifests `fetch --shard I/N` would leave, through the real Manifest API: every
shard holds every post with its references and URLs (every shard scans every post), and the
downloads, images and thumbnails of the URLs whose host is in its shard (mediatool.partition).
Then merges them into a new manifest and again into the same one (nothing changes the second
time), and prints the wall time of each, the rows per second and the merged manifest's size,
and checks that no URL is left pending.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.manifest import Manifest, PostState
from mediatool.models import (
    Analysis,
    Download,
    ImageInfo,
    Reference,
    RefKind,
    Resolution,
    Span,
    Thumbnail,
)
from mediatool.partition import Shard
from mediatool.store import original_relpath, thumb_relpath


def _url(post: int, ref: int, hosts: int) -> str:
    return f"https://img{(post * 7 + ref) % hosts}.example.test/{post}/{ref}.jpg"


def build_shard(path: Path, shard: Shard, posts: int, refs: int, hosts: int) -> None:
    """One shard's manifest: every post scanned, its own hosts' URLs downloaded."""
    with Manifest.open(path) as manifest, manifest.transaction():
        for post in range(posts):
            found = []
            for ref in range(refs):
                url = _url(post, ref, hosts)
                manifest.add_resolution(Resolution(url, url, (url,), ()))
                raw = f"![]({url})"
                span = Span(ref * 80, ref * 80 + len(raw))
                found.append(
                    (Reference("markdown", raw, url, span, ref + 1, 1, RefKind.REMOTE), url)
                )
            key = f"posts/{post}.md"
            manifest.record_post(key, PostState(1000, 1, "fp"), "utf-8", None, found)
            manifest.record_post_sha(key, f"{post:064x}")
            for ref in range(refs):
                url = _url(post, ref, hosts)
                if shard.holds(url):
                    _download(manifest, url, f"{post * refs + ref:064x}")


def _download(manifest: Manifest, url: str, sha: str) -> None:
    download = Download(url, url, url, Path("x.part"), sha, 5000, "image/jpeg", None, None)
    manifest.record_download(download, sha)
    manifest.add_original(sha, original_relpath(sha, "jpg"), 5000)
    info = ImageInfo(sha, "JPEG", 800, 600, 5000, sha[:16], sha[-16:])
    thumb = Thumbnail(sha, 400, 300, thumb_relpath(sha, 400, 300, "webp"))
    manifest.record_analysis(Analysis(info, (thumb,)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--posts", "-n", type=int, default=20_000)
    parser.add_argument("--refs", type=int, default=5, help="references per post")
    parser.add_argument("--hosts", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as name:
        folder = Path(name)
        started = time.monotonic()
        shards = []
        for index in range(args.shards):
            path = folder / f"shard{index + 1}.sqlite"
            build_shard(path, Shard(index, args.shards), args.posts, args.refs, args.hosts)
            shards.append(path)
        built = time.monotonic() - started
        into = folder / "merged.sqlite"
        rows = args.shards * args.posts * (1 + args.refs * 2)  # posts, refs, urls (all shards)
        with Manifest.open(into) as manifest:
            first = _timed(lambda: [manifest.merge_shard(s) for s in shards])
            again = _timed(lambda: [manifest.merge_shard(s) for s in shards])
            counts = manifest.url_status_counts()
        urls = args.posts * args.refs
        print(f"shards              {args.shards} of {args.posts} posts, {urls} URLs")
        print(f"built               {built:.1f} s")
        print(f"merged              {first:.2f} s ({rows / first:,.0f} shard rows/s)")
        print(f"merged again        {again:.2f} s (no change)")
        print(f"merged manifest     {into.stat().st_size / 1e6:.1f} MB, URLs {counts}")
        if counts["pending"] or counts["ok"] != urls:
            print("error: URLs left pending after the merge", file=sys.stderr)
            sys.exit(1)


def _timed(call: object) -> float:
    started = time.monotonic()
    call()  # type: ignore[operator]
    return time.monotonic() - started


if __name__ == "__main__":
    main()
