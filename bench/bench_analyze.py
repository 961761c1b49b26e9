"""Hash and thumbnail throughput: images per second per core, and across all cores.

    .venv/bin/python bench/bench_analyze.py [--images /work/shared/images] [--seconds 3]

From the shared photos it writes three kinds of stored originals, the sizes archives carry:
  phone:  4032x3024 JPEG q90 (each photo upscaled), the worst case for decoding;
  post:   1266x708 JPEG q85, the size the corpus' `data-size` attributes declare most;
  png:    the shared PNGs as they are (no reduced decoding for PNG).
For each kind it prints:
  - phash alone, full decode vs JPEG draft (ms per image, one core);
  - analyze (one decode: phash + dhash + flatness + 320/640 WebP thumbnails), ms per image
    and images/s on one core;
  - analyze in the process pool mediatool fetch uses, with every core, images/s and speed-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.config import ImageSettings
from mediatool.dedup import phash_of
from mediatool.imaging import analyze, decode
from mediatool.models import AnalyzeJob
from mediatool.pipeline.common import cpu_pool

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "images"
KINDS = {"phone": ((4032, 3024), 90), "post": ((1266, 708), 85)}


def make_originals(images: Path, out: Path) -> dict[str, list[Path]]:
    """kind -> original files written under `out`."""
    photos = sorted(p for p in images.iterdir() if p.suffix in (".png", ".jpg"))
    originals: dict[str, list[Path]] = {kind: [] for kind in (*KINDS, "png")}
    for photo in photos:
        with Image.open(photo) as source:
            rgb = source.convert("RGB")
            for kind, (size, quality) in KINDS.items():
                path = out / f"{photo.stem}-{kind}.jpg"
                rgb.resize(size, Image.Resampling.BICUBIC).save(path, "JPEG", quality=quality)
                originals[kind].append(path)
        if photo.suffix == ".png":
            originals["png"].append(photo)
    return originals


def jobs_for(paths: list[Path], cache: Path) -> list[AnalyzeJob]:
    return [AnalyzeJob(sha256=f"{i:064x}", path=p, cache_root=cache) for i, p in enumerate(paths)]


def per_image_ms(work: Callable[[], object], count: int, seconds: float) -> float:
    """Median ms per image over rounds of `work` (which handles `count` images)."""
    rounds: list[float] = []
    deadline = time.perf_counter() + seconds
    while not rounds or time.perf_counter() < deadline:
        start = time.perf_counter()
        work()
        rounds.append((time.perf_counter() - start) * 1000 / count)
    return statistics.median(rounds)


def phash_full(paths: list[Path]) -> None:
    for path in paths:
        with Image.open(path) as image:
            phash_of(image.convert("RGB"))


def phash_draft(jobs: list[AnalyzeJob], settings: ImageSettings) -> None:
    for job in jobs:
        phash_of(decode(job, settings).image)


def analyze_all(jobs: list[AnalyzeJob], settings: ImageSettings) -> None:
    for job in jobs:
        analyze(job, settings)


def pool_rate(
    jobs: list[AnalyzeJob], settings: ImageSettings, workers: int, seconds: float
) -> float:
    """Images per second through the fetch pipeline's process pool (warm workers)."""
    with cpu_pool(workers) as pool:
        list(pool.map(analyze, jobs, [settings] * len(jobs)))  # start and warm the workers
        done = 0
        start = time.perf_counter()
        while done == 0 or time.perf_counter() - start < seconds:
            list(pool.map(analyze, jobs, [settings] * len(jobs), chunksize=1))
            done += len(jobs)
        return done / (time.perf_counter() - start)


def measure_kind(
    kind: str,
    paths: list[Path],
    jobs: list[AnalyzeJob],
    settings: ImageSettings,
    cores: int,
    seconds: float,
) -> str:
    """One table row: phash full vs draft, analyze on one core and on every core."""
    full = per_image_ms(lambda: phash_full(paths), len(paths), seconds)
    draft = per_image_ms(lambda: phash_draft(jobs, settings), len(jobs), seconds)
    one = per_image_ms(lambda: analyze_all(jobs, settings), len(jobs), seconds)
    many = pool_rate(jobs, settings, cores, seconds)
    return (
        f"{kind:6} {len(paths):3d} {full:8.1f} ms {draft:9.1f} ms {one:6.1f} ms "
        f"{1000 / one:7.1f}/s {many:8.1f}/s {many * one / 1000:8.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    if not args.images.is_dir():
        parser.exit(
            2,
            f"{args.images}: no such folder; this bench needs the shared photos: "
            "../shared/images beside the repository, or --images DIR\n",
        )
    cores = os.cpu_count() or 1
    settings = ImageSettings()  # thumbnails 320 and 640, WebP q80
    print(f"cores {cores}; thumbnails {settings.thumb_widths} {settings.thumb_format}")
    header = f"{'kind':6} {'n':>3} {'phash full':>11} {'phash draft':>12} {'analyze':>9} "
    header += f"{'1 core':>9} {f'{cores} cores':>10} {'speed-up':>9}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        originals = make_originals(args.images, Path(tmp))
        for kind, paths in originals.items():
            jobs = jobs_for(paths, Path(tmp) / f"cache-{kind}")
            print(measure_kind(kind, paths, jobs, settings, cores, args.seconds))
    print("ms columns: per image on one core; /s columns: analyze throughput (hash + thumbnails)")


if __name__ == "__main__":
    main()
