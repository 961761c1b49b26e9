"""Run the benches (or read their saved output) and write the table in docs/benchmarks.md.

    .venv/bin/python bench/table.py [--quick] [--only NAME ...] [--save DIR] [--from DIR]
        [--docs docs/benchmarks.md] [--print]

Each bench runs as a subprocess, at the size given below (`--quick`: smaller, for a check that
the table still builds). A bench with a `--json` option is read from its JSON; the others
(bench_group, bench_phash_threshold, corpus_run print text) from the lines of their output
that carry the headline figures. `--save DIR` keeps each bench's output in DIR/<name>.out;
`--from DIR` reads those files instead of running the benches. The table replaces what lies
between `<!-- bench:begin -->` and `<!-- bench:end -->` in the docs file (with `--print`, it is
printed instead).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# ../shared beside the repository (a worktree may sit one folder deeper): "{shared}" in a
# bench's arguments
SHARED = next((p / "shared" for p in REPO.parents if (p / "shared" / "images").is_dir()), REPO)


@dataclass(frozen=True)
class Bench:
    """One bench: its script, arguments (full and quick), what it measures, and how its output
    becomes the table's result cell."""

    name: str
    script: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    what: str
    result: Callable[[str], str]


def _json(out: str) -> Any:
    """The last JSON object the bench printed (JSON may span lines: take from the first `{`)."""
    return json.loads(out[out.index("{") :])


def _lines(*patterns: str) -> Callable[[str], str]:
    """The output lines matching any of the patterns, stripped and joined with `; `."""

    def pick(out: str) -> str:
        found = [
            " ".join(line.split()).rstrip(":")
            for line in out.splitlines()
            if any(re.search(p, line) for p in patterns)
        ]
        return "; ".join(found) or "(no figures found in the output)"

    return pick


def fetch_floor_result(out: str) -> str:
    r = _json(out)

    def cell(key: str, unit: str = " s") -> str:
        s = r[key]
        return f"{s['median']:.2f}{unit} ({s['min']:.2f}–{s['max']:.2f})"

    encodings = ", ".join(
        f"{e['encoding']} {e['bytes_640'] / 1000:.0f} KB/{e['ms_640']:.0f} ms"
        for e in r["encodings"]
        if e["bytes_640"]
    )
    return (
        f"{r['posts']} posts, {r['urls']} URLs ({r['megabytes']} MB), {r['latency_ms']:g} ms "
        f"latency, {len(r['rounds'])} rounds, median (range): network floor "
        f"{cell('network_floor_s')}, analysis floor {cell('analysis_floor_s')}, "
        f"mediatool fetch {cell('fetch_s')}, **{cell('ratio', 'x')} max(floors)**; "
        f"640-px thumbnail: {encodings}"
    )


def analysis_floor_result(out: str) -> str:
    r = _json(out)
    floor = r["floor_s"]
    return (
        f"{r['images']} originals, {r['thumbnails']} thumbnails: floor {floor:.2f} s, mediatool "
        f"(WebP m{r['default_method']}) {r['default_s']:.2f} s ({r['default_s'] / floor:.2f}x), "
        f"WebP m{r['slow_method']} {r['slow_s']:.2f} s ({r['slow_s'] / floor:.2f}x)"
    )


def recall_result(out: str) -> str:
    r = _json(out)
    return ", ".join(
        f"{key.replace('_', ' ')} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
        for key, value in r.items()
        if not isinstance(value, (dict, list))
    )


