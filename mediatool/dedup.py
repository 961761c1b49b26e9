"""Perceptual hashes, the near-duplicate index, grouping and the canonical copy of each group.

Every hash is computed on one 8-bit grayscale base (`hash_base`): alpha is composited on white,
16-bit samples are scaled down (Pillow's own I;16 -> L conversion clips instead), so a
transparent PNG and its flattened JPEG hash alike.

Grouping (`group_images`) finds every pair of phashes within `threshold` bits through a
multi-index (see `_candidate_pairs`), drops pairs that a guard rejects, confirms the rest with
dhash, and joins what is left into connected components. A second, wider band catches copies
that were cropped (a few percent per side), rescaled and recompressed, whose phash moves by up
to ~22 bits: pairs within `WIDE_THRESHOLD` bits (the same multi-index, a wider radius) merge
only when their dhashes are within WIDE_DHASH_THRESHOLD and their small grey images
(`grey_of`, 64x64, stored per image, compared at 32x32) are alike as they are (UNALIGNED_MIN, a
cheap filter) and match after the best crop-and-scale alignment (`aligned_similarity` >=
ALIGNED_MIN), or, when they come close (FINE_FROM), at 64x64 (`fine_similarity` >= FINE_MIN:
fine textures). Guards: images that are tiny (trackers, icons), flat (near-blank: the phash of
a blank page is noise) or SVG never group; a pair whose aspect ratios differ by more than 10%
never merges.

`group_new_images` groups images added since onto a grouping made before, with the same result
as `group_images` over all of them (see "incremental grouping" below). docs/dedup.md tells it all.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, islice
from math import comb
from typing import NamedTuple, TypeVar

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from mediatool.models import ImageInfo

HASH_BITS = 64
MIN_SIDE = 32  # smaller images never group (tracking pixels, icons, spacers)
MIN_PIXELS = 4096
FLAT_STD = 4.0  # grayscale std (0..255, on a 64x64 box downsample) below which an image is flat
MAX_ASPECT_RATIO = 1.10  # larger over smaller aspect ratio of a pair that may still merge
DHASH_THRESHOLD = 16  # dhash bits a phash candidate pair may differ by (bench_phash_threshold)
WIDE_THRESHOLD = 22  # phash bits of a pair the aligned grey comparison may still merge
WIDE_ASPECT_RATIO = 1.12  # a crop of up to 5% per side changes the aspect ratio by <= ~11%
ALIGNED_MIN = 0.93  # least correlation of aligned grey images of a merged wide-band pair
WIDE_DHASH_THRESHOLD = 20  # dhash bits a wide-band pair may differ by (bench_phash_threshold)
UNALIGNED_MIN = 0.5  # correlation of the grey images as they are, before any alignment is tried
WIDE_MAX_WORK = 4.0  # on huge sets the wide band narrows to cost <= 4x the plain search ...
WIDE_FREE_WORK = 1e8  # ... once it would cost more than this (_chunk_cost units: ~1-4 s)
GREY_SIDE = 32  # the grey images the wide band aligns are GREY_SIDE x GREY_SIDE
GREY_BLUR = 1.0  # Gaussian radius (grey pixels): small misalignments barely change it
FINE_SIDE = 64  # the stored grey image is FINE_SIDE x FINE_SIDE box averages, one byte a pixel
FINE_FROM = 0.65  # a wide-band pair whose aligned greys score this much (but < ALIGNED_MIN) ...
FINE_MIN = 0.93  # ... merges when its FINE_SIDE greys, aligned, score this much (textures)
ALIGN_SCALES = (1.0, 0.96, 0.92, 0.88)  # the part of one image the other may show, per axis
ALIGN_STEPS = (0.02, 0.01, 0.005)  # refinement steps of scale and offset around the best

# Preferred format for the same pixels and bytes per pixel: the one that keeps most.
FORMAT_RANK = {"PNG": 0, "TIFF": 1, "BMP": 2, "WEBP": 3, "JPEG": 4, "MPO": 4, "GIF": 5}
_OTHER_FORMAT = 6

GROUPING_VERSION = 1  # raise when grouping changes in a way the constants above do not show
_MAX_CHUNK_BITS = 22  # a chunk's lookup table has 2**bits entries
_CANDIDATE_BLOCK = 1 << 19  # candidate pairs materialised at a time (~40 bytes each at the peak)
_GUARD_BLOCK = 1 << 16  # pairs whose distances, guards or keys are worked out at a time
WIDE_BLOCK = 256  # wide-band pairs whose grey images (4 KiB each) are looked up at a time

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
GreyLookup = Callable[[Sequence[str]], Mapping[str, bytes]]  # sha256s -> their grey images
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Ix = TypeVar("Ix", I32, I64)  # member indices: int32 where a page holds many pairs


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


def grey_of(image: Image.Image) -> bytes:
    """The grey image analysis stores for the wide band: FINE_SIDE x FINE_SIDE box averages of
    the hash base, one byte per pixel (aspect ratio not kept). Manifests analyzed before hold
    GREY_SIDE x GREY_SIDE blurred ones (`_coarse` takes both)."""
    return hash_base(image).resize((FINE_SIDE, FINE_SIDE), Image.Resampling.BOX).tobytes()


def _coarse(grey: bytes) -> bytes:
    """The GREY_SIDE x GREY_SIDE blurred grey image of a stored one (b"": none)."""
    if len(grey) == GREY_SIDE**2:
        return grey
    if len(grey) != FINE_SIDE**2:
        return b""
    fine = Image.frombytes("L", (FINE_SIDE, FINE_SIDE), grey)
    return fine.reduce(FINE_SIDE // GREY_SIDE).filter(ImageFilter.GaussianBlur(GREY_BLUR)).tobytes()


def _fine(grey: bytes) -> F32 | None:
    """The FINE_SIDE x FINE_SIDE blurred grey image of a stored one, if it has that size."""
    if len(grey) != FINE_SIDE**2:
        return None
    fine = Image.frombytes("L", (FINE_SIDE, FINE_SIDE), grey)
    blurred = fine.filter(ImageFilter.GaussianBlur(GREY_BLUR))
    return np.asarray(blurred, dtype=np.float32).reshape(FINE_SIDE, FINE_SIDE)


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
    images: Sequence[ImageInfo],
    threshold: int,
    *,
    dhash_threshold: int = DHASH_THRESHOLD,
    wide: bool = True,
    greys: GreyLookup | None = None,
) -> dict[str, str]:
    """sha256 -> sha256 of its group's canonical copy; every input appears, singletons map to
    themselves. Two images are joined when a chain of confirmed near-duplicate pairs links them.
    Without `wide`, only pairs within `threshold` (confirmed by dhash) count. `greys` looks up
    the grey images of the few wide-band candidates (sha256 -> bytes; those it lacks do not
    merge in the wide band); without it, each ImageInfo's own `grey` is used."""
    result = {info.sha256: info.sha256 for info in images}
    members = list({info.sha256: info for info in images if _groupable(info)}.values())
    if len(members) < 2 or threshold < 0:
        return result
    columns = Columns.of(members)
    left, right = _candidate_pairs(columns.phashes, threshold)
    left, right = _confirmed(columns, left, right, dhash_threshold)
    if wide:
        lookup = greys or (lambda shas: {info.sha256: info.grey for info in members})
        shas = [info.sha256 for info in members]
        links = _Links(int)  # a member is its own node
        links.join_pairs(left, right)
        wide_left, wide_right = _aligned_pairs(columns, shas, threshold, lookup, links)
        left, right = np.concatenate([left, wide_left]), np.concatenate([right, wide_right])
    for component in _components(len(members), left, right):
        group = [members[i] for i in component]
        canonical = min(group, key=canonical_key).sha256
        for info in group:
            result[info.sha256] = canonical
    return result


