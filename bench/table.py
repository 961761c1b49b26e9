"""Run the benches (or read their saved output) and write the tables in docs/benchmarks.md
and README.md.

    .venv/bin/python bench/table.py [--quick] [--only NAME ...] [--save DIR] [--from DIR]
        [--docs docs/benchmarks.md] [--readme README.md] [--print]

Each bench runs as a subprocess, at the size given below (`--quick`: smaller, for a check that
the table still builds). A bench with a `--json` option is read from its JSON; the others
(bench_group, bench_phash_threshold, corpus_run print text) from the lines of their output
that carry the headline figures. `--save DIR` keeps each bench's output in DIR/<name>.out;
`--from DIR` reads those files instead of running the benches. The table replaces what lies
between `<!-- bench:begin -->` and `<!-- bench:end -->` in the docs file, and a short one, the
headline figure of each bench, what lies between `<!-- bench:readme:begin -->` and
`<!-- bench:readme:end -->` in the README (with `--print`, both are printed instead).
`bench/simulate.py` at 100,000 posts takes hours here: it runs only when named with `--only`;
otherwise its row is read from `--from DIR` (simulate.out) or left out.
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
README = REPO / "README.md"
sys.path.insert(0, str(REPO))
from mediatool.config import DEFAULT_THUMB_FORMAT, DEFAULT_THUMB_METHOD  # noqa: E402

DEFAULT_ENCODING = (
    f"{DEFAULT_THUMB_FORMAT} m{DEFAULT_THUMB_METHOD} "  # as bench_fetch_floor names it
)
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
README_MARKERS = ("<!-- bench:readme:begin -->", "<!-- bench:readme:end -->")
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
    # the README's rows: (what, in a few words; its figure in one short cell)
    readme: tuple[tuple[str, Callable[[str], str]], ...] = ()
    slow: bool = False  # run only when named (--only); else read from --from DIR or left out


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


def fetch_floor_headline(out: str) -> str:
    r = _json(out)
    ratio = r["ratio"]
    return (
        f"**{ratio['median']:.2f}x** the slower floor ({r['posts']} posts, {r['urls']} images, "
        f"{r['latency_ms']:g} ms a request: network {r['network_floor_s']['median']:.2f} s, "
        f"analysis {r['analysis_floor_s']['median']:.2f} s, fetch {r['fetch_s']['median']:.2f} s)"
    )


def encodings_headline(out: str) -> str:
    r = _json(out)
    return "; ".join(
        f"{e['encoding']}{' (default)' if e['encoding'].startswith(DEFAULT_ENCODING) else ''} "
        f"{e['bytes_640'] / 1000:.1f} KB in {e['ms_640']:.1f} ms"
        for e in r["encodings"]
        if e["bytes_640"]
    )


def confusion_headline(out: str) -> str:
    """The wide band's confusion table in one cell: copies merged with their original,
    different-picture pairs merged/kept apart, same-picture pairs merged/missed."""
    start = out.find("with the wide band (")  # the band's confusion table, not later sections
    band = out[start:] if start >= 0 else out
    copies = re.search(r"merged with their original: (\d+)/(\d+)", band)
    pairs = re.search(
        r"same picture (\d+) \(merged (\d+), kept apart (\d+), recall ([0-9.]+)\); "
        r"different pictures (\d+) \(false merges (\d+), precision ([0-9.]+)\)",
        band,
    )
    if not (copies and pairs):
        return "(no confusion table in the output)"
    return (
        f"copies merged with their original **{copies[1]}/{copies[2]}**; different-picture "
        f"pairs merged {pairs[6]} of {int(pairs[5]):,} (precision **{pairs[7]}**); "
        f"same-picture pairs merged {pairs[2]}, kept apart {pairs[3]} (pair recall {pairs[4]})"
    )


def rerun_headline(out: str) -> str:
    found = re.search(r"re-run / first run\s+([0-9.]+) % \(best\)", out)
    posts = re.search(r"^posts\s+(\d+)", out, re.M)
    first = re.search(r"^fetch\s+([0-9.]+) s wall", out, re.M)
    if not (found and posts and first):
        return "(no re-run figures in the output)"
    return f"**{found[1]} %** of the first fetch ({int(posts[1]):,} posts, first {first[1]} s)"


def group_new_headline(out: str) -> str:
    found = re.search(r"group_new_images: ([0-9.]+) s", out)
    sizes = re.search(r"n=([0-9,]+) stored.*?, ([0-9,]+) new", out)
    if not found:
        return _lines(r"group_new_images|new=")(out)
    where = f"{sizes[2]} new onto {sizes[1]} grouped" if sizes else "new onto grouped"
    return f"{where}: **{found[1]} s**"


def simulate_headline(out: str) -> str:
    """One part per mode: wall, peak driver RSS, failures, peak requests on one host."""
    archive = re.search(r"archive: (\d+) posts, \d+ references, (\d+) distinct URLs", out)
    parts = []
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 8 and re.fullmatch(r"(one|local:\d+|shards:\d+)", cells[0]):
            try:
                wall, rss = float(cells[1]), float(cells[3])
            except ValueError:
                continue
            parts.append(
                f"{cells[0]} {wall / 60:.0f} min, driver **{rss:.0f} MB**, {cells[6]} failed, "
                f"{cells[7]} per host"
            )
    if not parts:
        return "(no rows in the output)"
    head = f"{int(archive[1]):,} posts, {int(archive[2]):,} URLs: " if archive else ""
    return head + "; ".join(parts)


def recall_headline(out: str) -> str:
    r = _json(out)
    return (
        f"recall **{r['recall']:.3f}**, precision **{r['precision']:.3f}** "
        f"({r['expected']} references read by hand)"
    )


def simulate_result(out: str) -> str:
    return "; ".join(
        " ".join(line.split())
        for line in out.splitlines()
        if line.startswith(("archive:", "one ", "local:", "shards:"))
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
        (
            ("whole fetch against its floors", fetch_floor_headline),
            ("one 640-px thumbnail by encoding", encodings_headline),
        ),
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
        _lines(r"^   \S.*\([0-9.]+ s\):$", r"all pairs:", r"merged with their"),
        (("near-duplicates (crops 1-5 %/side, rescaled, re-encoded)", confusion_headline),),
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
        "bench_group_new",
        "bench_group.py",
        ("-t", "10", "--new", "10000"),
        ("-n", "5000", "-t", "10", "--clusters", "100", "--new", "500"),
        "incremental grouping: new images grouped onto an index of stored ones",
        _lines(r"group_new_images|stored columns|planted"),
        (("grouping a fetch's new images", group_new_headline),),
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
        "corpus_rerun",
        "corpus_run.py",
        ("--copies", "200"),
        ("--copies", "2", "--reruns", "1"),
        "the same 51 real posts 200 times (10,200 posts): first fetch, then unchanged re-runs",
        _lines(r"^posts\s", r"^fetch\s", r"unchanged re-runs", r"re-run / first run"),
        (("unchanged re-run", rerun_headline),),
    ),
    Bench(
        "generator_recall",
        "generator_recall.py",
        ("--json",),
        ("--json",),
        "references found in real generator posts (`tests/data/generators`)",
        recall_result,
        (("references found in real Hexo, Hugo, Jekyll, WordPress posts", recall_headline),),
    ),
    Bench(
        "simulate",
        "simulate.py",
        ("--posts", "100000", "--mode", "one", "--mode", "local:2", "--mode", "shards:4"),
        ("--posts", "200", "--corpus", "none", "--latency-ms", "0", "--mode", "one"),
        "a synthetic archive shaped like the real corpus (Zipf hosts, proxies, repeats, "
        "near-duplicate variants) fetched by one process, on a Dask LocalCluster of 2 workers, "
        "and as 4 shards + merge + dedup; 20 ms a request, 4 per host",
        simulate_result,
        (("a 100,000-post archive (driver memory)", simulate_headline),),
        slow=True,
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


def output_of(bench: Bench, quick: bool, source: Path | None, save: Path | None) -> str | None:
    """The bench's output: run (or read from `source`), kept in `save`. None for a slow bench
    that was neither named nor saved."""
    if source is not None:
        saved = source / f"{bench.name}.out"
        if bench.slow and not saved.is_file():
            return None
        out = saved.read_text(encoding="utf-8")
    else:
        out = run_bench(bench, quick)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        (save / f"{bench.name}.out").write_text(out, encoding="utf-8")
    return out


def command_of(bench: Bench, quick: bool) -> str:
    args = bench.quick if quick else bench.args
    shown = " ".join(args).replace("{shared}", "../shared")
    return f"`.venv/bin/python bench/{bench.script} {shown}`".replace(" `", "`")


def cell(text: str) -> str:
    return text.replace("|", "/")


def tables(
    benches: list[Bench], quick: bool, source: Path | None, save: Path | None
) -> tuple[str, str]:
    """(the docs table, the README table) of these benches."""
    when = time.strftime("%Y-%m-%d", time.gmtime())
    generated = (
        f"Generated by `.venv/bin/python bench/table.py{' --quick' if quick else ''}` on {when} "
        "(2 shared cores: timings are noisy, ratios come from side-by-side runs)."
    )
    docs = [generated, "", "| command | what | result |", "|---|---|---|"]
    readme = [generated, "", "| what | measured | bench |", "|---|---|---|"]
    for bench in benches:
        try:
            out = output_of(bench, quick, source, save)
            if out is None:
                continue
            result = bench.result(out)
            headlines = [(label, figure(out)) for label, figure in bench.readme]
        except (BenchFailed, OSError, ValueError, KeyError) as exc:
            result = f"not measured ({exc})"
            headlines = [(label, result) for label, _ in bench.readme]
        command = command_of(bench, quick)
        docs.append(f"| {command} | {bench.what} | {cell(result)} |")
        readme += [f"| {label} | {cell(figure)} | {command} |" for label, figure in headlines]
    return "\n".join(docs), "\n".join(readme)


def write_between_markers(docs: Path, text: str, markers: tuple[str, str] = (BEGIN, END)) -> None:
    """Replace what lies between the markers (they stay) with `text`; temp file, then rename."""
    begin, end_marker = markers
    content = docs.read_text(encoding="utf-8")
    start, end = content.find(begin), content.find(end_marker)
    if start < 0 or end < start:
        raise SystemExit(
            f"{docs}: no {begin} ... {end_marker} markers; add them where the table goes"
        )
    updated = content[: start + len(begin)] + "\n" + text + "\n" + content[end:]
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
    parser.add_argument("--readme", type=Path, default=README, help="the README with its markers")
    parser.add_argument("--print", action="store_true", help="print the tables, write nothing")
    args = parser.parse_args()
    benches = [
        b
        for b in BENCHES
        if (b.name in args.only if args.only else not b.slow or args.source is not None)
    ]
    docs, readme = tables(benches, args.quick, args.source, args.save)
    if args.print:
        print(docs, readme, sep="\n\n")
        return 0
    write_between_markers(args.docs, docs)
    print(f"{args.docs}: table of {len(benches)} benches written")
    if args.only:  # the README's table holds every bench: written from a whole run only
        return 0
    write_between_markers(args.readme, readme, README_MARKERS)
    print(f"{args.readme}: table written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
