"""The object store (`--cache s3://bucket/prefix`) against moto's S3 server on loopback and the
local origin server: put-if-absent, a whole fetch into a bucket, re-runs that do nothing,
rewrite --base-url, verify and gc, and the one-line errors."""

from __future__ import annotations

import hashlib
import io
import socket
import struct
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import S3Bucket
from PIL import Image

from mediatool.cli import main
from mediatool.config import FetchSettings, ImageSettings, Settings, load_settings
from mediatool.errors import CacheBusy, ObjectStoreError, UsageError
from mediatool.lock import hold_cache
from mediatool.manifest import Manifest
from mediatool.pipeline import (
    run_check,
    run_fetch,
    run_gc,
    run_rebuild_thumbs,
    run_rewrite,
    run_undo,
    run_verify,
)
from mediatool.pipeline.common import store_of
from mediatool.store import original_relpath
from mediatool.store_s3 import BOTO3_MISSING, S3Store, state_dir_of
from mediatool.testing.origin import OriginServer


def _photo(width: int, shade: int) -> bytes:
    """A photo-like JPEG; a different `shade` gives a picture no near-duplicate of the other."""
    gradient = Image.radial_gradient("L") if shade > 128 else Image.linear_gradient("L")
    image = gradient.convert("RGB").resize((width, width * 3 // 4))
    for x in range(0, width, max(1, width // (4 + shade % 7))):
        image.paste((shade, 40, 255 - shade), (x, 0, x + max(1, width // 20), width // 2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _settings(s3: S3Bucket, tmp_path: Path) -> Settings:
    return Settings(
        cache_url=s3.url,
        manifest_path=tmp_path / "archive" / "mediatool.sqlite",
        fetch=FetchSettings(allow_private=True, retries=0),
        workers=1,
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _site(tmp_path: Path, origin: OriginServer) -> tuple[Path, dict[str, bytes]]:
    """A post with two photos (one big enough for thumbnails) served by the origin."""
    images = {"/big.jpg": _photo(800, 200), "/small.jpg": _photo(120, 90)}
    for path, body in images.items():
        origin.add(path, body, content_type="image/jpeg")
    post = tmp_path / "archive" / "posts" / "a.md"
    post.parent.mkdir(parents=True)
    post.write_text(
        "---\ntitle: t\n---\n\n"
        + "".join(f"![x]({origin.url(path)})\n\n" for path in images)
        + "The end.\n"
    )
    return post, images


def _stored(settings: Settings) -> list[tuple[str, str, tuple[str, ...]]]:
    assert settings.manifest_path is not None
    with Manifest.open(settings.manifest_path) as manifest:
        return [(f.sha256, f.relpath, f.thumbs) for f in manifest.stored_files()]


# --- put-if-absent -------------------------------------------------------------------------


def test_eight_writers_of_one_key_store_it_once_and_all_succeed(
    s3: S3Bucket, tmp_path: Path
) -> None:
    data = _photo(200, 10)
    sha = hashlib.sha256(data).hexdigest()
    stores = [S3Store(s3.url, tmp_path / f"run{n}" / "m.sqlite") for n in range(8)]
    temps = []
    for store in stores:
        store.prepare()  # each lists the (empty) bucket: none knows of the others' writes
        temp = store.temp_dir / "download.part"
        temp.write_bytes(data)
        temps.append(temp)
    start = threading.Barrier(len(stores))
    answers: list[str] = []

    def put(store: S3Store, temp: Path) -> None:
        start.wait()
        answers.append(store.put_original(temp, sha, "jpg"))

    threads = [threading.Thread(target=put, args=pair) for pair in zip(stores, temps, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    relpath = original_relpath(sha, "jpg")
    assert answers == [relpath] * 8
    assert sum(store.puts for store in stores) == 1
    assert sum(store.lost_races for store in stores) == 7
    assert len(s3.requests("PUT", f"/{s3.name}/blog/originals/")) == 8
    assert s3.object_keys() == [f"blog/{relpath}"]
    assert s3.body(f"blog/{relpath}") == data


def test_prepare_drops_the_local_files_a_killed_run_left(s3: S3Bucket, tmp_path: Path) -> None:
    store = S3Store(s3.url, tmp_path / "m.sqlite")
    left = store.root / original_relpath("ab" * 32, "jpg")
    left.parent.mkdir(parents=True)
    left.write_bytes(b"half an upload's local copy")
    store.prepare()
    assert not left.exists()


# --- fetch into a bucket ---------------------------------------------------------------------


def test_fetch_stores_originals_and_thumbnails_in_the_bucket_and_the_manifest_locally(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, images = _site(tmp_path, origin)
    settings = _settings(s3, tmp_path)
    summary = run_fetch([post], settings, say=_say)
    assert summary.ok, summary.problems
    assert summary.downloaded == 2
    assert settings.manifest_path is not None and settings.manifest_path.is_file()
    stored = _stored(settings)
    assert {sha for sha, _, _ in stored} == {hashlib.sha256(b).hexdigest() for b in images.values()}
    keys = set(s3.object_keys())
    for sha, relpath, thumbs in stored:
        assert hashlib.sha256(s3.body(f"blog/{relpath}")).hexdigest() == sha
        assert {f"blog/{t}" for t in thumbs} <= keys
    assert any(thumbs for _, _, thumbs in stored)  # the 800 px photo has thumbnails
    head = s3.client.head_object(Bucket=s3.name, Key=f"blog/{stored[0][1]}")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    thumb = next(t for _, _, thumbs in stored for t in thumbs)
    assert s3.client.head_object(Bucket=s3.name, Key=f"blog/{thumb}")["ContentType"] == "image/webp"
    assert len(keys) == len(stored) + sum(len(thumbs) for _, _, thumbs in stored)
    local = state_dir_of(settings.manifest_path) / "local"
    assert not [p for p in local.rglob("*") if p.is_file()]  # uploaded, local copies dropped
    assert not (tmp_path / "archive" / "cache").exists()  # no cache folder was made


def test_a_media_file_is_stored_without_a_local_copy_left(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    mp4 = struct.pack(">I", 24) + b"ftypmp42\0\0\0\0mp42isom" + struct.pack(">I", 4008)
    mp4 += b"mdat" + bytes(range(256)) * 15 + b"\0" * 160
    origin.add("/clip.mp4", mp4, content_type="video/mp4")
    post = tmp_path / "archive" / "a.md"
    post.parent.mkdir()
    post.write_text(f"![]({origin.url('/clip.mp4')})\n")
    settings = _settings(s3, tmp_path)
    summary = run_fetch([post], settings, say=_say)
    assert summary.ok and summary.downloaded_by_kind == {"video": 1}
    relpath = original_relpath(hashlib.sha256(mp4).hexdigest(), "mp4")
    assert s3.object_keys() == [f"blog/{relpath}"]
    assert s3.client.head_object(Bucket=s3.name, Key=f"blog/{relpath}")["ContentType"] == (
        "video/mp4"
    )
    assert settings.manifest_path is not None
    assert not (state_dir_of(settings.manifest_path) / "local" / relpath).exists()


def test_a_second_fetch_downloads_nothing_and_writes_nothing(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    settings = _settings(s3, tmp_path)
    assert run_fetch([post], settings, say=_say).ok
    s3.server.requests.clear()
    served = len(origin.requests)
    again = run_fetch([post], settings, say=_say)
    assert again.ok and again.downloaded == 0 and again.already_stored == 2
    assert len(origin.requests) == served
    assert s3.requests("PUT") == [] and s3.requests("DELETE") == []
    assert s3.requests("GET", f"/{s3.name}/blog/") == []  # no object read, only the listing
    assert len(s3.requests("GET", f"/{s3.name}")) == 1  # one listing of originals/


def test_a_run_that_finds_the_objects_stored_by_another_manifest_puts_nothing(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    first = _settings(s3, tmp_path)
    assert run_fetch([post], first, say=_say).ok
    other = Settings(
        cache_url=s3.url,
        manifest_path=tmp_path / "archive" / "other.sqlite",
        fetch=first.fetch,
        workers=1,
    )
    s3.server.requests.clear()
    summary = run_fetch([post], other, say=_say)
    assert summary.ok and summary.downloaded == 2
    assert s3.requests("PUT", f"/{s3.name}/blog/originals/") == []
    assert _stored(other) == _stored(first)


def test_the_lock_is_beside_the_manifest_one_run_per_manifest(s3: S3Bucket, tmp_path: Path) -> None:
    settings = _settings(s3, tmp_path)
    assert settings.manifest_path is not None
    with hold_cache(state_dir_of(settings.manifest_path), "fetch"):
        with pytest.raises(CacheBusy, match="in use by PID"):
            run_fetch([tmp_path], settings, say=_say)
        other = Settings(cache_url=s3.url, manifest_path=tmp_path / "other.sqlite", workers=1)
        assert run_fetch([tmp_path], other, say=_say).ok  # another manifest: its own lock


# --- rewrite --base-url ---------------------------------------------------------------------


def test_rewrite_points_posts_at_the_public_url_and_check_and_undo_follow(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, images = _site(tmp_path, origin)
    before = post.read_text()
    settings = _settings(s3, tmp_path)
    assert run_fetch([post], settings, say=_say).ok
    base = "https://media.example/blog"  # the "/" is added
    summary = run_rewrite([post], settings, say=_say, base_url=base)
    assert summary.ok and summary.references_rewritten == 2
    text = post.read_text()
    for body in images.values():
        sha = hashlib.sha256(body).hexdigest()
        assert f"![x](https://media.example/blog/{original_relpath(sha, 'jpg')})" in text
    assert origin.url("/") not in text
    again = run_rewrite([post], settings, say=_say, base_url=base)
    assert again.posts_changed == 0 and again.references_left_remote == 0
    checked = run_check([post], settings, say=_say, base_url=base)
    assert checked.ok, checked
    first = sorted(s3.object_keys())[0]
    s3.client.delete_object(Bucket=s3.name, Key=first)
    missing = run_check([post], settings, say=_say, base_url=base)
    assert [f.url.removeprefix(base + "/") for f in missing.missing] == [
        first.removeprefix("blog/")
    ]
    undone = run_undo([post], settings, say=_say)
    assert undone.ok and post.read_text() == before


@pytest.mark.parametrize(
    "base_url", ["ftp://media.example/", "https:///no-host/", "mailto:me@example.com", " "]
)
def test_a_base_url_that_is_no_http_url_nor_path_is_refused(tmp_path: Path, base_url: str) -> None:
    settings = Settings(cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError, match="--base-url") as raised:
        run_check([tmp_path], settings, say=_say, base_url=base_url)
    assert "https://media.example/ or /media/" in str(raised.value)


def test_rewrite_with_an_s3_cache_needs_a_base_url(s3: S3Bucket, tmp_path: Path) -> None:
    settings = _settings(s3, tmp_path)
    assert settings.manifest_path is not None
    settings.manifest_path.parent.mkdir()
    with Manifest.open(settings.manifest_path):
        pass
    for run in (run_rewrite, run_check):
        with pytest.raises(UsageError, match="--base-url URL, the public URL"):
            run([tmp_path], settings, say=_say)


def test_base_url_works_for_the_folder_cache_too(
    tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    settings = Settings(
        cache_dir=tmp_path / "archive" / "cache", fetch=FetchSettings(allow_private=True)
    )
    assert run_fetch([post], settings, say=_say).ok
    summary = run_rewrite([post], settings, say=_say, base_url="https://cdn.example/")
    assert summary.references_rewritten == 2
    assert post.read_text().count("](https://cdn.example/originals/") == 2
    assert run_check([post], settings, say=_say, base_url="https://cdn.example/").ok
    again = run_fetch([post], settings, say=_say)  # the CDN's URLs name files of the cache
    assert again.ok and again.downloaded == 0 and again.already_stored == 2


# --- verify and gc ---------------------------------------------------------------------------


def test_verify_finds_a_damaged_object_and_repair_stores_it_again(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    settings = _settings(s3, tmp_path)
    assert run_fetch([post], settings, say=_say).ok
    assert run_verify(settings, say=_say).ok
    sha, relpath, _ = _stored(settings)[0]
    s3.client.put_object(Bucket=s3.name, Key=f"blog/{relpath}", Body=b"not the bytes")
    found = run_verify(settings, say=_say)
    assert found.damaged_originals == 1 and not found.ok
    repaired = run_verify(settings, say=_say, repair=True)
    assert repaired.repaired == 1 and repaired.ok
    assert hashlib.sha256(s3.body(f"blog/{relpath}")).hexdigest() == sha


def test_thumbs_rebuilds_thumbnails_in_the_bucket_and_deletes_the_stale_ones(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    settings = _settings(s3, tmp_path)
    assert run_fetch([post], settings, say=_say).ok
    before = {t for _, _, thumbs in _stored(settings) for t in thumbs}
    wider = replace(settings, images=ImageSettings(thumb_widths=(200,)))
    summary = run_rebuild_thumbs(wider, say=_say)
    assert summary.ok
    after = {t for _, _, thumbs in _stored(wider) for t in thumbs}
    assert after and not after & before
    originals = {f"blog/{relpath}" for _, relpath, _ in _stored(wider)}
    assert set(s3.object_keys()) == originals | {f"blog/{t}" for t in after}


def test_gc_deletes_the_objects_no_post_uses(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    settings = _settings(s3, tmp_path)
    assert run_fetch([post], settings, say=_say).ok
    post.unlink()
    summary = run_gc(settings, say=_say)
    assert summary.originals == 2
    assert s3.object_keys() == []


# --- errors ------------------------------------------------------------------------------------


def test_a_missing_bucket_is_one_line_naming_it(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    settings = Settings(
        cache_url="s3://no-such-bucket/blog", manifest_path=tmp_path / "m.sqlite", workers=1
    )
    with pytest.raises(ObjectStoreError) as raised:
        run_fetch([post], settings, say=_say)
    message = str(raised.value)
    assert "bucket 'no-such-bucket' does not exist" in message and "\n" not in message
    assert raised.value.exit_code == 3


def test_missing_credentials_are_one_line_saying_what_to_set(
    s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ObjectStoreError, match="set AWS_ACCESS_KEY_ID") as raised:
        S3Store(s3.url, tmp_path / "m.sqlite").prepare()
    assert raised.value.exit_code == 3


def test_an_unknown_aws_profile_is_one_line_saying_what_to_fix(
    s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ObjectStoreError) as raised:
        S3Store(s3.url, tmp_path / "m.sqlite").prepare()
    assert str(raised.value) == (
        f"{s3.url}: cannot set up the S3 client (The config profile (no-such-profile) could "
        "not be found); fix AWS_PROFILE or ~/.aws/config."
    )


def test_an_s3_cache_without_a_manifest_file_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["fetch", str(tmp_path), "--cache", "s3://media/blog"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --cache s3://media/blog keeps the manifest on this machine: give it a file "
        "with --manifest PATH (e.g. --manifest mediatool.sqlite)."
    )


def test_a_bad_bucket_url_is_a_usage_error(tmp_path: Path) -> None:
    settings = Settings(cache_url="s3://Bad_Bucket/x", manifest_path=tmp_path / "m.sqlite")
    with pytest.raises(UsageError, match="not an S3 bucket URL"):
        store_of(settings)


def test_without_boto3_the_s3_cache_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    store = S3Store("s3://media/blog", tmp_path / "m.sqlite")
    with pytest.raises(UsageError) as raised:
        store.prepare()
    assert str(raised.value) == BOTO3_MISSING
    assert raised.value.exit_code == 2


def test_cache_dir_in_the_config_file_may_be_an_s3_url(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text('cache_dir = "s3://media/blog"\n')
    assert load_settings(config).cache_url == "s3://media/blog"
    assert load_settings(config, {"cache_dir": Path("here")}).cache_url is None


# --- the command line --------------------------------------------------------------------------


def test_fetch_and_rewrite_through_the_command_line(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, images = _site(tmp_path, origin)
    manifest = str(tmp_path / "archive" / "mediatool.sqlite")
    where = ["--cache", s3.url, "--manifest", manifest]
    fetched = CliRunner().invoke(main, ["fetch", str(post), *where, "--allow-private"])
    assert fetched.exit_code == 0, fetched.stderr
    assert len([k for k in s3.object_keys() if "/originals/" in k]) == len(images)
    no_base = CliRunner().invoke(main, ["rewrite", str(post), *where])
    assert no_base.exit_code == 2
    assert no_base.stderr.startswith(f"error: --cache {s3.url}: give rewrite --base-url URL")
    bad = CliRunner().invoke(main, ["rewrite", str(post), *where, "--base-url", "ftp://x/"])
    assert bad.exit_code == 2 and len(bad.stderr.splitlines()) == 1
    base = ["--base-url", "https://media.example/blog/"]
    rewritten = CliRunner().invoke(main, ["rewrite", str(post), *where, *base])
    assert rewritten.exit_code == 0, rewritten.stderr
    assert post.read_text().count("](https://media.example/blog/originals/") == len(images)
    checked = CliRunner().invoke(main, ["rewrite", str(post), *where, *base, "--check"])
    assert checked.exit_code == 0, checked.stderr


def test_a_missing_bucket_on_the_command_line_is_one_line_and_exit_3(
    s3: S3Bucket, tmp_path: Path, origin: OriginServer, no_proxy_env: None
) -> None:
    post, _ = _site(tmp_path, origin)
    manifest = str(tmp_path / "m.sqlite")
    result = CliRunner().invoke(
        main, ["fetch", str(post), "--cache", "s3://gone/blog", "--manifest", manifest]
    )
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: s3://gone/blog: bucket 'gone' does not exist at {s3.endpoint}; create it "
        "or fix --cache (and AWS_ENDPOINT_URL)."
    ]


def test_an_unreachable_endpoint_is_one_line_and_exit_3(
    s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    (tmp_path / "a.md").write_text("no images\n")
    where = ["--cache", s3.url, "--manifest", str(tmp_path / "m.sqlite")]
    result = CliRunner().invoke(main, ["fetch", str(tmp_path / "a.md"), *where])
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {s3.url}: cannot reach {endpoint} (EndpointConnectionError); check "
        "AWS_ENDPOINT_URL and the network, then run again."
    ]
