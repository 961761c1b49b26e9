"""mediatool's analysis beside the analysis floor, and what each thumbnail encoding costs.

    .venv/bin/python bench/bench_analysis_floor.py [--images N] [--cache DIR] [--floor SCRIPT]

Builds (or, with --cache DIR holding `originals/`, takes) a cache of N real originals: the
photos of tests/data/images, ../shared/images and examples/archive/origin, each written again
at a few sizes (400..2400 px wide) as JPEG q70..q92 and as PNG, until there are N. Then, in
one run on the same originals and cores:
  1. mediatool's analysis, the code path fetch uses: Analyses (pipeline/analyzing.py) feeding
     imaging.analyze (one decode, hashes, thumbs.make_thumbnails) to the process pool, with
     the default settings and with the WebP method given by --slow-method;
  2. ../shared/bench/analysis_floor.py on the cache that analysis filled (same thumbnail
     sizes and format, the encoder's fastest setting);
and prints both wall times and their ratio. Last, on one core, the bytes and milliseconds
per 640-px and 320-px thumbnail of each candidate encoding (WebP method 0..6 at the
configured quality, JPEG, AVIF when this Pillow has it), from the decoded originals.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image, features

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.config import ImageSettings, Settings
from mediatool.imaging import decode
from mediatool.manifest import Manifest
from mediatool.models import AnalyzeJob
from mediatool.pipeline.analyzing import Analyses
from mediatool.pipeline.common import cpu_pool
from mediatool.store import Store

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the repository (a worktree may sit one folder deeper)
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "bench").is_dir()), ROOT)
SOURCES = [ROOT / "tests" / "data" / "images", SHARED / "images"]
SOURCES.append(ROOT / "examples" / "archive" / "origin")
FLOOR = SHARED / "bench" / "analysis_floor.py"
WIDTHS = (2400, 1600, 1200, 800, 400)
QUALITIES = (92, 85, 78, 70)
THUMB_WIDTHS = (640, 320)  # the encoding table's columns


def source_photos() -> list[Image.Image]:
    """Every decodable raster image of the source folders, as RGB, at least 256 px wide."""
    photos = []
    for folder in SOURCES:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                with Image.open(path) as image:
                    rgb = image.convert("RGB")
            except (OSError, ValueError, SyntaxError):
                continue
            if rgb.width >= 256 and rgb.height >= 64:
                photos.append(rgb)
    return photos


def variants(photos: list[Image.Image], count: int) -> list[tuple[bytes, str]]:
    """`count` distinct encoded originals (bytes, extension) made from the photos."""
    out: list[tuple[bytes, str]] = []
    round_ = 0
    while len(out) < count:
        for index, photo in enumerate(photos):
            width = WIDTHS[(index + round_) % len(WIDTHS)]
            size = (width, max(1, round(photo.height * width / photo.width)))
            resized = photo.resize(size, Image.Resampling.BICUBIC)
            buffer = io.BytesIO()
            if (index + round_) % 7 == 3:
                resized.save(buffer, "PNG")
                out.append((buffer.getvalue(), "png"))
            else:
                quality = QUALITIES[(index + round_) % len(QUALITIES)] - round_ // len(WIDTHS)
                resized.save(buffer, "JPEG", quality=max(40, quality))
                out.append((buffer.getvalue(), "jpg"))
            if len(out) == count:
                break
        round_ += 1
    return out


def build_cache(folder: Path, count: int) -> Store:
    store = Store(folder)
    store.root.mkdir(parents=True, exist_ok=True)
    with Manifest.open(store.manifest_path) as manifest, manifest.transaction():
        for data, ext in variants(source_photos(), count):
            sha = hashlib.sha256(data).hexdigest()
            relpath = f"originals/{sha[:2]}/{sha[2:4]}/{sha}.{ext}"
            target = store.root / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            manifest.add_original(sha, relpath, len(data))
    return store


def run_analysis(store: Store, settings: Settings) -> tuple[float, int]:
    """Wall seconds of mediatool's analysis of every original (thumbnails rewritten), and how
    many thumbnails it made."""
    with Manifest.open(store.manifest_path) as manifest:
        shas = [sha for sha, _ in manifest.unanalyzed_images()] or manifest.usable_images()
        started = time.perf_counter()
        with cpu_pool(settings.workers) as pool:
            analyses = Analyses(pool, manifest, store, settings, print, rewrite_thumbnails=True)
            for sha in shas:
                analyses.add(sha)
                analyses.collect(block=False)
            analyses.collect(block=True)
        return time.perf_counter() - started, len(analyses.thumbnails_made)


def run_floor(store: Store, script: Path, workers: int) -> dict[str, float]:
    command = [sys.executable, str(script), str(store.root), "--workers", str(workers)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def encodings(quality: int) -> dict[str, tuple[str, dict[str, object]]]:
    table: dict[str, tuple[str, dict[str, object]]] = {
        f"webp m{m} q{quality}": ("WEBP", {"quality": quality, "method": m}) for m in range(7)
    }
    table[f"jpeg q{quality}"] = ("JPEG", {"quality": quality})
    table[f"jpeg q{quality} optimize"] = ("JPEG", {"quality": quality, "optimize": True})
    if features.check("avif"):
        for speed in (8, 6):
            table[f"avif q{quality} speed {speed}"] = ("AVIF", {"quality": quality, "speed": speed})
    return table


def encoding_rows(
    store: Store, settings: ImageSettings, sample: int, names: tuple[str, ...] | None = None
) -> list[dict[str, object]]:
    """Mean ms and bytes per 640-px and 320-px thumbnail of each encoding (those in `names`,
    default all), on one core, from up to `sample` decoded originals of the store."""
    paths = sorted(store.root.glob("originals/*/*/*"))[:sample]
    decoded = [decode(AnalyzeJob("0" * 64, p, store.root), settings).image for p in paths]
    rows: list[dict[str, object]] = []
    for name, (fmt, options) in encodings(settings.thumb_quality).items():
        if names is not None and name not in names:
            continue
        row: dict[str, object] = {"encoding": name}
        for width in THUMB_WIDTHS:
            spent, sizes = [], []
            for image in decoded:
                if image.width <= width:
                    continue
                small = image.resize(
                    (width, max(1, round(image.height * width / image.width))),
                    Image.Resampling.LANCZOS,
                    reducing_gap=3.0,
                ).convert("RGB")
                buffer = io.BytesIO()
                started = time.perf_counter()
                small.save(buffer, fmt, **options)
                spent.append((time.perf_counter() - started) * 1000)
                sizes.append(len(buffer.getvalue()))
            row[f"ms_{width}"] = round(statistics.mean(spent), 2) if spent else None
            row[f"bytes_{width}"] = round(statistics.mean(sizes)) if sizes else None
        rows.append(row)
    return rows


def print_encoding_rows(rows: list[dict[str, object]], sample: int) -> None:
    print(f"\n== one thumbnail, one core (up to {sample} originals) ==")
    print(f"   {'encoding':<26} {'640 px: ms':>10} {'bytes':>8} | {'320 px: ms':>10} {'bytes':>8}")
    for row in rows:
        cells = [f"{row[f'ms_{w}'] or 0:>10.2f} {row[f'bytes_{w}'] or 0:>8}" for w in THUMB_WIDTHS]
        print(f"   {row['encoding']!s:<26} {cells[0]} | {cells[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="originals to build")
    parser.add_argument("--cache", type=Path, help="reuse (or build) the cache in this folder")
    parser.add_argument("--floor", type=Path, default=FLOOR)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--slow-method", type=int, default=4, help="WebP method to compare")
    parser.add_argument("--sample", type=int, default=40, help="originals in the encoding table")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if not args.floor.is_file():
        parser.exit(2, f"{args.floor}: no such file; pass --floor PATH/analysis_floor.py\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cache or Path(tmp) / "cache"
        store = Store(folder)
        if not store.manifest_path.is_file():
            started = time.perf_counter()
            build_cache(folder, args.images)
            if not args.json:
                print(f"built {args.images} originals in {time.perf_counter() - started:.1f} s")
        settings = Settings(cache_dir=folder, workers=args.workers)
        slow = replace(settings, images=replace(settings.images, thumb_method=args.slow_method))
        wall, thumbs = run_analysis(store, settings)
        floor = run_floor(store, args.floor, args.workers)
        slow_wall, _ = run_analysis(store, slow)
        run_analysis(store, settings)  # leave the default thumbnails in the cache
        rows = encoding_rows(store, settings.images, args.sample)
    result = {
        "bench": "bench_analysis_floor",
        "images": int(floor["images"]),
        "thumbnails": thumbs,
        "workers": args.workers,
        "floor_s": floor["wall_s"],
        "default_method": settings.images.thumb_method,
        "default_s": round(wall, 3),
        "slow_method": args.slow_method,
        "slow_s": round(slow_wall, 3),
        "encoding_sample": args.sample,
        "encodings": rows,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print_analysis(result)


def print_analysis(result: dict[str, Any]) -> None:
    images, workers = result["images"], result["workers"]
    print(
        f"\n== analysis of {images} originals, {result['thumbnails']} thumbnails, "
        f"{workers} workers =="
    )
    floor = result["floor_s"]
    print(f"   floor (analysis_floor.py)     {floor:7.2f} s")
    for label, spent in (
        (f"default, WebP m{result['default_method']}", result["default_s"]),
        (f"WebP m{result['slow_method']}", result["slow_s"]),
    ):
        print(
            f"   mediatool, {label:<18} {spent:7.2f} s  {spent / floor:5.2f}x floor  "
            f"{spent / images * 1000 * workers:6.1f} ms per image per core"
        )
    print_encoding_rows(result["encodings"], result["encoding_sample"])


if __name__ == "__main__":
    main()
