"""Faults of the environment and of the input: each is one line naming the file, URL or key and
what to do, with the documented exit code (2 usage/config, 3 fatal, 1 something failed), and
never a traceback. Driven through the real command line against real files and the local origin.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from mediatool.cli import main
from mediatool.config import KEYS
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
    assert not [line for line in lines if line.startswith("still failed")]  # said once, now
    long_line = next(line for line in lines if "characters long" in line)
    assert long_line.startswith(f"{bad_url_post}:{len(BAD_URLS) + 2}: bad URL http://a.example")
    assert long_line.endswith(
        "(70026 characters): it is 70026 characters long, more than 65536; fix the URL in the post"
    )
    assert len(long_line) < 400
    assert [r.url for r in proxy_env.requests] == [GOOD]  # nothing malformed was sent


def test_a_url_the_fetch_guard_refuses_as_bad_names_the_post_too(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    post = _html_post(tmp_path / "posts", "a.html", "http://a..example/x.jpg")
    result = _invoke("fetch", str(post), "--cache", str(tmp_path / "cache"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{post}:1: http://a..example/x.jpg: 'a..example' is not a host name; "
        "fix the URL in the post"
    ]
    assert proxy_env.requests == []


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
    assert check.exit_code == 1  # failed references keep the gate closed until they succeed
    assert "bad_url" in check.stdout + check.stderr


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


# -- the config file -------------------------------------------------------------------------

CONFIG_CASES = [
    (
        '[fetch]\nconcurrency = "abc"\n',
        'fetch.concurrency must be an integer from 1 to 256, got "abc"',
    ),
    ("[fetch]\nconcurrency = 0\n", "fetch.concurrency must be an integer from 1 to 256, got 0"),
    ("[fetch]\nper_host = 65\n", "fetch.per_host must be an integer from 1 to 64, got 65"),
    ("[fetch]\nretries = -1\n", "fetch.retries must be an integer from 0 to 20, got -1"),
    ("[fetch]\nmax_bytes = 0\n", "fetch.max_bytes must be an integer of 1 or more, got 0"),
    ("[fetch]\nmax_wait = -1.5\n", "fetch.max_wait must be a number of 0 or more, got -1.5"),
    (
        "[fetch]\nread_timeout = 0.01\n",
        "fetch.read_timeout must be a number of 0.1 or more, got 0.01",
    ),
    ("[fetch]\nwayback = 1\n", "fetch.wayback must be true or false, got 1"),
    (
        "[fetch]\nconcurrency = true\n",
        "fetch.concurrency must be an integer from 1 to 256, got true",
    ),
    ("workers = 0\n", "workers must be an integer from 1 to 256, got 0"),
    ("cache_dir = 5\n", "cache_dir must be a string, got 5"),
    (
        "[images]\nthumb_widths = [320, -1]\n",
        "images.thumb_widths must be a list of integers from 1 to 10000, got [320, -1]",
    ),
    (
        '[images]\nthumb_format = "gif"\n',
        'images.thumb_format must be one of "webp", "png", "jpeg", "avif", got "gif"',
    ),
    ("[images]\nmax_pixels = 0\n", "images.max_pixels must be an integer of 1 or more, got 0"),
    (
        "[images]\nphash_threshold = 65\n",
        "images.phash_threshold must be an integer from 0 to 64, got 65",
    ),
    (
        '[discover]\nfrontmatter_keys = "cover"\n',
        'discover.frontmatter_keys must be a list of strings, got "cover"',
    ),
    ("fetch = 3\n", "fetch must be a table ([fetch]), got 3."),
    (
        '[fetch.headers."a.example"]\nReferer = 3\n',
        'fetch.headers."a.example".Referer must be a string, got 3',
    ),
    ("[fetch]\nconcurency = 3\n", "unknown key fetch.concurency; did you mean fetch.concurrency?"),
    ("workerz = 3\n", "unknown key workerz; did you mean workers?"),
    (
        '[[proxy_rules]]\nname = "a"\npattern = 3\ntemplate = "x"\n',
        "proxy_rules.pattern must be a string, got 3",
    ),
    (
        "[fetch]\nconcurrency =\n",
        "not valid TOML (Invalid value (at line 2, column 14)); fix the file.",
    ),
]


@pytest.mark.parametrize(("text", "message"), CONFIG_CASES)
@pytest.mark.parametrize("command", ["scan", "fetch"])
def test_config_values_are_checked_by_type_and_range(
    tmp_path: Path, command: str, text: str, message: str
) -> None:
    post = _html_post(tmp_path / "posts", "a.html", GOOD)
    config = tmp_path / "posts" / "mediatool.toml"
    config.write_text(text, encoding="utf-8")
    args = [command, str(post)] + (
        ["--cache", str(tmp_path / "cache")] if command == "fetch" else []
    )
    result = _invoke(*args)
    _no_traceback(result)
    assert result.exit_code == 2
    assert result.stderr == f"error: {config}: {message}\n"
    assert not (tmp_path / "cache").exists()


def test_config_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    post = _html_post(tmp_path / "posts", "a.html", GOOD)
    config = tmp_path / "other.toml"
    config.write_bytes(b'[fetch]\nuser_agent = "caf\xe9"\n')
    result = _invoke("scan", str(post), "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}: not UTF-8 (byte 0xe9 on line 2); save the file as UTF-8.\n"
    )


def test_config_given_as_a_named_pipe_is_refused_not_read(tmp_path: Path) -> None:
    post = _html_post(tmp_path / "posts", "a.html", GOOD)
    config = tmp_path / "pipe.toml"
    os.mkfifo(config)
    done = _run_cli("scan", str(post), "--config", str(config))  # a hang fails on the timeout
    assert done.returncode == 2
    assert done.stderr == f"error: {config}: not a regular file; give --config a TOML file.\n"


def test_a_valid_config_file_is_taken(tmp_path: Path) -> None:
    post = _html_post(tmp_path / "posts", "a.html", GOOD)
    (tmp_path / "posts" / "mediatool.toml").write_text(
        '[fetch]\nmax_wait = 5\nread_timeout = 2.5\nwayback = false\n[fetch.headers."a.example"]\n'
        'Referer = "https://a.example/"\n[images]\nthumb_widths = [100]\n[discover]\n'
        'frontmatter_keys = ["cover"]\n'
    )
    result = _invoke("scan", str(post))
    assert result.exit_code == 0, result.stderr


def test_config_ranges_are_the_ranges_the_flags_accept() -> None:
    flags = {
        "concurrency": "fetch.concurrency",
        "per_host": "fetch.per_host",
        "workers": "workers",
        "retries": "fetch.retries",
        "max_wait": "fetch.max_wait",
        "connect_timeout": "fetch.connect_timeout",
        "read_timeout": "fetch.read_timeout",
        "max_bytes": "fetch.max_bytes",
        "max_time": "fetch.max_time",
        "max_pixels": "images.max_pixels",
    }
    commands = {**main.commands}
    params = {p.name: p for p in commands["fetch"].params}
    params["threshold"] = next(p for p in commands["dedup"].params if p.name == "threshold")
    flags["threshold"] = "images.phash_threshold"
    for name, dotted in flags.items():
        kind = params[name].type
        spec = KEYS[dotted]
        assert isinstance(kind, click.IntRange | click.FloatRange), name
        assert (kind.min, kind.max) == (spec.low, spec.high), name
        assert spec.kind is (int if isinstance(kind, click.IntRange) else float), name


# -- --json: stdout is one JSON object -------------------------------------------------------


def test_json_dry_runs_print_one_json_object_with_the_diffs_inside(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    proxy_env.add(GOOD, jpeg_bytes)
    post = _html_post(tmp_path / "posts", "a.html", GOOD)
    cache = str(tmp_path / "cache")
    assert _invoke("fetch", str(post), "--cache", cache).exit_code == 0
    dry = _invoke("rewrite", str(post), "--cache", cache, "--dry-run", "--json")
    assert dry.exit_code == 0
    data = json.loads(dry.stdout)  # the whole of stdout, nothing before or after
    [diff] = data["diffs"]
    assert f'-<p><img src="{GOOD}"></p>' in diff and diff.startswith("--- a/")
    assert GOOD in post.read_text()
    assert _invoke("rewrite", str(post), "--cache", cache).exit_code == 0
    undo = _invoke("rewrite", str(post), "--cache", cache, "--undo", "--dry-run", "--json")
    assert undo.exit_code == 0
    [diff] = json.loads(undo.stdout)["diffs"]
    assert f'+<p><img src="{GOOD}"></p>' in diff
    text = _invoke("rewrite", str(post), "--cache", cache, "--undo", "--dry-run")
    assert text.stdout.startswith("--- a/")  # without --json the diff is printed as before


# -- posts that are not regular files --------------------------------------------------------


def _special_posts(folder: Path) -> dict[str, str]:
    """A named pipe, a socket, a device and a dangling link named like posts; what is said of
    each but the link."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "pipe.md")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "socket.md"))
    os.symlink("/dev/null", folder / "device.md")  # a link to a character device
    os.symlink(folder / "nowhere", folder / "dangling.md")
    return {
        "pipe.md": "skipped, it is a named pipe, not a regular file; move it out of the posts.",
        "socket.md": "skipped, it is a socket, not a regular file; move it out of the posts.",
        "device.md": "skipped, it is a character device, not a regular file; move it out of "
        "the posts.",
    }