def grouping_state(images: Sequence[ImageInfo], threshold: int) -> GroupingState:
    """What a full pass of `group_images` over these images records (see GroupingState)."""
    return full_pass_state(threshold, len(images), groupable_count(images))


# --- incremental grouping -----------------------------------------------------------------
#
# Whether a pair is confirmed depends on the two images and the rules alone, and a grouping is
# the connected components of the confirmed pairs. So the components of the images grouped
# before plus new ones are the groups recorded before, joined by the confirmed pairs that hold
# a new image: only those are searched (each new phash against an index of the stored ones, and
# the new ones among themselves) and confirmed. That is the full pass's answer as long as the
# rules (the threshold, the constants above, the wide radius, which narrows as the set grows)
# are those the recorded groups were made with: GroupingState records them.


class GroupingState(NamedTuple):
    """What the last grouping of a manifest was made with (the manifest keeps it as a row)."""

    rules: str  # grouping_rules(threshold) of that grouping
    radius: int  # the wide band's phash radius (wide_radius of the groupable images)
    images: int  # analyzed images it grouped (a different count now: some changed or went)
    groupable: int  # of which groupable (the n of wide_radius)


@dataclass(frozen=True, slots=True)
class Columns:
    """What confirming a pair needs of each image, an array per attribute (24 bytes an image):
    its phash, dhash and aspect ratio (width / height)."""

    phashes: U64
    dhashes: U64
    aspects: F64

    @classmethod
    def of(cls, images: Sequence[ImageInfo]) -> Columns:
        """Of groupable images (`_groupable`: both hashes have 64 bits, no side is 0)."""
        return cls(
            np.array([int(info.phash, 16) for info in images], dtype=np.uint64),
            np.array([int(info.dhash, 16) for info in images], dtype=np.uint64),
            np.array([info.width / info.height for info in images], dtype=np.float64),
        )

    def take(self, rows: I64 | npt.NDArray[np.bool_]) -> Columns:
        return Columns(self.phashes[rows], self.dhashes[rows], self.aspects[rows])

    def joined(self, other: Columns) -> Columns:
        """These images, then `other`'s."""
        return Columns(
            np.concatenate([self.phashes, other.phashes]),
            np.concatenate([self.dhashes, other.dhashes]),
            np.concatenate([self.aspects, other.aspects]),
        )


@dataclass(frozen=True, slots=True)
class StoredHashes:
    """The groupable images grouped before: the id the caller looks each up by (`NameLookup`)
    and what confirming a pair needs of it (`Columns`), 32 bytes an image: a grouping made a
    page at a time holds these across its pages, and never the images themselves."""

    ids: I64
    columns: Columns

    @classmethod
    def of_images(cls, rows: Iterable[tuple[int, ImageInfo]]) -> StoredHashes:
        """From (id, image) rows; those that never group (`_groupable`) are left out."""
        kept = [(ident, info) for ident, info in rows if _groupable(info)]
        ids = np.array([ident for ident, _ in kept], dtype=np.int64)
        return cls(ids, Columns.of([info for _, info in kept]))

    @classmethod
    def of_columns(
        cls, ids: str, phashes: str, dhashes: str, widths: str, heights: str, flats: str
    ) -> StoredHashes:
        """From columns of images with 64-bit phashes and dhashes, as the manifest gives them
        (`Manifest.grouped_columns`): ids, widths, heights and flat flags (0 or 1)
        comma-separated, the hashes as 16 hex digits one after the other. A million rows come
        in a third of the time rows one by one take. Those that never group are left out."""
        if not ids:
            return cls.of_images(())
        sides = [np.array(column.split(","), dtype=np.int64) for column in (widths, heights)]
        flat = np.array(flats.split(","), dtype=np.int64) != 0
        kept = ~flat & _big_enough(*sides)
        columns = Columns(
            _hex_column(phashes), _hex_column(dhashes), sides[0] / np.maximum(sides[1], 1)
        )
        return cls(np.array(ids.split(","), dtype=np.int64)[kept], columns.take(kept))

    def extended(self, more: StoredHashes) -> StoredHashes:
        """These images, then `more`'s (a page just grouped)."""
        return StoredHashes(np.concatenate([self.ids, more.ids]), self.columns.joined(more.columns))

    def __len__(self) -> int:
        return len(self.ids)


