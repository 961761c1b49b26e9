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
