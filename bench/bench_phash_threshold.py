"""Which phash threshold separates re-encodings of a picture from different pictures?

    .venv/bin/python bench/bench_phash_threshold.py [--images /work/shared/images]

From every photo in the folder it makes a planted set, analysed by mediatool.imaging.analyze:
  same picture:      the original file, JPEG q95/q75/q50, resized to 50%, PNG, WebP, and a 2%
                     crop (1% off each edge) re-encoded as JPEG q90; crops of 1..5% per side
                     (and one of random 1..5% per side), each rescaled to 80% and JPEG q85;
                     a caption strip (bottom 10% overwritten by a white bar with dark text
                     blocks) and a corner watermark; format changes: GIF (256 colours),
                     lossless WebP, JPEG q60 of the PNG;
  different picture: left half, right half and 40% crops from the four corners, each as PNG
                     and as JPEG q75 (which are the same picture as each other).
It prints the phash and dhash distance distributions of same-picture pairs and of
different-picture pairs (those cut from the same photo apart), precision/recall per threshold
0..16 for phash alone and for group_images without its wide band (phash + guards + dhash
confirmation), which pairs
of the same picture are farthest apart, the confusion table of group_images at the default
threshold with the wide band (aligned grey comparison) per kind of copy (pairs, found,
missed, against the picture's original) and the false merges, the groups group_images makes of
the real distinct pictures (the photos, tests/data/images and examples/archive/origin: every
group there is printed, so that a wrong merge shows), and the time phash takes with and without
JPEG draft. `--quick` leaves out the threshold sweep and the timings.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.config import DEFAULT_PHASH_THRESHOLD, ImageSettings
from mediatool.dedup import (
    ALIGNED_MIN,
    FINE_FROM,
    FINE_MIN,
    WIDE_ASPECT_RATIO,
    WIDE_DHASH_THRESHOLD,
    WIDE_THRESHOLD,
    aligned_similarity,
    fine_similarity,
    group_images,
    hamming,
    phash_of,
)
from mediatool.imaging import analyze, decode, draft_scale
from mediatool.models import AnalyzeJob, ImageInfo

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the repository; for a git worktree in a folder of worktrees, one level up
SHARED = next(
    (p / "shared" / "images" for p in (REPO.parent, REPO.parent.parent) if (p / "shared").is_dir()),
    REPO.parent / "shared" / "images",
)
REAL = (REPO / "tests" / "data" / "images", REPO / "examples" / "archive" / "origin")
Variant = tuple[str, str, bytes]  # (picture label, variant name, encoded bytes)


def _flat_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = image.size
    return image.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))


CROPS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "left-half": lambda im: _crop(im, 0, 0, 0.5, 1),
    "right-half": lambda im: _crop(im, 0.5, 0, 1, 1),
    "top-left-40": lambda im: _crop(im, 0, 0, 0.4, 0.4),
    "top-right-40": lambda im: _crop(im, 0.6, 0, 1, 0.4),
    "bottom-left-40": lambda im: _crop(im, 0, 0.6, 0.4, 1),
    "bottom-right-40": lambda im: _crop(im, 0.6, 0.6, 1, 1),
}


def _rescaled_crop(image: Image.Image, sides: tuple[float, float, float, float]) -> bytes:
    left, top, right, bottom = sides
    part = _crop(image, left, top, 1 - right, 1 - bottom)
    part = part.resize(
        (round(part.width * 0.8), round(part.height * 0.8)), Image.Resampling.LANCZOS
    )
    return _encode(part, "JPEG", quality=85)


def _caption_strip(image: Image.Image) -> Image.Image:
    """The bottom 10% overwritten by a white bar holding dark blocks like words."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    draw.rectangle((0, round(h * 0.9), w, h), fill=(255, 255, 255))
    x = round(w * 0.03)
    while x < w * 0.9:
        word = round(w * (0.03 + 0.05 * ((x * 7) % 5) / 5))
        draw.rectangle((x, round(h * 0.93), x + word, round(h * 0.97)), fill=(30, 30, 30))
        x += word + round(w * 0.015)
    return out


