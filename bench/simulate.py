"""Fetch a large synthetic archive, calibrated on the real corpus, and print time and memory.

    .venv/bin/python bench/simulate.py [--posts 100000] [--mode one --mode local:2 --mode shards:4]
        [--corpus DIR] [--hosts N] [--latency-ms 20] [--concurrency 16] [--per-host 4]
        [--workers N] [--seed 0] [--dir DIR]

1. Calibrates on the real corpus (`--corpus`, default ../shared/corpus/real; `--corpus none`
   uses built-in shares): references per origin host (Zipf exponent and number of hosts),
   proxy wrappings, references per post; prints the calibration.
2. Writes `--posts` posts shaped so (`mediatool.testing.simulate`): Zipf hosts, proxied URLs,
   boilerplate images repeated across posts, near-duplicate variants.
3. Serves every host from one local origin (`OriginServer(generated=True)`, reached as
   HTTP(S) proxy; pictures drawn on the fly, 64-320 px), with `--latency-ms` per answer.
4. For each `--mode`, runs `mediatool fetch` as a user would (subprocesses, a fresh cache) and
   prints one row: wall, CPU (user+sys of the driver and its children: worker processes),
   peak RSS of the driver (VmHWM polled from /proc; for shards the largest shard), manifest
   size, distinct URLs and failures it reported, and the peak requests in flight on any one
   host against `--per-host`.
Modes: `one` (one process); `local:N` (`fetch --scheduler local:N`) and `shards:N` (N
processes `fetch --shard I/N` on their own caches, then `mediatool merge` and `mediatool dedup`
on the merged manifest) when this build has them, else the row says "not available in this
build". Target: peak driver RSS <= 300 MB at
100,000 posts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# ../shared beside the repository; for a git worktree in a folder of worktrees, one level up
SHARED = next(
    (p / "shared" for p in (REPO.parent, REPO.parent.parent) if (p / "shared").is_dir()),
    REPO.parent / "shared",
)

from mediatool.testing.origin import OriginServer  # noqa: E402
from mediatool.testing.simulate import (  # noqa: E402
    ArchiveShape,
    ArchiveStats,
    calibrate,
    write_archive,
)

CLI = [sys.executable, "-m", "mediatool.cli"]
MB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One mode's figures."""

    mode: str
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss: int = 0  # bytes, the driver (largest shard process)
    manifest: int = 0  # bytes
    distinct_urls: int = 0
    failed: int = 0
    peak_per_host: int = 0
    busiest: str = ""
    exit_codes: tuple[int, ...] = ()
    note: str = ""


class PeakWatcher:
    """Polls VmHWM (the kernel's peak resident set) of processes until they end.

    With `trace`, every second appends "seconds pid VmRSS-MB peak-MB" per process, the peak
    being the highest resident set since the line before: the watcher reads VmHWM and then
    resets it (`/proc/PID/clear_refs`), so a peak shorter than a second shows on its line
    instead of only in the run's total. The run's peak stays the highest VmHWM read."""

    def __init__(self, every: float = 0.2, trace: Path | None = None) -> None:
        self.every = every
        self.trace = trace
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._pids: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int) -> None:
        self._pids.append(pid)
        if not self._thread.is_alive():
            self._thread.start()

    def _run(self) -> None:
        started = last = time.monotonic()
        while not self._stop.wait(self.every):
            for pid in list(self._pids):
                self._peak_of(pid)
            if self.trace is not None and time.monotonic() - last >= 1.0:
                last = time.monotonic()
                self._write_trace(self.trace, last - started)

    def _peak_of(self, pid: int) -> int:
        """`pid`'s VmHWM now, kept in `peaks` when it is the highest read."""
        peak = vm_bytes(pid)
        self.peaks[pid] = max(self.peaks.get(pid, 0), peak)
        return peak

    def _write_trace(self, trace: Path, seconds: float) -> None:
        with trace.open("a", encoding="utf-8") as out:
            for pid in self._pids:
                peak = self._peak_of(pid)
                reset_peak(pid)
                if rss := vm_bytes(pid, "VmRSS:"):
                    out.write(f"{seconds:.0f} {pid} {rss / MB:.1f} {peak / MB:.1f}\n")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def reset_peak(pid: int) -> None:
    """Start `pid`'s VmHWM again from its resident set now (Linux; nothing where refused)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def vm_bytes(pid: int, field: str = "VmHWM:") -> int:
    """Peak resident set of `pid` in bytes (`field` "VmRSS:": the resident set now; 0 once it
    has ended)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def fetch_flags(args: argparse.Namespace, cache: Path) -> list[str]:
    flags = ["--cache", str(cache), "--json", "--concurrency", str(args.concurrency)]
    flags += ["--per-host", str(args.per_host)]
    flags += ["--time-budget", str(args.time_budget)] if args.time_budget else []
    return flags + (["--workers", str(args.workers)] if args.workers else [])


