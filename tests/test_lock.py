"""One writing run per cache: a real lock held by real processes; start-up never deletes the
files of a live run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.errors import CacheBusy
from mediatool.files import remove_stale_temp_files
from mediatool.lock import hold_cache, read_holder
from mediatool.store import Store
from mediatool.testing.origin import OriginServer

HOLD = """
import sys
from pathlib import Path
from mediatool.lock import hold_cache
with hold_cache(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.readline()
"""
BUSY = re.compile(
    r"error: cache (?P<cache>\S+) in use by PID (?P<pid>\d+) since "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(mediatool (?P<command>[^)]+)\); "
    r"wait for it to finish or stop it\.\n"
)


@contextmanager
def held_by_another_process(cache: Path, command: str) -> Iterator[subprocess.Popen[str]]:
    """A real process holding `cache`'s lock as `command` until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(cache), command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        if holder.stdin:
            holder.stdin.close()  # it lets go
        holder.wait()
        if holder.stdout:
            holder.stdout.close()


def _dead_pid() -> int:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    return ended.pid


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def fetched(tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes) -> tuple[Path, Path]:
    """An archive of one post whose image was fetched into a cache: (posts, cache)."""
    url = "http://img.example.test/a.jpg"
    proxy_env.add(url, jpeg_bytes)
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    posts.mkdir()
    (posts / "a.md").write_text(f"# a\n\n![a]({url})\n")
    done = _cli("fetch", str(posts), "--cache", str(cache))
    assert done.exit_code == 0, done.output
    return posts, cache


@pytest.mark.parametrize(
    "command",
    [
        ["fetch", "{posts}"],
        ["rewrite", "{posts}"],
        ["rewrite", "--undo", "{posts}"],
        ["dedup", "--regroup"],
        ["thumbs", "--rebuild"],
    ],
    ids=["fetch", "rewrite", "undo", "dedup", "thumbs"],
)
def test_a_second_writing_run_exits_3_naming_the_first(
    fetched: tuple[Path, Path], command: list[str]
) -> None:
    posts, cache = fetched
    before = (posts / "a.md").read_bytes()
    args = [arg.format(posts=posts) for arg in command]
    with held_by_another_process(cache, "fetch") as holder:
        second = _cli(*args, "--cache", str(cache))
    assert second.exit_code == 3
    busy = BUSY.fullmatch(second.stderr)
    assert busy, second.stderr
    assert (busy["cache"], busy["pid"], busy["command"]) == (str(cache), str(holder.pid), "fetch")
    assert (posts / "a.md").read_bytes() == before
    assert _cli(*args, "--cache", str(cache)).exit_code == 0  # once the first let go


def test_reading_commands_run_beside_a_writing_run(fetched: tuple[Path, Path]) -> None:
    posts, cache = fetched
    before = (posts / "a.md").read_bytes()
    with held_by_another_process(cache, "fetch"):
        check = _cli("rewrite", str(posts), "--check", "--cache", str(cache))
        dry_run = _cli("rewrite", str(posts), "--dry-run", "--cache", str(cache))
        undo_dry_run = _cli("rewrite", str(posts), "--undo", "--dry-run", "--cache", str(cache))
        report = _cli("report", "--cache", str(cache))
        scan = _cli("scan", str(posts))
    assert check.exit_code == 1  # the reference could be localized: --check says so
    assert "in use" not in check.stderr
    assert dry_run.exit_code == 0 and "+++ " in dry_run.stdout
    assert undo_dry_run.exit_code == 0
    assert report.exit_code == 0 and (cache / "report.html").is_file()
    assert scan.exit_code == 0
    assert (posts / "a.md").read_bytes() == before


def test_a_real_fetch_holds_the_cache_until_it_ends(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    slow = "http://slow.example.test/b.jpg"
    proxy_env.add(slow, jpeg_bytes, delay=3.0)  # the first run holds the cache meanwhile
    posts, cache = tmp_path / "posts", tmp_path / "cache"
    posts.mkdir()
    (posts / "b.md").write_text(f"![b]({slow})\n")
    command = [sys.executable, "-m", "mediatool.cli", "fetch", str(posts), "--cache", str(cache)]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        while not proxy_env.requests_for(slow) and first.poll() is None:
            time.sleep(0.05)  # until its download started, the lock held: a state, not a result
        second = _cli("fetch", str(posts), "--cache", str(cache))
        assert first.wait(timeout=60) == 0, first.stderr
    finally:
        first.kill()
        first.wait()
    busy = BUSY.fullmatch(second.stderr)
    assert busy and busy["pid"] == str(first.pid) and busy["command"] == "fetch", second.stderr
    assert second.exit_code == 3
    assert len(list((cache / "originals").rglob("*.jpg"))) == 1


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = f"{HOLD}\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    killed = subprocess.run(
        [sys.executable, "-c", code, str(cache), "fetch"],
        input="go\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -9 and killed.stdout == "held\n"
    with hold_cache(cache, "rewrite"), (cache / "lock").open("rb") as lock:
        holder = read_holder(lock.fileno())
    assert holder is not None and (holder.pid, holder.command) == (os.getpid(), "rewrite")


def test_a_second_hold_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with (
        hold_cache(cache, "fetch"),
        pytest.raises(CacheBusy, match=f"PID {os.getpid()} "),
        hold_cache(cache, "thumbs --rebuild"),
    ):
        pass
    with hold_cache(cache, "thumbs --rebuild"):
        pass


def test_wait_says_so_once_and_runs_when_the_first_lets_go(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    said: list[str] = []
    with held_by_another_process(cache, "fetch") as holder:

        def say(message: str) -> None:
            said.append(message)
            assert holder.stdin is not None
            holder.stdin.close()  # only now may the first run let go

        with hold_cache(cache, "rewrite", wait=True, say=say):
            assert holder.wait(timeout=60) == 0
    assert len(said) == 1
    assert said[0].startswith(f"cache {cache} in use by PID {holder.pid} since ")
    assert said[0].endswith(" (mediatool fetch); waiting for it to finish.")


def test_the_lock_file_names_no_holder_once_released(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with hold_cache(cache, "fetch"):
        assert (cache / "lock").stat().st_size > 0
    assert (cache / "lock").read_bytes() == b""


def test_a_missing_cache_is_refused_before_any_lock_file_is_made(tmp_path: Path) -> None:
    cache = tmp_path / "nowhere"
    result = _cli("thumbs", "--rebuild", "--cache", str(cache))
    assert result.exit_code == 2 and "no manifest" in result.stderr
    assert not cache.exists()


def test_start_up_keeps_the_temp_files_of_a_live_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    live = store.temp_dir / f".mediatool-{os.getpid()}-7.part"
    dead = store.temp_dir / f".mediatool-{_dead_pid()}-7.part"
    nameless = store.temp_dir / ".mediatool-x.part"
    for temp in (live, dead, nameless):
        temp.write_bytes(b"half")
    store.prepare()
    assert live.exists()
    assert not dead.exists() and not nameless.exists()


def test_rewrite_drops_the_part_files_a_killed_rewrite_left_beside_the_posts(
    fetched: tuple[Path, Path],
) -> None:
    posts, cache = fetched
    dead = posts / f".mediatool-{_dead_pid()}-0.part"
    live = posts / f".mediatool-{os.getpid()}-0.part"
    for temp in (dead, live):
        temp.write_bytes(b"half a post")
    dry_run = _cli("rewrite", str(posts), "--dry-run", "--cache", str(cache))
    assert dry_run.exit_code == 0 and dead.exists()  # a dry run changes nothing
    result = _cli("rewrite", str(posts), "--cache", str(cache))
    assert result.exit_code == 0, result.output
    assert not dead.exists() and live.exists()


def test_remove_stale_temp_files_looks_below_only_when_asked(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    stale = deep / f".mediatool-{_dead_pid()}-1.part"
    stale.write_bytes(b"")
    assert remove_stale_temp_files(tmp_path, below=False) == 0
    assert remove_stale_temp_files(tmp_path) == 1 and not stale.exists()
