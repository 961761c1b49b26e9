"""Media beyond images: video, audio and documents stored as plain assets, judged by their bytes,
with a size limit per kind; against the real local origin server and a real cache."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.config import FetchSettings
from mediatool.fetch import Fetcher
from mediatool.fetch.partial import Partials
from mediatool.fetch.sniff import content_kind, media_kind
from mediatool.manifest import Manifest
from mediatool.models import Download, FetchFailure, FetchJob, FetchOutcome
from mediatool.testing.origin import OriginServer

pytestmark = pytest.mark.timeout(60)


def _mp4(size: int) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftypmp42" + b"\0\0\0\0" + b"mp42isom"
    mdat = struct.pack(">I", size - 24) + b"mdat"
    return ftyp + mdat + os.urandom(size - 32)


WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
WEBM += b"\x42\x82\x84webm\x42\x87\x81\x04\x42\x85\x81\x02" + bytes(range(256)) * 8
M4A = struct.pack(">I", 20) + b"ftypM4A " + b"\0\0\0\0" + b"M4A " + b"\0" * 500
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\0" * 800
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x55" * 800
OGG = b"OggS\x00\x02" + b"\0" * 20 + b"\x01vorbis" + b"\0" * 400
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< >>\n%%EOF\n"
VTT = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello\n"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (_mp4(64), ("video", "mp4")),
        (WEBM, ("video", "webm")),
        (M4A, ("audio", "m4a")),
        (MP3_ID3, ("audio", "mp3")),
        (MP3_FRAME, ("audio", "mp3")),
        (OGG, ("audio", "ogg")),
        (b"OggS\x00\x02" + b"\0" * 20 + b"\x80theora", ("video", "ogv")),
        (PDF, ("document", "pdf")),
        (VTT, ("document", "vtt")),
        (b"\xef\xbb\xbfWEBVTT - captions\n", ("document", "vtt")),
    ],
)
def test_media_are_known_by_their_first_bytes(head: bytes, kind: tuple[str, str]) -> None:
    assert media_kind(head) == kind
    assert content_kind(head) == kind


@pytest.mark.parametrize(
    "head",
    [
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # a JPEG is an image, not MPEG audio
        struct.pack(">I", 20) + b"ftypavif\0\0\0\0avif",  # AVIF is an image
        b"WEBVTTX\n",
        b"\xff\xf1\x50\x80",  # ADTS AAC: layer bits 00, not an MPEG audio frame
        b"<!doctype html><html>",
    ],
)
def test_what_is_not_a_media_file(head: bytes) -> None:
    assert media_kind(head) is None


def _post(folder: Path, name: str, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(f"![]({url})\n\n" for url in urls))
    return path


def _fetch(posts: Path, cache: Path, *flags: str) -> tuple[Result, dict[str, object]]:
    result = CliRunner().invoke(
        main, ["fetch", str(posts), "--cache", str(cache), "--json", *flags]
    )
    return result, json.loads(result.stdout)


MEDIA = {
    "http://media.example.test/clip.mp4": _mp4(300_000),
    "http://media.example.test/clip.webm": WEBM,
    "http://media.example.test/song.mp3": MP3_ID3,
    "http://media.example.test/download?id=7": M4A,  # the name says nothing: the bytes do
    "http://media.example.test/paper.pdf": PDF,
    "http://media.example.test/subs.vtt": VTT,
}


def test_media_are_stored_as_plain_assets_counted_by_kind_and_rewritten(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    for url, body in MEDIA.items():
        proxy_env.add(url, body, content_type="application/octet-stream")
    image = "http://media.example.test/photo.jpg"
    proxy_env.add(image, jpeg_bytes)
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    post = _post(posts, "a.md", *MEDIA, image)
    result, summary = _fetch(posts, cache)
    assert result.exit_code == 0, result.stderr
    assert summary["downloaded_by_kind"] == {"image": 1, "video": 2, "audio": 2, "document": 2}
    assert summary["stored_by_kind"] == {"image": 1, "video": 2, "audio": 2, "document": 2}
    assert summary["images_analyzed"] == 1  # media are not decoded
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        rows = dict(
            manifest.db.execute(
                "SELECT u.origin_url, i.kind || ' ' || i.format || ' ' || i.relpath"
                " FROM urls u JOIN images i ON i.sha256=u.sha256"
            ).fetchall()
        )
        media_thumbs = manifest.db.execute(
            "SELECT count(*) FROM thumbs t JOIN images i ON i.sha256=t.sha256 WHERE i.kind!='image'"
        ).fetchone()[0]
    assert rows["http://media.example.test/download?id=7"].startswith("audio M4A originals/")
    assert rows["http://media.example.test/download?id=7"].endswith(".m4a")
    assert rows["http://media.example.test/clip.mp4"].startswith("video MP4 ")
    assert rows["http://media.example.test/paper.pdf"].startswith("document PDF ")
    assert media_thumbs == 0
    for url, body in MEDIA.items():
        relpath = rows[url].split(" ")[2]
        assert (cache / relpath).read_bytes() == body
    text = CliRunner().invoke(main, ["fetch", str(posts), "--cache", str(cache)]).stdout
    assert "stored             1 image, 2 videos, 2 audio files, 2 documents" in text
    rewrite = CliRunner().invoke(main, ["rewrite", str(posts), "--cache", str(cache)])
    assert rewrite.exit_code == 0, rewrite.stderr
    assert "media.example.test" not in post.read_text()
    rebuild = CliRunner().invoke(main, ["thumbs", "--rebuild", "--cache", str(cache)])
    assert rebuild.exit_code == 0, rebuild.stderr  # assets are not images to thumbnail


def test_max_bytes_applies_per_kind_and_raising_one_fetches_only_its_kind(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    video, image = "http://media.example.test/big.mp4", "http://media.example.test/p.jpg"
    proxy_env.add(video, _mp4(200_000))
    proxy_env.add(image, jpeg_bytes)
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", video, image)
    config = posts / "mediatool.toml"
    config.write_text("[fetch.max_bytes]\nimage = 100\nvideo = 100000\n")
    refused, summary = _fetch(posts, cache)
    assert refused.exit_code == 1
    failed = {f["url"]: f for f in summary["failed"]}  # type: ignore[attr-defined]
    assert (
        failed[video]["reason"] == "too_large"
        and "max_bytes.video 100000" in failed[video]["message"]
    )
    assert (
        failed[image]["reason"] == "too_large" and "max_bytes.image 100" in failed[image]["message"]
    )
    config.write_text("[fetch.max_bytes]\nimage = 100\nvideo = 1000000\n")
    _, summary = _fetch(posts, cache)
    assert summary["downloaded_by_kind"] == {"video": 1}
    assert len(proxy_env.requests_for(image)) == 1  # its own limit did not change
    assert len(proxy_env.requests_for(video)) == 2
    config.write_text("[fetch]\nmax_bytes = 100\n")  # the scalar form: every kind
    _fetch(posts, cache)
    assert len(proxy_env.requests_for(image)) == 1


def test_an_unknown_kind_in_max_bytes_is_a_usage_error(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    _post(posts, "a.md", "http://media.example.test/a.mp4")
    (posts / "mediatool.toml").write_text("[fetch.max_bytes]\nvideos = 5\n")
    result = CliRunner().invoke(main, ["fetch", str(posts), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "[fetch.max_bytes]: videos" in result.stderr


# -- large bodies: resumed with Range after an interruption -------------------------------------

BIG = "/media/big.mp4"


def _fetch_one(temp_dir: Path, url: str, **settings: object) -> FetchOutcome:
    fetch = replace(FetchSettings(allow_private=True, backoff=0.01, retries=2), **settings)
    with Fetcher(fetch, temp_dir) as fetcher:  # type: ignore[arg-type]
        [outcome] = fetcher.fetch_all([FetchJob(url, (url,))])
    return outcome


def _ranges_asked(origin: OriginServer, url: str) -> list[str | None]:
    return [r.header("range") for r in origin.requests_for(url)]


def test_an_interrupted_transfer_resumes_with_range_in_the_same_run(
    origin: OriginServer, tmp_cache: Path, no_proxy_env: None
) -> None:
    body = _mp4(400_000)
    origin.add(BIG, body, truncate_at=150_000, truncate_first=1)
    outcome = _fetch_one(tmp_cache / "tmp", origin.url(BIG))
    assert isinstance(outcome, Download), outcome
    assert outcome.sha256 == hashlib.sha256(body).hexdigest()
    assert outcome.temp_path.read_bytes() == body
    first, second = origin.requests_for(BIG)
    assert first.header("range") is None
    assert second.header("range") == "bytes=150000-"
    assert second.header("if-range") == first_answer_etag(body)
    kept = list((tmp_cache / "tmp" / "partial").glob("*"))
    assert kept == [outcome.temp_path]  # handed to the caller; no record left to resume from


def first_answer_etag(body: bytes) -> str:
    """The ETag the origin server sends for `body` (a sha256 prefix)."""
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def test_a_partial_download_is_kept_and_resumed_by_the_next_run(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    url = "http://media.example.test/talk.mp4"
    body = _mp4(300_000)
    proxy_env.add(url, body, truncate_at=200_000, truncate_first=1)
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    _post(posts, "a.md", url)
    broken, summary = _fetch(posts, cache, "--retries", "0")
    assert broken.exit_code == 1
    [failure] = summary["failed"]  # type: ignore[misc]
    assert failure["reason"] == "truncated"
    assert "the 200000 bytes received are kept to resume" in failure["message"]
    assert len(list((cache / "tmp" / "partial").glob("*.data"))) == 1
    resumed, summary = _fetch(posts, cache, "--retries", "0")
    assert resumed.exit_code == 0, resumed.stderr
    assert _ranges_asked(proxy_env, url) == [None, "bytes=200000-"]
    [stored] = (cache / "originals").rglob("*.mp4")
    assert stored.read_bytes() == body
    assert list((cache / "tmp" / "partial").glob("*")) == []


def test_a_server_that_ignores_range_is_read_again_from_the_start(
    origin: OriginServer, tmp_cache: Path, no_proxy_env: None
) -> None:
    body = _mp4(400_000)
    origin.add(BIG, body, truncate_at=150_000, truncate_first=1, ranges=False)
    outcome = _fetch_one(tmp_cache / "tmp", origin.url(BIG))
    assert isinstance(outcome, Download), outcome
    assert outcome.temp_path.read_bytes() == body  # not the first part twice
    assert _ranges_asked(origin, BIG) == [None, "bytes=150000-"]  # asked, answered 200


def test_a_file_changed_on_the_server_is_not_glued_to_the_old_part(
    origin: OriginServer, tmp_cache: Path, no_proxy_env: None
) -> None:
    old, new = _mp4(300_000), _mp4(300_000)
    origin.add(BIG, old, truncate_at=100_000)
    failed = _fetch_one(tmp_cache / "tmp", origin.url(BIG), retries=0)
    assert isinstance(failed, FetchFailure) and failed.reason == "truncated"
    origin.add(BIG, new)  # a new version: another ETag, so If-Range does not match
    outcome = _fetch_one(tmp_cache / "tmp", origin.url(BIG))
    assert isinstance(outcome, Download), outcome
    assert outcome.temp_path.read_bytes() == new
    assert origin.requests_for(BIG)[-1].header("range") == "bytes=100000-"


def test_a_small_interrupted_body_starts_over_and_keeps_nothing(
    origin: OriginServer, tmp_cache: Path, no_proxy_env: None
) -> None:
    origin.add(BIG, _mp4(40_000), truncate_at=20_000)
    failed = _fetch_one(tmp_cache / "tmp", origin.url(BIG), retries=0)
    assert isinstance(failed, FetchFailure) and failed.reason == "truncated"
    assert "kept" not in failed.message
    assert list((tmp_cache / "tmp").rglob("*")) in ([], [tmp_cache / "tmp" / "partial"])


def test_media_are_judged_by_bytes_not_by_content_type(
    origin: OriginServer, tmp_cache: Path, no_proxy_env: None
) -> None:
    origin.add("/v.bin", _mp4(5_000), content_type="text/html")
    origin.add("/fake.mp4", b"<!doctype html><html>sign in</html>", content_type="video/mp4")
    video = _fetch_one(tmp_cache / "tmp", origin.url("/v.bin"))
    assert isinstance(video, Download) and (video.category, video.kind) == ("video", "mp4")
    fake = _fetch_one(tmp_cache / "tmp", origin.url("/fake.mp4"))
    assert isinstance(fake, FetchFailure) and fake.reason == "not_an_image"
    assert "HTML" in fake.message


def test_partial_downloads_not_resumed_for_two_weeks_are_deleted(tmp_path: Path) -> None:
    partials = Partials(tmp_path)
    old = partials.keep("http://a.test/old.mp4", _file(tmp_path / "o", 100), 100, '"x"')
    new = partials.keep("http://a.test/new.mp4", _file(tmp_path / "n", 100), 100, '"y"')
    weeks_ago = time.time() - 15 * 86400
    for path in old.path.parent.glob(old.path.stem + ".*"):
        os.utime(path, (weeks_ago, weeks_ago))
    assert partials.prune() == 2
    assert partials.find("http://a.test/old.mp4") is None
    assert partials.find("http://a.test/new.mp4") == new


def _file(path: Path, size: int) -> Path:
    path.write_bytes(b"\0" * size)
    return path