def _hex_column(hexes: str) -> U64:
    """64-bit values written as 16 hex digits one after the other."""
    return np.frombuffer(bytes.fromhex(hexes), dtype=">u8").astype(np.uint64)


@dataclass(frozen=True, slots=True)
class Regrouping:
    """How new images change a grouping: each new image's canonical, and the groups grown or
    merged (old canonical -> new canonical; every member of the old group moves)."""

    canonical_of: dict[str, str]
    renamed: dict[str, str]
    state: GroupingState


NameLookup = Callable[[Sequence[int]], Mapping[int, tuple[str, str]]]  # id -> (its sha256,
# its group's canonical sha256)
InfoLookup = Callable[[Sequence[str]], Mapping[str, ImageInfo]]  # sha256 -> info


def grouping_rules(threshold: int) -> str:
    """Every setting a grouping follows besides the wide radius, as one string: a grouping made
    under other rules (another threshold, another release's constants) is redone in full."""
    constants = (
        threshold, MIN_SIDE, MIN_PIXELS, MAX_ASPECT_RATIO, DHASH_THRESHOLD, WIDE_THRESHOLD,
        WIDE_ASPECT_RATIO, ALIGNED_MIN, WIDE_DHASH_THRESHOLD, UNALIGNED_MIN, GREY_SIDE,
        GREY_BLUR, FINE_SIDE, FINE_FROM, FINE_MIN, ALIGN_SCALES, ALIGN_STEPS, FORMAT_RANK,
    )  # fmt: skip
    return f"{GROUPING_VERSION}:" + repr(constants)


def extended_state(
    before: GroupingState | None, threshold: int, grouped_now: int, new: Sequence[ImageInfo]
) -> GroupingState | None:
    """The state after grouping `new` onto the grouping `before`, or None when only a full pass
    gives the full pass's answer: no grouping before, other rules, images grouped before that
    changed or went (`grouped_now`, their count now, differs), or a wide radius that the larger
    set narrows."""
    return state_after(before, threshold, grouped_now, len(new), groupable_count(new))


def state_after(
    before: GroupingState | None, threshold: int, grouped_now: int, images: int, groupable: int
) -> GroupingState | None:
    """`extended_state` for `images` new images of which `groupable` are (`groupable_count`),
    counted while they stream past rather than held."""
    if before is None or before.rules != grouping_rules(threshold) or threshold < 0:
        return None
    if grouped_now != before.images:
        return None
    radius = wide_radius(before.groupable + groupable, threshold)
    if radius != before.radius:
        return None
    return GroupingState(before.rules, radius, before.images + images, before.groupable + groupable)


def full_pass_state(threshold: int, images: int, groupable: int) -> GroupingState:
    """What a full pass over `images` images, `groupable` of them groupable, records: the same
    as `grouping_state` of those images, from their counts."""
    return GroupingState(
        grouping_rules(threshold), wide_radius(groupable, threshold), images, groupable
    )


def first_pages_state(whole: GroupingState) -> GroupingState:
    """The state a full pass made a page at a time starts from: the rules and wide radius of
    the whole set (`whole`), nothing grouped yet. Each page is then grouped onto the pages
    before it with `group_new_images` (a pair is confirmed by the two images and the rules
    alone), so the last page leaves `group_images`' groups over the whole set."""
    return GroupingState(whole.rules, whole.radius, 0, 0)


def next_page_state(state: GroupingState, page: Sequence[ImageInfo]) -> GroupingState:
    """The state once `page` is grouped onto `state` (same rules and radius)."""
    return state._replace(
        images=state.images + len(page), groupable=state.groupable + groupable_count(page)
    )


def image_counts(images: Iterable[ImageInfo], batch: int) -> tuple[int, int]:
    """(images, groupable images) of a stream of distinct images, read `batch` at a time."""
    stream = iter(images)
    count = groupable = 0
    while part := list(islice(stream, batch)):
        count, groupable = count + len(part), groupable + groupable_count(part)
    return count, groupable


def groupable_count(images: Iterable[ImageInfo]) -> int:
    """How many distinct images (by sha256) may join a group at all: the n of `wide_radius`."""
    return len({info.sha256 for info in images if _groupable(info)})


