"""The benches that need ../shared say so in one line when it is missing (no traceback)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "flag"),
    [
        ("bench_analyze.py", "--images"),
        ("bench_phash_threshold.py", "--images"),
        ("corpus_run.py", "--corpus"),
    ],
)
def test_a_missing_shared_folder_is_one_line_and_exit_2(
    tmp_path: Path, script: str, flag: str
) -> None:
    missing = tmp_path / "absent"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), flag, str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert str(missing) in done.stderr and "no such folder" in done.stderr


def test_bench_offline_runs_in_a_tiny_mode() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_offline.py"), "--urls", "12", "--hosts", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "12 URLs on 4 refusing hosts" in done.stdout and "offline=True" in done.stdout


@pytest.mark.parametrize("extra", [[], ["--new", "300"]])
def test_bench_group_runs_tiny_and_finds_the_planted_groups(extra: list[str]) -> None:
    tiny = ["-n", "3000", "-t", "10", "--clusters", "60"]
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_group.py"), *tiny, *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=True,
    )
    if extra:
        assert "differences from the full pass over the planted and new images: 0 " in done.stdout
        assert "random stored images touched: 0" in done.stdout
    else:
        assert "groups: 60 (planted 60)" in done.stdout


STAND_IN_FLOOR = """
import json, pathlib, sys, time
from PIL import Image
started, made = time.perf_counter(), 0
for path in sorted(pathlib.Path(sys.argv[1]).rglob("originals/*/*/*")):
    with Image.open(path) as image:
        image.draft("RGB", (320, 320))
        image.thumbnail((320, 320))
        made += 1
