"""Perceptual hashes, the near-duplicate index, grouping and the canonical copy of each group.

Every hash is computed on one 8-bit grayscale base (`hash_base`): alpha is composited on white,
16-bit samples are scaled down (Pillow's own I;16 -> L conversion clips instead), so a
transparent PNG and its flattened JPEG hash alike.

Grouping (`group_images`) finds every pair of phashes within `threshold` bits through a
multi-index (see `_candidate_pairs`), drops pairs that a guard rejects, confirms the rest with
dhash, and joins what is left into connected components. Guards: images that are tiny
(trackers, icons), flat (near-blank: the phash of a blank page is noise) or SVG never group;
a pair whose aspect ratios differ by more than 10% never merges.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import combinations
from math import comb

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image

from mediatool.models import ImageInfo

HASH_BITS = 64
MIN_SIDE = 32  # smaller images never group (tracking pixels, icons, spacers)
MIN_PIXELS = 4096
FLAT_STD = 4.0  # grayscale std (0..255, on a 64x64 box downsample) below which an image is flat
MAX_ASPECT_RATIO = 1.10  # larger over smaller aspect ratio of a pair that may still merge
DHASH_THRESHOLD = 16  # dhash bits a phash candidate pair may differ by (bench_phash_threshold)

# Preferred format for the same pixels and bytes per pixel: the one that keeps most.
FORMAT_RANK = {"PNG": 0, "TIFF": 1, "BMP": 2, "WEBP": 3, "JPEG": 4, "MPO": 4, "GIF": 5}
_OTHER_FORMAT = 6

_MAX_CHUNK_BITS = 22  # a chunk's lookup table has 2**bits entries
_CANDIDATE_BLOCK = 1 << 22  # candidate pairs materialised at a time

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


# --- hashes -------------------------------------------------------------------------------


def hash_base(image: Image.Image) -> Image.Image:
    """The 8-bit grayscale image every hash is computed on."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8
        return Image.fromarray(samples.astype(np.uint8), "L")
    if image.mode == "F":
        return Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return image.convert("L")


def has_alpha(image: Image.Image) -> bool:
    """Whether the image carries an alpha channel or a transparent palette entry."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )


def phash_of(image: Image.Image) -> str:
    """64-bit imagehash.phash of the image's hash base, as 16 hex digits."""
    return str(imagehash.phash(hash_base(image)))


def dhash_of(image: Image.Image) -> str:
    """64-bit imagehash.dhash (horizontal gradient) of the image's hash base, as 16 hex digits."""
    return str(imagehash.dhash(hash_base(image)))


def is_flat(image: Image.Image) -> bool:
    """Near-blank: so little contrast that its phash is noise and must not group."""
    small = hash_base(image).resize((64, 64), Image.Resampling.BOX)
    return float(np.asarray(small, dtype=np.float64).std()) < FLAT_STD


