"""End to end over a copy of the example archive, served by the local origin server through
HTTP_PROXY/HTTPS_PROXY (https via CONNECT with the server's test CA in SSL_CERT_FILE)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mediatool.cli import main
from mediatool.config import DiscoverSettings
from mediatool.discover import find_posts, read_post, scan_text
from mediatool.manifest import Manifest, archive_root
from mediatool.models import PostScan, RefKind
from mediatool.pipeline.common import post_key
from mediatool.testing.origin import OriginServer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "archive"
SIZE_ATTRIBUTES = re.compile(r' width="\d+" height="\d+"')


@pytest.fixture(scope="module")
def example_origin() -> Iterator[OriginServer]:
    with OriginServer(root=EXAMPLE / "origin") as server:
        yield server


@pytest.fixture
def archive(tmp_path: Path, example_origin: OriginServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, example_origin.proxy_url)
    monkeypatch.setenv("SSL_CERT_FILE", str(example_origin.ca_path))
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(EXAMPLE / "posts", tmp_path / "posts")
    return tmp_path


def _run(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def _fetch(root: Path) -> tuple[int, dict[str, object]]:
    return _run("fetch", str(root / "posts"), "--cache", str(root / "cache"))


def _rewrite(root: Path) -> tuple[int, dict[str, object]]:
    return _run("rewrite", str(root / "posts"), "--cache", str(root / "cache"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_fetch_then_rewrite_localizes_every_reference(archive: Path) -> None:
    code, fetched = _fetch(archive)
    assert code == 0, fetched["failed"]
    assert fetched["failed"] == []
    assert fetched["downloaded"] == fetched["distinct_urls"] > 20
    code, rewritten = _rewrite(archive)
    assert code == 0
    assert rewritten["references_left_remote"] == 0
    assert rewritten["references_rewritten"] == fetched["remote_references"]
    for post in find_posts([archive / "posts"]):
        scan = read_post(post, DiscoverSettings())
        assert [r.raw for r in scan.references if r.kind is RefKind.REMOTE] == []
        for ref in scan.references:
            target = (post.parent / ref.source_url).resolve()
            assert target.is_file(), f"{post.name}:{ref.line} points at a missing {target}"
            assert target.is_relative_to((archive / "cache").resolve())


def test_rewrite_changes_only_reference_urls_and_adds_only_sizes(archive: Path) -> None:
    originals = _snapshot(archive / "posts")
    assert _fetch(archive)[0] == 0
    assert _rewrite(archive)[0] == 0
    manifest_path, root = archive / "cache" / "manifest.sqlite", archive_root(archive / "cache")
    with Manifest.open(manifest_path) as manifest:
        posts = find_posts([archive / "posts"])
        generations = {post: manifest.generations_of(post_key(post, root)) for post in posts}
    for post in posts:
        before = originals[post.name].decode("utf-8")
        after = post.read_bytes().decode("utf-8")
        assert after != before
        old_refs = {
            r.span.start: r.raw
            for r in read_post_text(before, post).references
            if r.kind is RefKind.REMOTE
        }
        (generation,) = generations[post]
        assert generation.before == hashlib.sha256(originals[post.name]).hexdigest()
        assert generation.after == hashlib.sha256(after.encode("utf-8")).hexdigest()
        records = [(e.offset, e.old, e.new) for e in reversed(generation.edits)]
        restored = after
        for start, old, new in records:
            assert restored[start : start + len(new)] == new
            restored = restored[:start] + old + restored[start + len(new) :]
        assert restored.encode("utf-8") == originals[post.name]
        replaced = [old for _, old, _ in records if old]
        insertions = [new for _, old, new in records if not old]
        assert sorted(replaced) == sorted(old_refs.values())
        assert all(SIZE_ATTRIBUTES.fullmatch(new) for new in insertions)


def read_post_text(text: str, post: Path) -> PostScan:
    return scan_text(text, post, DiscoverSettings())


def test_second_rewrite_and_second_fetch_do_nothing(
    archive: Path, example_origin: OriginServer
) -> None:
    assert _fetch(archive)[0] == 0
    assert _rewrite(archive)[0] == 0
    after_first = _snapshot(archive / "posts")
    code, again = _rewrite(archive)
    assert code == 0
    assert again["posts_changed"] == 0
    assert _snapshot(archive / "posts") == after_first
    requests_before = len(example_origin.requests)
    code, refetch = _fetch(archive)
    assert code == 0
    assert refetch["downloaded"] == 0
    assert len(example_origin.requests) == requests_before


def test_second_fetch_before_rewrite_downloads_nothing(
    archive: Path, example_origin: OriginServer
) -> None:
    code, first = _fetch(archive)
    assert code == 0
    requests_before = len(example_origin.requests)
    code, second = _fetch(archive)
    assert code == 0
    assert second["downloaded"] == 0
    assert second["already_stored"] == first["distinct_urls"]
    assert len(example_origin.requests) == requests_before