print(json.dumps({"wall_s": round(time.perf_counter() - started, 3), "thumbnails": made}))
"""


def test_fetch_floor_tiny_run_gives_both_floors_and_the_ratio(tmp_path: Path) -> None:
    tiny = ["--posts", "3", "--images", "8", "--latency-ms", "5", "--repeat", "1", "--sample", "2"]
    script = str(REPO / "bench" / "bench_fetch_floor.py")
    # ../shared/bench/analysis_floor.py need not be beside a CI clone: a stand-in with its
    # interface (CACHE --workers N, a JSON last line with wall_s) that decodes every original
    floor = tmp_path.parent / f"{tmp_path.name}-floor.py"
    floor.write_text(STAND_IN_FLOOR)
    done = subprocess.run(
        [sys.executable, script, "--json", *tiny, "--dir", str(tmp_path), "--floor", str(floor)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (round_,) = result["rounds"]
    assert result["urls"] == 8 and round_["downloaded"] == 8
    assert round_["images_analyzed"] == 8 and round_["thumbnails"] > 0
    assert round_["max_floor_s"] == max(round_["network_floor_s"], round_["analysis_floor_s"])
    assert round_["ratio"] == pytest.approx(round_["fetch_s"] / round_["max_floor_s"], rel=0.01)
    assert result["ratio"]["median"] == round_["ratio"]
    assert {row["encoding"] for row in result["encodings"]} >= {"webp m0 q80", "jpeg q80"}
    assert list(tmp_path.iterdir()) == []  # the archive and caches are removed


def test_the_table_is_written_between_the_markers_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "benchmarks.md"
    before, after = "# Benchmarks\n\nintro\n\n", "\n\n## Later\n\ntext\n"
    docs.write_text(before + "<!-- bench:begin -->\nold table\n<!-- bench:end -->" + after)
    script = str(REPO / "bench" / "table.py")
    done = subprocess.run(
        [sys.executable, script, "--only", "generator_recall", "--docs", str(docs)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    text = docs.read_text()
    assert text.startswith(before + "<!-- bench:begin -->\n") and text.endswith(
        "<!-- bench:end -->" + after
    )
    assert "old table" not in text
    assert "| `.venv/bin/python bench/generator_recall.py --json` |" in text
    assert re.search(r"\| expected \d+, found \d+, .*recall \d\.\d{3}", text)


def test_the_readme_gets_the_headline_of_each_saved_bench_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "saved"
    saved.mkdir()
    recall = subprocess.run(
        [sys.executable, str(REPO / "bench" / "generator_recall.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=True,
    )
    (saved / "generator_recall.out").write_text(recall.stdout)
    expected = json.loads(recall.stdout[recall.stdout.index("{") :])
    docs, readme = tmp_path / "benchmarks.md", tmp_path / "README.md"
    docs.write_text("<!-- bench:begin -->\n<!-- bench:end -->\n")
    before, after = "# Tool\n\n## Speed\n\n", "\n\n## Next\n"
    readme.write_text(
        before + "<!-- bench:readme:begin -->\nthe old table\n<!-- bench:readme:end -->" + after
    )
    script = str(REPO / "bench" / "table.py")
    done = subprocess.run(
        [
            sys.executable,
            script,
            "--from",
            str(saved),
            "--docs",
            str(docs),
            "--readme",
            str(readme),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert text.startswith(before + "<!-- bench:readme:begin -->\n")
    assert text.endswith("<!-- bench:readme:end -->" + after)
    assert "the old table" not in text
    recall_row = next(line for line in text.splitlines() if "real Hexo" in line)
    assert f"recall **{expected['recall']:.3f}**" in recall_row
    assert f"({expected['expected']} references read by hand)" in recall_row
    assert "not measured" in text  # the benches with no saved output say so
    assert "100,000 posts" not in text  # the slow simulation: left out, not "not measured"


def test_corpus_run_prints_the_rerun_ratio_on_a_tiny_archive(tmp_path: Path) -> None:
    corpus, images = tmp_path / "corpus", tmp_path / "images"
    corpus.mkdir()
    images.mkdir()
    for shade in (30, 220):
        Image.new("RGB", (64, 48), (shade, 120, 255 - shade)).save(images / f"{shade}.png")
    (corpus / "a.md").write_text("![](https://img.example.test/a.jpg)\n")
    (corpus / "b.md").write_text('<img src="https://img.example.test/b.png">\n')
    bench = [sys.executable, str(REPO / "bench" / "corpus_run.py")]
    done = subprocess.run(
        [*bench, "--corpus", str(corpus), "--images", str(images), "--reruns", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "re-run / first run" in done.stdout
    assert "unchanged re-runs" in done.stdout


def test_the_merge_bench_runs_in_a_tiny_mode() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_merge.py"), "-n", "20", "--shards", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "merged again" in done.stdout and "'pending': 0" in done.stdout


def test_the_s3_store_bench_runs_in_a_tiny_mode() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_s3_store.py"), "--n", "4", "--size-kb", "5"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    runs = [(cache, run) for cache in ("folder", "s3") for run in ("first", "re-run", "verify")]
    assert [tuple(row[:2]) for row in rows] == runs
    assert [row[3] for row in rows] == ["4", "0", "-", "4", "0", "-"]


def test_the_distributed_bench_runs_in_a_tiny_mode() -> None:
    tiny = ["--images", "6", "--hosts", "2", "--per-post", "3", "--workers", "1", "--side", "64"]
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_distributed.py"), *tiny],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "local:1" in done.stdout
    assert "same originals and thumbnails: yes" in done.stdout


def test_the_simulation_bench_runs_a_tiny_archive(tmp_path: Path) -> None:
    """bench/simulate.py on 200 posts (built-in shares: CI has no ../shared): every URL is
    fetched, one row per mode, a mode this build lacks says so; --trace writes each process's
    resident set per second, --keep leaves the caches."""
    tiny = ["--posts", "200", "--corpus", "none", "--latency-ms", "0", "--dir", str(tmp_path)]
    modes = ["--mode", "one", "--mode", "local:2", "--mode", "shards:2"]
    looks = ["--trace", str(tmp_path / "trace"), "--keep"]
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "simulate.py"), *tiny, *modes, *looks],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("mode"))
    rows = {line.split()[0]: line.split() for line in lines[header + 1 :]}
    assert set(rows) == {"one", "local:2", "shards:2"}
    archive = next(line for line in lines if " distinct " in line).split()
    distinct = archive[archive.index("distinct") - 1]
    assert rows["one"][5:7] == [distinct, "0"]  # URLs fetched, none failed
    for mode in ("local:2", "shards:2"):
        assert rows[mode][5:7] == [distinct, "0"] or "not available" in " ".join(rows[mode])
    trace = [line.split() for line in (tmp_path / "trace.one").read_text().splitlines()]
    assert trace and all(len(fields) == 4 for fields in trace)  # seconds, pid, MB now, peak
    assert all(float(peak) >= float(mb) > 10 for _, _, mb, peak in trace)
    kept = re.search(r"caches kept in (\S+)", done.stdout + done.stderr)
    assert kept is not None
    assert (Path(kept.group(1)) / "cache-one-1" / "manifest.sqlite").is_file()


SPIKE = """
import pathlib, sys, time
trace, held = pathlib.Path(sys.argv[1]), bytearray(300 * 1024 * 1024)  # every page touched
del held  # gone within a second of being made
def lines():
    return len(trace.read_text().splitlines()) if trace.exists() else 0
start = lines()
while lines() < start + 3:  # three seconds traced after it: the spike's line, then two
    time.sleep(0.05)
"""


def test_the_simulation_trace_shows_a_peak_shorter_than_a_second_on_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process holds 300 MB for a moment, then lives on small: the trace line of that second
    has the peak, the lines after it do not (the watcher resets VmHWM each second), and the
    run's peak keeps it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("simulate", REPO / "bench" / "simulate.py")
    assert spec is not None and spec.loader is not None
    simulate = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "simulate", simulate)  # its dataclasses look it up
    spec.loader.exec_module(simulate)
    trace = tmp_path / "trace"
    watcher = simulate.PeakWatcher(every=0.05, trace=trace)
    child = subprocess.Popen([sys.executable, "-c", SPIKE, str(trace)])
    watcher.watch(child.pid)
    assert child.wait(timeout=120) == 0
    watcher.stop()
    peaks = [float(line.split()[3]) for line in trace.read_text().splitlines()]
    spike = next(i for i, peak in enumerate(peaks) if peak > 300)
    assert peaks[spike + 1 :] and all(peak < 150 for peak in peaks[spike + 1 :])
    assert watcher.peaks[child.pid] > 300 * 1024 * 1024
