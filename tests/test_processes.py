"""Processes end with the run: a real `mediatool fetch` subprocess, its process pool running,
is killed or interrupted; then no process it started may remain.

Every process of a run carries a unique marker in its environment (the fork server, the
resource tracker and the workers inherit it), so /proc shows which processes are the run's."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from mediatool.pipeline.analyzing import INLINE_UP_TO
from mediatool.processes import process_alive
from mediatool.testing.origin import OriginServer

MARKER = "MEDIATOOL_TEST_RUN"
QUICK_IMAGES = INLINE_UP_TO + 24  # the first INLINE_UP_TO are analysed without the pool
SAVED = "progress so far is saved; run the same command again to continue"
DEADLINE = 60.0  # seconds to wait for a state that should come in well under one


def _photo(seed: int) -> bytes:
    """A distinct real JPEG per seed, big enough that analysing it takes the pool a moment."""
    image = Image.radial_gradient("L").convert("RGB").resize((640, 480))
    for x in range(0, 640, 40):
        image.paste(((seed * 37) % 256, x % 256, 90), (x, seed % 200, x + 15, 300 + seed % 100))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _archive(root: Path, origin: OriginServer) -> tuple[Path, str]:
    """Posts with QUICK_IMAGES images served at once and one served slowly; returns the folder
    and the slow URL (while it downloads, the pool analyses the quick ones)."""
    slow = "http://slow.example.test/slow.jpg"
    big = _photo(999)
    origin.add(slow, big, body_delay=0.5, chunk_size=max(1, len(big) // 200))
    root.mkdir()
    for number in range(QUICK_IMAGES):
        url = f"http://img.example.test/{number}.jpg"
        origin.add(url, _photo(number))
        (root / f"post-{number}.md").write_text(f"# {number}\n\n![a]({url})\n")
    (root / "slow.md").write_text(f"![slow]({slow})\n")
    return root, slow


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # ended meanwhile, or not ours to read
        return b""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def marked_processes(marker: str) -> list[int]:
    """The running (not zombie) processes whose environment carries `marker`."""
    tag = f"{MARKER}={marker}".encode()
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if tag in _environ(pid).split(b"\0") and process_alive(pid)]


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


@contextmanager
def _fetch(archive: Path, cache: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real `mediatool fetch` in its own process group, marked; killed if still running."""
    marker = uuid.uuid4().hex
    env = dict(os.environ, **{MARKER: marker})
    command = [sys.executable, "-m", "mediatool.cli", "fetch", str(archive)]
    process = subprocess.Popen(
        [*command, "--cache", str(cache), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process, marker
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stderr:
            process.stderr.close()


def _pool_running(process: subprocess.Popen[bytes], marker: str) -> bool:
    """The fork server and at least one worker forked from it run beside the main process."""
    others = [pid for pid in marked_processes(marker) if pid != process.pid]
    return sum("forkserver" in _cmdline(pid) for pid in others) >= 2


@contextmanager
def _fetch_with_its_pool_running(
    tmp_path: Path, origin: OriginServer
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    archive, slow = _archive(tmp_path / "posts", origin)
    with _fetch(archive, tmp_path / "cache") as (process, marker):
        _wait_for(lambda: origin.requests_for(slow), "the slow download to start")
        _wait_for(lambda: _pool_running(process, marker), "the pool's workers to start")
        assert process.poll() is None, "the run ended before it could be stopped"
        yield process, marker, slow


@pytest.mark.parametrize(
    "signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=["KILL", "TERM", "HUP"]
)
def test_a_killed_fetch_leaves_no_process_behind(
    tmp_path: Path, proxy_env: OriginServer, signum: int
) -> None:
    with _fetch_with_its_pool_running(tmp_path, proxy_env) as (process, marker, _):
        process.send_signal(signum)
        process.wait(timeout=DEADLINE)
        _wait_for(lambda: not marked_processes(marker), "the run's processes to end")
        assert marked_processes(marker) == []
        if signum != signal.SIGKILL:
            assert process.returncode == 128 + signum
            assert process.stderr is not None
            stderr = process.stderr.read().decode()
            name = signal.Signals(signum).name
            assert stderr == f"stopped by {name}: {SAVED}\n"


def test_ctrl_c_stops_with_one_line_and_a_rerun_completes(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    with _fetch_with_its_pool_running(tmp_path, proxy_env) as (process, marker, slow):
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
        process.wait(timeout=DEADLINE)
        assert process.returncode == 130
        assert process.stderr is not None
        assert process.stderr.read().decode() == (f"interrupted: {SAVED}\n")
        _wait_for(lambda: not marked_processes(marker), "the run's processes to end")
        proxy_env.add(slow, _photo(999))  # served at once now
    archive, cache = tmp_path / "posts", tmp_path / "cache"
    with _fetch(archive, cache) as (rerun, _):
        assert rerun.wait(timeout=DEADLINE * 2) == 0
        assert rerun.stderr is not None and rerun.stderr.read() == b""
    assert len(list((cache / "originals").rglob("*.jpg"))) == QUICK_IMAGES + 1


BECOME_WORKER = "import sys, time\nfrom mediatool.processes import become_worker as become\n"


def _worker_of(main_pid: int) -> subprocess.Popen[bytes]:
    """A process that becomes a pool worker of `main_pid`, then idles for DEADLINE."""
    code = f"{BECOME_WORKER}become({main_pid})\ntime.sleep({DEADLINE})\nsys.exit(0)"
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_worker_ends_when_its_main_process_is_killed() -> None:
    main = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({DEADLINE})"])
    worker = _worker_of(main.pid)
    try:
        main.kill()  # not reaped yet: a zombie, which counts as gone
        assert worker.wait(timeout=DEADLINE) == 1
    finally:
        main.kill()
        main.wait()
        worker.kill()
        worker.wait()


def test_a_worker_whose_main_process_already_ended_exits_at_once() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not process_alive(gone.pid)
    worker = _worker_of(gone.pid)
    try:
        assert worker.wait(timeout=DEADLINE) == 1
    finally:
        worker.kill()
        worker.wait()
