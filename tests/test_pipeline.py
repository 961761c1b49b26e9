"""The pipeline's own behaviour across stages, against the local origin server."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from mediatool.cli import main
from mediatool.config import DiscoverSettings, Settings
from mediatool.errors import PostError
from mediatool.files import TEMP_PREFIX, TEMP_SUFFIX
from mediatool.manifest import Manifest
from mediatool.models import FetchFailure, FetchOutcome, PostScan
from mediatool.pipeline.analyzing import INLINE_UP_TO, Analyses
from mediatool.pipeline.common import PARALLEL_FROM, read_posts
from mediatool.pipeline.fetching import _WAKE, _with_wakes
from mediatool.store import Store, sha256_of_file
from mediatool.testing.origin import OriginServer


def _photo(width: int, quality: int = 85) -> bytes:
    """A real photo-like image: a gradient with structure, resized to `width`."""
    image = Image.radial_gradient("L").convert("RGB").resize((256, 192))
    for x in range(0, 256, 32):
        image.paste((200, 40, 40), (x, 20, x + 12, 180))
    image = image.resize((width, width * 3 // 4), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _post(folder: Path, name: str, *urls: str, date: str = "2021-06-17") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f"![]({url})\n\n" for url in urls)
    path = folder / name
    path.write_text(f"---\ntitle: t\ndate: {date}\n---\n\n{body}")
    return path


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_wayback_copy_is_the_last_candidate_nearest_the_post_date(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    dead = "http://dead.example.test/pic.jpg"
    proxy_env.add(dead, b"", status=404)
    archived = f"https://web.archive.org/web/20210617000000id_/{dead}"
    proxy_env.add(archived, _photo(200))
    post = _post(tmp_path / "posts", "a.md", dead)
    cache = str(tmp_path / "cache")
    without = _cli("fetch", str(post), "--cache", cache, "--json")
    assert without.exit_code == 1
    assert proxy_env.requests_for(archived) == []
    with_wayback = _cli("fetch", str(post), "--cache", cache, "--json", "--wayback")
    assert with_wayback.exit_code == 0, with_wayback.stderr
    assert json.loads(with_wayback.stdout)["downloaded"] == 1
    assert len(proxy_env.requests_for(archived)) == 1
    with Manifest.open(tmp_path / "cache" / "manifest.sqlite") as manifest:
        row = manifest.db.execute("SELECT fetched_url FROM urls").fetchone()
    assert row[0] == archived


def test_a_better_copy_moves_the_canonical_and_rewrite_follows(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    small, big = "http://a.example.test/small.jpg", "http://b.example.test/big.jpg"
    proxy_env.add(small, _photo(160, quality=60))
    proxy_env.add(big, _photo(640))
    posts = tmp_path / "posts"
    first = _post(posts, "first.md", small)
    cache = str(tmp_path / "cache")
    assert _cli("fetch", str(posts), "--cache", cache).exit_code == 0
    assert _cli("rewrite", str(posts), "--cache", cache).exit_code == 0
    small_path = first.read_text().split("](")[1].split(")")[0]
    _post(posts, "second.md", big)
    assert _cli("fetch", str(posts), "--cache", cache).exit_code == 0
    result = _cli("rewrite", str(posts), "--cache", cache, "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["references_retargeted"] == 1
    moved = first.read_text().split("](")[1].split(")")[0]
    second = (posts / "second.md").read_text().split("](")[1].split(")")[0]
    assert moved != small_path
    assert moved == second
    assert (posts / moved).resolve().is_file()


def test_images_in_many_posts_are_flagged_boilerplate(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    banner = "http://cdn.example.test/banner.jpg"
    proxy_env.add(banner, _photo(300))
    posts = tmp_path / "posts"
    for number in range(4):
        _post(posts, f"p{number}.md", banner)
    (posts / "mediatool.toml").write_text("[images]\nboilerplate_posts = 3\n")
    result = _cli("fetch", str(posts), "--cache", str(tmp_path / "cache"), "--json")
    assert json.loads(result.stdout)["boilerplate_images"] == 1
    (posts / "mediatool.toml").write_text("[images]\nboilerplate_posts = 4\n")
    regroup = _cli(
        "dedup",
        "--regroup",
        "--cache",
        str(tmp_path / "cache"),
        "--config",
        str(posts / "mediatool.toml"),
        "--json",
    )
    assert json.loads(regroup.stdout)["boilerplate_images"] == 0


def test_counting_posts_per_image_writes_only_the_rows_that_change(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    """Each image row carries its grey image (4 KiB): a count that rewrote every row after each
    grouping rewrote the whole table."""
    banner, photo = "http://cdn.example.test/banner.jpg", "http://cdn.example.test/photo.jpg"
    proxy_env.add(banner, _photo(300))
    proxy_env.add(photo, _photo(500))
    posts = tmp_path / "posts"
    for number in range(4):
        _post(posts, f"p{number}.md", banner, *([photo] if number == 0 else []))
    assert _cli("fetch", str(posts), "--cache", str(tmp_path / "cache")).exit_code == 0
    with Manifest.open(tmp_path / "cache" / "manifest.sqlite") as manifest:
        manifest.db.executescript(
            "CREATE TEMP TABLE writes (sha256 TEXT);"
            "CREATE TEMP TRIGGER written AFTER UPDATE ON images"
            " BEGIN INSERT INTO writes VALUES (new.sha256); END;"
        )
        manifest.count_posts_per_image(20)  # as the fetch counted: nothing changes
        assert manifest.db.execute("SELECT count(*) FROM writes").fetchone()[0] == 0
        assert manifest.count_posts_per_image(3) == 1  # the banner (4 posts) becomes boilerplate
        written = [sha for (sha,) in manifest.db.execute("SELECT sha256 FROM writes")]
        flagged = manifest.db.execute("SELECT sha256 FROM images WHERE boilerplate").fetchall()
        assert written == [flagged[0][0]]


def test_regroup_threshold_and_thumbs_rebuild(tmp_path: Path, proxy_env: OriginServer) -> None:
    small, big = "http://a.example.test/s.jpg", "http://a.example.test/b.jpg"
    proxy_env.add(small, _photo(320, quality=50))
    proxy_env.add(big, _photo(800))
    post = _post(tmp_path / "posts", "a.md", small, big)
    cache = tmp_path / "cache"
    assert _cli("fetch", str(post), "--cache", str(cache)).exit_code == 0
    grouped = json.loads(_cli("dedup", "--regroup", "--cache", str(cache), "--json").stdout)
    assert (grouped["groups"], grouped["grouped_images"]) == (1, 2)
    thumbs = sorted((cache / "thumbs").rglob("*.webp"))
    assert thumbs
    for thumb in thumbs:
        thumb.unlink()
    rebuilt = _cli("thumbs", "--rebuild", "--cache", str(cache), "--json")
    assert rebuilt.exit_code == 0
    assert json.loads(rebuilt.stdout)["thumbnails"] == len(thumbs)
    assert sorted((cache / "thumbs").rglob("*.webp")) == thumbs


def test_killed_fetch_leaves_no_partial_file_and_a_rerun_completes(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    quick, slow = "http://a.example.test/quick.jpg", "http://a.example.test/slow.jpg"
    big, small = _photo(1600), _photo(200)
    proxy_env.add(quick, small)
    proxy_env.add(slow, big, body_delay=0.2, chunk_size=max(1, len(big) // 50))
    post = _post(tmp_path / "posts", "a.md", quick, slow)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "mediatool.cli", "fetch", str(post), "--cache", str(cache)]
    process = subprocess.Popen(command, env=dict(os.environ), stderr=subprocess.DEVNULL)

    def partial_downloads() -> list[Path]:  # where downloads in progress live: cache/tmp
        return list((cache / "tmp").glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"))

    def quick_stored() -> bool:
        return any(p.read_bytes() == small for p in (cache / "originals").rglob("*.jpg"))

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (quick_stored() and partial_downloads()):
        time.sleep(0.05)  # wait until the quick one is stored and the slow one is being written
    assert quick_stored() and partial_downloads(), "the slow download never started writing"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert partial_downloads(), "the killed run left its partial download in cache/tmp"
    stored = list((cache / "originals").rglob("*"))
    assert all(not p.name.endswith(".part") for p in stored)
    assert all(p.stat().st_size > 0 for p in stored if p.is_file())
    assert all(sha256_of_file(p) == p.stem for p in stored if p.is_file())  # whole files only
    proxy_env.add(slow, big)
    rerun = _cli("fetch", str(post), "--cache", str(cache), "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert list((cache / "tmp").iterdir()) == []
    files = [p for p in (cache / "originals").rglob("*.jpg")]
    assert any(p.read_bytes() == big for p in files)


def test_report_page_shows_groups_and_failures_from_the_manifest(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    small, big = "http://a.example.test/s.jpg", "http://a.example.test/b.jpg"
    gone = "http://gone.example.test/x.jpg"
    proxy_env.add(small, _photo(320, quality=50))
    proxy_env.add(big, _photo(800))
    proxy_env.add(gone, b"", status=404)
    post = _post(tmp_path / "posts", "a.md", small, big, gone)
    cache = tmp_path / "cache"
    assert _cli("fetch", str(post), "--cache", str(cache)).exit_code == 1
    result = _cli("report", "--cache", str(cache))
    assert result.exit_code == 0
    page = Path(result.stdout.strip())
    assert page == cache / "report.html"
    html = page.read_text()
    assert "http_404" in html and "gone.example.test" in html
    assert "1 group" in html and "kept" in html
    for src in (part.split('"')[0] for part in html.split('src="')[1:]):
        assert (cache / src).is_file()


def test_posts_read_over_the_cores_come_back_in_order_with_their_errors(tmp_path: Path) -> None:
    posts = [
        _post(tmp_path, f"p{number:03}.md", f"http://a.example.test/{number}.jpg")
        for number in range(PARALLEL_FROM + 9)
    ]
    posts[5].write_bytes(b"\x00binary")
    posts[40].write_bytes("---\ntitle: caf\xe9\n---\n".encode("latin-1"))
    settings = DiscoverSettings()
    inline = list(read_posts(posts[:10], settings, workers=2))  # too few: no worker processes
    spread = list(read_posts(posts, settings, workers=2))
    assert [path for path, _ in spread] == posts
    errors = {path.name: scan.reason for path, scan in spread if isinstance(scan, PostError)}
    assert errors == {"p005.md": "binary", "p040.md": "encoding"}
    urls = [
        [ref.source_url for ref in scan.references]
        for _, scan in spread
        if not isinstance(scan, PostError)
    ]
    expected = [[f"http://a.example.test/{n}.jpg"] for n in range(len(posts)) if n not in (5, 40)]
    assert urls == expected

    def shape(scan: PostScan | PostError) -> object:
        return scan.message if isinstance(scan, PostError) else scan.references

    assert [(p, shape(s)) for p, s in inline] == [(p, shape(s)) for p, s in spread[:10]]


def test_an_original_deleted_from_the_store_is_fetched_again(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    kept, lost = "http://a.example.test/kept.jpg", "http://a.example.test/lost.jpg"
    lost_bytes = _photo(300)
    proxy_env.add(kept, _photo(200))
    proxy_env.add(lost, lost_bytes)
    post = _post(tmp_path / "posts", "a.md", kept, lost)
    cache = tmp_path / "cache"
    first = json.loads(_cli("fetch", str(post), "--cache", str(cache), "--json").stdout)
    assert first["downloaded"] == 2
    sha = hashlib.sha256(lost_bytes).hexdigest()
    gone = cache / "originals" / sha[:2] / sha[2:4] / f"{sha}.jpg"
    gone.unlink()  # e.g. a cache pruned by hand: the manifest still says "stored"
    again = json.loads(_cli("fetch", str(post), "--cache", str(cache), "--json").stdout)
    assert (again["downloaded"], again["already_stored"]) == (1, 1)
    assert gone.is_file()
    assert len(proxy_env.requests_for(lost)) == 2 and len(proxy_env.requests_for(kept)) == 1


def test_thumbs_rebuild_replaces_in_place_and_drops_sizes_no_longer_made(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    url = "http://a.example.test/wide.jpg"
    proxy_env.add(url, _photo(800))
    post = _post(tmp_path / "posts", "a.md", url)
    cache = tmp_path / "cache"
    assert _cli("fetch", str(post), "--cache", str(cache)).exit_code == 0
    before = {p.name: p.read_bytes() for p in (cache / "thumbs").rglob("*.webp")}
    assert sorted(name.rsplit("-", 1)[1] for name in before) == ["320x240.webp", "640x480.webp"]
    config = tmp_path / "mediatool.toml"
    config.write_text("[images]\nthumb_widths = [640, 200]\nthumb_quality = 40\n")
    rebuilt = _cli("thumbs", "--rebuild", "--cache", str(cache), "--config", str(config))
    assert rebuilt.exit_code == 0, rebuilt.output
    after = {p.name: p.read_bytes() for p in (cache / "thumbs").rglob("*.webp")}
    assert sorted(name.rsplit("-", 1)[1] for name in after) == ["200x150.webp", "640x480.webp"]
    [same] = set(before) & set(after)
    assert after[same] != before[same]  # written again with the new quality, same name
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        assert {Path(r).name for r in manifest.thumbnail_relpaths()} == set(after)


class _CountingPool(ProcessPoolExecutor):
    """The real process pool, counting what is handed to it."""

    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_analyses_keep_at_most_four_jobs_per_worker_in_the_pool(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    with Manifest.open(store.manifest_path) as manifest:
        for number in range(INLINE_UP_TO + 20):
            body = _photo(64 + number)
            temp = store.temp_dir / f"{number}.part"
            temp.write_bytes(body)
            sha = hashlib.sha256(body).hexdigest()
            assert manifest.add_original(sha, store.keep(temp, sha, "jpeg"), len(body))
        context = multiprocessing.get_context("forkserver")
        with _CountingPool(max_workers=1, mp_context=context) as pool:
            problems: list[str] = []
            analyses = Analyses(pool, manifest, store, Settings(workers=1), problems.append)
            for sha, _ in manifest.unanalyzed_images():
                analyses.add(sha)
            assert pool.submitted == 4  # the others wait as sha256 strings
            assert analyses.collect(block=True) == INLINE_UP_TO + 20
            assert pool.submitted == INLINE_UP_TO + 20  # a large run: all of them in the pool
        assert manifest.unanalyzed_images() == [] and problems == []


def test_a_small_run_is_analyzed_without_starting_the_pool(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    bodies = [_photo(64 + number) for number in range(INLINE_UP_TO)]
    bodies[-1] = b"\xff\xd8 not a jpeg"
    with Manifest.open(store.manifest_path) as manifest:
        shas = [_add_original(store, manifest, body) for body in bodies]
        context = multiprocessing.get_context("forkserver")
        with _CountingPool(max_workers=1, mp_context=context) as pool:
            problems: list[str] = []
            analyses = Analyses(pool, manifest, store, Settings(workers=1), problems.append)
            for sha in shas:
                analyses.add(sha)
            assert analyses.collect(block=True) == INLINE_UP_TO - 1
            assert pool.submitted == 0
            assert manifest.unanalyzed_images() == []  # the broken one recorded as an error
            analyses.add(_add_original(store, manifest, _photo(300)))
            assert pool.submitted == 1  # past INLINE_UP_TO images, the pool takes over
            assert analyses.collect(block=True) == 1


def _add_original(store: Store, manifest: Manifest, body: bytes) -> str:
    sha = hashlib.sha256(body).hexdigest()
    temp = store.temp_dir / f"{sha}.part"
    temp.write_bytes(body)
    assert manifest.add_original(sha, store.keep(temp, sha, "jpeg"), len(body))
    return sha


def test_a_finished_analysis_is_seen_while_a_download_is_still_awaited() -> None:
    """fetch's loop waits for downloads and finished analyses at once: a wake put while no
    download has landed comes out first, the outcome after it, in its order."""
    landed = threading.Event()

    def outcomes() -> Iterator[FetchOutcome]:
        # A download that takes its time (a slow host, a Retry-After); the timeout only ends
        # the wait of a loop that would not see the wake before it.
        landed.wait(timeout=30)
        yield FetchFailure("http://slow.example.test/a.jpg", "timeout", "timed out")

    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    merged = _with_wakes(outcomes(), events, ahead=4)
    events.put(_WAKE)  # what Analyses' wake does as a pool job finishes
    assert next(merged) is _WAKE
    landed.set()
    outcome = next(merged)
    assert isinstance(outcome, FetchFailure) and outcome.reason == "timeout"
    assert next(merged, None) is None


def test_an_error_of_the_download_loop_is_raised_in_the_callers_thread() -> None:
    def outcomes() -> Iterator[FetchOutcome]:
        raise OSError(28, "No space left on device")
        yield  # a generator

    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    with pytest.raises(OSError, match="No space left"):
        next(_with_wakes(outcomes(), events, ahead=4))