def image_hashes(image: Image.Image) -> tuple[str, str, bool]:
    """(phash, dhash, flat) of an image, from one hash base: what analyze stores."""
    base = hash_base(image)
    return phash_of(base), dhash_of(base), is_flat(base)


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes of the same length."""
    if not a or not b or len(a) != len(b):
        raise ValueError(f"cannot compare hashes {a!r} and {b!r}: both need the same length")
    return (int(a, 16) ^ int(b, 16)).bit_count()


# --- canonical copy -----------------------------------------------------------------------


def canonical_key(info: ImageInfo) -> tuple[int, float, int, str]:
    """Sort key whose minimum is a group's canonical copy: most pixels, then most bytes per
    pixel (least compressed), then the format that keeps most, then sha256 (determinism)."""
    pixels = info.width * info.height
    bytes_per_pixel = info.bytes / pixels if pixels else 0.0
    rank = FORMAT_RANK.get(info.format.upper(), _OTHER_FORMAT)
    return (-pixels, -bytes_per_pixel, rank, info.sha256)


# --- grouping -----------------------------------------------------------------------------


def group_images(
    images: Sequence[ImageInfo], threshold: int, *, dhash_threshold: int = DHASH_THRESHOLD
) -> dict[str, str]:
    """sha256 -> sha256 of its group's canonical copy; every input appears, singletons map to
    themselves. Two images are joined when a chain of confirmed near-duplicate pairs links them."""
    result = {info.sha256: info.sha256 for info in images}
    members = list({info.sha256: info for info in images if _groupable(info)}.values())
    if len(members) < 2 or threshold < 0:
        return result
    phashes = np.array([int(info.phash, 16) for info in members], dtype=np.uint64)
    left, right = _candidate_pairs(phashes, threshold)
    left, right = _confirmed(members, left, right, dhash_threshold)
    for component in _components(len(members), left, right):
        group = [members[i] for i in component]
        canonical = min(group, key=canonical_key).sha256
        for info in group:
            result[info.sha256] = canonical
    return result


def _groupable(info: ImageInfo) -> bool:
    """Whether the image may join a group at all (the per-image guards)."""
    return (
        len(info.phash) == 16
        and len(info.dhash) == 16
        and not info.flat
        and min(info.width, info.height) >= MIN_SIDE
        and info.width * info.height >= MIN_PIXELS
    )


def _confirmed(
    members: Sequence[ImageInfo], left: I64, right: I64, dhash_threshold: int
) -> tuple[I64, I64]:
    """The candidate pairs that pass the aspect-ratio guard and the dhash confirmation."""
    if not len(left):
        return left, right
    aspect = np.array([info.width / info.height for info in members], dtype=np.float64)
    ratio = aspect[left] / aspect[right]
    keep = np.maximum(ratio, 1.0 / ratio) <= MAX_ASPECT_RATIO
    left, right = left[keep], right[keep]
    dhashes = np.array([int(members[i].dhash, 16) for i in range(len(members))], dtype=np.uint64)
    keep = np.bitwise_count(dhashes[left] ^ dhashes[right]) <= dhash_threshold
    return left[keep], right[keep]


def _components(n: int, left: I64, right: I64) -> list[list[int]]:
    """Connected components of size > 1 of the graph on n nodes with the given edges
    (union-find with path halving; the confirmed edges are few)."""
    parent = list(range(n))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        root_a, root_b = root(a), root(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    components: dict[int, list[int]] = {}
    for node in set(left.tolist()) | set(right.tolist()):
        components.setdefault(root(node), []).append(node)
    return [sorted(nodes) for nodes in components.values()]


# --- the multi-index ----------------------------------------------------------------------
#
# Split the 64 bits into m chunks and give chunk i a search radius r_i such that
# sum(r_i + 1) > t. If two hashes differ in at most t bits, some chunk i differs in at most
# r_i bits (were every chunk i r_i + 1 or more apart, the total would exceed t). So every pair
# within t is found by looking each hash's chunk up, with every flip of at most r_i bits, in a
# table of all hashes' chunks, and checking the whole hash of each candidate found.
# m = t+1 chunks (r = 0: exact chunk match, the plain pigeonhole) needs one lookup per chunk
# but its chunks are short: with 1M hashes and t = 8 a 7-bit bucket holds ~8,000 hashes,
# ~7e10 candidates. Long chunks searched with a small radius trade candidates for lookups;
# `_plan` picks the split with the least estimated work for this n and t. For 1M hashes it
# picks 3 chunks of 21-22 bits (the widest a direct-address table may be): radii 2,2,2 for
# t = 8 (760 lookups of every hash, ~0.25 candidates each) and 3,3,2 for t = 10.

Chunk = tuple[int, int, int]  # (low bit, width, radius)


def _candidate_pairs(phashes: U64, threshold: int) -> tuple[I64, I64]:
    """Every pair (i < j) whose hashes differ in at most `threshold` bits, each exactly once."""
    lefts: list[I32] = []
    rights: list[I32] = []
    for low, bits, radius in _plan(len(phashes), threshold):
        for left, right in _chunk_pairs(phashes, low, bits, radius):
            close = np.bitwise_count(phashes[left] ^ phashes[right]) <= threshold
            left, right = left[close], right[close]  # few: order each pair only now
            lefts.append(np.minimum(left, right))
            rights.append(np.maximum(left, right))
    if not lefts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = np.unique(np.stack([np.concatenate(lefts), np.concatenate(rights)]), axis=1)
    return pairs[0].astype(np.int64), pairs[1].astype(np.int64)


def _plan(n: int, threshold: int) -> list[Chunk]:
    """The chunks (low bit, width, search radius) that cost least for n hashes."""
    best: tuple[float, list[Chunk]] | None = None
    fewest = -(-HASH_BITS // _MAX_CHUNK_BITS)
    for m in range(fewest, max(fewest, min(threshold + 1, HASH_BITS)) + 1):
        widths = [HASH_BITS // m + (1 if i < HASH_BITS % m else 0) for i in range(m)]
        spare = max(0, threshold + 1 - m)  # sum of radii needed: sum(r_i + 1) >= t + 1
        radii = [spare // m + (1 if i < spare % m else 0) for i in range(m)]
        for order in (radii, radii[::-1]):  # the larger radii on the wider or the narrower chunks
            cost = sum(_chunk_cost(n, w, r) for w, r in zip(widths, order, strict=True))
            if best is None or cost < best[0]:
                lows = [sum(widths[:i]) for i in range(m)]
                best = (cost, list(zip(lows, widths, order, strict=True)))
    assert best is not None
    return best[1]


def _chunk_cost(n: int, bits: int, radius: int) -> float:
    """Estimated work of one chunk: a pass over half the hashes per flip mask, plus candidates
    (each ~4 times a pass's cost per hash) assuming uniformly spread hashes."""
    masks = sum(comb(bits, k) for k in range(radius + 1))
    return masks * (n / 2 + 2_000) + masks * (n / 2) * (n / 2.0**bits) * 4


def _chunk_pairs(phashes: U64, low: int, bits: int, radius: int) -> Iterator[tuple[I32, I32]]:
    """Candidate pairs whose chunk [low, low+bits) differs in at most `radius` bits.

    A pair at chunk distance 0 is yielded once (i < j); one at a nonzero flip mask only from
    the member whose chunk has a 0 at the mask's lowest bit, so each pair comes once per chunk."""
    keys = ((phashes >> np.uint64(low)) & np.uint64((1 << bits) - 1)).astype(np.int32)
    table = _BucketTable(keys, bits)
    # Queries in chunk-key order: XOR with a mask keeps most of that order, so each mask's
    # lookups walk the table nearly in sequence instead of at random (16% faster at 300k).
    everyone = table.order
    sorted_keys = keys[everyone]
    for left, right in table.members(everyone, sorted_keys):
        keep = left < right
        yield left[keep], right[keep]
    for lowest in range(bits):
        chosen = ((sorted_keys >> lowest) & 1) == 0
        queries, query_keys = everyone[chosen], sorted_keys[chosen]
        for mask in _masks(bits, radius, lowest):
            yield from table.members(queries, query_keys ^ np.int32(mask))


def _masks(bits: int, radius: int, lowest: int) -> Iterator[int]:
    """Every mask of 1..radius set bits among `bits` whose lowest set bit is `lowest`."""
    higher = range(lowest + 1, bits)
    for extra in range(radius):
        for chosen in combinations(higher, extra):
            yield (1 << lowest) | sum(1 << bit for bit in chosen)


class _BucketTable:
    """Hashes grouped by chunk value, looked up by direct addressing (2**bits entries)."""

    def __init__(self, keys: I32, bits: int) -> None:
        self.order = np.argsort(keys, kind="stable").astype(np.int32)
        self.counts = np.bincount(keys, minlength=1 << bits).astype(np.int32)
        self.starts = (np.cumsum(self.counts) - self.counts).astype(np.int32)
        # The first member of each bucket (-1: empty): one lookup serves most queries.
        self.first = np.full(1 << bits, -1, dtype=np.int32)
        occupied = np.flatnonzero(self.counts)
        self.first[occupied] = self.order[self.starts[occupied]]

    def members(self, queries: I32, query_keys: I32) -> Iterator[tuple[I32, I32]]:
        """(query, member) for every member of the bucket each query key points at."""
        first = self.first[query_keys]
        hit = np.flatnonzero(first >= 0)
        yield queries[hit], first[hit]
        sizes = self.counts[query_keys[hit]]
        crowded = np.flatnonzero(sizes > 1)
        if len(crowded):
            hit = hit[crowded]
            yield from self._rest(
                queries[hit], self.starts[query_keys[hit]] + 1, sizes[crowded] - 1
            )

    def _rest(self, queries: I32, firsts: I32, sizes: I32) -> Iterator[tuple[I32, I32]]:
        """(query, member) for `sizes` members from `firsts` on, at most a block at a time."""
        ends = np.cumsum(sizes, dtype=np.int64)
        block_start = 0
        while block_start < len(queries):
            reach = int(ends[block_start - 1]) if block_start else 0
            block_end = int(np.searchsorted(ends, reach + _CANDIDATE_BLOCK, side="right"))
            block_end = max(block_end, block_start + 1)
            part = slice(block_start, block_end)
            repeat = sizes[part]
            total = int(ends[block_end - 1]) - reach
            within = np.arange(total, dtype=np.int64) - np.repeat(
                ends[part] - repeat - reach, repeat
            )
            members = self.order[np.repeat(firsts[part], repeat) + within]
            yield np.repeat(queries[part], repeat), members
            block_start = block_end
