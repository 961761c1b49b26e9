"""The CI job: the `rewrite --check` gate, the time budget, plain progress lines, secrets kept
out of the repository and the ready-to-copy CI files, against the real local origin server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.testing.origin import OriginServer

GOOD = "http://img.example.test/good.jpg"
OTHER = "http://img.example.test/other.jpg"
MISSING = "http://img.example.test/missing.jpg"


def _post(folder: Path, name: str, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f"![]({url})\n\n" for url in urls)
    path = folder / name
    path.write_text(f"---\ntitle: t\n---\n\n{body}")
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def _json(result: Result) -> dict[str, object]:
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def site(proxy_env: OriginServer, jpeg_bytes: bytes, png_bytes: bytes) -> OriginServer:
    proxy_env.add(GOOD, jpeg_bytes)
    proxy_env.add(OTHER, png_bytes)
    proxy_env.add(MISSING, b"gone", status=404)
    return proxy_env


# -- rewrite --check: the gate -----------------------------------------------------------------


def test_check_passes_only_when_fully_localized_or_the_failure_is_accepted(
    tmp_path: Path, site: OriginServer
) -> None:
    posts = tmp_path / "posts"
    _post(posts, "a.md", GOOD, MISSING)
    cache = str(tmp_path / "cache")
    assert _cli("fetch", str(posts), "--cache", cache).exit_code == 1  # the 404
    assert _cli("rewrite", str(posts), "--cache", cache).exit_code == 1  # left remote
    check = _cli("rewrite", str(posts), "--cache", cache, "--check", "--json")
    assert check.exit_code == 1
    failed = _json(check)["failed"]
    assert [(f["url"], f["reason"], f["line"]) for f in failed] == [(MISSING, "http_404", 7)]  # type: ignore[index,union-attr]
    assert f"a.md:7: failed (http_404): {MISSING}" in check.stderr
    (tmp_path / "mediatool.toml").write_text('[check]\nallow = ["http_404"]\n')
    config = str(tmp_path / "mediatool.toml")
    accepted = _cli("rewrite", str(posts), "--cache", cache, "--check", "--config", config)
    assert accepted.exit_code == 0, accepted.output
    assert "check ok" in accepted.stdout and "1 more accepted" in accepted.stdout


def test_check_fails_on_a_reference_fetch_never_tried(tmp_path: Path, site: OriginServer) -> None:
    posts = tmp_path / "posts"
    post = _post(posts, "a.md", GOOD)
    cache = str(tmp_path / "cache")
    assert _cli("fetch", str(posts), "--cache", cache).exit_code == 0
    assert _cli("rewrite", str(posts), "--cache", cache).exit_code == 0
    _post(posts, "b.md", OTHER)  # a new post, written after the fetch
    check = _cli("rewrite", str(posts), "--cache", cache, "--check", "--json")
    assert check.exit_code == 1
    unfetched = _json(check)["unfetched"]
    assert [(f["url"], f["reason"]) for f in unfetched] == [(OTHER, "not_fetched")]  # type: ignore[index,union-attr]
    assert "b.md:5: not fetched (run mediatool fetch): " + OTHER in check.stderr
    # The gate stays shut even when every failure reason is accepted: never fetched is not one.
    (tmp_path / "mediatool.toml").write_text('[check]\nallow = ["http_404"]\n')
    config = str(tmp_path / "mediatool.toml")
    assert (
        _cli("rewrite", str(posts), "--cache", cache, "--check", "--config", config).exit_code == 1
    )
    assert _cli("fetch", str(posts), "--cache", cache).exit_code == 0
    assert _cli("rewrite", str(posts), "--cache", cache).exit_code == 0
    assert _cli("rewrite", str(posts), "--cache", cache, "--check").exit_code == 0
    assert post.read_text().count("originals/") == 1


def test_check_fails_on_a_post_changed_since_the_fetch_whatever_its_mtime(
    tmp_path: Path, site: OriginServer
) -> None:
    posts = tmp_path / "posts"
    post = _post(posts, "a.md", GOOD)
    cache = str(tmp_path / "cache")
    assert _cli("fetch", str(posts), "--cache", cache).exit_code == 0
    assert _cli("rewrite", str(posts), "--cache", cache).exit_code == 0
    # A fresh checkout: same bytes, a new mtime. Still the post rewrite wrote: no objection.
    os.utime(post, ns=(1_000_000_000, 1_000_000_000))
    assert _cli("rewrite", str(posts), "--cache", cache, "--check").exit_code == 0
    # A hand edit that keeps the references (and the size) is still a change fetch has not seen.
    text = post.read_text()
    post.write_text(text.replace("title: t", "title: u"))
    check = _cli("rewrite", str(posts), "--cache", cache, "--check", "--json")
    assert check.exit_code == 1
    assert [f["post"] for f in _json(check)["changed"]] == [str(post)]  # type: ignore[index,union-attr]
    assert f"{post}: changed since the last fetch" in check.stderr
    assert _cli("fetch", str(posts), "--cache", cache).exit_code == 0
    assert _cli("rewrite", str(posts), "--cache", cache, "--check").exit_code == 0
