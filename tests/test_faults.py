"""Faults of the environment and of the input: each is one line naming the file, URL or key and
what to do, with the documented exit code (2 usage/config, 3 fatal, 1 something failed), and
never a traceback. Driven through the real command line against real files and the local origin.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.testing.origin import OriginServer

GOOD = "http://img.example.test/good.jpg"
BAD_URLS = {
    # url: what the message says about it
    "http://[::1/x.jpg": "it cannot be parsed (Invalid IPv6 URL)",
    "http://exa mple.com/a.jpg": "its host 'exa mple.com' holds white space",
    "http://:80/": "it has no host",
    "http://a.example.test:99999/x.jpg": "it cannot be parsed (Port out of range 0-65535)",
    "http://a.example.test/x\x01y.jpg": "it holds the control character '\\x01'",
}
LONG_URL = "http://a.example.test/" + "x" * 70_000 + ".jpg"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "internal error" not in result.output


def _html_post(folder: Path, name: str, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(f'<p><img src="{url}"></p>\n' for url in urls), encoding="utf-8")
    return path


# -- malformed URLs --------------------------------------------------------------------------


@pytest.fixture
def bad_url_post(tmp_path: Path) -> Path:
    return _html_post(tmp_path / "posts", "a.html", GOOD, *BAD_URLS, LONG_URL)


def test_scan_lists_malformed_urls_without_failing(bad_url_post: Path) -> None:
    result = _invoke("scan", str(bad_url_post))
    _no_traceback(result)
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    hosts = {record["source_url"]: record["host"] for record in records}
    assert hosts["http://[::1/x.jpg"] == "?"
    assert hosts[GOOD] == "img.example.test"
    assert len(records) == 2 + len(BAD_URLS)


def test_fetch_records_malformed_urls_as_bad_url_naming_post_and_line(
    bad_url_post: Path, tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    proxy_env.add(GOOD, jpeg_bytes)
    result = _invoke("fetch", str(bad_url_post), "--cache", str(tmp_path / "cache"), "--json")
    _no_traceback(result)
    assert result.exit_code == 1
    failed = {f["url"]: f for f in json.loads(result.stdout)["failed"]}
    assert set(failed) == {*BAD_URLS, LONG_URL}
    assert {f["reason"] for f in failed.values()} == {"bad_url"}
    lines = result.stderr.splitlines()
    for line_number, (url, why) in enumerate(BAD_URLS.items(), start=2):
        shown = url.replace("\x01", "\\x01")
        expected = f"{bad_url_post}:{line_number}: bad URL {shown}: {why}; fix the URL in the post"
        assert expected in lines
        assert failed[url]["message"] == expected
    long_line = next(line for line in lines if "characters long" in line)
    assert long_line.startswith(f"{bad_url_post}:{len(BAD_URLS) + 2}: bad URL http://a.example")
    assert long_line.endswith(
        "(70026 characters): it is 70026 characters long, more than 65536; fix the URL in the post"
    )
    assert len(long_line) < 400
    assert [r.url for r in proxy_env.requests] == [GOOD]  # nothing malformed was sent


def test_rewrite_report_and_check_leave_malformed_urls_remote(
    bad_url_post: Path, tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    proxy_env.add(GOOD, jpeg_bytes)
    cache = str(tmp_path / "cache")
    assert _invoke("fetch", str(bad_url_post), "--cache", cache).exit_code == 1
    report = _invoke("report", "--cache", cache)
    _no_traceback(report)
    assert report.exit_code == 0
    assert "http://[::1/x.jpg" in (tmp_path / "cache" / "report.html").read_text()
    rewrite = _invoke("rewrite", str(bad_url_post), "--cache", cache, "--json")
    _no_traceback(rewrite)
    assert rewrite.exit_code == 1
    left = json.loads(rewrite.stdout)["left_remote"]
    left = {(item["source_url"], item["reason"]) for item in left}
    assert ("http://[::1/x.jpg", "bad_url") in left
    assert f"{bad_url_post}:2: left remote: http://[::1/x.jpg (bad_url)" in rewrite.stderr
    text = bad_url_post.read_text()
    assert GOOD not in text and all(url in text for url in BAD_URLS)
    text_summary = _invoke("rewrite", str(bad_url_post), "--cache", cache, "--dry-run")
    _no_traceback(text_summary)
    assert "bad_url" in text_summary.stdout
    check = _invoke("rewrite", str(bad_url_post), "--cache", cache, "--check")
    _no_traceback(check)
    assert check.exit_code == 0


def test_check_and_rewrite_pass_over_a_malformed_local_reference(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    proxy_env.add(GOOD, jpeg_bytes)
    post = _html_post(tmp_path / "posts", "a.html", GOOD, "ftp://[::1/x.png")
    cache = str(tmp_path / "cache")
    assert _invoke("fetch", str(post), "--cache", cache).exit_code == 0
    for extra in ("--check", "--dry-run"):
        result = _invoke("rewrite", str(post), "--cache", cache, extra)
        _no_traceback(result)
        assert result.exit_code == (1 if extra == "--check" else 0)
