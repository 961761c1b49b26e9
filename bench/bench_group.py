"""How fast does group_images group a million phashes?

    .venv/bin/python bench/bench_group.py                  # 1,000,000 images, threshold 8
    .venv/bin/python bench/bench_group.py -n 200000 -t 10

Builds n synthetic ImageInfo values: random 64-bit phashes and dhashes, plus planted clusters
(2..8 copies of a base, each copy a few bits away from the base in both hashes, so that every
two copies are within the thresholds). Prints the wall time of group_images, the peak resident
memory (ru_maxrss) before and after, and checks that the planted clusters, and nothing else,
came out as groups.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.dedup import DHASH_THRESHOLD, _plan, group_images
from mediatool.models import ImageInfo


def _flip(rng: np.random.Generator, values: np.ndarray, most: int) -> np.ndarray:
    """Each value with up to `most` random distinct bits flipped."""
    out = values.copy()
    for k in range(len(out)):
        bits = rng.choice(64, int(rng.integers(0, most + 1)), replace=False)
        out[k] ^= np.uint64(sum(1 << int(b) for b in bits))
    return out


def synthetic(n: int, clusters: int, threshold: int, seed: int) -> tuple[list[ImageInfo], int]:
    """n images, `clusters` planted clusters among them; and how many images the clusters hold."""
    rng = np.random.default_rng(seed)
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
    args = parser.parse_args()

    started = time.perf_counter()
    images, planted = synthetic(args.n, args.clusters, args.threshold, args.seed)
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
