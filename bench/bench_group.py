"""How fast does group_images group a million phashes, and how fast are new ones grouped onto them?

    .venv/bin/python bench/bench_group.py                  # 1,000,000 images, threshold 8
    .venv/bin/python bench/bench_group.py -n 200000 -t 10
    .venv/bin/python bench/bench_group.py -t 10 --new 10000   # 10,000 new onto 1,000,000 grouped

Builds n synthetic ImageInfo values: random 64-bit phashes and dhashes, plus planted clusters
(2..8 copies of a base, each copy a few bits away from the base in both hashes, so that every
two copies are within the thresholds). Prints the wall time of group_images, the peak resident
memory (ru_maxrss) before and after, and checks that the planted clusters, and nothing else,
came out as groups. With --grey every image also carries a 32x32 grey image (the copies of a
cluster their base's, the others one of GREY_POOL random blurred ones), so that the wide band
of dedup (aligned grey comparison of pairs up to dedup.wide_radius) runs too.

With --new k, it measures what fetch does instead (dedup.group_new_images): n images are
grouped already, k new ones (a third copies of stored clusters, half of which become their
group's canonical; a third new clusters among themselves; a third unrelated) are grouped onto
them. It prints the time to turn the stored columns (as manifest.grouped_columns gives them)
into arrays and to group the new images, the peak RSS, and checks the groups against
group_images over the planted images and the new ones (the stored grouping is that full pass
over the planted stored images: the other stored images are random, hence singletons; a full
pass over all of them is the first mode).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediatool.dedup import (
    DHASH_THRESHOLD,
    GREY_SIDE,
    StoredHashes,
    _plan,
    _query_plan,
    extended_state,
    group_images,
    group_new_images,
    grouping_state,
    wide_radius,
)
from mediatool.models import ImageInfo


def _flip(rng: np.random.Generator, values: np.ndarray, most: int) -> np.ndarray:
    """Each value with up to `most` random distinct bits flipped."""
    flips = rng.integers(0, most + 1, len(values))
    ranks = rng.random((len(values), 64)).argsort(axis=1)  # a random order of the bits per value
    bits = (ranks < flips[:, None]).astype(np.uint64) << np.arange(64, dtype=np.uint64)
    return values ^ np.bitwise_or.reduce(bits, axis=1)


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
    parser.add_argument("--new", type=int, default=0, help="group this many new images onto n")
    args = parser.parse_args()
    if args.new:
        incremental(args)
    else:
        full_pass(args)


def full_pass(args: argparse.Namespace) -> None:
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


def new_images(
    stored: list[ImageInfo], planted: int, k: int, threshold: int, seed: int
) -> list[ImageInfo]:
    """k new images: copies of planted stored images (a third; half of them larger files, which
    become their group's canonical), copies of new bases among themselves (a third), random
    ones (the rest)."""
    rng = np.random.default_rng(seed + 1)
    copies = k // 3
    source = rng.integers(0, planted, copies)
    phash = np.array([int(stored[i].phash, 16) for i in source], dtype=np.uint64)
    dhash = np.array([int(stored[i].dhash, 16) for i in source], dtype=np.uint64)
    bases = max(1, (k - copies) // 6)
    base_p = rng.integers(0, 2**64, bases, dtype=np.uint64, endpoint=False)
    base_d = rng.integers(0, 2**64, bases, dtype=np.uint64, endpoint=False)
    owner = rng.integers(0, bases, (k - copies) // 2)
    rest = k - copies - len(owner)
    phash = np.concatenate(
        [
            _flip(rng, phash, threshold // 2),
            _flip(rng, base_p[owner], threshold // 2),
            rng.integers(0, 2**64, rest, dtype=np.uint64, endpoint=False),
        ]
    )
    dhash = np.concatenate(
        [
            _flip(rng, dhash, DHASH_THRESHOLD // 2),
            _flip(rng, base_d[owner], DHASH_THRESHOLD // 2),
            rng.integers(0, 2**64, rest, dtype=np.uint64, endpoint=False),
        ]
    )
    copies = len(source)
    return [
        ImageInfo(
            sha256=f"{len(stored) + i:064x}",
            format="PNG",
            width=800,
            height=600,
            bytes=(110_000 if i < copies and i % 2 else 90_000) + i % 977,
            phash=f"{int(p):016x}",
            dhash=f"{int(d):016x}",
        )
        for i, (p, d) in enumerate(zip(phash.tolist(), dhash.tolist(), strict=True))
    ]


def incremental(args: argparse.Namespace) -> None:
    stored, planted = synthetic(args.n, args.clusters, args.threshold, args.seed, args.grey)
    new = new_images(stored, planted, args.new, args.threshold, args.seed)
    canonical_of = group_images(stored[:planted], args.threshold)  # the others: singletons
    before = grouping_state(stored, args.threshold)
    state = extended_state(before, args.threshold, len(stored), new)
    assert state is not None, "the wide radius changed: fetch would regroup in full"
    # what manifest.grouped_columns() gives: ids, hashes, sides and flat flags, a string each
    columns = (
        ",".join(map(str, range(len(stored)))),
        "".join(info.phash for info in stored),
        "".join(info.dhash for info in stored),
        ",".join(str(info.width) for info in stored),
        ",".join(str(info.height) for info in stored),
        ",".join(str(int(info.flat)) for info in stored),
    )
    chunks = _query_plan(args.n, args.new, max(args.threshold, state.radius))
    print(
        f"n={args.n:,} stored ({planted:,} in {args.clusters:,} planted clusters), "
        f"{args.new:,} new, threshold {args.threshold}, wide radius {state.radius}"
    )
    print(
        f"query index: {len(chunks)} chunks of {[w for _, w, _ in chunks]} bits, "
        f"radii {[r for _, _, r in chunks]}"
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    by_sha = {info.sha256: info for info in stored}
    started, cpu_started = time.perf_counter(), time.process_time()
    hashes = StoredHashes.of_columns(*columns)
    indexed, cpu_indexed = time.perf_counter(), time.process_time()
    change = group_new_images(
        new,
        hashes,
        state,
        args.threshold,
        stored_names=lambda ids: {
            i: (stored[i].sha256, canonical_of.get(stored[i].sha256, stored[i].sha256)) for i in ids
        },
        canonical_infos=lambda shas: {sha: by_sha[sha] for sha in shas},
        greys=lambda shas: {sha: by_sha[sha].grey for sha in shas if sha in by_sha},
    )
    done, cpu_done = time.perf_counter(), time.process_time()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"stored columns (as the manifest gives them) into arrays: {indexed - started:.2f} s wall "
        f"({cpu_indexed - cpu_started:.2f} s CPU); group_new_images: {done - indexed:.2f} s wall "
        f"({cpu_done - cpu_indexed:.2f} s CPU); total {done - started:.2f} s wall "
        f"({cpu_done - cpu_started:.2f} s CPU)"
    )
    print(f"peak RSS {rss_before:,.0f} MiB before, {rss_after:,.0f} MiB after")
    after = {sha: change.renamed.get(c, c) for sha, c in canonical_of.items()}
    after.update(change.canonical_of)
    expected = group_images([*stored[:planted], *new], args.threshold)
    wrong = sum(1 for sha, c in expected.items() if after[sha] != c)
    strays = [old for old in change.renamed if old not in canonical_of]
    with_stored = {after[sha] for sha in canonical_of}
    joined = sum(1 for info in new if after[info.sha256] in with_stored)
    print(
        f"new images joining stored groups: {joined:,}; stored groups whose canonical moved to a "
        f"new image: {len(change.renamed):,}"
    )
    print(
        f"differences from the full pass over the planted and new images: {wrong} "
        f"(random stored images touched: {len(strays)})"
    )


if __name__ == "__main__":
    main()
