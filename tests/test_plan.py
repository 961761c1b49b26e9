"""The fetch plan (manifest.plan): the origin URLs held, FetchJobs made a page at a time as it
is iterated (on the Fetcher's thread); and a run's failures read from the
failed rows only. Real SQLite manifests; the real origin server where a fetch is involved."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.config import ImageSettings, Settings
from mediatool.fetch.hosts import host_of
from mediatool.manifest import Manifest
from mediatool.manifest import plan as plan_module
from mediatool.manifest.plan import PAGE, JobPlan
from mediatool.models import Download, FetchFailure, FetchJob, Resolution
from mediatool.partition import Shard
from mediatool.pipeline.analyzing import INLINE_UP_TO, Analyses
from mediatool.pipeline.common import cpu_pool
from mediatool.store import Store
from mediatool.testing.origin import OriginServer, generated_image


def _urls(host: str, count: int) -> list[str]:
    return [f"http://{host}/{i:05}.jpg" for i in range(count)]


def _proxied(url: str) -> str:
    return f"https://cors.zfour.workers.dev/?{url}"


def _stored(manifest: Manifest, url: str, sha: str, tmp_path: Path, etag: str | None) -> None:
    download = Download(url, url, url, tmp_path / "x", sha, 10, "image/jpeg", etag, None)
    manifest.record_download(download, sha)
    manifest.add_original(sha, f"originals/{sha[:2]}/{sha}.jpg", 10)


# -- the plan ----------------------------------------------------------------------------------


def test_the_plan_gives_every_job_over_many_pages_on_another_thread(tmp_path: Path) -> None:
    """More than one page of candidates, read on a thread that is not the manifest's (the
    Fetcher reads its jobs on its own thread)."""
    urls = _urls("a.test", PAGE + 7) + _urls("b.test", PAGE)
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        for url in urls:
            manifest.add_resolution(Resolution(_proxied(url), url, (url, _proxied(url)), ("c",)))
        plan, stored = manifest.plan_fetch(set(urls), retry_failed=False, refresh=False)
        jobs: list[FetchJob] = []
        reader = threading.Thread(target=lambda: jobs.extend(plan))
        reader.start()
        reader.join()
    assert stored == [] and len(plan) == len(jobs) == len(urls)
    assert [job.origin_url for job in jobs] == plan.urls
    assert sorted(jobs, key=lambda job: job.origin_url) == [
        FetchJob(url, (url, _proxied(url))) for url in urls
    ]
    assert [host_of(job.origin_url) for job in jobs[:4]] == ["a.test", "b.test"] * 2


def test_the_plan_holds_the_callers_strings_not_copies(tmp_path: Path) -> None:
    urls = _urls("a.test", 30)
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        for url in urls:
            manifest.add_resolution(Resolution(url, url, (url,), ()))
        plan, _ = manifest.plan_fetch(urls, retry_failed=False, refresh=False)
    mine = {id(url) for url in urls}
    assert len(plan) == 30 and all(id(url) in mine for url in plan.urls)


def test_revalidations_carry_their_validators_and_keeping_filters(tmp_path: Path) -> None:
    stored_url, new_url = "http://a.test/s.jpg", "http://b.test/n.jpg"
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        for url in (stored_url, new_url):
            manifest.add_resolution(Resolution(url, url, (url,), ()))
        _stored(manifest, stored_url, "ab" * 32, tmp_path, '"e1"')
        kept, _ = manifest.plan_fetch([stored_url, new_url], retry_failed=False, refresh=False)
        plan, stored = manifest.plan_fetch(
            [stored_url, new_url], retry_failed=False, refresh=True, refresh_all=True
        )
        jobs = {job.origin_url: job for job in plan}
        only_stored = list(plan.keeping(lambda url: url != new_url))
        listed, _ = manifest.fetch_jobs(
            [stored_url, new_url], retry_failed=False, refresh=True, refresh_all=True
        )
    assert kept.urls == [new_url]  # no refresh: the stored copy is kept
    assert stored == [stored_url]
    assert jobs[new_url] == FetchJob(new_url, (new_url,))
    assert jobs[stored_url] == FetchJob(stored_url, (stored_url,), '"e1"', None)
    assert only_stored == [jobs[stored_url]]
    assert sorted(listed, key=lambda job: job.origin_url) == sorted(
        jobs.values(), key=lambda job: job.origin_url
    )


def test_failed_statuses_are_those_of_failed_downloads_and_unusable_images(
    tmp_path: Path,
) -> None:
    good, gone, corrupt = "http://a.test/ok.jpg", "http://a.test/404.jpg", "http://a.test/bad.jpg"
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        for url in (good, gone, corrupt):
            manifest.add_resolution(Resolution(url, url, (url,), ()))
        _stored(manifest, good, "aa" * 32, tmp_path, None)
        _stored(manifest, corrupt, "bb" * 32, tmp_path, None)
        manifest.record_failure(FetchFailure(gone, "http_404", f"{gone}: 404"))
        manifest.record_image_error("bb" * 32, "corrupt_image", "cannot decode")
        failed = manifest.failed_statuses([good, gone, corrupt])
        every = manifest.url_statuses([good, gone, corrupt])
    assert failed == {url: every[url] for url in (gone, corrupt)}
    assert {url: s.reason for url, s in failed.items()} == {
        gone: "http_404",
        corrupt: "corrupt_image",
    }


# -- runs --------------------------------------------------------------------------------------


def _post(folder: Path, name: str, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f'<p><img src="{url}"></p>\n' for url in urls)
    path = folder / name
    path.write_text(f"---\ntitle: {name}\n---\n\n<div>\n{body}</div>\n")
    return path


def _fetch(posts: Path, cache: Path, *flags: str) -> Result:
    return CliRunner().invoke(main, ["fetch", str(posts), "--cache", str(cache), "--json", *flags])


@pytest.fixture
def pictures(proxy_env: OriginServer, monkeypatch: pytest.MonkeyPatch) -> OriginServer:
    """The origin answering sim<i>v<v>.jpg on any host, and plans read one job a page (so a
    run's few jobs span many pages, read on the Fetcher's thread)."""
    monkeypatch.setattr(proxy_env, "generated", True)
    monkeypatch.setattr(plan_module, "PAGE", 1)
    return proxy_env


def _old_report(cache: Path, posts: set[str]) -> list[tuple[str, str, list[str]]]:
    """The failures as the run reported them before failed_statuses: the effective status of
    every URL of the posts (url_statuses), then the posts of the failed ones."""
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        _, _, origins = manifest.reference_totals(sorted(posts))
        statuses = manifest.url_statuses(origins)
        failed = [url for url, s in statuses.items() if s.status == "failed"]
        posts_of = manifest.references_to(failed, posts)
    return sorted(
        (url, statuses[url].reason or "failed", sorted(set(posts_of[url])))
        for url in failed
        if url in posts_of
    )


def test_failures_of_earlier_runs_stay_in_the_report(
    tmp_path: Path, pictures: OriginServer
) -> None:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    first_gone, later_gone = "http://a.test/gone1.jpg", "http://b.test/gone2.jpg"
    _post(posts, "a.html", "http://a.test/sim1v0.jpg", first_gone, "http://b.test/sim2v0.jpg")
    first = _fetch(posts, cache)
    assert first.exit_code == 1, first.stderr
    _post(posts, "b.html", later_gone, "http://c.test/sim3v0.jpg", first_gone)
    second = _fetch(posts, cache)
    assert second.exit_code == 1, second.stderr
    summary = json.loads(second.stdout)
    assert summary["downloaded"] == 1
    report = [(f["url"], f["reason"], f["posts"], f["earlier"]) for f in summary["failed"]]
    assert report == [
        (first_gone, "http_404", ["posts/a.html", "posts/b.html"], True),
        (later_gone, "http_404", ["posts/b.html"], False),
    ]
    assert [(url, reason, where) for url, reason, where, _ in report] == _old_report(
        cache, {"posts/a.html", "posts/b.html"}
    )


def test_a_shards_plan_is_its_hosts_urls_fetched_page_by_page(
    tmp_path: Path, pictures: OriginServer
) -> None:
    shard = Shard.parse("1/2")
    hosts = [f"h{number}.test" for number in range(8)]
    urls = [f"http://{host}/sim{i * 10 + n}v0.jpg" for i, host in enumerate(hosts) for n in (1, 2)]
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.html", *urls)
    mine = {url for url in urls if shard.holds(url)}
    assert 0 < len(mine) < len(urls)  # both shards hold some of these hosts
    result = _fetch(posts, cache, "--shard", str(shard))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["downloaded"], summary["shard_urls"]) == (len(mine), len(mine))
    asked = {request.url for request in pictures.requests if request.method == "GET"}
    assert asked == mine
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        plan, stored = manifest.plan_fetch(urls, retry_failed=False, refresh=False)
    assert isinstance(plan, JobPlan) and set(plan.urls) == set(urls) - mine
    assert set(stored) == mine


# -- analyses ----------------------------------------------------------------------------------


def _stored_photo(store: Store, manifest: Manifest, number: int) -> str:
    """A real generated picture kept in the store and recorded as an unanalyzed original."""
    body = generated_image(number, 0)
    sha = hashlib.sha256(body).hexdigest()
    temp = store.temp_dir / f"{sha}.part"
    temp.write_bytes(body)
    assert manifest.add_original(sha, store.keep(temp, sha, "jpeg"), len(body))
    return sha


@pytest.mark.parametrize("rebuild", [False, True])
def test_analyses_keep_nothing_per_image_once_recorded(tmp_path: Path, rebuild: bool) -> None:
    """A fetch's Analyses hold the images waiting or running only; thumbnails are listed for
    `thumbs --rebuild` alone (it forgets the others)."""
    store = Store(tmp_path / "cache")
    store.prepare()
    settings = Settings(workers=1, images=ImageSettings(thumb_widths=(32,)))
    with Manifest.open(store.manifest_path) as manifest:
        shas = [_stored_photo(store, manifest, number) for number in range(INLINE_UP_TO + 6)]
        with cpu_pool(1) as pool:
            analyses = Analyses(pool, manifest, store, settings, print, rewrite_thumbnails=rebuild)
            for sha in shas:
                analyses.add(sha)
                analyses.add(sha)  # twice before it is recorded: analyzed once
            assert analyses.collect(block=True) == len(shas)
        made = manifest.thumbnail_relpaths()
        assert manifest.unanalyzed_images() == [] and len(made) == len(shas)
    assert analyses.added == len(shas)
    assert analyses.thumbnails_made == (made if rebuild else set())
    assert analyses._pending == set()  # what the run still holds per image