FAILURE_LINES = 25  # stderr lines shown of a run that gave no summary


def run_processes(
    commands: Sequence[list[str]], env: dict[str, str], trace: Path | None = None
) -> tuple[list[dict[str, Any]], list[int], int]:
    """Run `commands` at once; their JSON summaries, exit codes and the largest peak RSS
    (`trace`: a file the resident sets and each second's peaks are written to)."""
    watcher = PeakWatcher(trace=trace)
    running: list[subprocess.Popen[str]] = []
    for command in commands:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        watcher.watch(process.pid)
        running.append(process)
    outputs = [process.communicate() for process in running]
    watcher.stop()
    summaries: list[dict[str, Any]] = []
    for (out, err), process in zip(outputs, running, strict=True):
        try:
            summaries.append(json.loads(out))
        except json.JSONDecodeError:
            lines = err.strip().splitlines() or ["(no output)"]
            print(f"  exit {process.returncode}: {lines[-1]}", file=sys.stderr)
            for line in lines[-FAILURE_LINES:-1]:  # the traceback of an internal error
                print(f"    {line}", file=sys.stderr)
            summaries.append({})
    return summaries, [p.returncode for p in running], max(watcher.peaks.values(), default=0)


def available(flag: str) -> bool:
    """Whether this build's `mediatool fetch` (or the command `flag`) has it."""
    command = [*CLI, "fetch", "--help"] if flag.startswith("--") else [*CLI, flag, "--help"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode == 0 and (flag in done.stdout or not flag.startswith("--"))


def shard_cache(cache: Path, index: int) -> Path:
    """The cache of shard `index` (0-based): beside the merged one, so post keys agree."""
    return cache.with_name(f"{cache.name}-{index + 1}")


def manifest_bytes(cache: Path) -> int:
    return sum(p.stat().st_size for p in cache.rglob("manifest.sqlite*") if p.is_file())


def run_mode(
    mode: str,
    posts: Path,
    work: Path,
    args: argparse.Namespace,
    origin: OriginServer,
    env: dict[str, str],
) -> Row:
    name, _, count = mode.partition(":")
    parts = int(count or 1)

    def shard_flag(index: int) -> list[str]:
        return ["--shard", f"{index + 1}/{parts}"]

    cache = work / f"cache-{name}-{parts}"
    if name == "one":
        commands = [[*CLI, "fetch", str(posts), *fetch_flags(args, cache)]]
    elif name == "local" and available("--scheduler"):
        commands = [[*CLI, "fetch", str(posts), *fetch_flags(args, cache), "--scheduler", mode]]
    elif name == "shards" and available("--shard") and available("merge"):
        commands = [
            [*CLI, "fetch", str(posts), *fetch_flags(args, shard_cache(cache, i)), *shard_flag(i)]
            for i in range(parts)
        ]
    else:
        return Row(mode, note="not available in this build")
    latency = origin.latency
    origin.reset()  # forgets the peaks, and the latency: put it back
    origin.latency = latency
    cpu, started = children_cpu(), time.perf_counter()
    trace = (
        args.trace.with_name(f"{args.trace.name}.{mode.replace(':', '-')}") if args.trace else None
    )
    summaries, codes, peak = run_processes(commands, env, trace)
    if name == "shards":  # the shard manifests merged into one (the media files stay apart),
        # then grouped over every shard's images, as docs/shards.md runs it
        manifests = [str(shard_cache(cache, i) / "manifest.sqlite") for i in range(parts)]
        merge = [*CLI, "merge", *manifests, "--cache", str(cache), "--json"]
        dedup = [*CLI, "dedup", "--cache", str(cache), "--json"]
        for command in (merge, dedup):
            _, more_codes, more_peak = run_processes([command], env, trace)
            codes, peak = codes + more_codes, max(peak, more_peak)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    peaks = origin.peaks()
    busiest = max(peaks, key=peaks.__getitem__, default="")
    return Row(
        mode,
        wall=wall,
        cpu=cpu,
        peak_rss=peak,
        manifest=manifest_bytes(cache),
        distinct_urls=sum(int(s.get("shard_urls", s.get("distinct_urls", 0))) for s in summaries),
        failed=sum(len(s.get("failed", ())) for s in summaries[:parts]),
        peak_per_host=peaks.get(busiest, 0),
        busiest=busiest,
        exit_codes=tuple(codes),
    )


HEADER = (
    f"{'mode':<10} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>11} {'manifest MB':>11} "
    f"{'URLs':>8} {'failed':>6} {'peak/host':>9}  exit"
)


def show(row: Row, per_host: int) -> str:
    if row.note:
        return f"{row.mode:<10} {row.note}"
    return (
        f"{row.mode:<10} {row.wall:8.1f} {row.cpu:8.1f} {row.peak_rss / MB:11.1f} "
        f"{row.manifest / MB:11.1f} {row.distinct_urls:8} {row.failed:6} "
        f"{row.peak_per_host:>4}/{per_host:<4}  {','.join(map(str, row.exit_codes))}"
        f"  (busiest: {row.busiest})"
    )


def shape_of(args: argparse.Namespace) -> ArchiveShape:
    if str(args.corpus) == "none":
        shape = ArchiveShape(posts=args.posts, seed=args.seed)
    else:
        if not args.corpus.is_dir():
            raise SystemExit(f"{args.corpus}: no such folder; give --corpus DIR or --corpus none")
        calibration = calibrate(args.corpus)
        for line in calibration.lines():
            print(line)
        shape = ArchiveShape.from_calibration(calibration, posts=args.posts, seed=args.seed)
    return shape.with_hosts(args.hosts) if args.hosts else shape


def describe(stats: ArchiveStats, seconds: float) -> None:
    busiest, refs = stats.per_host.most_common(1)[0] if stats.per_host else ("", 0)
    print(
        f"archive: {stats.posts} posts, {stats.references} references, {stats.distinct_urls} "
        f"distinct URLs, {stats.pictures} pictures, {len(stats.per_host)} hosts; busiest "
        f"{busiest} with {refs} references; written in {seconds:.1f} s",
        flush=True,
    )


@contextlib.contextmanager
def work_folder(parent: Path | None, keep: bool) -> Iterator[Path]:
    """A fresh folder for posts and caches, removed at the end unless `keep`."""
    if not keep:
        with tempfile.TemporaryDirectory(prefix="mediatool-simulate-", dir=parent) as name:
            yield Path(name)
        return
    work = Path(tempfile.mkdtemp(prefix="mediatool-simulate-", dir=parent))
    print(f"caches kept in {work}", flush=True)
    yield work


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--mode", action="append", help="one, local:N or shards:N (repeatable)")
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "real")
    parser.add_argument("--hosts", type=int, default=0, help="number of hosts (default: fitted)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0, help="fetch --workers (default: its own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="where posts and caches go")
    parser.add_argument(
        "--archive",
        type=Path,
        default=None,
        help="keep the posts in this folder and reuse them when it exists (same --posts)",
    )
    parser.add_argument(
        "--time-budget", type=float, default=0, help="fetch --time-budget (0: none)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the caches in --dir (printed) to look into"
    )
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        help="write each process's resident set and its peak within the second to TRACE.<mode>",
    )
    args = parser.parse_args()
    shape = shape_of(args)
    with work_folder(args.dir, args.keep) as work:
        posts = args.archive or work / "posts"
        if not posts.is_dir():
            started = time.perf_counter()
            stats = write_archive(shape, posts)
            describe(stats, time.perf_counter() - started)
        origin = OriginServer(
            latency=args.latency_ms / 1000, ca_path=work / "ca.pem", generated=True, record=False
        )
        with origin:
            env = {**os.environ, "HTTP_PROXY": origin.proxy_url, "HTTPS_PROXY": origin.proxy_url}
            env.update(SSL_CERT_FILE=str(origin.ca_path), NO_PROXY="", PYTHONPATH=str(REPO))
            print(HEADER, flush=True)
            for mode in args.mode or ["one"]:
                print(
                    show(run_mode(mode, posts, work, args, origin, env), args.per_host),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
