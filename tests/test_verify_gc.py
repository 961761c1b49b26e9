"""`mediatool verify` and `mediatool gc` against a real cache filled from the local origin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.store import sha256_of_file
from mediatool.testing.origin import OriginServer

GOOD = "http://img.example.test/good.jpg"
OTHER = "http://img.example.test/other.png"


def _post(folder: Path, name: str, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("---\ntitle: t\n---\n\n" + "".join(f"![]({url})\n\n" for url in urls))
    return path


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(CONFIG)])


CONFIG = Path(__file__)  # set by the `archive` fixture: thumbnails small enough for the images


@pytest.fixture
def archive(tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes, png_bytes: bytes) -> Path:
    proxy_env.add(GOOD, jpeg_bytes)
    proxy_env.add(OTHER, png_bytes)
    global CONFIG
    CONFIG = tmp_path / "mediatool.toml"
    CONFIG.write_text("[images]\nthumb_widths = [16]\n")
    posts = tmp_path / "posts"
    _post(posts, "a.md", GOOD)
    _post(posts, "b.md", OTHER)
    assert _cli("fetch", str(posts), "--cache", str(tmp_path / "cache")).exit_code == 0
    return tmp_path


def _originals(cache: Path) -> dict[str, Path]:
    return {p.suffix: p for p in (cache / "originals").rglob("*.*")}


def test_verify_finds_missing_and_damaged_files_and_repair_fetches_them_again(
    archive: Path, proxy_env: OriginServer
) -> None:
    cache = archive / "cache"
    assert _cli("verify", "--cache", str(cache)).exit_code == 0
    originals = _originals(cache)
    originals[".jpg"].unlink()
    originals[".png"].write_bytes(b"not the stored bytes")
    thumb = next((cache / "thumbs").rglob("*.*"))
    thumb.unlink()
    result = _cli("verify", "--cache", str(cache), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["missing_originals"], data["damaged_originals"]) == (1, 1)
    assert data["missing_thumbnails"] == 1
    assert f"{originals['.jpg'].relative_to(cache)}: stored original missing" in result.stderr
    assert f"{originals['.png'].relative_to(cache)}: stored original damaged" in result.stderr
    before = len(proxy_env.requests_for(GOOD))
    repaired = _cli("verify", "--cache", str(cache), "--repair", "--json")
    assert repaired.exit_code == 0, repaired.output
    assert json.loads(repaired.stdout)["repaired"] == 3
    assert len(proxy_env.requests_for(GOOD)) == before + 1
    for path in originals.values():
        assert sha256_of_file(path) == path.name.split(".")[0]
    assert thumb.is_file()
    assert _cli("verify", "--cache", str(cache)).exit_code == 0


def test_verify_names_a_localized_reference_whose_file_is_gone(archive: Path) -> None:
    cache, posts = archive / "cache", archive / "posts"
    assert _cli("rewrite", str(posts), "--cache", str(cache)).exit_code == 0
    assert _cli("fetch", str(posts), "--cache", str(cache)).exit_code == 0  # scans local refs
    _originals(cache)[".jpg"].unlink()
    result = _cli("verify", "--cache", str(cache), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["missing_references"] == 1
    assert "a.md:5: localized reference to a missing file originals/" in result.stderr


def test_gc_forgets_a_deleted_post_and_deletes_what_only_it_used(archive: Path) -> None:
    cache, posts = archive / "cache", archive / "posts"
    originals = _originals(cache)
    (posts / "b.md").unlink()
    dry = _cli("gc", "--cache", str(cache), "--dry-run", "--json")
    assert dry.exit_code == 0
    assert json.loads(dry.stdout)["posts"] == 1
    assert json.loads(dry.stdout)["originals"] == 1
    assert f"{OTHER}: no post refers to it; would forget it" in dry.stderr
    assert originals[".png"].is_file()
    assert "unused; would delete" in dry.stderr
    done = _cli("gc", "--cache", str(cache), "--json")
    assert done.exit_code == 0
    assert json.loads(done.stdout)["urls"] == 1
    assert not originals[".png"].exists()
    assert originals[".jpg"].is_file()
    assert _cli("verify", "--cache", str(cache)).exit_code == 0
    fetched = _cli("fetch", str(posts), "--cache", str(cache), "--json")
    assert json.loads(fetched.stdout)["distinct_urls"] == 1
    again = _cli("gc", "--cache", str(cache), "--json")
    assert json.loads(again.stdout)["originals"] == 0


def test_gc_keeps_the_files_that_rewritten_posts_point_at(archive: Path) -> None:
    cache, posts = archive / "cache", archive / "posts"
    assert _cli("rewrite", str(posts), "--cache", str(cache)).exit_code == 0
    # The next fetch scans the rewritten posts: their references are local now, no URL names
    # the images any more, and still both files are in use.
    assert _cli("fetch", str(posts), "--cache", str(cache)).exit_code == 0
    result = _cli("gc", "--cache", str(cache), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["originals"] == 0
    assert len(_originals(cache)) == 2
    assert _cli("rewrite", str(posts), "--cache", str(cache), "--check").exit_code == 0
