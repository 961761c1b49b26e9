"""Processes that end with the run: pool workers die with it, signals stop it cleanly.

The process pools (pipeline.common.cpu_pool) start their workers from multiprocessing's fork
server, a child of the main process:

    mediatool (main) ── fork server ── worker, worker, ...
                     └─ resource tracker

- Each worker runs a watch thread (`become_worker`) that ends the worker as soon as the main
  process is gone, however it went (kill -9 included). The kernel's parent-death signal
  (prctl PR_SET_PDEATHSIG) cannot do this here: a worker's parent is the fork server, and the
  fork server waits for its workers before it leaves (they hold its "alive" pipe), while the
  workers wait on queues whose write ends they hold themselves: without the watch, all of
  them stay forever. Once the workers are gone, the fork server and the resource tracker see
  their pipes close and leave too.
- Workers ignore SIGINT and SIGHUP: Ctrl-C or a hang-up reaches the whole process group, and
  only the main process decides what stops (SIGTERM stays deadly: the pool itself terminates
  workers with it when one of them crashed). In the main process SIGINT is KeyboardInterrupt
  and, inside `stop_on_signals`, SIGTERM and SIGHUP raise `Stopped`; either unwinds the run:
  the pool's workers are ended, the manifest's open transaction rolled back (its commits
  stay), temp files deleted.
- A stop never cuts the pool's own bookkeeping in two: `WorkerPool.submit` holds signals until
  it returns (an interrupted submit can leave a worker started but unknown to the pool, which
  then waits for it forever).
"""

from __future__ import annotations

import contextlib
import multiprocessing.process
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import FrameType
from typing import ParamSpec, TypeVar

from mediatool.errors import Stopped

P = ParamSpec("P")
T = TypeVar("T")
WATCH_EVERY = 0.2  # seconds between a worker's checks that the main process still runs
EXIT_ORPHANED = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
FORKSERVER_PRELOAD = ("mediatool.pipeline",)  # imported once by the fork server: see WorkerPool
WORKER_IGNORES = (signal.SIGINT, signal.SIGHUP)


def become_worker(main_pid: int) -> None:
    """Initializer of every pool worker: leave signals to the main process, end with it."""
    for signum in WORKER_IGNORES:
        signal.signal(signum, signal.SIG_IGN)
    started = _start_time(main_pid)
    watch = threading.Thread(
        target=_exit_when_gone, args=(main_pid, started), name="mediatool-watch", daemon=True
    )
    watch.start()


def _exit_when_gone(main_pid: int, started: str | None) -> None:
    """Poll until process `main_pid`, started at `started`, is gone, then end this process.
    (The start time tells the main process from a later one given the same id.)"""
    while process_alive(main_pid) and _start_time(main_pid) == started:
        time.sleep(WATCH_EVERY)
    os._exit(EXIT_ORPHANED)  # no clean-up: nobody is left to take the results


class WorkerPool(ProcessPoolExecutor):
    """A process pool whose workers are started from the fork server (the caller's threads
    are not copied into them), ignore Ctrl-C and end with the calling process.

    The fork server imports FORKSERVER_PRELOAD once, when it starts: each worker it forks runs
    the main script again (multiprocessing's `prepare`), and `mediatool`'s main script imports
    the whole CLI, which every worker of every pool would otherwise import anew (1.2..1.5 s
    before a new pool's first result on the 2-core bench machine; ~0.2 s with the stages
    preloaded, what is left being click and cli.py). Not mediatool.cli itself: run as
    `python -m mediatool.cli`, each worker runs that module again, and runpy warns when it is
    imported already. (multiprocessing's own preload of `__main__` does not happen with
    forkserver: the key it looks for, main_path, is not among the ones it is given.)"""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
        super().__init__(
            max_workers=max(1, workers),
            mp_context=context,
            initializer=become_worker,
            initargs=(os.getpid(),),
        )

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with signals_held():
            return super().submit(fn, *args, **kwargs)


def end_processes(processes: Iterable[multiprocessing.process.BaseProcess]) -> None:
    """SIGKILL these processes (pool workers whose results nobody will take). Their pool, or
    the fork server that started them, reaps them."""
    for process in processes:
        process.kill()


def process_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    return _stat_fields(pid)[:1] == ["Z"]


def _start_time(pid: int) -> str | None:
    """When process `pid` started, in clock ticks since boot (None without /proc)."""
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else None


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, ppid, ... (man 5 proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux) or it just ended
        return []
    return stat.rpartition(")")[2].split()


_held = 0  # signals_held blocks open in the main thread
_waiting: list[int] = []  # stop signals that came meanwhile


def _interrupt(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Stopped(signum)


def _stop(signum: int, frame: FrameType | None) -> None:
    if _held:
        _waiting.append(signum)
        return
    raise _interrupt(signum)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Within the block (main thread), a stop signal (under `stop_on_signals`) waits; it raises
    when the block ends."""
    global _held
    _held += 1
    try:
        yield
    finally:
        _held -= 1
    if not _held and _waiting:
        signum = _waiting[0]
        _waiting.clear()
        raise _interrupt(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT raises KeyboardInterrupt and SIGTERM and SIGHUP raise
    `Stopped` in the main thread, so the run unwinds instead of vanishing, though never inside
    `signals_held`. The previous handlers are restored after."""
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