@pytest.mark.parametrize("command", ["scan", "fetch", "rewrite"])
def test_pipes_sockets_devices_named_md_are_skipped_with_one_line(
    tmp_path: Path, command: str
) -> None:
    posts = tmp_path / "posts"
    expected = _special_posts(posts)
    _html_post(posts, "good.md", "data:image/png;base64,AAAA")
    cache = ["--cache", str(tmp_path / "cache")] if command != "scan" else []
    if command == "rewrite":  # rewrite needs a manifest: fetch made one
        _run_cli("fetch", str(posts), *cache)
    done = _run_cli(command, str(posts), *cache)  # a hang fails on the timeout
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    for name, message in expected.items():
        assert lines.count(f"{posts / name}: {message}") == 1, (name, lines)
    [dangling] = [line for line in lines if line.startswith(f"{posts / 'dangling.md'}: ")]
    assert "cannot read" in dangling and "(No such file or directory)" in dangling
    assert "Traceback" not in done.stderr


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediatool.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- the environment: a read-only cache, a damaged manifest, a full disk ----------------------
#
# The suite runs as root, which ignores file permissions; so a read-only cache is a read-only
# bind mount, and a full disk a small tmpfs, each in a private mount namespace of the one
# command (`unshare -m`): nothing is mounted outside it, nothing to clean up after.


