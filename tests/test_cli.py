"""The command line: messages, exit codes and JSON, against the real local origin server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.manifest import SCHEMA_VERSION
from mediatool.testing.origin import OriginServer

GOOD = "http://img.example.test/good.jpg"
MISSING = "http://img.example.test/missing.jpg"
HTML = "http://img.example.test/error-page.jpg"
PROXIED_GOOD = f"https://cors.zfour.workers.dev/?{GOOD}"


def _post(folder: Path, name: str, *urls: str, front: str = "title: t") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f'<p><img src="{url}" referrerpolicy="no-referrer"></p>\n' for url in urls)
    path = folder / name
    path.write_bytes(f"\n---\n{front}\n---\n\n<div>\n{body}</div>\n".encode())
    return path


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _json(result: Result) -> dict[str, object]:
    return json.loads(result.stdout)


@pytest.fixture
def site(proxy_env: OriginServer, jpeg_bytes: bytes) -> OriginServer:
    proxy_env.add(GOOD, jpeg_bytes)
    proxy_env.add(MISSING, b"not here", status=404)
    proxy_env.add(
        HTML, b"<!doctype html><html><body>Error</body></html>", content_type="image/jpeg"
    )
    return proxy_env


def _unspaced(text: str) -> str:
    return "".join(text.split())  # help is re-wrapped (also at hyphens) to the terminal width


@pytest.mark.parametrize("name", ["", *sorted(main.commands)])
def test_every_command_shows_its_own_help(name: str) -> None:
    command = main.commands[name] if name else main
    result = _invoke(*[name] if name else [], "--help")
    assert result.exit_code == 0
    assert command.help, f"mediatool {name}: no docstring, so --help says nothing of it"
    shown = _unspaced(result.output)
    assert _unspaced(command.help) in shown, f"mediatool {name} --help lacks its docstring"
    options = [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]
    for option in options:
        assert option.help, f"mediatool {name} {option.opts[0]}: no help text"
        assert _unspaced(option.help) in shown, f"mediatool {name} --help lacks {option.opts[0]}"


def test_dedup_and_thumbs_need_no_flag_and_still_accept_the_old_one(
    tmp_path: Path, site: OriginServer
) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    cache = str(tmp_path / "cache")
    assert _invoke("fetch", str(post.parent), "--cache", cache).exit_code == 0
    for command, old_flag in (("dedup", "--regroup"), ("thumbs", "--rebuild")):
        plain = _invoke(command, "--cache", cache, "--json")
        old = _invoke(command, old_flag, "--cache", cache, "--json")
        assert (plain.exit_code, old.exit_code) == (0, 0), (plain.output, old.output)
        made, again = _json(plain), _json(old)
        made.pop("seconds"), again.pop("seconds")
        assert made == again and made["images"] == 1, command


def test_unknown_option_is_a_usage_error() -> None:
    assert _invoke("fetch", "--no-such-flag").exit_code == 2


def test_failed_references_are_reported_stay_as_they_were_and_exit_1(
    tmp_path: Path, site: OriginServer
) -> None:
    post = _post(tmp_path / "posts", "a.md", PROXIED_GOOD, MISSING, HTML)
    cache = str(tmp_path / "cache")
    fetched = _invoke("fetch", str(post.parent), "--cache", cache, "--json")
    assert fetched.exit_code == 1
    reasons = {f["url"]: f["reason"] for f in _json(fetched)["failed"]}
    assert reasons == {MISSING: "http_404", HTML: "not_an_image"}
    assert any(MISSING in line and "404" in line for line in fetched.stderr.splitlines())
    assert any(HTML in line and "HTML" in line for line in fetched.stderr.splitlines())
    rewritten = _invoke("rewrite", str(post.parent), "--cache", cache, "--json")
    assert rewritten.exit_code == 1
    summary = _json(rewritten)
    assert (summary["references_rewritten"], summary["references_left_remote"]) == (1, 2)
    text = post.read_text()
    assert f'src="{MISSING}"' in text and f'src="{HTML}"' in text
    assert PROXIED_GOOD not in text and 'src="../cache/originals/' in text


def test_bad_posts_are_reported_and_the_run_goes_on(tmp_path: Path, site: OriginServer) -> None:
    posts = tmp_path / "posts"
    _post(posts, "good.md", GOOD)
    _post(posts, "bad-yaml.md", GOOD, front='title: """"\'x\'"""\nthumbnail: ' + GOOD)
    (posts / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    result = _invoke("fetch", str(posts), "--cache", str(tmp_path / "cache"), "--json")
    assert result.exit_code == 1
    summary = _json(result)
    assert summary["posts"] == 3
    assert summary["posts_failed"] == 2
    assert summary["downloaded"] == 1
    lines = result.stderr.splitlines()
    assert any("binary.md" in line for line in lines)
    assert any("bad-yaml.md" in line and "YAML" in line for line in lines)


def test_dry_run_prints_a_diff_and_changes_nothing(tmp_path: Path, site: OriginServer) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    before = post.read_bytes()
    cache = str(tmp_path / "cache")
    assert _invoke("fetch", str(post), "--cache", cache).exit_code == 0
    result = _invoke("rewrite", str(post), "--cache", cache, "--dry-run")
    assert result.exit_code == 0
    assert f'-<p><img src="{GOOD}"' in result.stdout
    assert '+<p><img src="../cache/originals/' in result.stdout
    assert post.read_bytes() == before


def test_base_url_writes_prefix_and_path_inside_cache(tmp_path: Path, site: OriginServer) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    cache = str(tmp_path / "cache")
    assert _invoke("fetch", str(post), "--cache", cache).exit_code == 0
    assert _invoke("rewrite", str(post), "--cache", cache, "--base-url", "/media/").exit_code == 0
    assert 'src="/media/originals/' in post.read_text()


def test_rewrite_without_manifest_says_run_fetch_first(tmp_path: Path) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    result = _invoke("rewrite", str(post), "--cache", str(tmp_path / "nothing"))
    assert result.exit_code == 2
    assert "run `mediatool fetch` first" in result.stderr


def test_manifest_of_a_newer_version_is_fatal(tmp_path: Path) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    cache = tmp_path / "cache"
    cache.mkdir()
    connection = sqlite3.connect(cache / "manifest.sqlite")
    connection.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    connection.close()
    result = _invoke("fetch", str(post), "--cache", str(cache))
    assert result.exit_code == 3
    assert "newer mediatool" in result.stderr


def test_private_addresses_are_refused_unless_allowed(
    tmp_path: Path, origin: OriginServer, no_proxy_env: None, jpeg_bytes: bytes
) -> None:
    origin.add("/local.jpg", jpeg_bytes)
    post = _post(tmp_path / "posts", "a.md", origin.url("/local.jpg"))
    cache = str(tmp_path / "cache")
    refused = _invoke("fetch", str(post), "--cache", cache, "--json")
    assert refused.exit_code == 1
    assert [f["reason"] for f in _json(refused)["failed"]] == ["blocked_private"]
    assert origin.requests == []
    allowed = _invoke("fetch", str(post), "--cache", cache, "--allow-private", "--retry-failed")
    assert allowed.exit_code == 0


def test_bad_config_file_is_a_usage_error(tmp_path: Path) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    (tmp_path / "posts" / "mediatool.toml").write_text("[fetch]\nconcurency = 3\n")
    result = _invoke("fetch", str(post), "--cache", str(tmp_path / "cache"))
    assert result.exit_code == 2
    assert "concurency" in result.stderr and "mediatool.toml" in result.stderr


def test_scan_lists_every_reference_as_json_lines(tmp_path: Path) -> None:
    post = _post(tmp_path / "posts", "a.md", PROXIED_GOOD, front=f"thumbnail: '{GOOD}'")
    result = _invoke("scan", str(post))
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["context"], r["line"]) for r in records] == [
        ("frontmatter:thumbnail", 3),
        ("img@src", 7),
    ]
    assert records[1]["source_url"] == PROXIED_GOOD
    assert records[1]["origin_url"] == GOOD
    assert records[1]["rules"] == ["cors-workers"]
    assert "by context:" in result.stderr and "img.example.test" in result.stderr