def group_new_images(
    new: Sequence[ImageInfo],
    stored: StoredHashes,
    state: GroupingState,
    threshold: int,
    *,
    stored_names: NameLookup,
    canonical_infos: InfoLookup,
    greys: GreyLookup,
) -> Regrouping:
    """Group `new` onto the images grouped before (`stored`, named by `stored_names`), under
    `state` (from `extended_state`): the same groups as `group_images` over all of them.

    The stored images some candidate pair holds are judged by their columns alone; only those
    of the pairs that pass the aspect-ratio and dhash guards are named (and, in the wide band,
    their grey images looked up), so a page holds a few stored images, never all it meets."""
    canonical_of = {info.sha256: info.sha256 for info in new}
    fresh = list({info.sha256: info for info in new if _groupable(info)}.values())
    rows, near_left, near_right, wide_left, wide_right = _page_pairs(
        fresh, stored, threshold, state.radius
    )
    # name the members the remaining pairs hold: new images as themselves, stored ones by id
    used = np.unique(np.concatenate([near_left, near_right, wide_left, wide_right]))
    old = used[used >= len(fresh)]
    old_ids = stored.ids[rows[old - len(fresh)]].tolist()
    names = stored_names(old_ids)
    sha_of = {i: fresh[i].sha256 for i in used[used < len(fresh)].tolist()}
    node_of = dict(sha_of)
    for member, ident in zip(old.tolist(), old_ids, strict=True):
        sha_of[member], node_of[member] = names[ident]
    links = _Links(node_of.__getitem__)  # a stored member's node is its group
    links.join_pairs(near_left, near_right)
    wide_left, wide_right = _grey_confirmed(sha_of, wide_left, wide_right, greys, links)
    edges = np.concatenate([near_left, wide_left]), np.concatenate([near_right, wide_right])
    joined = _joined(node_of, *edges)
    olds = canonical_infos(sorted({n for ns in joined for n in ns} - set(canonical_of)))
    fresh_by_sha = {info.sha256: info for info in fresh}
    renamed: dict[str, str] = {}
    for nodes in joined:
        canonical = min((fresh_by_sha.get(n) or olds[n] for n in nodes), key=canonical_key).sha256
        for node in nodes:
            if node in canonical_of:
                canonical_of[node] = canonical
            elif node != canonical:
                renamed[node] = canonical
    return Regrouping(canonical_of, renamed, state)


def _page_pairs(
    fresh: Sequence[ImageInfo], stored: StoredHashes, threshold: int, radius: int
) -> tuple[I64, I64, I64, I64, I64]:
    """The pairs holding a new image worth confirming, over members (`_new_pairs`): the stored
    rows the members after `fresh` are, the near pairs that pass the guards (`_confirmed`) and
    the wide-band ones worth comparing grey images of (`_wide_candidates`). Every candidate
    within the radius (0.87M at 20,000 onto 464,000 stored) and their columns are dropped
    on return, before names and grey images are looked up."""
    columns, rows, left, right = _new_pairs(fresh, stored, max(threshold, radius))
    distance = _distances(columns.phashes, left, right)
    near = distance <= threshold
    near_left, near_right = _confirmed(columns, left[near], right[near], DHASH_THRESHOLD)
    wide = ~near & (distance <= radius)
    wide_left, wide_right = _wide_candidates(columns, left[wide], right[wide])
    return (
        rows,
        near_left.astype(np.int64),
        near_right.astype(np.int64),
        wide_left.astype(np.int64),
        wide_right.astype(np.int64),
    )


def _distances(phashes: U64, left: I32, right: I32) -> npt.NDArray[np.uint8]:
    """The phash distance of each pair, _GUARD_BLOCK pairs at a time (a page's 0.87 M pairs
    never get their 64-bit XORs all at once)."""
    distance = np.empty(len(left), dtype=np.uint8)
    for part in _blocks(len(left), _GUARD_BLOCK):
        distance[part] = np.bitwise_count(phashes[left[part]] ^ phashes[right[part]])
    return distance


def _new_pairs(
    fresh: Sequence[ImageInfo], stored: StoredHashes, radius: int
) -> tuple[Columns, I64, I32, I32]:
    """The candidate pairs within `radius` that hold a new image, over members: the new images
    first, then the stored images some pair holds (their rows in `stored`, returned). Members
    are int32: a page's candidates (0.87 M at 100,000 posts) are held at 8 bytes a pair."""
    columns = Columns.of(fresh)
    new_left, new_right = _candidate_pairs(columns.phashes, radius)
    query, found = _query_pairs(stored.columns.phashes, columns.phashes, radius)
    rows = np.unique(found).astype(np.int64)
    member_of = np.empty(len(stored), dtype=np.int32)  # a stored row's member, for those used
    member_of[rows] = np.arange(len(fresh), len(fresh) + len(rows), dtype=np.int32)
    left = np.concatenate([new_left.astype(np.int32), query])
    right = np.concatenate([new_right.astype(np.int32), member_of[found]])
    return columns.joined(stored.columns.take(rows)), rows, left, right


def _joined(node_of: Mapping[int, str], left: I64, right: I64) -> list[set[str]]:
    """The sets of nodes (new images, groups made before) the edges between members join;
    `node_of` names every member an edge holds."""
    names = sorted(set(node_of.values()))
    index = {name: i for i, name in enumerate(names)}
    left = np.array([index[node_of[m]] for m in left.tolist()], dtype=np.int64)
    right = np.array([index[node_of[m]] for m in right.tolist()], dtype=np.int64)
    components = _components(len(names), left, right)
    return [{names[i] for i in component} for component in components if len(component) > 1]


def _groupable(info: ImageInfo) -> bool:
    """Whether the image may join a group at all (the per-image guards)."""
    return (
        len(info.phash) == HASH_BITS // 4
        and len(info.dhash) == HASH_BITS // 4
        and not info.flat
        and bool(_big_enough(info.width, info.height))
    )


def _big_enough(width: I64 | int, height: I64 | int) -> npt.NDArray[np.bool_] | np.bool_:
    """Whether images of these sides are large enough to group (of numbers or of arrays)."""
    result: npt.NDArray[np.bool_] | np.bool_ = (np.minimum(width, height) >= MIN_SIDE) & (
        np.multiply(width, height) >= MIN_PIXELS
    )
    return result


def _confirmed(columns: Columns, left: Ix, right: Ix, dhash_threshold: int) -> tuple[Ix, Ix]:
    """The candidate pairs that pass the aspect-ratio guard and the dhash confirmation."""
    return _plausible(columns, left, right, MAX_ASPECT_RATIO, dhash_threshold)


