"""`fetch --refresh` asks again only for stored URLs whose copy is stale by the Cache-Control and
Expires their server sent; `--refresh-all` asks for every one (real origin server, real
manifest, the origin's request log)."""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner, Result
from PIL import Image

from mediatool.cli import main
from mediatool.manifest import SCHEMA_VERSION, Manifest
from mediatool.models import Download, Resolution
from mediatool.testing.origin import OriginServer

IMMUTABLE = "http://cdn.example.test/immutable.jpg"
MAX_AGE_0 = "http://cdn.example.test/max-age-0.jpg"
NO_CACHE = "http://cdn.example.test/no-cache.jpg"
NO_HEADER = "http://cdn.example.test/no-header.jpg"
HEADERS = {
    IMMUTABLE: {"Cache-Control": "public, max-age=31536000, immutable"},
    MAX_AGE_0: {"Cache-Control": "max-age=0"},
    NO_CACHE: {"Cache-Control": "no-cache"},
    NO_HEADER: {},
}


def _photo(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, 255 - shade, 90)).save(out, "PNG")
    return out.getvalue()


def _archive(tmp_path: Path, origin: OriginServer) -> tuple[Path, Path]:
    """A post naming each URL of HEADERS, each served with its headers; (posts, cache)."""
    for number, (url, headers) in enumerate(HEADERS.items()):
        origin.add(url, _photo(40 * number), headers=headers)
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "a.md").write_text("".join(f"![]({url})\n\n" for url in HEADERS))
    return posts, tmp_path / "cache"


def _fetch(posts: Path, cache: Path, *flags: str) -> dict[str, object]:
    result: Result = CliRunner().invoke(
        main, ["fetch", str(posts), "--cache", str(cache), "--json", *flags]
    )
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def _asked(origin: OriginServer) -> set[str]:
    return {url for url in HEADERS if origin.requests_for(url)}


def test_refresh_asks_again_only_for_stale_copies(tmp_path: Path, proxy_env: OriginServer) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    assert _fetch(posts, cache)["downloaded"] == 4
    proxy_env.reset_requests()

    summary = _fetch(posts, cache, "--refresh")

    assert _asked(proxy_env) == {MAX_AGE_0, NO_CACHE, NO_HEADER}  # immutable: no request
    for url in (MAX_AGE_0, NO_CACHE, NO_HEADER):
        (request,) = proxy_env.requests_for(url)
        assert request.header("If-None-Match")  # a revalidation, as before
    assert summary["fresh"] == 1
    assert summary["not_modified"] == 3
    assert summary["downloaded"] == 0


def test_a_plain_run_asks_for_nothing_stored(tmp_path: Path, proxy_env: OriginServer) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    proxy_env.reset_requests()
    summary = _fetch(posts, cache)
    assert _asked(proxy_env) == set()
    assert summary["fresh"] == 0
    assert summary["already_stored"] == 4


def test_refresh_all_asks_again_for_every_stored_url(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    proxy_env.reset_requests()

    summary = _fetch(posts, cache, "--refresh-all")

    assert _asked(proxy_env) == set(HEADERS)
    assert proxy_env.requests_for(IMMUTABLE)[0].header("If-None-Match")
    assert summary["fresh"] == 0
    assert summary["not_modified"] == 4
    assert summary["already_stored"] == 0  # every one was asked: none counted as just kept


def test_a_304_records_the_freshness_it_sends(tmp_path: Path, proxy_env: OriginServer) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    route = proxy_env.add(MAX_AGE_0, _photo(40), headers={"Cache-Control": "max-age=3600"})
    proxy_env.reset_requests()

    assert _fetch(posts, cache, "--refresh")["not_modified"] == 3  # the 304 says max-age=3600
    assert MAX_AGE_0 in _asked(proxy_env)
    proxy_env.reset_requests()
    summary = _fetch(posts, cache, "--refresh")

    assert _asked(proxy_env) == {NO_CACHE, NO_HEADER}
    assert summary["fresh"] == 2
    assert route.hits == 1  # the 304; the next --refresh did not ask
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        row = manifest.db.execute(
            "SELECT cache_control FROM urls WHERE origin_url=?", (MAX_AGE_0,)
        ).fetchone()
    assert row[0] == "max-age=3600"


def test_a_changed_image_is_downloaded_on_refresh(tmp_path: Path, proxy_env: OriginServer) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    proxy_env.add(NO_CACHE, _photo(200), headers={"Cache-Control": "no-cache"})
    proxy_env.add(IMMUTABLE, _photo(220), headers=HEADERS[IMMUTABLE])  # not asked: kept as is
    summary = _fetch(posts, cache, "--refresh")
    assert summary["downloaded"] == 1
    assert summary["fresh"] == 1


def test_max_age_expires_after_its_seconds(tmp_path: Path) -> None:
    url = "http://cdn.example.test/a.png"
    sha = "ab" * 32
    download = Download(url, url, url, tmp_path / "x", sha, 10, "image/png", '"e1"', None)
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        manifest.add_resolution(Resolution(url, url, (url,), ()))
        manifest.record_download(_with(download, "max-age=60"), sha)
        manifest.add_original(sha, "originals/ab/ab/x.png", 10)
        fetched = manifest.db.execute("SELECT checked_at FROM urls").fetchone()[0]

        def refresh_at(seconds: float) -> list[str]:
            jobs, stored = manifest.fetch_jobs(
                [url], retry_failed=False, refresh=True, now=fetched + seconds
            )
            assert stored == [url]
            return [job.origin_url for job in jobs]

        assert refresh_at(59) == []
        assert refresh_at(61) == [url]


def _with(download: Download, cache_control: str) -> Download:
    return replace(download, cache_control=cache_control)


def test_a_manifest_from_before_migration_7_refreshes_as_it_did(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    _as_schema_6(cache / "manifest.sqlite")
    proxy_env.reset_requests()

    plain = _fetch(posts, cache)
    assert _asked(proxy_env) == set()
    assert plain["already_stored"] == 4
    summary = _fetch(posts, cache, "--refresh")  # no header recorded: every URL asked

    assert _asked(proxy_env) == set(HEADERS)
    assert summary["not_modified"] == 4
    assert summary["fresh"] == 0
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        version = manifest.db.execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION
    proxy_env.reset_requests()
    _fetch(posts, cache, "--refresh")  # the 304s recorded the headers: immutable is fresh now
    assert _asked(proxy_env) == {MAX_AGE_0, NO_CACHE, NO_HEADER}


def _as_schema_6(path: Path) -> None:
    """Undo migrations 8 and 7 on a real manifest, as mediatool before them left the file."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        "DROP INDEX images_canonical; ALTER TABLE images DROP COLUMN grouped; DROP TABLE grouping;"
        " ALTER TABLE urls DROP COLUMN cache_control; ALTER TABLE urls DROP COLUMN expires;"
        " DROP TABLE marks; ALTER TABLE posts DROP COLUMN problem_lines; PRAGMA user_version=6;"
    )
    db.close()


def test_the_summary_says_how_many_were_still_fresh(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    result = CliRunner().invoke(main, ["fetch", str(posts), "--cache", str(cache), "--refresh"])
    assert result.exit_code == 0, result.output
    assert "still fresh        1 (not asked: Cache-Control/Expires)" in result.stdout
    assert "not modified       3" in result.stdout