BENCHES = (
    Bench(
        "bench_fetch_floor",
        "bench_fetch_floor.py",
        ("--json",),
        ("--json", "--posts", "20", "--images", "60", "--repeat", "1", "--sample", "4"),
        "whole `mediatool fetch` beside the network floor (bare httpx threads) and the "
        "analysis floor (`../shared/bench/analysis_floor.py`)",
        fetch_floor_result,
    ),
    Bench(
        "bench_analysis_floor",
        "bench_analysis_floor.py",
        ("--json", "--images", "100", "--sample", "10"),
        ("--json", "--images", "30", "--sample", "4"),
        "mediatool's analysis (process pool) beside the analysis floor, WebP m0 and m4",
        analysis_floor_result,
    ),
    Bench(
        "bench_phash_threshold",
        "bench_phash_threshold.py",
        ("--images", "{shared}/images"),
        ("--images", "{shared}/images"),
        "grouping precision/recall on planted re-encodings and crops of the shared photos",
        _lines(r"^   \S.*\([0-9.]+ s\):$", r"(recall|precision)\s+[0-9.]+$", r"merged with their"),
    ),
    Bench(
        "bench_group",
        "bench_group.py",
        ("-n", "100000", "-t", "10", "--clusters", "2000"),
        ("-n", "5000", "-t", "10", "--clusters", "100"),
        "group synthetic phashes with planted near-duplicate clusters",
        _lines(r"^group_images:", r"planted", r"clusters"),
    ),
    Bench(
        "corpus_run",
        "corpus_run.py",
        (),
        (),
        "fetch + rewrite over the 51 real posts of `../shared/corpus/real`, local origin",
        _lines(
            r"^(references|distinct_urls|downloaded|images_analyzed|groups)\s", r"fetch|rewrite"
        ),
    ),
    Bench(
        "generator_recall",
        "generator_recall.py",
        ("--json",),
        ("--json",),
        "references found in real generator posts (`tests/data/generators`)",
        recall_result,
    ),
)


def run_bench(bench: Bench, quick: bool) -> str:
    """The bench's stdout; a failed run is one line in its cell, the table still builds."""
    args = [arg.replace("{shared}", str(SHARED)) for arg in (bench.quick if quick else bench.args)]
    command = [sys.executable, str(HERE / bench.script), *args]
    print(f"running {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    print(f"  {time.perf_counter() - started:.1f} s, exit {done.returncode}", file=sys.stderr)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchFailed(f"exit {done.returncode}: {last}")
    return done.stdout


class BenchFailed(Exception):
    pass


def row(bench: Bench, quick: bool, source: Path | None, save: Path | None) -> str:
    args = bench.quick if quick else bench.args
    shown = " ".join(args).replace("{shared}", "../shared")
    command = f"`.venv/bin/python bench/{bench.script} {shown}`".replace(" `", "`")
    try:
        if source is not None:
            out = (source / f"{bench.name}.out").read_text(encoding="utf-8")
        else:
            out = run_bench(bench, quick)
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            (save / f"{bench.name}.out").write_text(out, encoding="utf-8")
        result = bench.result(out)
    except (BenchFailed, OSError, ValueError, KeyError) as exc:
        result = f"not measured ({exc})"
    return f"| {command} | {bench.what} | {result.replace('|', '/')} |"


def table(benches: list[Bench], quick: bool, source: Path | None, save: Path | None) -> str:
    when = time.strftime("%Y-%m-%d", time.gmtime())
    lines = [
        f"Generated by `.venv/bin/python bench/table.py{' --quick' if quick else ''}` on {when} "
        "(2 shared cores: timings are noisy, ratios come from side-by-side runs).",
        "",
        "| command | what | result |",
        "|---|---|---|",
    ]
    lines += [row(bench, quick, source, save) for bench in benches]
    return "\n".join(lines)


def write_between_markers(docs: Path, text: str) -> None:
    """Replace what lies between the markers (they stay) with `text`; temp file, then rename."""
    content = docs.read_text(encoding="utf-8")
    start, end = content.find(BEGIN), content.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{docs}: no {BEGIN} ... {END} markers; add them where the table goes")
    updated = content[: start + len(BEGIN)] + "\n" + text + "\n" + content[end:]
    temp = docs.with_name(f".{docs.name}.tmp")
    temp.write_text(updated, encoding="utf-8")
    temp.replace(docs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a check, not figures")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES], help="these only")
    parser.add_argument("--save", type=Path, help="keep each bench's output in DIR/<name>.out")
    parser.add_argument("--from", dest="source", type=Path, help="read DIR/<name>.out instead")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the file with the markers")
    parser.add_argument("--print", action="store_true", help="print the table, write nothing")
    args = parser.parse_args()
    benches = [b for b in BENCHES if not args.only or b.name in args.only]
    text = table(benches, args.quick, args.source, args.save)
    if args.print:
        print(text)
    else:
        write_between_markers(args.docs, text)
        print(f"{args.docs}: table of {len(benches)} benches written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