def test_check_fails_until_rewritten_then_on_a_missing_file(
    tmp_path: Path, site: OriginServer
) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    cache = tmp_path / "cache"
    assert _invoke("fetch", str(post), "--cache", str(cache)).exit_code == 0
    before = _invoke("rewrite", str(post), "--cache", str(cache), "--check", "--json")
    assert before.exit_code == 1
    assert [f["url"] for f in _json(before)["localizable"]] == [GOOD]
    assert post.read_text().count(GOOD) == 1
    assert _invoke("rewrite", str(post), "--cache", str(cache)).exit_code == 0
    assert _invoke("rewrite", str(post), "--cache", str(cache), "--check").exit_code == 0
    for original in (cache / "originals").rglob("*.jpg"):
        original.unlink()
    missing = _invoke("rewrite", str(post), "--cache", str(cache), "--check", "--json")
    assert missing.exit_code == 1
    assert len(_json(missing)["missing"]) == 1  # type: ignore[arg-type]


def test_undo_restores_every_post_byte_for_byte(tmp_path: Path, site: OriginServer) -> None:
    posts = tmp_path / "posts"
    _post(posts, "a.md", PROXIED_GOOD, GOOD, front=f"thumbnail: {GOOD}")
    _post(posts, "b.md", MISSING)
    before = {p.name: p.read_bytes() for p in posts.iterdir()}
    cache = str(tmp_path / "cache")
    _invoke("fetch", str(posts), "--cache", cache)
    _invoke("rewrite", str(posts), "--cache", cache)
    assert (posts / "a.md").read_bytes() != before["a.md"]
    dry = _invoke("rewrite", str(posts), "--cache", cache, "--undo", "--dry-run")
    assert dry.exit_code == 0 and f'+<p><img src="{PROXIED_GOOD}"' in dry.stdout
    assert (posts / "a.md").read_bytes() != before["a.md"]
    undone = _invoke("rewrite", str(posts), "--cache", cache, "--undo", "--json")
    assert undone.exit_code == 0
    assert _json(undone)["posts_restored"] == 1
    assert {p.name: p.read_bytes() for p in posts.iterdir()} == before
    again = _invoke("rewrite", str(posts), "--cache", cache, "--undo", "--json")
    assert _json(again)["posts_restored"] == 0


def test_undo_refuses_a_post_whose_localized_url_was_edited(
    tmp_path: Path, site: OriginServer
) -> None:
    post = _post(tmp_path / "posts", "a.md", GOOD)
    cache = str(tmp_path / "cache")
    _invoke("fetch", str(post), "--cache", cache)
    _invoke("rewrite", str(post), "--cache", cache)
    edited = post.read_text().replace("../cache/originals/", "/elsewhere/")
    post.write_text(edited)
    result = _invoke("rewrite", str(post), "--cache", cache, "--undo")
    assert result.exit_code == 1
    assert "cannot undo" in result.stderr and "a.md" in result.stderr
    assert post.read_text() == edited
