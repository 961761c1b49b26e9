"""The benches that need ../shared say so in one line when it is missing (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
