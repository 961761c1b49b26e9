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


# -- fetch --time-budget and plain progress lines ------------------------------------------------


def _slow_site(origin: OriginServer, jpeg_bytes: bytes, count: int, delay: float) -> list[str]:
    urls = [f"http://slow.example.test/{n}.jpg" for n in range(count)]
    for n, url in enumerate(urls):
        origin.add(url, jpeg_bytes + bytes([n]), delay=delay)  # distinct bytes, same image
    return urls


def test_a_spent_time_budget_stops_starting_downloads_and_the_next_run_resumes(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    urls = _slow_site(proxy_env, jpeg_bytes, 6, delay=0.5)
    posts = tmp_path / "posts"
    _post(posts, "a.md", *urls)
    cache = str(tmp_path / "cache")
    fetch = ("fetch", str(posts), "--cache", cache, "--concurrency", "1")
    first = _cli(*fetch, "--time-budget", "0.2s", "--json")
    assert first.exit_code == 0, first.output
    data = _json(first)
    assert data["resume_needed"] is True
    assert data["not_started"] == 6 - data["downloaded"]  # type: ignore[operator]
    assert data["downloaded"] < 6  # type: ignore[operator]
    assert "resume needed: run the same command again" in first.stderr
    requested = sum(bool(proxy_env.requests_for(url)) for url in urls)
    assert requested == data["downloaded"]
    second = _cli(*fetch, "--time-budget", "1h")
    assert second.exit_code == 0
    assert "resume needed" not in second.stdout
    assert f"already stored     {data['downloaded']}" in second.stdout
    assert all(len(proxy_env.requests_for(url)) == 1 for url in urls)


def test_text_summary_says_resume_needed(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    urls = _slow_site(proxy_env, jpeg_bytes, 3, delay=0.5)
    posts = tmp_path / "posts"
    _post(posts, "a.md", *urls)
    args = ("fetch", str(posts), "--cache", str(tmp_path / "cache"), "--concurrency", "1")
    result = _cli(*args, "--time-budget", "0.1s")
    assert result.exit_code == 0
    assert "resume needed      " in result.stdout


@pytest.mark.parametrize(
    ("text", "seconds"), [("5h30m", 19800.0), ("90m", 5400.0), ("3600s", 3600.0), ("45", 45.0)]
)
def test_time_budgets_read_as_hours_minutes_seconds(text: str, seconds: float) -> None:
    from mediatool.config import parse_duration

    assert parse_duration(text) == seconds


def test_a_time_budget_that_is_not_a_duration_is_a_usage_error(tmp_path: Path) -> None:
    _post(tmp_path / "posts", "a.md")
    result = _cli("fetch", str(tmp_path / "posts"), "--time-budget", "soon")
    assert result.exit_code == 2
    assert "error: 'soon' is not a duration; write hours, minutes and seconds" in result.stderr


def test_progress_is_a_plain_line_when_stderr_is_a_log(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    urls = _slow_site(proxy_env, jpeg_bytes, 4, delay=0.05)
    urls.append(MISSING)
    proxy_env.add(MISSING, b"gone", status=404)
    posts = tmp_path / "posts"
    _post(posts, "a.md", *urls)
    args = ("fetch", str(posts), "--cache", str(tmp_path / "cache"), "--concurrency", "1")
    result = _cli(*args, "--progress-every", "0.01")
    lines = [line for line in result.stderr.splitlines() if line.startswith("fetch: ")]
    assert lines, result.stderr
    assert all(line.endswith("failed") and "/5 URLs, " in line and "/s, " in line for line in lines)
    assert "\r" not in result.stderr  # no progress bar in a log


def test_scanning_many_posts_says_plain_progress_lines_too(
    tmp_path: Path, site: OriginServer
) -> None:
    posts = tmp_path / "posts"
    for n in range(300):
        _post(posts, f"p{n:03}.md", GOOD)
    args = ("fetch", str(posts), "--cache", str(tmp_path / "cache"), "--workers", "1")
    result = _cli(*args, "--progress-every", "0.000001")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("scan: ")]
    assert lines and all("/300 posts, " in line and line.endswith(" 0 failed") for line in lines)


# -- secrets out of the repository; a config file's relative paths -------------------------------


def test_a_header_value_names_an_environment_variable(
    tmp_path: Path, site: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts = tmp_path / "posts"
    _post(posts, "a.md", GOOD)
    config = tmp_path / "mediatool.toml"
    config.write_text('[fetch.headers."img.example.test"]\nCookie = "session=${SITE_COOKIE}"\n')
    args = ("fetch", str(posts), "--cache", str(tmp_path / "cache"), "--config", str(config))
    monkeypatch.delenv("SITE_COOKIE", raising=False)
    unset = _cli(*args)
    assert unset.exit_code == 2
    assert unset.stderr.strip() == (
        f'error: {config}: fetch.headers."img.example.test".Cookie names ${{SITE_COOKIE}}, which '
        "is not set; set the environment variable SITE_COOKIE (e.g. from a CI secret) or drop "
        "the header."
    )
    assert site.requests_for(GOOD) == []
    monkeypatch.setenv("SITE_COOKIE", "s3cret")
    assert _cli(*args).exit_code == 0
    assert site.requests_for(GOOD)[0].header("Cookie") == "session=s3cret"


def test_cookies_txt_and_netrc_are_sent_to_their_own_hosts_only(
    tmp_path: Path, site: OriginServer, monkeypatch: pytest.MonkeyPatch, jpeg_bytes: bytes
) -> None:
    elsewhere = "http://cdn.example.test/c.jpg"
    site.add(elsewhere, jpeg_bytes + b"c")
    posts = tmp_path / "posts"
    _post(posts, "a.md", GOOD, elsewhere)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n"
        "img.example.test\tFALSE\t/\tFALSE\t0\tsession\tabc\n"
        "other.example.test\tFALSE\t/\tFALSE\t0\tforeign\tno\n"
    )
    netrc = tmp_path / "netrc"
    netrc.write_text("machine cdn.example.test login archivist password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    result = _cli(
        "fetch", str(posts), "--cache", str(tmp_path / "cache"), "--cookies", str(cookies)
    )
    assert result.exit_code == 0, result.output
    good, other = site.requests_for(GOOD)[0], site.requests_for(elsewhere)[0]
    assert good.header("Cookie") == "session=abc"
    assert good.header("Authorization") is None
    assert other.header("Cookie") is None
    assert other.header("Authorization") == "Basic YXJjaGl2aXN0Omh1bnRlcjI="  # archivist:hunter2


def test_a_cookies_file_that_is_not_netscape_format_is_a_usage_error(
    tmp_path: Path, site: OriginServer
) -> None:
    posts = tmp_path / "posts"
    _post(posts, "a.md", GOOD)
    cookies = tmp_path / "cookies.json"
    cookies.write_text('[{"name": "session"}]\n')
    result = _cli(
        "fetch", str(posts), "--cache", str(tmp_path / "cache"), "--cookies", str(cookies)
    )
    assert result.exit_code == 2
    assert f"error: {cookies}: cannot read cookies" in result.stderr


def test_a_relative_cache_dir_in_the_config_file_is_relative_to_the_file(
    tmp_path: Path, site: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "archive"
    _post(archive / "posts", "a.md", GOOD)
    (archive / "mediatool.toml").write_text('cache_dir = ".mediatool/cache"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = str(archive / "mediatool.toml")
    assert _cli("fetch", str(archive / "posts"), "--config", config).exit_code == 0
    assert (archive / ".mediatool" / "cache" / "manifest.sqlite").is_file()
    assert not (elsewhere / ".mediatool").exists()
    monkeypatch.chdir(archive)  # the same cache from the archive root: nothing fetched again
    again = _cli("fetch", "posts", "--json")
    assert _json(again)["already_stored"] == 1
    assert len(site.requests_for(GOOD)) == 1


# -- the report names the posts behind each failure and each near-duplicate group ------------------


def test_the_report_names_the_posts_behind_failures_and_groups(
    tmp_path: Path, site: OriginServer
) -> None:
    import io

    from PIL import Image

    def photo(width: int, quality: int) -> bytes:
        image = Image.radial_gradient("L").convert("RGB").resize((256, 192))
        for x in range(0, 256, 32):
            image.paste((200, 40, 40), (x, 20, x + 12, 180))
        out = io.BytesIO()
        image.resize((width, width * 3 // 4)).save(out, "JPEG", quality=quality)
        return out.getvalue()

    copy = "http://mirror.example.test/good-copy.jpg"
    site.add(GOOD, photo(400, 90))
    site.add(copy, photo(200, 60))
    posts = tmp_path / "posts"
    _post(posts, "a.md", GOOD, MISSING)
    _post(posts, "b.md", copy)
    _post(posts, "c.md", MISSING)
    cache = tmp_path / "cache"
    fetched = _cli("fetch", str(posts), "--cache", str(cache), "--json")
    (failure,) = _json(fetched)["failed"]  # type: ignore[misc]
    assert failure["posts"] == ["posts/a.md", "posts/c.md"]  # type: ignore[index]
    assert _json(fetched)["groups"] == 1
    assert _cli("report", "--cache", str(cache)).exit_code == 0
    page = (cache / "report.html").read_text()
    failures = page[page.index('id="failures"') : page.index('id="groups"')]
    assert "<code>posts/a.md</code>, <code>posts/c.md</code></td>" in failures
    groups = page[page.index('id="groups"') : page.index('id="boilerplate"')]
    assert '<p class="posts">in <code>posts/a.md</code>, <code>posts/b.md</code></p>' in groups
