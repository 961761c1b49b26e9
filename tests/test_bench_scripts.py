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
