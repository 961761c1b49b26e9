"""The benches that need ../shared say so in one line when it is missing (no traceback);
corpus_run.py runs on a tiny archive."""

from __future__ import annotations

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