def _plausible(
    columns: Columns, left: Ix, right: Ix, aspect_ratio: float, dhash_threshold: int
) -> tuple[Ix, Ix]:
    """The pairs whose aspect ratios are within `aspect_ratio` of each other and whose dhashes
    differ by at most `dhash_threshold` bits, judged _GUARD_BLOCK pairs at a time: a page's
    candidates (~0.87 M at 100,000 posts) never get their float ratios all at once."""
    if not len(left):
        return left, right
    keep = np.zeros(len(left), dtype=bool)
    for part in _blocks(len(left), _GUARD_BLOCK):
        ratio = columns.aspects[left[part]] / columns.aspects[right[part]]
        differ = columns.dhashes[left[part]] ^ columns.dhashes[right[part]]
        keep[part] = (np.maximum(ratio, 1.0 / ratio) <= aspect_ratio) & (
            np.bitwise_count(differ) <= dhash_threshold
        )
    return left[keep], right[keep]


def _aligned_pairs(
    columns: Columns, shas: Sequence[str], threshold: int, lookup: GreyLookup, links: _Links
) -> tuple[I64, I64]:
    """The confirmed pairs of the wide band: phash distance above `threshold`, within the wide
    radius (`wide_radius`), passing `_wide_candidates` and `_grey_confirmed`."""
    none = np.empty(0, np.int64), np.empty(0, np.int64)
    radius = wide_radius(len(shas), threshold)
    if radius <= threshold:
        return none
    phashes = columns.phashes
    left, right = _candidate_pairs(phashes, radius)
    far = np.bitwise_count(phashes[left] ^ phashes[right]) > threshold
    left, right = _wide_candidates(columns, left[far], right[far])
    return _grey_confirmed(shas, left, right, lookup, links)


def _wide_candidates(columns: Columns, left: Ix, right: Ix) -> tuple[Ix, Ix]:
    """The wide-band candidate pairs whose aspect ratios agree (WIDE_ASPECT_RATIO) and whose
    dhashes are within WIDE_DHASH_THRESHOLD: those whose grey images are worth comparing."""
    return _plausible(columns, left, right, WIDE_ASPECT_RATIO, WIDE_DHASH_THRESHOLD)


ShaOf = Mapping[int, str] | Sequence[str]  # member -> its sha256 (every member a pair holds)


def _grey_confirmed(
    shas: ShaOf, left: I64, right: I64, lookup: GreyLookup, links: _Links
) -> tuple[I64, I64]:
    """The wide-band pairs whose grey images are alike as they are (UNALIGNED_MIN) and match
    once aligned (ALIGNED_MIN), of those whose sides `links` does not join already (such a pair
    changes no group: skipped, its greys not read); each pair confirmed joins its sides."""
    keep = np.zeros(len(left), dtype=bool)
    order = np.argsort(left, kind="stable")  # pairs of one image side by side: fewer look-ups
    for part in _blocks(len(order), WIDE_BLOCK):
        block = order[part]
        keep[block] = _wide_block(shas, left[block], right[block], lookup, links)
    return left[keep].astype(np.int64), right[keep].astype(np.int64)


def _wide_block(
    shas: ShaOf, left: I64, right: I64, lookup: GreyLookup, links: _Links
) -> npt.NDArray[np.bool_]:
    """Which of these wide-band pairs (at most WIDE_BLOCK) match by their grey images, looked
    up for this block only: a grouping holds the greys of one block, not of every candidate."""
    pairs = list(zip(left.tolist(), right.tolist(), strict=True))
    unjoined = np.array([not links.joined(a, b) for a, b in pairs], dtype=bool)
    used = np.unique(np.concatenate([left[unjoined], right[unjoined]])).tolist()
    found = lookup([shas[i] for i in used])
    stored = {i: found.get(shas[i], b"") for i in used}
    grey = {i: _coarse(stored[i]) for i in used}
    keep = np.array(
        [
            open_ and bool(grey[a]) and bool(grey[b])
            for (a, b), open_ in zip(pairs, unjoined.tolist(), strict=True)
        ],
        dtype=bool,
    )
    similar = np.zeros(len(left), dtype=bool)
    similar[keep] = _unaligned_similarity(grey, left[keep], right[keep]) >= UNALIGNED_MIN
    matched = np.zeros(len(left), dtype=bool)
    for k in np.flatnonzero(similar).tolist():
        a, b = pairs[k]
        if not links.joined(a, b) and _aligned_match(stored[a], stored[b], grey[a], grey[b]):
            matched[k] = True
            links.join(a, b)
    return matched


class _Links:
    """Which members chains of confirmed pairs join already: union-find over their nodes (a
    member itself, or for a stored image the group made before, as `node_of` says)."""

    def __init__(self, node_of: Callable[[int], Hashable]) -> None:
        self._node_of = node_of
        self._parent: dict[Hashable, Hashable] = {}

    def join_pairs(self, left: I64, right: I64) -> None:
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            self.join(a, b)

    def join(self, a: int, b: int) -> None:
        first, second = self._root(self._node_of(a)), self._root(self._node_of(b))
        if first != second:
            self._parent[first] = second

    def joined(self, a: int, b: int) -> bool:
        return self._root(self._node_of(a)) == self._root(self._node_of(b))

    def _root(self, node: Hashable) -> Hashable:
        root = node
        while (up := self._parent.get(root, root)) != root:
            root = up
        while node != root:  # every node on the way now points at the root
            self._parent[node], node = root, self._parent[node]
        return root


