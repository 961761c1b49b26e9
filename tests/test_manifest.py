"""The manifest: a real SQLite file, numbered migrations, the queries the pipeline relies on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mediatool.errors import ManifestTooNew
from mediatool.manifest import SCHEMA_VERSION, Manifest, PostState
from mediatool.models import (
    Analysis,
    Download,
    FetchFailure,
    ImageInfo,
    Resolution,
    Thumbnail,
)

ORIGIN = "http://static.1sapp.com/a.jpeg"
PROXIED = "https://cors.zfour.workers.dev/?http://static.1sapp.com/a.jpeg"


def _download(url: str, sha: str, tmp: Path) -> Download:
    return Download(url, url, url, tmp, sha, 10, "image/jpeg", '"e1"', None)


def _info(sha: str, width: int = 100, height: int = 50) -> ImageInfo:
    return ImageInfo(sha, "JPEG", width, height, 1000, "8000000000000000")


def test_new_manifest_is_migrated_to_current_schema(tmp_path: Path) -> None:
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        version = manifest.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in manifest.db.execute("SELECT name FROM sqlite_master")}
    assert version == SCHEMA_VERSION
    assert {
        "posts",
        "refs",
        "urls",
        "images",
        "thumbs",
        "generations",
        "generation_edits",
    } <= tables


def test_manifest_from_a_newer_mediatool_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(ManifestTooNew, match="newer mediatool"), Manifest.open(path):
        pass


def test_candidates_from_several_posts_are_merged_origin_first(tmp_path: Path) -> None:
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        manifest.add_resolution(Resolution(ORIGIN, ORIGIN, (ORIGIN,), ()))
        manifest.add_resolution(Resolution(PROXIED, ORIGIN, (ORIGIN, PROXIED), ("cors",)))
        jobs, stored = manifest.fetch_jobs([ORIGIN], retry_failed=False, refresh=False)
    assert stored == []
    assert [job.candidates for job in jobs] == [(ORIGIN, PROXIED)]


def test_stored_url_is_not_fetched_again_unless_refresh(tmp_path: Path) -> None:
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        manifest.add_resolution(Resolution(ORIGIN, ORIGIN, (ORIGIN,), ()))
        manifest.record_download(_download(ORIGIN, "ab" * 32, tmp_path / "x"), "ab" * 32)
        manifest.add_original("ab" * 32, "originals/ab/ab/x.jpg", 10)
        plain = manifest.fetch_jobs([ORIGIN], retry_failed=False, refresh=False)
        refresh = manifest.fetch_jobs([ORIGIN], retry_failed=False, refresh=True)
    assert plain == ([], [ORIGIN])
    assert refresh[0][0].etag == '"e1"'


def test_permanent_failures_wait_for_retry_failed_transient_ones_do_not(tmp_path: Path) -> None:
    other = "http://example.com/b.jpg"
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        for url in (ORIGIN, other):
            manifest.add_resolution(Resolution(url, url, (url,), ()))
        manifest.record_failure(FetchFailure(ORIGIN, "http_404", f"{ORIGIN}: 404"))
        manifest.record_failure(FetchFailure(other, "timeout", f"{other}: timeout"))
        plain, _ = manifest.fetch_jobs([ORIGIN, other], retry_failed=False, refresh=False)
        again, _ = manifest.fetch_jobs([ORIGIN, other], retry_failed=True, refresh=False)
    assert [job.origin_url for job in plain] == [other]
    assert sorted(job.origin_url for job in again) == sorted([ORIGIN, other])


def test_localization_follows_the_group_canonical(tmp_path: Path) -> None:
    small, big = "11" * 32, "22" * 32
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        manifest.add_resolution(Resolution(ORIGIN, ORIGIN, (ORIGIN,), ()))
        manifest.record_download(_download(ORIGIN, small, tmp_path / "x"), small)
        manifest.add_original(small, "originals/11/11/small.jpg", 10)
        manifest.add_original(big, "originals/22/22/big.jpg", 20)
        manifest.record_analysis(Analysis(_info(small, 100, 50), ()))
        thumb = Thumbnail(big, 64, 32, "thumbs/22/big-64x32.webp")
        manifest.record_analysis(Analysis(_info(big, 200, 100), (thumb,)))
        manifest.set_canonicals({small: big, big: big})
        found = manifest.localizations([ORIGIN])
        groups = manifest.group_count()
    assert found[ORIGIN].relpath == "originals/22/22/big.jpg"
    assert (found[ORIGIN].width, found[ORIGIN].height) == (200, 100)
    assert found[ORIGIN].thumb_relpath == "thumbs/22/big-64x32.webp"
    assert groups == (1, 2)


def test_failed_url_has_no_localization(tmp_path: Path) -> None:
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        manifest.add_resolution(Resolution(ORIGIN, ORIGIN, (ORIGIN,), ()))
        manifest.record_failure(FetchFailure(ORIGIN, "http_404", "gone"))
        assert manifest.localizations([ORIGIN]) == {}
        status = manifest.url_statuses([ORIGIN])[ORIGIN]
    assert (status.status, status.reason) == ("failed", "http_404")


def test_post_states_are_read_for_many_posts_and_skip_posts_with_problems(
    tmp_path: Path,
) -> None:
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        clean = {f"/a/{n}.md": PostState(n, 10 * n, "fp") for n in range(1, 1201)}
        for path, state in clean.items():
            manifest.record_post(path, state, "utf-8", None, [])
        manifest.record_post("/a/bad.md", PostState(5, 5, "fp"), "utf-8", "invalid YAML", [])
        manifest.record_post("/a/binary.md", None, None, "holds NUL bytes", [])
        asked = [*clean, "/a/bad.md", "/a/binary.md", "/a/never-seen.md"]
        assert manifest.post_states(asked) == clean  # 1200: more than one query's worth


def test_checkpoints_commit_at_marks_and_roll_back_only_what_came_after(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with (
        Manifest.open(path) as manifest,
        pytest.raises(RuntimeError),
        manifest.checkpoints(2, 3600.0) as checkpoint,
    ):
        for n in range(5):
            manifest.record_post(f"/p/{n}.md", PostState(n, n, "fp"), "utf-8", None, [])
            checkpoint()  # commits after the 2nd and the 4th post
        raise RuntimeError("killed while recording")
    with Manifest.open(path) as manifest:
        kept = manifest.post_states([f"/p/{n}.md" for n in range(5)])
    assert sorted(kept) == [f"/p/{n}.md" for n in range(4)]