def _watermark(image: Image.Image) -> Image.Image:
    """A translucent white box with a dark mark in the bottom-right corner."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = base.size
    box = (round(w * 0.72), round(h * 0.88), round(w * 0.97), round(h * 0.97))
    draw.rectangle(box, fill=(255, 255, 255, 110))
    draw.text((box[0] + 4, box[1] + 2), "(c) example.com", fill=(0, 0, 0, 200))
    return Image.alpha_composite(base, layer).convert("RGB")


def copies(rgb: Image.Image, original: Image.Image, seed: int) -> list[tuple[str, bytes]]:
    """The crop, strip and format-change copies of one picture."""
    rng = random.Random(seed)
    out = [(f"crop-{p}%/side", _rescaled_crop(rgb, (p / 100,) * 4)) for p in range(1, 6)]
    sides = (rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.05))
    out.append(("crop-random", _rescaled_crop(rgb, (*sides, *reversed(sides)))))
    out.append(("caption-strip", _encode(_caption_strip(rgb), "JPEG", quality=85)))
    out.append(("watermark", _encode(_watermark(rgb), "JPEG", quality=85)))
    out.append(("gif", _encode(rgb.quantize(256), "GIF")))
    out.append(("webp-lossless", _encode(original, "WEBP", lossless=True)))
    out.append(("png-to-jpeg-q60", _encode(rgb, "JPEG", quality=60)))
    return out


def planted(path: Path) -> list[Variant]:
    """Every variant made from one photo."""
    original = Image.open(path)
    rgb = _flat_rgb(original)
    half = rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS)
    name = path.stem
    out: list[Variant] = [
        (name, "original", path.read_bytes()),
        (name, "jpeg-q95", _encode(rgb, "JPEG", quality=95)),
        (name, "jpeg-q75", _encode(rgb, "JPEG", quality=75)),
        (name, "jpeg-q50", _encode(rgb, "JPEG", quality=50)),
        (name, "resized-50%", _encode(half, "JPEG", quality=85)),
        (name, "png", _encode(original, "PNG")),
        (name, "webp", _encode(original, "WEBP", quality=80)),
        (name, "crop-2%", _encode(_crop(rgb, 0.01, 0.01, 0.99, 0.99), "JPEG", quality=90)),
    ]
    out += [(name, kind, data) for kind, data in copies(rgb, original, len(out) + len(name))]
    for crop_name, cut in CROPS.items():
        part = cut(rgb)
        out.append((f"{name}/{crop_name}", "png", _encode(part, "PNG")))
        out.append((f"{name}/{crop_name}", "jpeg-q75", _encode(part, "JPEG", quality=75)))
    return out


def analysed(variants: list[Variant], folder: Path) -> list[ImageInfo]:
    settings = ImageSettings()
    infos = []
    for label, kind, data in variants:
        sha = hashlib.sha256(data).hexdigest()
        path = folder / f"{sha}.bin"
        path.write_bytes(data)
        infos.append(analyze(AnalyzeJob(sha, path, folder / "cache"), settings).info)
        del label, kind
    return infos


def histogram(title: str, distances: list[int]) -> None:
    counts = Counter(distances)
    print(
        f"{title} ({len(distances)} pairs; min {min(distances)}, median "
        f"{statistics.median(distances)}, max {max(distances)})"
    )
    rows = [f"{d:>3}:{counts[d]:<5}" for d in range(0, 65) if counts[d]]
    for start in range(0, len(rows), 10):
        print("   " + " ".join(rows[start : start + 10]))


def evaluate(variants: list[Variant], infos: list[ImageInfo]) -> None:
    labels = [label for label, _, _ in variants]
    pairs = list(combinations(range(len(infos)), 2))
    same = [(i, j) for i, j in pairs if labels[i] == labels[j]]
    cut_apart = [
        (i, j)
        for i, j in pairs
        if labels[i] != labels[j] and labels[i].split("/")[0] == labels[j].split("/")[0]
    ]
    others = [(i, j) for i, j in pairs if labels[i].split("/")[0] != labels[j].split("/")[0]]

    def dist(i: int, j: int, attr: str = "phash") -> int:
        return hamming(getattr(infos[i], attr), getattr(infos[j], attr))

    for attr in ("phash", "dhash"):
        print(f"\n== {attr} distance distributions ==")
        histogram("same picture (re-encodings, resize, 2% crop)", [dist(*p, attr) for p in same])
        histogram("different pictures cut from the same photo", [dist(*p, attr) for p in cut_apart])
        histogram("different photos", [dist(*p, attr) for p in others])

    print("\n== farthest same-picture pairs (phash, dhash) ==")
    kinds = [kind for _, kind, _ in variants]
    worst = sorted(same, key=lambda p: -dist(*p))[:8]
    for i, j in worst:
        print(
            f"   {labels[i]:<28} {kinds[i]:>12} vs {kinds[j]:<12} {dist(i, j):>3} "
            f"{dist(i, j, 'dhash'):>3}"
        )

    print("\n== precision / recall over pairs ==")
    print(
        "   t | phash alone: TP   FP   FN  prec   recall | group_images: TP   FP   FN  prec  recall"
    )
    for t in range(17):
        alone = _scores({p for p in pairs if dist(*p) <= t}, set(same))
        mapping = group_images(infos, t, wide=False)
        grouped = {(i, j) for i, j in pairs if mapping[infos[i].sha256] == mapping[infos[j].sha256]}
        print(f"  {t:>2} | {_fmt(alone)} | {_fmt(_scores(grouped, set(same)))}")


def confusion(variants: list[Variant], infos: list[ImageInfo]) -> None:
    """group_images at the default threshold, with and without the wide band: per kind of copy,
    the pairs (copy, its picture's original) and how many were merged (found) or not (missed);
    and pairs of different pictures merged (false merges)."""
    labels = [label for label, _, _ in variants]
    kinds = [kind for _, kind, _ in variants]
    pairs = list(combinations(range(len(infos)), 2))
    same = {(i, j) for i, j in pairs if labels[i] == labels[j]}
    originals = {labels[i]: i for i in range(len(infos)) if kinds[i] == "original"}
    print(f"\n== confusion table, group_images at threshold {DEFAULT_PHASH_THRESHOLD} ==")
    for wide in (False, True):
        started = time.perf_counter()
        mapping = group_images(infos, DEFAULT_PHASH_THRESHOLD, wide=wide)
        spent = time.perf_counter() - started
        merged = {(i, j) for i, j in pairs if mapping[infos[i].sha256] == mapping[infos[j].sha256]}
        tp, fp, fn = _scores(merged, same)
        band = "with the wide band (aligned grey)" if wide else "phash + dhash only"
        print(f"   {band} ({spent:.1f} s):")
        print(f"      {'copy vs its original':<22} {'pairs':>6} {'found':>6} {'missed':>7}  missed")
        per_kind: dict[str, list[str]] = {}
        found_of: Counter[str] = Counter()
        for other, kind in enumerate(kinds):
            first = originals.get(labels[other])
            if first is None or first == other:
                continue
            per_kind.setdefault(kind, [])
            if mapping[infos[first].sha256] == mapping[infos[other].sha256]:
                found_of[kind] += 1
            else:
                per_kind[kind].append(labels[other])
        for kind, missed in per_kind.items():
            total = found_of[kind] + len(missed)
            shown = ", ".join(missed)
            print(f"      {kind:<22} {total:>6} {found_of[kind]:>6} {len(missed):>7}  {shown}")
        copies_only = [k for k in per_kind if k not in ("watermark", "caption-strip")]
        found = sum(found_of[k] for k in copies_only)
        total = found + sum(len(per_kind[k]) for k in copies_only)
        print(
            "      scaled/recompressed/cropped/re-encoded copies merged with their original: "
            f"{found}/{total} = {found / max(1, total):.3f}"
        )
        print(
            f"      all pairs: same picture {tp + fn} (merged {tp}, kept apart {fn}, recall "
            f"{tp / (tp + fn):.3f}); different pictures {len(pairs) - tp - fn} (false merges "
            f"{fp}, precision {_precision(tp, fp):.3f})"
        )
        for i, j in sorted(merged - same)[:10]:
            print(f"      false merge: {labels[i]} {kinds[i]} ~ {labels[j]} {kinds[j]}")
    margins(labels, infos, pairs)


def margins(labels: list[str], infos: list[ImageInfo], pairs: list[tuple[int, int]]) -> None:
    """How close different pictures that the wide band compares come to merging (phash within
    its radius, aspect ratios and dhashes within its limits): the best aligned 32x32 score
    (ALIGNED_MIN), and the best 64x64 score of those that reach the fine look (FINE_FROM;
    FINE_MIN)."""
    near = [
        (i, j)
        for i, j in pairs
        if labels[i] != labels[j]
        and hamming(infos[i].phash, infos[j].phash) <= WIDE_THRESHOLD
        and hamming(infos[i].dhash, infos[j].dhash) <= WIDE_DHASH_THRESHOLD
        and _aspect_ratio(infos[i], infos[j]) <= WIDE_ASPECT_RATIO
    ]
    coarse = {(i, j): aligned_similarity(infos[i].grey, infos[j].grey) for i, j in near}
    fine = [fine_similarity(infos[i].grey, infos[j].grey) for (i, j), c in coarse.items()
            if c >= FINE_FROM]  # fmt: skip
    print(
        f"   different pictures the wide band compares: {len(near)} pairs; best "
        f"aligned 32x32 score {max(coarse.values(), default=0):.3f} (merge at {ALIGNED_MIN}); "
        f"{len(fine)} reach the 64x64 look, best {max(fine, default=0):.3f} (merge at {FINE_MIN})"
    )


def real_groups(folders: list[Path]) -> None:
    """The groups group_images makes of the real distinct pictures in these folders."""
    paths = sorted(
        p
        for folder in folders
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".webp")
    )
    with tempfile.TemporaryDirectory() as tmp:
        variants = [(str(p), "real", p.read_bytes()) for p in paths]
        infos = analysed(variants, Path(tmp))
    names = {info.sha256: str(path) for info, path in zip(infos, paths, strict=True)}
    distinct = len(names)
    print(f"\n== real pictures: {len(paths)} files, {distinct} distinct ==")
    for wide in (False, True):
        mapping = group_images(infos, DEFAULT_PHASH_THRESHOLD, wide=wide)
        groups: dict[str, list[str]] = {}
        for sha, canonical in mapping.items():
            groups.setdefault(canonical, []).append(names[sha])
        shown = [sorted(group) for group in groups.values() if len(group) > 1]
        band = "with the wide band" if wide else "phash + dhash only"
        print(f"   {band}: {len(shown)} groups")
        for group in sorted(shown):
            print("      " + " ~ ".join(group))


def _aspect_ratio(a: ImageInfo, b: ImageInfo) -> float:
    ratio = (a.width / a.height) / (b.width / b.height)
    return max(ratio, 1 / ratio)


def _precision(tp: int, fp: int) -> float:
    return tp / (tp + fp) if tp + fp else 1.0


def _scores(predicted: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[int, ...]:
    return len(predicted & truth), len(predicted - truth), len(truth - predicted)


def _fmt(scores: tuple[int, ...]) -> str:
    tp, fp, fn = scores
    precision = tp / (tp + fp) if tp + fp else 1.0
    return f"{tp:>14} {fp:>4} {fn:>4} {precision:5.3f} {tp / (tp + fn):7.3f}"


def timings(images: Path, folder: Path) -> None:
    """phash per JPEG: full decode vs the draft analyze uses; and with only the hash's 32 px."""
    print("\n== phash per image, full decode vs JPEG draft (median of 5 runs) ==")
    big = folder / "retina-4232.jpg"
    retina = Image.open(images / "retina.jpg")
    retina.resize((4232, 4232), Image.Resampling.LANCZOS).save(big, quality=90)
    settings = ImageSettings()
    hash_only = ImageSettings(thumb_widths=())
    for path in [*sorted(images.glob("*.jpg")), big]:
        job = AnalyzeJob("0" * 64, path, folder / "cache")
        full = _median_ms(lambda p=path: phash_of(Image.open(p)))
        drafted = _median_ms(lambda j=job: phash_of(decode(j, settings).image))
        tiny = _median_ms(lambda j=job: phash_of(decode(j, hash_only).image))
        d1 = hamming(phash_of(Image.open(path)), phash_of(decode(job, settings).image))
        d2 = hamming(phash_of(Image.open(path)), phash_of(decode(job, hash_only).image))
        w, h = Image.open(path).size
        print(
            f"   {path.name:<24} {w}x{h}: full {full:6.1f} ms | draft for thumbs 320/640 "
            f"(1/{draft_scale(w, h, 640, round(640 * h / w))}) {drafted:6.1f} ms, "
            f"distance {d1} | draft for hash only (1/{draft_scale(w, h, 128, 128)}) "
            f"{tiny:6.1f} ms, distance {d2}"
        )


def _median_ms(work: Callable[[], object]) -> float:
    spent = []
    for _ in range(5):
        started = time.perf_counter()
        work()
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED)
    parser.add_argument("--quick", action="store_true", help="only the confusion table and groups")
    args = parser.parse_args()
    if not args.images.is_dir():
        parser.exit(
            2,
            f"{args.images}: no such folder; this bench needs the shared photos: "
            "../shared/images beside the repository, or --images DIR\n",
        )
    photos = sorted(p for p in args.images.iterdir() if p.suffix in (".png", ".jpg"))
    variants = [v for photo in photos for v in planted(photo)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        infos = analysed(variants, Path(tmp))
        spent = time.perf_counter() - started
        print(f"{len(photos)} photos -> {len(variants)} images analysed in {spent:.1f} s")
        if not args.quick:
            evaluate(variants, infos)
        confusion(variants, infos)
        real_groups([args.images, *REAL])
        if not args.quick:
            timings(args.images, Path(tmp))


if __name__ == "__main__":
    main()