def _aligned_match(first: bytes, second: bytes, coarse_a: bytes, coarse_b: bytes) -> bool:
    """Whether the grey images match once aligned: at GREY_SIDE (ALIGNED_MIN), or, for a pair
    that comes close there (FINE_FROM), at FINE_SIDE (FINE_MIN), where a fine texture (bricks,
    gravel) still shows that a 32x32 image blurs away."""
    score = aligned_similarity(coarse_a, coarse_b)
    if score >= ALIGNED_MIN:
        return True
    return score >= FINE_FROM and fine_similarity(first, second) >= FINE_MIN


def _unaligned_similarity(
    grey: Mapping[int, bytes], left: I64, right: I64
) -> npt.NDArray[np.float32]:
    """Correlation of each pair's grey images as they are (a cheap filter before aligning)."""
    used = np.unique(np.concatenate([left, right]))
    if not len(used):
        return np.empty(0, np.float32)
    greys = _normalized(np.stack([_grey_array(grey[i]) for i in used.tolist()]))
    first, second = greys[np.searchsorted(used, left)], greys[np.searchsorted(used, right)]
    similarity: npt.NDArray[np.float32] = (first * second).sum(axis=(-1, -2))
    return similarity


def wide_radius(n: int, threshold: int) -> int:
    """The phash radius of the wide band for n images: WIDE_THRESHOLD, or less on sets so large
    that it would cost more than WIDE_FREE_WORK and WIDE_MAX_WORK times the plain search."""
    budget = max(WIDE_FREE_WORK, WIDE_MAX_WORK * _plan_cost(n, threshold))
    radius = WIDE_THRESHOLD
    while radius > threshold and _plan_cost(n, radius) > budget:
        radius -= 1
    return radius


def _plan_cost(n: int, threshold: int) -> float:
    return sum(_chunk_cost(n, bits, radius) for _, bits, radius in _plan(n, threshold))


# --- aligned grey comparison --------------------------------------------------------------
#
# A crop of a few percent per side, rescaled, shows a region of the original covering 88-100%
# of each axis. Each grey image is resampled (bilinear, separably: rows R, columns C) at every
# such region on a coarse grid, then around the best one with finer steps, and compared with
# the other by correlation (brightness and contrast do not count). Both ways: either may be
# the crop.

F32 = npt.NDArray[np.float32]
Axis = tuple[float, float]  # (scale, offset) of a region along one axis, in units of the side


def aligned_similarity(a: bytes, b: bytes) -> float:
    """Highest correlation (-1..1) between one grey image and a region of the other covering
    at least min(ALIGN_SCALES) of each axis, resized to the same grid (GREY_SIDE x GREY_SIDE;
    stored grey images of either size)."""
    first, second = _grey_array(_coarse(a)), _grey_array(_coarse(b))
    return max(_best_alignment(first, second), _best_alignment(second, first))


def fine_similarity(a: bytes, b: bytes) -> float:
    """`aligned_similarity` of two FINE_SIDE grey images: each region of one is area-averaged
    down to GREY_SIDE (no bilinear guess between coarse pixels), against the other's 2x2
    averages; -1 when either is not FINE_SIDE."""
    first, second = _fine(a), _fine(b)
    if first is None or second is None:
        return -1.0
    return max(
        _best_alignment(first, second, _area_resamplers),
        _best_alignment(second, first, _area_resamplers),
    )


def _grey_array(grey: bytes) -> F32:
    return np.frombuffer(grey, dtype=np.uint8).reshape(GREY_SIDE, GREY_SIDE).astype(np.float32)


Resamplers = Callable[[tuple[Axis, ...]], F32]  # axes -> their stacked resampling matrices


def _best_alignment(whole: F32, part: F32, resamplers: Resamplers | None = None) -> float:
    """How well `part` matches the best-fitting region of `whole`."""
    maps = resamplers or _resamplers
    whole_part = maps(((1.0, 0.0),))[0]
    target = _normalized(whole_part @ part @ whole_part.T).astype(np.float64)
    centred = (whole - whole.mean()).astype(np.float64)  # made once for the four searches
    grid = [(s, f * (1 - s)) for s in ALIGN_SCALES for f in ((0.5,) if s == 1 else (0, 0.5, 1))]
    best, (rows, cols) = _best_of(centred, target, grid, grid, maps)
    for step in ALIGN_STEPS:
        score, found = _best_of(centred, target, _around(rows, step), _around(cols, step), maps)
        if score > best:
            best, (rows, cols) = score, found
    return best


def _around(axis: Axis, step: float) -> list[Axis]:
    """The regions one step of scale and/or offset away from `axis` (and itself)."""
    scale, offset = axis
    near = []
    for new_scale in (scale - step, scale, min(1.0, scale + step)):
        for new_offset in (offset - step, offset, offset + step):
            near.append((new_scale, min(max(0.0, new_offset), 1.0 - new_scale)))
    return near


def _best_of(
    centred: F64, target: F64, rows: list[Axis], cols: list[Axis], maps: Resamplers
) -> tuple[float, tuple[Axis, Axis]]:
    """The best correlation with `target` (normalized) of an image W resampled at every region
    rows[k] x cols[m], and that region; `centred` is W minus its mean (which does not change
    S - mean(S), and keeps sum(S^2) - sum(S)^2 / n precise). Each region S = R W C^T (R, C:
    the axes' resamplers, rows summing to 1) is never made: with P = R W, its correlation is
    <P, T C> over the length of S - mean(S), from sum(S) = <sum of P's rows, sum of C's rows>
    and sum(S^2) = <P^T P, C^T C>, all K x M at once by a few small products."""
    row_maps = _axis_terms(maps, tuple(rows))[0]  # R_k
    across, col_sums, col_grams = _axis_terms(maps, tuple(cols))  # C_m, their sums, C_m^T C_m
    lifted = row_maps @ centred  # P_k: K x side x W
    k_count, m_count = len(rows), len(cols)
    seen = (target @ across).reshape(m_count, -1)  # T C_m
    products = lifted.reshape(k_count, -1) @ seen.T  # <P_k, T C_m>
    sums = lifted.sum(axis=1) @ col_sums.T  # sum(S_km)
    grams = (_transposed(lifted) @ lifted).reshape(k_count, -1)  # P_k^T P_k
    squares = grams @ col_grams.T  # sum(S_km^2)
    pixels = target.shape[-1] * target.shape[-2]
    lengths = np.sqrt(np.maximum(squares - sums * sums / pixels, 0.0))
    scores = products / np.maximum(lengths, 1e-6)
    k, m = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return float(scores[k, m]), (rows[int(k)], cols[int(m)])


