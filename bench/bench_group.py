"""How fast does group_images group a million phashes?

    .venv/bin/python bench/bench_group.py                  # 1,000,000 images, threshold 8
    .venv/bin/python bench/bench_group.py -n 200000 -t 10

Builds n synthetic ImageInfo values: random 64-bit phashes and dhashes, plus planted clusters
(2..8 copies of a base, each copy a few bits away from the base in both hashes, so that every
two copies are within the thresholds). Prints the wall time of group_images, the peak resident
memory (ru_maxrss) before and after, and checks that the planted clusters, and nothing else,
came out as groups. With --grey every image also carries a 32x32 grey image (the copies of a
cluster their base's, the others one of GREY_POOL random blurred ones), so that the wide band
of dedup (aligned grey comparison of pairs up to dedup.wide_radius) runs too.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.dedup import DHASH_THRESHOLD, GREY_SIDE, _plan, group_images, wide_radius
from mediatool.models import ImageInfo


def _flip(rng: np.random.Generator, values: np.ndarray, most: int) -> np.ndarray:
    """Each value with up to `most` random distinct bits flipped."""
    out = values.copy()
    for k in range(len(out)):
        bits = rng.choice(64, int(rng.integers(0, most + 1)), replace=False)
        out[k] ^= np.uint64(sum(1 << int(b) for b in bits))
    return out


GREY_POOL = 4096  # distinct grey images shared out among the synthetic ones


def grey_pool(rng: np.random.Generator) -> list[bytes]:
    """GREY_POOL random grey images, smoothed like dedup.grey_of's."""
    noise = rng.integers(0, 256, (GREY_POOL, GREY_SIDE + 2, GREY_SIDE + 2)).astype(np.float32)
    smooth = sum(
        noise[:, dy : dy + GREY_SIDE, dx : dx + GREY_SIDE] for dy in range(3) for dx in range(3)
    )
    return [bytes(block) for block in (np.asarray(smooth) / 9).astype(np.uint8)]


def synthetic(
    n: int, clusters: int, threshold: int, seed: int, grey: bool = False
) -> tuple[list[ImageInfo], int]:
    """n images, `clusters` planted clusters among them; and how many images the clusters hold."""
    rng = np.random.default_rng(seed)
    pool = grey_pool(rng) if grey else [b""]
    phash = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    dhash = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    sizes = rng.integers(2, 9, clusters)
    planted = int(sizes.sum())
    owner = np.repeat(np.arange(clusters), sizes)  # images 0..planted-1 are the copies
    phash[:planted] = _flip(rng, phash[owner], threshold // 2)
    dhash[:planted] = _flip(rng, dhash[owner], DHASH_THRESHOLD // 2)
    images = [
        ImageInfo(
            sha256=f"{i:064x}",
            format="JPEG",
            width=800,
            height=600,
            bytes=100_000 + i % 977,
            phash=f"{int(p):016x}",
            dhash=f"{int(d):016x}",
            grey=pool[(int(owner[i]) if i < planted else i) % len(pool)],
        )
        for i, (p, d) in enumerate(zip(phash.tolist(), dhash.tolist(), strict=True))
    ]
    return images, planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("-t", "--threshold", type=int, default=8)
    parser.add_argument("--clusters", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--grey", action="store_true", help="run the wide band too")
    args = parser.parse_args()

    started = time.perf_counter()
    images, planted = synthetic(args.n, args.clusters, args.threshold, args.seed, args.grey)
    built = time.perf_counter() - started
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    chunks = _plan(args.n, args.threshold)
    print(
        f"n={args.n:,} threshold={args.threshold} clusters={args.clusters:,} ({planted:,} images)"
    )
    print(
        f"index: {len(chunks)} chunks of {[w for _, w, _ in chunks]} bits, "
        f"radii {[r for _, _, r in chunks]}"
    )
    if args.grey:
        print(f"wide band: phash radius {wide_radius(args.n, args.threshold)} (dedup.wide_radius)")
    print(f"built inputs in {built:.1f} s; peak RSS so far {rss_before:,.0f} MiB")

    started = time.perf_counter()
    mapping = group_images(images, args.threshold)
    wall = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    canonicals = {c for s, c in mapping.items() if s != c}
    in_groups = sum(1 for c in mapping.values() if c in canonicals)
    print(f"group_images: {wall:.1f} s wall; peak RSS {rss_after:,.0f} MiB")
    print(
        f"groups: {len(canonicals):,} (planted {args.clusters:,}); images in groups "
        f"{in_groups:,} (planted {planted:,})"
    )


if __name__ == "__main__":
    main()