PYTHON_CLI = (sys.executable, "-m", "mediatool.cli")


def _run_in_mount_namespace(
    setup: str, folder: str, *args: str, program: tuple[str, ...] = PYTHON_CLI
) -> subprocess.CompletedProcess[str]:
    """`program` with `args` run after the shell `setup` ($0 names `folder`) in a mount
    namespace of its own."""
    return subprocess.run(
        ["unshare", "-m", "--", "sh", "-c", f'{setup} && exec "$@"', folder, *program, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _read_only(
    cache: Path, *args: str, program: tuple[str, ...] = PYTHON_CLI
) -> subprocess.CompletedProcess[str]:
    setup = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0"'
    return _run_in_mount_namespace(setup, str(cache), *args, program=program)


def _on_tmpfs(folder: Path, kilobytes: int, *args: str) -> subprocess.CompletedProcess[str]:
    return _run_in_mount_namespace(
        f'mount -t tmpfs -o size={kilobytes}k tmpfs "$0"', str(folder), *args
    )


@pytest.fixture
def fetched(tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes) -> tuple[Path, Path]:
    """(post, cache) after a fetch: one reference, localizable."""
    proxy_env.add(GOOD, jpeg_bytes)
    post = _html_post(tmp_path / "posts", "a.html", GOOD)
    cache = tmp_path / "cache"
    assert _invoke("fetch", str(post), "--cache", str(cache)).exit_code == 0
    return post, cache


WRITING_COMMANDS = [
    ["rewrite", "{post}"],
    ["rewrite", "{post}", "--undo"],
    ["dedup", "--regroup"],
    ["thumbs", "--rebuild"],
]


@pytest.mark.parametrize("command", [["fetch", "{post}"], *WRITING_COMMANDS], ids=" ".join)
def test_commands_that_write_refuse_a_read_only_cache_in_one_line(
    fetched: tuple[Path, Path], command: list[str]
) -> None:
    post, cache = fetched
    before = post.read_bytes()
    args = [arg.format(post=post) for arg in command]
    done = _read_only(cache, *args, "--cache", str(cache))
    assert done.returncode == 3, done.stderr
    assert done.stderr == (
        f"error: {cache}: cache folder is not writable (Read-only file system); "
        "choose another with --cache or fix its permissions.\n"
    )
    assert post.read_bytes() == before


def test_commands_that_only_read_work_on_a_read_only_cache(fetched: tuple[Path, Path]) -> None:
    post, cache = fetched
    check = _read_only(cache, "rewrite", str(post), "--cache", str(cache), "--check")
    assert check.returncode == 1, check.stderr  # the reference could be localized
    assert f"{post}:1: localizable: {GOOD}" in check.stderr.splitlines()
    dry = _read_only(cache, "rewrite", str(post), "--cache", str(cache), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("--- a/") and f'-<p><img src="{GOOD}"></p>' in dry.stdout
    assert GOOD in post.read_text()
    assert _invoke("rewrite", str(post), "--cache", str(cache)).exit_code == 0
    undo = _read_only(cache, "rewrite", str(post), "--cache", str(cache), "--undo", "--dry-run")
    assert undo.returncode == 0, undo.stderr
    assert f'+<p><img src="{GOOD}"></p>' in undo.stdout
    assert not list(cache.glob("manifest.sqlite-*"))  # no -wal/-shm was left behind


def test_report_on_a_read_only_cache_is_one_line_and_can_be_written_elsewhere(
    fetched: tuple[Path, Path], tmp_path: Path
) -> None:
    _, cache = fetched
    refused = _read_only(cache, "report", "--cache", str(cache))
    assert refused.returncode == 3
    assert refused.stderr == (
        f"error: {cache / 'report.html'}: cannot write the report (Read-only file system); "
        "make the cache folder writable, or run report on a writable copy of it (--cache COPY).\n"
    )
    output = tmp_path / "elsewhere" / "report.html"
    library = (
        "from pathlib import Path; from mediatool.config import Settings; "
        "from mediatool.pipeline import run_report; "
        f"print(run_report(Settings(cache_dir=Path({str(cache)!r})), Path({str(output)!r})))"
    )
    written = _read_only(cache, program=(sys.executable, "-c", library))
    assert written.returncode == 0, written.stderr
    assert written.stdout == f"{output}\n"
    assert "mediatool report" in output.read_text()


def _damage(manifest: Path, how: str) -> None:
    if how == "garbage":
        manifest.write_bytes(b"this is not a database\n" * 40)
    else:  # truncated: the header is a SQLite one, the pages after it are gone
        manifest.write_bytes(manifest.read_bytes()[:3000])


@pytest.mark.parametrize("how", ["garbage", "truncated"])
@pytest.mark.parametrize(
    "command",
    [["fetch", "{post}"], *WRITING_COMMANDS, ["rewrite", "{post}", "--check"], ["report"]],
    ids=" ".join,
)
def test_a_damaged_manifest_is_named_with_what_to_do(
    fetched: tuple[Path, Path], how: str, command: list[str]
) -> None:
    post, cache = fetched
    manifest = cache / "manifest.sqlite"
    _damage(manifest, how)
    why = "file is not a database" if how == "garbage" else "database disk image is malformed"
    result = _invoke(*[arg.format(post=post) for arg in command], "--cache", str(cache))
    _no_traceback(result)
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {manifest}: the manifest is damaged ({why}); move it aside (e.g. to "
        "manifest.sqlite.bad) and run `mediatool fetch` again to rebuild it (its undo records "
        "stay in the moved file).\n"
    )


def test_a_full_disk_stops_fetch_with_one_line_naming_the_file(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    noise = random.Random(13)
    urls = [f"http://img.example.test/{n}.png" for n in range(4)]
    for url in urls:
        image = Image.frombytes("RGB", (300, 300), noise.randbytes(300 * 300 * 3))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")  # noise: ~270 KB each, more than the disk holds
        proxy_env.add(url, buffer.getvalue())
    post = _html_post(tmp_path / "posts", "a.html", *urls)
    cache = tmp_path / "cache"
    cache.mkdir()
    done = _on_tmpfs(cache, 200, "fetch", str(post), "--cache", str(cache))
    assert done.returncode == 3, done.stderr
    assert re.fullmatch(
        rf"error: {re.escape(str(cache))}/\S+: cannot write \((No space left on device|database "
        r"or disk is full)\); free some space and run again\.\n",
        done.stderr,
    ), done.stderr


def test_a_read_only_cache_shows_the_commits_a_killed_run_left_in_the_wal(
    fetched: tuple[Path, Path], tmp_path: Path
) -> None:
    """A killed run leaves commits in manifest.sqlite-wal; reading the manifest read-only must
    see them (SQLite's `immutable` would not), or say it cannot."""
    post, cache = fetched
    copy = tmp_path / "copy"
    copy.mkdir()
    db = sqlite3.connect(cache / "manifest.sqlite", isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint=0")  # the commit stays in the -wal file
    db.execute("UPDATE urls SET status='failed', reason='http_404'")
    for part in cache.glob("manifest.sqlite*"):  # a snapshot, as a kill -9 would leave it
        shutil.copy(part, copy / part.name)
    db.close()
    assert (copy / "manifest.sqlite-wal").stat().st_size > 0
    dry = _read_only(copy, "rewrite", str(post), "--cache", str(copy), "--dry-run")
    assert f"{post}:1: left remote: {GOOD} (http_404)" in dry.stderr.splitlines(), dry.stderr
    (copy / "manifest.sqlite-shm").unlink()
    refused = _read_only(copy, "rewrite", str(post), "--cache", str(copy), "--check")
    assert refused.returncode == 3
    assert refused.stderr == (
        f"error: {copy / 'manifest.sqlite'}: holds changes of an interrupted run that cannot be "
        "read in a read-only folder; make the cache folder writable and run the command again.\n"
    )


def _as_other_user(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a user namespace (`unshare -r`): root there overrides permissions
    only on files of mapped owners, so a folder owned by uid 1000 with mode 555 refuses writes
    with EACCES, as it would for a user who is not its owner."""
    return subprocess.run(
        ["unshare", "-r", "--", *PYTHON_CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("file_mode", [0o444, 0o666], ids=["files read-only", "files writable"])
def test_a_cache_folder_without_write_permission(
    fetched: tuple[Path, Path], file_mode: int
) -> None:
    """Whether or not manifest.sqlite itself may be written: SQLite needs the folder too."""
    post, cache = fetched
    for path in [cache, *cache.rglob("*")]:
        os.chown(path, 1000, 1000)
        path.chmod(0o555 if path.is_dir() else file_mode)
    refused = _as_other_user("rewrite", str(post), "--cache", str(cache))
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr == (
        f"error: {cache}: cache folder is not writable (Permission denied); "
        "choose another with --cache or fix its permissions.\n"
    )
    check = _as_other_user("rewrite", str(post), "--cache", str(cache), "--check")
    assert check.returncode == 1, check.stderr
    assert f"{post}:1: localizable: {GOOD}" in check.stderr.splitlines()
    for path in [cache, *cache.rglob("*")]:  # let pytest clean up
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_an_unreadable_post_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    secret = _html_post(posts, "secret.md", "http://img.example.test/secret.jpg")
    _html_post(posts, "open.md", GOOD)
    os.chown(secret, 1000, 1000)
    secret.chmod(0o000)
    done = _as_other_user("scan", str(posts))
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"{secret}: cannot read the file (Permission denied); check it exists and is readable."
    )
    assert [json.loads(line)["source_url"] for line in done.stdout.splitlines()] == [GOOD]


@pytest.mark.parametrize("command", [["rewrite", "{post}"], ["dedup", "--regroup"]], ids=" ".join)
def test_a_full_cache_disk_stops_manifest_writes_with_one_line(
    fetched: tuple[Path, Path], tmp_path: Path, command: list[str]
) -> None:
    post, cache = fetched
    before = post.read_bytes()
    full = tmp_path / "full"
    full.mkdir()
    setup = (
        f'mount -t tmpfs -o size=4m tmpfs "$0" && cp -a {shlex.quote(str(cache))}/. "$0"/ '
        '&& { dd if=/dev/zero of="$0/filler" bs=4k 2>/dev/null || true; }'
    )
    args = [arg.format(post=post) for arg in command]
    done = _run_in_mount_namespace(setup, str(full), *args, "--cache", str(full))
    assert done.returncode == 3, done.stderr
    manifest = re.escape(str(full / "manifest.sqlite"))
    assert re.fullmatch(
        rf"error: {manifest}: cannot write \((disk I/O error|database or disk is full)\); "
        r"free some space and run again\.\n",
        done.stderr,
    ), done.stderr
    assert post.read_bytes() == before