def _transposed(stack: F64) -> F64:
    """Each matrix of the stack transposed, laid out anew (a stacked product of a transposed
    view does not go through BLAS: ~10x slower)."""
    return np.ascontiguousarray(stack.transpose(0, 2, 1))


@lru_cache(maxsize=16)  # <= ~0.5 MB each: the grids stay, refinements (6 a pair) come and go
def _axis_terms(maps: Resamplers, axes: tuple[Axis, ...]) -> tuple[F64, F64, F64]:
    """What `_best_of` needs of the resamplers C of `axes` (float64): C, each one's column
    sums, and each one's C^T C flattened."""
    stack = maps(axes).astype(np.float64)
    grams = (_transposed(stack) @ stack).reshape(len(axes), -1)
    return stack, stack.sum(axis=1), grams


# The resampling caches are bounded to ~25 MB in all: the coarse grid's stack is asked for by
# every pair and stays; the refinements around each pair's best come and go (~20 us to make).
@lru_cache(maxsize=64)  # stacks of up to ~80 KB
def _resamplers(axes: tuple[Axis, ...]) -> F32:
    """The stacked resampling matrices of `axes` (the coarse grid's are asked for every pair)."""
    return np.stack([_resampler(round(scale, 4), round(offset, 4)) for scale, offset in axes])


@lru_cache(maxsize=1024)  # 4 KB each
def _resampler(scale: float, offset: float) -> F32:
    """The GREY_SIDE x GREY_SIDE matrix that resamples one axis (bilinear) at the region
    [offset, offset + scale) of it."""
    side = GREY_SIDE
    centres = (offset + scale * (np.arange(side) + 0.5) / side) * side - 0.5
    centres = np.clip(centres, 0, side - 1)
    low = np.minimum(np.floor(centres).astype(np.int64), side - 2)
    weight = (centres - low).astype(np.float32)
    matrix = np.zeros((side, side), dtype=np.float32)
    matrix[np.arange(side), low] = 1 - weight
    matrix[np.arange(side), low + 1] += weight
    return matrix


@lru_cache(maxsize=64)
def _area_resamplers(axes: tuple[Axis, ...]) -> F32:
    """`_resamplers` from FINE_SIDE to GREY_SIDE by area averages (`_area_resampler`)."""
    return np.stack([_area_resampler(round(scale, 4), round(offset, 4)) for scale, offset in axes])


@lru_cache(maxsize=1024)  # 8 KB each
def _area_resampler(scale: float, offset: float) -> F32:
    """The GREY_SIDE x FINE_SIDE matrix whose row i averages the FINE_SIDE pixels of one axis
    under the i-th GREY_SIDE-th of the region [offset, offset + scale) (partial pixels by the
    part covered)."""
    edges = (offset + scale * np.arange(GREY_SIDE + 1) / GREY_SIDE) * FINE_SIDE
    low, high = edges[:-1, None], edges[1:, None]
    pixels = np.arange(FINE_SIDE)[None, :]
    covered = np.clip(np.minimum(high, pixels + 1) - np.maximum(low, pixels), 0, None)
    matrix: F32 = (covered / covered.sum(axis=1, keepdims=True)).astype(np.float32)
    return matrix


def _normalized(images: F32) -> F32:
    """Each image (the last two axes) minus its mean, scaled to unit length (flat: zeros)."""
    centred = images - images.mean(axis=(-1, -2), keepdims=True)
    length = np.sqrt((centred * centred).sum(axis=(-1, -2), keepdims=True))
    normalized: F32 = centred / np.maximum(length, 1e-6)
    return normalized


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


def _query_pairs(stored: U64, queries: U64, threshold: int) -> tuple[I32, I32]:
    """Every (query, stored) pair of indices whose hashes differ in at most `threshold` bits,
    each once, in (query, stored) order: the stored chunks are indexed, each query's looked up
    with every flip mask. A pair near enough is found by every chunk it is close in; it is
    kept from the first of them only (`_first_found_in`), so what is held is one int64 key a
    distinct pair, never the chunks' repeats (at 20,000 queries onto 464,000 stored, radius
    12: 0.87M pairs of 1.38M found; holding and then de-duplicating them all took ~65 MB)."""
    keys: list[I64] = []
    if len(stored) and len(queries):
        plan = _query_plan(len(stored), len(queries), threshold)
        for chunk, (low, bits, radius) in enumerate(plan):
            for query, member in _query_chunk_pairs(stored, queries, low, bits, radius):
                differ = queries[query] ^ stored[member]
                close = np.flatnonzero(np.bitwise_count(differ) <= threshold)  # few
                keep = close[_first_found_in(differ[close], plan[:chunk])]
                keys.append(query[keep].astype(np.int64) * len(stored) + member[keep])
    if not keys:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    found = np.concatenate(keys)
    del keys  # the blocks' keys go before the two halves are made
    found.sort()
    return _split_keys(found, len(stored))


