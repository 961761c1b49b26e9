"""Failures that stay visible, limits that re-evaluate, a deadline per download, unsafe SVGs and
durable store renames: against the real local origin server, a real cache and real images."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from mediatool.cli import main
from mediatool.config import FetchSettings
from mediatool.fetch import Fetcher
from mediatool.fetch.svg import vet_svg
from mediatool.files import temp_file_in
from mediatool.manifest import MIGRATIONS, Manifest
from mediatool.models import FetchFailure, FetchJob
from mediatool.store import Store
from mediatool.testing.origin import OriginServer

pytestmark = pytest.mark.timeout(60)

CORRUPT = "http://img.example.test/cut.jpg"
HUGE = "http://img.example.test/huge.jpg"
GOOD = "http://img.example.test/good.jpg"


def _jpeg(width: int, height: int) -> bytes:
    image = Image.radial_gradient("L").convert("RGB").resize((width, height))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _post(folder: Path, name: str, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(f"![]({url})\n\n" for url in urls))
    return path


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _fetch(posts: Path, cache: Path, *flags: str) -> tuple[Result, dict[str, object]]:
    result = _cli("fetch", str(posts), "--cache", str(cache), "--json", *flags)
    return result, json.loads(result.stdout)


def _failed(summary: dict[str, object]) -> dict[str, dict[str, object]]:
    return {f["url"]: f for f in summary["failed"]}  # type: ignore[attr-defined, index]


@pytest.fixture
def broken_site(proxy_env: OriginServer) -> OriginServer:
    whole = _jpeg(200, 150)
    proxy_env.add(CORRUPT, whole[: len(whole) // 2])  # a complete download of a damaged file
    proxy_env.add(HUGE, _jpeg(400, 300))  # 120,000 pixels
    proxy_env.add(GOOD, _jpeg(100, 75))
    return proxy_env


# -- failures stay visible -------------------------------------------------------------------


def test_failed_images_are_counted_by_every_run_until_they_succeed(
    tmp_path: Path, broken_site: OriginServer
) -> None:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", CORRUPT, HUGE, GOOD)
    _post(posts, "b.md", CORRUPT)
    first, summary = _fetch(posts, cache, "--max-pixels", "100000")
    assert first.exit_code == 1
    assert {url: f["reason"] for url, f in _failed(summary).items()} == {
        CORRUPT: "corrupt_image",
        HUGE: "too_many_pixels",
    }
    for _ in range(2):  # every later run: still counted, still named, still exit 1
        again, summary = _fetch(posts, cache, "--max-pixels", "100000")
        assert again.exit_code == 1
        failed = _failed(summary)
        assert {url: f["reason"] for url, f in failed.items()} == {
            CORRUPT: "corrupt_image",
            HUGE: "too_many_pixels",
        }
        assert failed[CORRUPT]["references"] == 2
        assert len(failed[CORRUPT]["posts"]) == 2  # type: ignore[arg-type]
        assert failed[CORRUPT]["earlier"] is True
        assert summary["failed_references"] == 3
        assert summary["images_analyzed"] == 0
        assert CORRUPT in again.stderr and HUGE in again.stderr
    text = _cli("fetch", str(posts), "--cache", str(cache), "--max-pixels", "100000")
    assert "failed             2 URLs, 3 references (2 failed in earlier runs" in text.stdout
    assert "corrupt_image" in text.stdout and "too_many_pixels" in text.stdout


def test_many_earlier_failures_are_named_up_to_twenty_then_counted(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    urls = [f"http://gone.example.test/{n:02}.jpg" for n in range(25)]
    for url in urls:
        proxy_env.add(url, b"gone", status=404)
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", *urls)
    _fetch(posts, cache)
    again, summary = _fetch(posts, cache)
    named = [line for line in again.stderr.splitlines() if line.startswith("still failed")]
    assert len(named) == 20
    assert named[0].startswith(f"still failed (http_404): {urls[0]}: HTTP 404")
    assert "... and 5 more earlier failures" in again.stderr
    assert len(summary["failed"]) == 25  # type: ignore[arg-type]


def test_rewrite_and_check_give_the_real_reason_of_a_failed_image(
    tmp_path: Path, broken_site: OriginServer
) -> None:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", CORRUPT, HUGE, GOOD)
    _fetch(posts, cache, "--max-pixels", "100000")
    _fetch(posts, cache, "--max-pixels", "100000")
    rewrite = _cli("rewrite", str(posts), "--cache", str(cache), "--json")
    assert rewrite.exit_code == 1
    reasons = {
        item["source_url"]: item["reason"] for item in json.loads(rewrite.stdout)["left_remote"]
    }
    assert reasons == {CORRUPT: "corrupt_image", HUGE: "too_many_pixels"}
    check = _cli("rewrite", str(posts), "--cache", str(cache), "--check", "--json")
    assert check.exit_code == 1
    found = {f["url"]: f["reason"] for f in json.loads(check.stdout)["failed"]}
    assert found == {CORRUPT: "corrupt_image", HUGE: "too_many_pixels"}
    assert f"a.md:1: failed (corrupt_image): {CORRUPT}" in check.stderr
    plain = _cli("rewrite", str(posts), "--cache", str(cache), "--check")
    assert "2 remote references whose download failed" in plain.stdout


def test_an_url_that_delivers_bytes_already_refused_is_failed_with_their_reason(
    tmp_path: Path, broken_site: OriginServer
) -> None:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", CORRUPT)
    _fetch(posts, cache)
    mirror = "http://mirror.example.test/same-cut.jpg"
    broken_site.add(mirror, _body_of(cache, CORRUPT))
    _post(posts, "b.md", mirror)
    result, summary = _fetch(posts, cache)
    assert result.exit_code == 1
    assert _failed(summary)[mirror]["reason"] == "corrupt_image"
    rewrite = _cli("rewrite", str(posts), "--cache", str(cache), "--json")
    reasons = {i["source_url"]: i["reason"] for i in json.loads(rewrite.stdout)["left_remote"]}
    assert reasons[mirror] == "corrupt_image"


def _body_of(cache: Path, url: str) -> bytes:
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        sha = manifest.db.execute("SELECT sha256 FROM urls WHERE origin_url=?", (url,)).fetchone()
        relpath = manifest.relpath_of_image(sha[0])
    return (cache / relpath).read_bytes()


def test_the_report_page_counts_failed_images_and_their_references(
    tmp_path: Path, broken_site: OriginServer
) -> None:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", CORRUPT, HUGE, GOOD)
    _post(posts, "b.md", CORRUPT)
    _fetch(posts, cache, "--max-pixels", "100000")
    report = _cli("report", "--cache", str(cache))
    page = Path(report.stdout.strip()).read_text()
    failures = page.split('id="failures"')[1].split("</section>")[0]
    assert "(2 URLs, 3 references in 2 rows)" in failures
    assert "corrupt_image" in failures and "too_many_pixels" in failures


def test_a_manifest_of_schema_2_keeps_image_failures_visible(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite"
    old = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:2], 1):
        old.executescript(f"{script}\nPRAGMA user_version={number};")
    old.execute(
        "INSERT INTO urls (origin_url, candidates, rules, status, sha256, reason, message)"
        " VALUES (?, '[]', '[]', 'failed', 'ab', 'corrupt_image', 'damaged')",
        (CORRUPT,),
    )
    old.execute(
        "INSERT INTO images (sha256, relpath, error_reason, error)"
        " VALUES ('ab', 'originals/ab.jpg', 'corrupt_image', 'damaged')"
    )
    old.commit()
    old.close()
    with Manifest.open(path) as manifest:
        status = manifest.url_statuses([CORRUPT])[CORRUPT]
        raw = manifest.db.execute("SELECT status FROM urls").fetchone()[0]
    assert (status.status, status.reason, status.message) == ("failed", "corrupt_image", "damaged")
    assert raw == "ok"  # the download itself succeeded; the image decides


def test_failures_the_user_accepts_are_shown_but_do_not_fail_the_run_or_the_check(
    tmp_path: Path, broken_site: OriginServer
) -> None:
    gone = "http://img.example.test/gone.jpg"
    broken_site.add(gone, b"no", status=404)
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", gone, GOOD)
    (posts / "mediatool.toml").write_text('[check]\nallow = ["http_404"]\n')
    for _ in range(2):
        result, summary = _fetch(posts, cache)
        assert result.exit_code == 0, result.stderr
        assert _failed(summary)[gone]["accepted"] is True
    assert "1 accepted by [check] allow" in _cli("fetch", str(posts), "--cache", str(cache)).stdout
    assert _cli("rewrite", str(posts), "--cache", str(cache)).exit_code == 1  # still left remote
    check = _cli("rewrite", str(posts), "--cache", str(cache), "--check", "--json")
    assert check.exit_code == 0, check.stderr
    assert [f["url"] for f in json.loads(check.stdout)["accepted"]] == [gone]
    (posts / "mediatool.toml").write_text("")
    assert _cli("rewrite", str(posts), "--cache", str(cache), "--check").exit_code == 1
    assert _fetch(posts, cache)[0].exit_code == 1


# -- a raised limit re-evaluates ---------------------------------------------------------------


def test_raising_max_pixels_brings_the_image_back(
    tmp_path: Path, broken_site: OriginServer
) -> None:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    post = _post(posts, "a.md", HUGE)
    refused, _ = _fetch(posts, cache, "--max-pixels", "100000")
    assert refused.exit_code == 1
    assert "--max-pixels" in refused.stderr
    lower, summary = _fetch(posts, cache, "--max-pixels", "110000")  # still too low
    assert lower.exit_code == 1
    assert "110,000" in _failed(summary)[HUGE]["message"]  # type: ignore[operator]
    raised, summary = _fetch(posts, cache, "--max-pixels", "120000")
    assert raised.exit_code == 0, raised.stderr
    assert summary["failed"] == [] and summary["images_analyzed"] == 1
    assert len(broken_site.requests_for(HUGE)) == 1  # analyzed again, not downloaded again
    assert _cli("rewrite", str(posts), "--cache", str(cache)).exit_code == 0
    assert HUGE not in post.read_text()


def test_raising_max_bytes_fetches_again(tmp_path: Path, broken_site: OriginServer) -> None:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", GOOD)
    size = len(_jpeg(100, 75))  # the bytes GOOD serves
    refused, summary = _fetch(posts, cache, "--max-bytes", str(size - 1))
    assert refused.exit_code == 1
    assert _failed(summary)[GOOD]["reason"] == "too_large"
    assert "--max-bytes" in refused.stderr
    same, _ = _fetch(posts, cache, "--max-bytes", str(size - 1))
    assert same.exit_code == 1
    assert len(broken_site.requests_for(GOOD)) == 1  # the same limit: not asked again
    raised, summary = _fetch(posts, cache, "--max-bytes", str(size))
    assert raised.exit_code == 0, raised.stderr
    assert summary["downloaded"] == 1
    assert len(broken_site.requests_for(GOOD)) == 2


# -- a deadline per download -------------------------------------------------------------------


def test_a_dripping_server_is_cut_off_at_max_time(
    origin: OriginServer, tmp_cache: Path, no_proxy_env: None
) -> None:
    url = origin.url("/drip.jpg")
    body = _jpeg(40, 30)
    origin.add(url, body, chunk_size=1, body_delay=0.05)  # one byte every 50 ms: ~minutes
    settings = FetchSettings(allow_private=True, retries=2, backoff=0.01, max_time=0.5)
    with Fetcher(settings, tmp_cache / "tmp") as fetcher:
        [outcome] = fetcher.fetch_all([FetchJob(url, (url,))])
    assert isinstance(outcome, FetchFailure), outcome
    assert outcome.reason == "too_slow"
    assert "max_time 0.5s" in outcome.message and "--max-time" in outcome.message
    assert len(origin.requests_for(url)) == 1  # not retried within the run: it would be as slow
    assert list((tmp_cache / "tmp").glob("*")) == []


def test_a_fast_download_is_not_cut_off(
    origin: OriginServer, tmp_cache: Path, no_proxy_env: None
) -> None:
    url = origin.url("/fast.jpg")
    origin.add(url, _jpeg(40, 30))
    settings = replace(FetchSettings(allow_private=True), max_time=5.0)
    with Fetcher(settings, tmp_cache / "tmp") as fetcher:
        [outcome] = fetcher.fetch_all([FetchJob(url, (url,))])
    assert not isinstance(outcome, FetchFailure), outcome


# -- SVGs that could run script or load resources ---------------------------------------------

SAFE_SVG = (
    b'<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"'
    b' "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10">'
    b'<a href="https://example.com/"><rect width="20" height="10" fill="url(#g)"/></a>'
    b'<image href="data:image/png;base64,iVBORw0KGgo="/></svg>\n'
)
SCRIPTED_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
    b' width="20" height="10" onload="steal()"><script>steal()</script>'
    b'<rect width="20" height="10" fill="red"/></svg>'
)
SVG_URL = "http://img.example.test/logo.svg"


@pytest.mark.parametrize(
    ("body", "found"),
    [
        (SCRIPTED_SVG, ["onload handler", "<script>"]),
        (  # a script URL hidden behind a character reference
            b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
            b'<a xlink:href="jav&#x61;script:x()"><rect/></a></svg>',
            ["script URL in href"],
        ),
        (  # ... or built from internal entities
            b'<!DOCTYPE svg [<!ENTITY a "java"><!ENTITY b "script:x()">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><a href="&a;&b;"><rect/></a></svg>',
            ["script URL in href"],
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><image href=" HTTPS://tracker.example/p.gif"/>'
            b'<use href="//cdn.example/sprite.svg#i"/></svg>',
            [
                "external href HTTPS://tracker.example/p.gif",
                "external href //cdn.example/sprite.svg#i",
            ],
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div'
            b' xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>'
            b"<style>@import url(https://e.example/x.css);</style>"
            b'<rect fill="url(https://e.example/p.svg#g)"/>'
            b'<set attributeName="href" to="javascript:x()"/></svg>',
            [
                "<foreignObject>",
                "<style> loading an external resource",
                "external url() in fill",
                "<set> changing href",
            ],
        ),
    ],
)
def test_unsafe_svg_constructs_are_found_and_removed(body: bytes, found: list[str]) -> None:
    verdict = vet_svg(body)
    assert list(verdict.findings) == found
    assert verdict.cleaned is not None
    again = vet_svg(verdict.cleaned)
    assert again.safe, again.findings  # what is left is clean
    assert b"<rect" in verdict.cleaned or b"<svg" in verdict.cleaned


def test_a_safe_svg_needs_no_change() -> None:
    verdict = vet_svg(SAFE_SVG)
    assert verdict.safe and verdict.cleaned is None


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        b'<!DOCTYPE s [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">'.encode() for n in range(8)
        )
        + b']><svg xmlns="http://www.w3.org/2000/svg"><text>&i;</text></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>',
    ],
    ids=["external-entity", "entity-expansion-bomb", "not-well-formed"],
)
def test_an_svg_that_cannot_be_parsed_safely_is_not_cleaned(body: bytes) -> None:
    verdict = vet_svg(body)
    assert not verdict.safe
    assert verdict.cleaned is None and verdict.error is not None


def _svg_run(
    tmp_path: Path, origin: OriginServer, body: bytes, policy: str | None
) -> tuple[Result, dict[str, object], Path]:
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    origin.add(SVG_URL, body, content_type="image/svg+xml")
    _post(posts, "a.md", SVG_URL)
    if policy is not None:
        (posts / "mediatool.toml").write_text(f'[images]\nsvg = "{policy}"\n')
    result, summary = _fetch(posts, cache)
    return result, summary, cache


def _stored_svg(cache: Path) -> bytes:
    [stored] = (cache / "originals").rglob("*.svg")
    return stored.read_bytes()


def test_a_scripted_svg_is_stored_sanitized_by_default(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    result, _, cache = _svg_run(tmp_path, proxy_env, SCRIPTED_SVG, None)
    assert result.exit_code == 0, result.stderr
    assert f"{SVG_URL}: SVG sanitized, removed onload handler, <script>" in result.stderr
    stored = _stored_svg(cache)
    assert b"script" not in stored and b"onload" not in stored
    assert b'<rect width="20" height="10" fill="red" />' in stored


def test_a_scripted_svg_is_refused_when_the_policy_says_so(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    result, summary, cache = _svg_run(tmp_path, proxy_env, SCRIPTED_SVG, "refuse")
    assert result.exit_code == 1
    assert _failed(summary)[SVG_URL]["reason"] == "unsafe_svg"
    assert f"{SVG_URL}: SVG refused: onload handler, <script>" in result.stderr
    assert list((cache / "originals").rglob("*.svg")) == []


def test_a_scripted_svg_is_kept_as_served_when_the_policy_says_so(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    result, _, cache = _svg_run(tmp_path, proxy_env, SCRIPTED_SVG, "keep")
    assert result.exit_code == 0
    assert _stored_svg(cache) == SCRIPTED_SVG


def test_a_safe_svg_is_stored_byte_for_byte(tmp_path: Path, proxy_env: OriginServer) -> None:
    result, _, cache = _svg_run(tmp_path, proxy_env, SAFE_SVG, None)
    assert result.exit_code == 0, result.stderr
    assert _stored_svg(cache) == SAFE_SVG
    assert "sanitized" not in result.stderr


def test_an_unknown_svg_policy_is_a_usage_error(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    _post(posts, "a.md", SVG_URL)
    (posts / "mediatool.toml").write_text('[images]\nsvg = "strip"\n')
    result = _cli("fetch", str(posts), "--cache", str(tmp_path / "cache"))
    assert result.exit_code == 2
    assert "images.svg" in result.stderr


# -- durable store renames ---------------------------------------------------------------------


def test_an_original_is_synced_before_its_rename_and_its_folders_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes
) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    with temp_file_in(store.temp_dir) as (handle, temp):
        handle.write(jpeg_bytes)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace_(src: str | Path, dst: str | Path) -> None:
        events.append(("rename", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace_)
    sha = hashlib.sha256(jpeg_bytes).hexdigest()
    final = store.path(store.put_original(temp, sha, "jpg"))
    shard = final.parent
    assert events == [
        ("fsync", str(temp)),
        ("rename", str(final)),
        ("fsync", str(shard)),
        ("fsync", str(shard.parent)),
        ("fsync", str(shard.parent.parent)),
    ]
    events.clear()
    with temp_file_in(store.temp_dir) as (handle, second):
        handle.write(jpeg_bytes + b"more")
    other = hashlib.sha256(jpeg_bytes + b"more").hexdigest()
    other = sha[:4] + other[4:]  # same shard folder: known, only it is synced
    final = store.path(store.put_original(second, other, "jpg"))
    assert events == [("fsync", str(second)), ("rename", str(final)), ("fsync", str(shard))]


def test_a_refused_svg_is_fetched_again_when_the_policy_is_relaxed(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    refused, _, cache = _svg_run(tmp_path, proxy_env, SCRIPTED_SVG, "refuse")
    assert refused.exit_code == 1
    posts = tmp_path / "posts"
    again, _ = _fetch(posts, cache)
    assert again.exit_code == 1
    assert len(proxy_env.requests_for(SVG_URL)) == 1  # the same policy: not asked again
    (posts / "mediatool.toml").write_text('[images]\nsvg = "sanitize"\n')
    relaxed, summary = _fetch(posts, cache)
    assert relaxed.exit_code == 0, relaxed.stderr
    assert summary["downloaded"] == 1
    assert b"<script" not in _stored_svg(cache)


@pytest.mark.parametrize("value", ["0", "-5", '"fast"'])
def test_a_max_time_that_is_not_a_positive_number_is_a_usage_error(
    tmp_path: Path, value: str
) -> None:
    posts = tmp_path / "posts"
    _post(posts, "a.md", GOOD)
    (posts / "mediatool.toml").write_text(f"[fetch]\nmax_time = {value}\n")
    result = _cli("fetch", str(posts), "--cache", str(tmp_path / "cache"))
    assert result.exit_code == 2
    assert "fetch.max_time must be a number of 0.1 or more" in result.stderr