def _split_keys(keys: I64, stored: int) -> tuple[I32, I32]:
    """(query, stored) indices of keys query * stored + member, as int32, split _GUARD_BLOCK
    keys at a time (no int64 halves of all the keys are ever held)."""
    query = np.empty(len(keys), dtype=np.int32)
    member = np.empty(len(keys), dtype=np.int32)
    for part in _blocks(len(keys), _GUARD_BLOCK):
        query[part], member[part] = np.divmod(keys[part], stored)
    return query, member


def _blocks(count: int, size: int) -> Iterator[slice]:
    """Slices of `size` items (the last maybe fewer) covering `count` items in order."""
    for start in range(0, count, size):
        yield slice(start, start + size)


def _first_found_in(differ: U64, earlier: Sequence[Chunk]) -> npt.NDArray[np.bool_]:
    """Whether pairs whose hashes differ by `differ` were missed by every `earlier` chunk (the
    chunk's bits differ in more than its radius): the chunk finding them now is their first."""
    first = np.ones(len(differ), dtype=bool)
    for low, bits, radius in earlier:
        first &= np.bitwise_count(_chunk_keys(differ, low, bits)) > radius
    return first


def _query_chunk_pairs(
    stored: U64, queries: U64, low: int, bits: int, radius: int
) -> Iterator[tuple[I32, I32]]:
    """(query, stored) candidates whose chunk [low, low+bits) differs in at most `radius` bits."""
    table = _BucketTable(_chunk_keys(stored, low, bits), bits)
    keys = _chunk_keys(queries, low, bits)
    order = np.argsort(keys, kind="stable").astype(np.int32)  # table walked nearly in order
    keys = keys[order]
    masks = np.array(
        [0] + [m for lowest in range(bits) for m in _masks(bits, radius, lowest)], dtype=np.int32
    )
    per_block = max(1, _CANDIDATE_BLOCK // 4 // max(1, len(order)))
    for start in range(0, len(masks), per_block):
        block = masks[start : start + per_block]
        yield from table.members(
            np.tile(order, len(block)), (keys[None, :] ^ block[:, None]).ravel()
        )


def _chunk_keys(hashes: U64, low: int, bits: int) -> I32:
    return ((hashes >> np.uint64(low)) & np.uint64((1 << bits) - 1)).astype(np.int32)


def _query_plan(n: int, queries: int, threshold: int) -> list[Chunk]:
    """The chunks that cost least to look `queries` hashes up among n indexed ones."""

    def cost(bits: int, radius: int) -> float:
        masks = sum(comb(bits, k) for k in range(radius + 1))
        return n * 2 + (1 << bits) + masks * (queries + 200) * (1 + 4 * n / 2.0**bits)

    return _cheapest_plan(threshold, cost)


def _plan(n: int, threshold: int) -> list[Chunk]:
    """The chunks (low bit, width, search radius) that cost least for n hashes."""
    return _cheapest_plan(threshold, lambda bits, radius: _chunk_cost(n, bits, radius))


def _cheapest_plan(threshold: int, cost_of: Callable[[int, int], float]) -> list[Chunk]:
    """The split into chunks (low bit, width, radius) with sum(radius + 1) > threshold whose
    total `cost_of(width, radius)` is least."""
    best: tuple[float, list[Chunk]] | None = None
    fewest = -(-HASH_BITS // _MAX_CHUNK_BITS)
    for m in range(fewest, max(fewest, min(threshold + 1, HASH_BITS)) + 1):
        widths = [HASH_BITS // m + (1 if i < HASH_BITS % m else 0) for i in range(m)]
        spare = max(0, threshold + 1 - m)  # sum of radii needed: sum(r_i + 1) >= t + 1
        radii = [spare // m + (1 if i < spare % m else 0) for i in range(m)]
        for order in (radii, radii[::-1]):  # the larger radii on the wider or the narrower chunks
            cost = sum(cost_of(w, r) for w, r in zip(widths, order, strict=True))
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
    keys = _chunk_keys(phashes, low, bits)
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
    """Hashes grouped by chunk value, looked up by direct addressing: `slot` (2**bits entries)
    gives each occupied bucket's place among the occupied ones, whose first member, start and
    size are kept per occupied bucket only. At 22 bits that is ~20 MB, built without any
    wider 2**bits temporary (a bincount and cumsum over every bucket took ~100 MB at the peak)."""

    def __init__(self, keys: I32, bits: int) -> None:
        self.order = np.argsort(keys, kind="stable").astype(np.int32)
        ordered = keys[self.order]
        starts = np.flatnonzero(np.diff(ordered, prepend=np.int32(-1)))
        self.starts = starts.astype(np.int32)
        self.sizes = np.diff(starts, append=len(ordered)).astype(np.int32)
        # The first member of each occupied bucket: one lookup serves most queries.
        self.first = self.order[self.starts]
        self.slot = np.full(1 << bits, -1, dtype=np.int32)
        self.slot[ordered[starts]] = np.arange(len(starts), dtype=np.int32)
        # Whether a bucket holds any: a table a quarter of `slot`'s size, so that the many
        # lookups of empty buckets stay in cache (3x faster than asking `slot` at 1M hashes).
        self.occupied = self.slot >= 0

    def members(self, queries: I32, query_keys: I32) -> Iterator[tuple[I32, I32]]:
        """(query, member) for every member of the bucket each query key points at."""
        hit = np.flatnonzero(self.occupied[query_keys])
        slots = self.slot[query_keys[hit]]
        yield queries[hit], self.first[slots]
        sizes = self.sizes[slots]
        crowded = np.flatnonzero(sizes > 1)
        if len(crowded):
            yield from self._rest(
                queries[hit[crowded]], self.starts[slots[crowded]] + 1, sizes[crowded] - 1
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
