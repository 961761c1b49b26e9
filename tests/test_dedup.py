"""Hashes, the near-duplicate index, grouping guards and the canonical choice."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from mediatool.config import DEFAULT_PHASH_THRESHOLD, ImageSettings, Settings
from mediatool.dedup import (
    ALIGNED_MIN,
    FINE_MIN,
    FINE_SIDE,
    WIDE_THRESHOLD,
    Columns,
    StoredHashes,
    _area_resamplers,
    _best_of,
    _candidate_pairs,
    _coarse,
    _distances,
    _normalized,
    _plausible,
    _query_pairs,
    _resamplers,
    _split_keys,
    aligned_similarity,
    canonical_key,
    extended_state,
    fine_similarity,
    grey_of,
    group_images,
    group_new_images,
    grouping_state,
    hamming,
    is_flat,
    phash_of,
)
from mediatool.imaging import analyze
from mediatool.manifest import Manifest
from mediatool.models import Analysis, AnalyzeJob, ImageInfo
from mediatool.pipeline.fetching import group_and_count

SHARED = Path(__file__).resolve().parent / "data" / "images"  # public domain (LICENSES.md)


def info(sha: str, phash: str, dhash: str = "0f0f0f0f0f0f0f0f", **fields: object) -> ImageInfo:
    values: dict[str, object] = {"format": "JPEG", "width": 800, "height": 600, "bytes": 50_000}
    values.update(fields)
    return ImageInfo(sha256=sha, phash=phash, dhash=dhash, **values)  # type: ignore[arg-type]


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def analysed(folder: Path, data: bytes) -> ImageInfo:
    sha = hashlib.sha256(data).hexdigest()
    path = folder / sha
    path.write_bytes(data)
    return analyze(AnalyzeJob(sha, path, folder / "cache"), ImageSettings()).info


# --- hashes -------------------------------------------------------------------------------


def test_hamming() -> None:
    assert hamming("0000000000000000", "0000000000000000") == 0
    assert hamming("ffffffffffffffff", "0000000000000000") == 64
    assert hamming("8000000000000001", "0000000000000000") == 2
    with pytest.raises(ValueError, match="same length"):
        hamming("", "0000000000000000")


def test_phash_of_is_sixteen_hex_digits_and_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    rgba.paste((10, 120, 200, 255), (20, 20, 80, 60))
    on_white = Image.new("RGB", (100, 100), "white")
    on_white.paste((10, 120, 200), (20, 20, 80, 60))
    assert phash_of(rgba) == phash_of(on_white)
    assert len(phash_of(rgba)) == 16


def test_flat() -> None:
    assert is_flat(Image.new("RGB", (300, 300), "white"))
    noise = np.random.default_rng(0).normal(128, 3, (300, 300)).clip(0, 255).astype(np.uint8)
    assert is_flat(Image.fromarray(noise))  # sensor noise on a grey wall
    assert not is_flat(Image.linear_gradient("L"))


# --- the index ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    threshold=st.integers(0, 20),
)
def test_index_finds_exactly_the_pairs_brute_force_finds(seed: int, n: int, threshold: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, max(1, n // 3), dtype=np.uint64, endpoint=False)
    hashes = base[rng.integers(0, len(base), n)]
    for k in range(n):  # flip a few bits of each copy, so many pairs sit near the threshold
        for bit in rng.choice(64, int(rng.integers(0, threshold + 3)), replace=False):
            hashes[k] ^= np.uint64(1) << np.uint64(int(bit))
    left, right = _candidate_pairs(hashes, threshold)
    found = set(zip(left.tolist(), right.tolist(), strict=True))
    distances = np.bitwise_count(hashes[:, None] ^ hashes[None, :]) if n else np.zeros((0, 0))
    expected = {(i, j) for i, j in combinations(range(n), 2) if distances[i, j] <= threshold}
    assert found == expected


def test_index_scales_past_brute_force() -> None:
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, 200_000, dtype=np.uint64, endpoint=False)
    hashes[1] = hashes[0] ^ np.uint64(0b1011)  # 3 bits apart
    left, right = _candidate_pairs(hashes, 8)
    assert (0, 1) in set(zip(left.tolist(), right.tolist(), strict=True))


# --- grouping and its guards --------------------------------------------------------------


def test_every_input_maps_and_singletons_map_to_themselves() -> None:
    images = [info("a", "0000000000000000"), info("b", "ffffffffffffffff"), info("c", "")]
    assert group_images(images, 8) == {"a": "a", "b": "b", "c": "c"}
    assert group_images([], 8) == {}


def test_near_duplicates_group_and_the_largest_is_canonical() -> None:
    images = [
        info("small", "00000000000000ff", width=400, height=300),
        info("big", "00000000000000fe", width=1600, height=1200),
        info("mid", "00000000000001ff", dhash="0f0f0f0f0f0f0f0e", width=800, height=600),
    ]
    assert group_images(images, 8) == {"small": "big", "big": "big", "mid": "big"}


def test_groups_are_joined_through_chains() -> None:
    chain = [info(f"{k}", f"{(1 << (6 * k)) - 1:016x}") for k in range(4)]  # 6 bits per step
    mapping = group_images(chain, 6)
    assert len(set(mapping.values())) == 1


@pytest.mark.parametrize(
    "guarded",
    [
        info("x", "00000000000000ff", width=31, height=600),  # tiny side
        info("x", "00000000000000ff", width=60, height=60),  # < 4096 pixels
        info("x", "00000000000000ff", flat=True),  # near-blank
        info("x", "00000000000000ff", width=800, height=800),  # 1.33 vs 1.0 aspect
        info("x", "00000000000000ff", dhash="f0f0f0f0f0f0f0f0"),  # dhash disagrees
        info("x", "00000000000000ff", dhash=""),  # no dhash to confirm with
        info("x", "", format="SVG"),
    ],
)
def test_guards_keep_phash_lookalikes_apart(guarded: ImageInfo) -> None:
    other = info("y", "00000000000000ff")
    assert group_images([guarded, other], 8) == {"x": "x", "y": "y"}


def test_aspect_within_ten_percent_still_groups() -> None:
    images = [info("a", "00000000000000ff"), info("b", "00000000000000ff", width=784, height=600)]
    assert group_images(images, 8)["b"] == "a"


def test_canonical_key_order() -> None:
    png = info("p", "0", format="PNG", bytes=900_000)
    jpeg = info("j", "0", format="JPEG", bytes=90_000)
    bigger = info("b", "0", width=1000, height=750, bytes=10_000)
    webp = info("w", "0", format="WEBP", bytes=900_000)
    same = info("a", "0", format="PNG", bytes=900_000)
    assert sorted([jpeg, png, bigger], key=canonical_key) == [bigger, png, jpeg]
    assert sorted([webp, png], key=canonical_key) == [png, webp]  # same pixels and bytes
    assert min([png, same], key=canonical_key) is same  # then sha256


# --- incremental grouping -----------------------------------------------------------------


def _random_images(rng: np.random.Generator, n: int) -> list[ImageInfo]:
    """n images drawn round a few bases: phashes 0..14 bits from their base (both bands),
    dhashes 0..12 bits, a few sizes (some too small to group), flat ones, and grey images that
    are their base's (the wide band merges them), another base's or noise."""
    bases = max(1, n // 4)
    phash = rng.integers(0, 2**64, bases, dtype=np.uint64, endpoint=False)
    dhash = rng.integers(0, 2**64, bases, dtype=np.uint64, endpoint=False)
    greys = [bytes(rng.integers(0, 256, 32 * 32, dtype=np.uint8)) for _ in range(bases + 1)]
    sizes = [(800, 600), (1600, 1200), (780, 600), (640, 480), (30, 30)]
    images = []
    for k in range(n):
        base = int(rng.integers(0, bases))
        width, height = sizes[int(rng.integers(0, len(sizes)))]
        images.append(
            info(
                hashlib.sha256(str(k).encode()).hexdigest(),
                f"{int(_flipped(rng, phash[base], 14)):016x}",
                f"{int(_flipped(rng, dhash[base], 12)):016x}",
                width=width,
                height=height,
                bytes=int(rng.integers(10_000, 20_000)),
                format=("PNG", "JPEG", "WEBP")[int(rng.integers(0, 3))],
                flat=bool(rng.random() < 0.05),
                grey=greys[(base, int(rng.integers(0, bases)), bases)[int(rng.integers(0, 3))]],
            )
        )
    return images


def _flipped(rng: np.random.Generator, value: np.uint64, most: int) -> int:
    bits = rng.choice(64, int(rng.integers(0, most + 1)), replace=False)
    return int(value) ^ sum(1 << int(bit) for bit in bits)


def _grouped_in_batches(images: list[ImageInfo], cuts: list[int], threshold: int) -> dict[str, str]:
    """Group the first batch in full, then each further one onto what is grouped, as fetch does
    (the stored images looked up by their position, as the manifest looks them up by rowid)."""
    batches = [images[a:b] for a, b in zip([0, *cuts], [*cuts, len(images)], strict=True)]
    stored = list(batches[0])
    canonical_of = group_images(stored, threshold)
    state = grouping_state(stored, threshold)
    by_sha = {image.sha256: image for image in images}
    for batch in batches[1:]:
        extended = extended_state(state, threshold, len(stored), batch)
        assert extended is not None  # same rules, nothing went: this is the incremental path
        hashes = StoredHashes.of_images(enumerate(stored))
        change = group_new_images(
            batch,
            hashes,
            extended,
            threshold,
            stored_names=_stored_names(list(stored), dict(canonical_of)),
            canonical_infos=lambda shas: {sha: by_sha[sha] for sha in shas},
            greys=lambda shas: {sha: by_sha[sha].grey for sha in shas},
        )
        canonical_of = {
            sha: change.renamed.get(canonical, canonical) for sha, canonical in canonical_of.items()
        }
        canonical_of.update(change.canonical_of)
        stored += batch
        state = change.state
    assert state == grouping_state(images, threshold)
    return canonical_of


def _stored_names(
    stored: list[ImageInfo], canonical_of: dict[str, str]
) -> Callable[[Sequence[int]], dict[int, tuple[str, str]]]:
    """Names stored images by their position (as the manifest names them by rowid)."""
    return lambda ids: {k: (stored[k].sha256, canonical_of[stored[k].sha256]) for k in ids}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    threshold=st.integers(0, 12),
    cuts=st.lists(st.floats(0, 1), max_size=5),
)
def test_grouping_in_batches_gives_the_full_pass_groups(
    seed: int, n: int, threshold: int, cuts: list[float]
) -> None:
    images = _random_images(np.random.default_rng(seed), n)
    positions = sorted({round(cut * n) for cut in cuts} - {0, n})
    assert _grouped_in_batches(images, positions, threshold) == group_images(images, threshold)


def test_stored_images_that_no_guard_lets_through_are_never_named() -> None:
    # 300 stored images within the phash radius of the new one: 200 with a dhash far off, 99
    # with another aspect ratio, one real copy. Only the copy is named (and its grey looked up
    # by no one: it is within the threshold), so a page holds what it groups, not all it meets.
    new = info("new", "0" * 16, "0" * 16, width=800, height=600)
    far_dhash = [info(f"d{k}", f"{1 << (k % 60):016x}", "f" * 16) for k in range(200)]
    other_shape = [
        info(f"s{k}", f"{1 << (k % 60):016x}", "0" * 16, width=600, height=800) for k in range(99)
    ]
    copy = info("copy", "0000000000000003", "0000000000000001", width=800, height=600)
    stored = [*far_dhash, *other_shape, copy]
    asked: list[int] = []

    def names(ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        asked.extend(ids)
        return {k: (stored[k].sha256, stored[k].sha256) for k in ids}

    state = extended_state(grouping_state(stored, 10), 10, len(stored), [new])
    assert state is not None
    change = group_new_images(
        [new],
        StoredHashes.of_images(enumerate(stored)),
        state,
        10,
        stored_names=names,
        canonical_infos=lambda shas: {s.sha256: s for s in stored if s.sha256 in shas},
        greys=lambda shas: {},
    )
    assert asked == [len(stored) - 1]
    assert {change.canonical_of["new"], change.renamed.get("copy", "copy")} in ({"new"}, {"copy"})


def test_the_manifest_gives_the_stored_columns_the_images_give(tmp_path: Path) -> None:
    images = _random_images(np.random.default_rng(8), 80)
    with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
        _manifest_with(manifest, images)
        rows = manifest.ungrouped_rows()
        group_and_count(manifest, Settings())
        from_columns = StoredHashes.of_columns(*manifest.grouped_columns())
        assert len(from_columns) < len(rows)  # the flat and small ones are left out
        named = manifest.grouped_names(from_columns.ids.tolist())
    from_images = StoredHashes.of_images(rows)
    assert from_columns.ids.tolist() == from_images.ids.tolist()
    for name in ("phashes", "dhashes", "aspects"):
        assert (
            getattr(from_columns.columns, name).tolist()
            == getattr(from_images.columns, name).tolist()
        )
    by_id = dict(rows)
    assert {ident: sha for ident, (sha, _) in named.items()} == {
        ident: by_id[ident].sha256 for ident in from_images.ids.tolist()
    }


def test_a_new_image_between_two_groups_merges_them() -> None:
    left = [info("a", "0000000000000000", width=1600, height=1200), info("b", "0000000000000007")]
    right = [info("c", "00000000000fff00"), info("d", "00000000001fff00")]
    bridge = [info("e", "000000000000ff00")]  # 8 bits from a, 4 from c: joins both
    mapping = _grouped_in_batches([*left, *right, *bridge], [4], 8)
    assert group_images([*left, *right], 8) == {"a": "a", "b": "a", "c": "c", "d": "c"}
    assert mapping == dict.fromkeys("abcde", "a")


def test_the_query_index_finds_exactly_the_pairs_brute_force_finds_each_once_in_order() -> None:
    rng = np.random.default_rng(11)
    stored = rng.integers(0, 2**64, 3000, dtype=np.uint64, endpoint=False)
    queries = stored[rng.integers(0, 3000, 300)].copy()
    for k in range(len(queries)):
        queries[k] = np.uint64(_flipped(rng, queries[k], 16))
    for threshold in (0, 6, 12, 20):
        query, member = _query_pairs(stored, queries, threshold)
        distances = np.bitwise_count(queries[:, None] ^ stored[None, :])
        expected = set(zip(*np.nonzero(distances <= threshold), strict=True))
        pairs = list(zip(query.tolist(), member.tolist(), strict=True))
        assert set(pairs) == expected
        # each pair once (a close pair is close in several chunks), in (query, stored) order
        assert pairs == sorted(expected)


def test_the_guards_judged_by_blocks_keep_exactly_the_pairs_judged_at_once() -> None:
    rng = np.random.default_rng(3)
    columns = Columns(
        rng.integers(0, 2**64, 500, dtype=np.uint64, endpoint=False),
        rng.integers(0, 2**64, 500, dtype=np.uint64, endpoint=False),
        rng.uniform(0.5, 2.0, 500),
    )
    left, right = rng.integers(0, 500, (2, 200_000))  # more than three blocks of pairs
    kept_left, kept_right = _plausible(columns, left, right, 1.1, 30)
    ratio = columns.aspects[left] / columns.aspects[right]
    differ = np.bitwise_count(columns.dhashes[left] ^ columns.dhashes[right])
    keep = (np.maximum(ratio, 1 / ratio) <= 1.1) & (differ <= 30)
    assert 1000 < keep.sum() < len(left)  # some pairs of every kind
    assert kept_left.tolist() == left[keep].tolist()
    assert kept_right.tolist() == right[keep].tolist()


def test_pair_keys_and_distances_by_blocks_equal_those_of_all_pairs_at_once() -> None:
    rng = np.random.default_rng(5)
    stored = 464_000
    query, member = rng.integers(0, 20_000, 200_000), rng.integers(0, stored, 200_000)
    split_query, split_member = _split_keys(query * stored + member, stored)  # over 3 blocks
    assert split_query.dtype == split_member.dtype == np.int32  # 8 bytes a pair, not 16
    assert split_query.tolist() == query.tolist()
    assert split_member.tolist() == member.tolist()
    phashes = rng.integers(0, 2**64, 500, dtype=np.uint64, endpoint=False)
    left, right = rng.integers(0, 500, (2, 200_000), dtype=np.int32)
    expected = np.bitwise_count(phashes[left] ^ phashes[right])
    assert _distances(phashes, left, right).tolist() == expected.tolist()


def _manifest_with(manifest: Manifest, images: list[ImageInfo]) -> None:
    for image in images:
        manifest.add_original(image.sha256, f"originals/{image.sha256}", image.bytes)
        manifest.record_analysis(Analysis(info=image, thumbnails=()))


def _canonicals(manifest: Manifest) -> dict[str, str]:
    rows = manifest.db.execute("SELECT sha256, canonical FROM images")
    return {sha: canonical for sha, canonical in rows}


def test_fetch_groups_only_new_images_and_agrees_with_a_full_regroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _random_images(np.random.default_rng(5), 120)
    with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
        _manifest_with(manifest, images[:50])
        group_and_count(manifest, Settings())
        _manifest_with(manifest, images[50:])
        with monkeypatch.context() as patched:  # the second grouping is not a full pass
            patched.setattr(Manifest, "start_grouping", _no_full_pass)
            group_and_count(manifest, Settings())
        incremental = _canonicals(manifest)
        assert manifest.ungrouped_images() == []
        assert manifest.grouping_state() == grouping_state(images, DEFAULT_PHASH_THRESHOLD)
        group_and_count(manifest, Settings(), full=True)
        assert _canonicals(manifest) == incremental
        assert len(set(incremental.values())) < len(images)  # some groups formed


def _no_full_pass(manifest: Manifest, state: object) -> None:
    raise AssertionError("a full pass started where the grouping could be extended")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    threshold=st.integers(0, 12),
    page=st.integers(1, 61),
)
def test_a_full_pass_a_page_at_a_time_gives_the_whole_sets_groups(
    seed: int, n: int, threshold: int, page: int
) -> None:
    images = _random_images(np.random.default_rng(seed), n)
    with (
        tempfile.TemporaryDirectory() as folder,
        Manifest.open(Path(folder) / "manifest.sqlite") as manifest,
    ):
        _manifest_with(manifest, images)
        group_and_count(manifest, Settings(), threshold, full=True, page=page)
        assert _canonicals(manifest) == group_images(images, threshold)
        assert manifest.grouping_state() == grouping_state(images, threshold)


def test_a_full_pass_stopped_between_pages_is_finished_by_the_next_grouping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _random_images(np.random.default_rng(9), 90)
    pages = 0
    extend = Manifest.extend_grouping

    def stopping_after_two(manifest: Manifest, *args: Any) -> None:
        nonlocal pages
        if pages == 2:
            raise KeyboardInterrupt  # the run is stopped between two pages
        pages += 1
        extend(manifest, *args)

    with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
        _manifest_with(manifest, images)
        with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
            patched.setattr(Manifest, "extend_grouping", stopping_after_two)
            group_and_count(manifest, Settings(), page=20)
        assert len(manifest.ungrouped_images()) == 50  # two pages of 20 grouped
    with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
        with monkeypatch.context() as patched:  # the next run goes on from the third page
            patched.setattr(Manifest, "start_grouping", _no_full_pass)
            group_and_count(manifest, Settings(), page=20)
        assert _canonicals(manifest) == group_images(images, DEFAULT_PHASH_THRESHOLD)
        assert manifest.grouping_state() == grouping_state(images, DEFAULT_PHASH_THRESHOLD)


def test_the_wide_band_looks_up_greys_a_block_at_a_time_with_the_same_groups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = _random_images(np.random.default_rng(3), 200)
    by_sha = {image.sha256: image.grey for image in images}
    asked: list[int] = []

    def greys(shas: Sequence[str]) -> dict[str, bytes]:
        asked.append(len(shas))
        return {sha: by_sha[sha] for sha in shas}

    whole = group_images(images, 6, greys=greys)
    assert max(asked) > 8  # the pairs of one block need more than 8 greys
    asked.clear()
    monkeypatch.setattr("mediatool.dedup.WIDE_BLOCK", 4)
    assert group_images(images, 6, greys=greys) == whole
    assert len(asked) > 1 and max(asked) <= 8  # 4 pairs: at most 8 images a look-up
    assert len(set(whole.values())) < len(images)  # some groups formed


def test_a_changed_threshold_or_a_deleted_image_regroups_in_full(tmp_path: Path) -> None:
    chain = [info(f"{k}" * 64, f"{(1 << (6 * k)) - 1:016x}") for k in range(1, 4)]
    with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
        _manifest_with(manifest, chain)
        group_and_count(manifest, Settings(), 6)
        assert len(set(_canonicals(manifest).values())) == 1
        group_and_count(manifest, Settings(), 3)  # another threshold: no longer one chain
        assert _canonicals(manifest) == {image.sha256: image.sha256 for image in chain}
        group_and_count(manifest, Settings(), 6)
        manifest.forget_images([chain[1].sha256])  # the link between the other two
        group_and_count(manifest, Settings(), 6)
        assert _canonicals(manifest) == {
            chain[0].sha256: chain[0].sha256,
            chain[2].sha256: chain[2].sha256,
        }


# --- real photographs ---------------------------------------------------------------------


PHOTOS = ("rocket.jpg", "chelsea.png", "coffee.png", "astronaut.png", "camera.png", "horse.png")


def _variants(path: Path) -> list[tuple[str, bytes]]:
    """(picture label, bytes): re-encodings of the photo, and its two halves (other pictures)."""
    original = Image.open(path)
    rgb = original.convert("RGB")
    w, h = rgb.size
    half = rgb.resize((w // 2, h // 2), Image.Resampling.LANCZOS)
    cropped = rgb.crop((w // 100, h // 100, w - w // 100, h - h // 100))
    name = path.stem
    return [
        (name, path.read_bytes()),
        (name, encoded(rgb, "JPEG", quality=95)),
        (name, encoded(rgb, "JPEG", quality=50)),
        (name, encoded(half, "JPEG", quality=85)),
        (name, encoded(original, "PNG", optimize=True)),
        (name, encoded(original, "WEBP", quality=80)),
        (name, encoded(cropped, "JPEG", quality=90)),
        (f"{name}/left", encoded(rgb.crop((0, 0, w // 2, h)), "PNG")),
        (f"{name}/right", encoded(rgb.crop((w // 2, 0, w, h)), "PNG")),
    ]


def test_planted_precision_and_recall_on_shared_photos(tmp_path: Path) -> None:
    labelled = [v for name in PHOTOS for v in _variants(SHARED / name)]
    infos = [analysed(tmp_path, data) for _, data in labelled]
    labels = [label for label, _ in labelled]
    mapping = group_images(infos, DEFAULT_PHASH_THRESHOLD)
    pairs = list(combinations(range(len(infos)), 2))
    truth = {(i, j) for i, j in pairs if labels[i] == labels[j]}
    found = {(i, j) for i, j in pairs if mapping[infos[i].sha256] == mapping[infos[j].sha256]}
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert precision == 1.0
    assert recall >= 0.95  # measured: 1.0 at every threshold 4..16 for this subset


def test_reencodings_group_with_the_png_as_canonical(tmp_path: Path) -> None:
    chelsea = Image.open(SHARED / "chelsea.png")
    png = analysed(tmp_path, (SHARED / "chelsea.png").read_bytes())
    copies = [analysed(tmp_path, encoded(chelsea, "JPEG", quality=q)) for q in (95, 75, 50)] + [
        analysed(tmp_path, encoded(chelsea.resize((225, 150)), "PNG"))
    ]
    others = [
        analysed(tmp_path, (SHARED / name).read_bytes()) for name in ("coffee.png", "rocket.jpg")
    ]
    mapping = group_images([*copies, png, *others], DEFAULT_PHASH_THRESHOLD)
    assert {mapping[c.sha256] for c in [*copies, png]} == {png.sha256}
    assert all(mapping[o.sha256] == o.sha256 for o in others)


# --- the wide band: crops confirmed by aligned grey images ------------------------------------


def rescaled_crop(image: Image.Image, sides: tuple[float, float, float, float]) -> Image.Image:
    """`image` with the given fraction cut off each side (left, top, right, bottom), at 80%."""
    w, h = image.size
    left, top, right, bottom = sides
    part = image.crop(
        (round(left * w), round(top * h), round((1 - right) * w), round((1 - bottom) * h))
    )
    return part.resize(
        (round(part.width * 0.8), round(part.height * 0.8)), Image.Resampling.LANCZOS
    )


@pytest.mark.parametrize(
    ("name", "sides"),
    [
        ("chelsea.png", (0.03, 0.03, 0.03, 0.03)),
        ("coffee.png", (0.05, 0.02, 0.01, 0.04)),
        ("astronaut.png", (0.04, 0.04, 0.04, 0.04)),
        ("rocket.jpg", (0.02, 0.05, 0.04, 0.01)),
    ],
)
def test_a_cropped_rescaled_recompressed_copy_is_merged(
    tmp_path: Path, name: str, sides: tuple[float, float, float, float]
) -> None:
    photo = Image.open(SHARED / name).convert("RGB")
    original = analysed(tmp_path, (SHARED / name).read_bytes())
    copy = analysed(tmp_path, encoded(rescaled_crop(photo, sides), "JPEG", quality=80))
    distance = hamming(original.phash, copy.phash)
    assert distance <= WIDE_THRESHOLD
    assert group_images([original, copy], DEFAULT_PHASH_THRESHOLD)[copy.sha256] == original.sha256
    if (
        distance > DEFAULT_PHASH_THRESHOLD
    ):  # beyond the plain phash band: only the wide one finds it
        assert group_images([original, copy], DEFAULT_PHASH_THRESHOLD, wide=False) == {
            original.sha256: original.sha256,
            copy.sha256: copy.sha256,
        }


def test_the_wide_band_finds_crops_phash_alone_misses(tmp_path: Path) -> None:
    """At least one of the planted crops lies beyond the plain threshold (else the band is moot)."""
    distances = []
    for name in PHOTOS:
        photo = Image.open(SHARED / name).convert("RGB")
        for share in (0.02, 0.04, 0.05):
            copy = encoded(rescaled_crop(photo, (share,) * 4), "JPEG", quality=80)
            distances.append(hamming(phash_of(photo), phash_of(Image.open(io.BytesIO(copy)))))
    assert max(distances) > DEFAULT_PHASH_THRESHOLD


def test_different_photos_with_close_phash_are_not_merged(tmp_path: Path) -> None:
    """Halves of different real photos whose phashes fall inside the wide band."""
    pieces = []
    for name in ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"):
        rgb = Image.open(SHARED / name).convert("RGB")
        w, h = rgb.size
        for box in ((0, 0, w // 2, h), (w // 2, 0, w, h), (0, 0, w, h // 2), (0, h // 2, w, h)):
            pieces.append(analysed(tmp_path, encoded(rgb.crop(box), "PNG")))
    close = [
        (a, b)
        for a, b in combinations(pieces, 2)
        if DEFAULT_PHASH_THRESHOLD < hamming(a.phash, b.phash) <= WIDE_THRESHOLD
    ]
    assert close  # the band holds different pictures: the confirmation must tell them apart
    mapping = group_images(pieces, DEFAULT_PHASH_THRESHOLD)
    assert all(mapping[p.sha256] == p.sha256 for p in pieces)


def test_grey_is_stored_by_analysis_and_survives_the_manifest(tmp_path: Path) -> None:
    data = (SHARED / "coffee.png").read_bytes()
    image = analysed(tmp_path, data)
    assert len(image.grey) == FINE_SIDE * FINE_SIDE
    with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
        manifest.add_original(image.sha256, "originals/x.png", len(data))
        manifest.record_analysis(Analysis(info=image, thumbnails=()))
        (stored,) = manifest.ungrouped_images()
        assert manifest.greys([image.sha256, "0" * 64]) == {image.sha256: image.grey}
    assert stored.grey == b""  # greys are looked up for wide-band candidates only


def test_aligned_similarity_finds_the_crop_inside_the_original() -> None:
    photo = Image.open(SHARED / "chelsea.png").convert("RGB")
    crop = rescaled_crop(photo, (0.05, 0.0, 0.0, 0.05))
    assert aligned_similarity(grey_of(photo), grey_of(crop)) >= ALIGNED_MIN
    other = Image.open(SHARED / "coffee.png").convert("RGB")
    assert aligned_similarity(grey_of(photo), grey_of(other)) < ALIGNED_MIN


def brick_wall(seed: int, size: int = 512) -> Image.Image:
    """A wall of 40x18 px bricks of random tones with sensor noise: a fine periodic texture."""
    rng = np.random.default_rng(seed)
    wall = Image.new("RGB", (size, size), (150, 150, 150))
    draw = ImageDraw.Draw(wall)
    for row in range(size // 18 + 1):
        for col in range(-1, size // 40 + 1):
            x, y = col * 40 + 20 * (row % 2), row * 18
            tone = int(rng.integers(120, 200))
            draw.rectangle((x + 2, y + 2, x + 38, y + 16), fill=(tone, tone // 2, tone // 3))
    noise = rng.normal(0, 12, (size, size, 1))
    return Image.fromarray(np.clip(np.asarray(wall) + noise, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("side", [32, 64])
def test_the_best_region_scores_as_resampling_each_region_and_correlating(side: int) -> None:
    """_best_of scores regions from small products without making them: the same scores (to
    float rounding) and the same best region as resampling every region of the grid (bilinear
    at 32, area averages from 64) and correlating it with the target, one by one."""
    rng = np.random.default_rng(side)
    maps = _resamplers if side == 32 else _area_resamplers
    whole = rng.integers(0, 256, (side, side)).astype(np.float32)
    target = _normalized(rng.integers(0, 256, (32, 32)).astype(np.float32))
    rows = [(0.88, 0.0), (0.92, 0.04), (0.96, 0.02), (1.0, 0.0)]
    cols = [(0.9, 0.05), (0.94, 0.0), (1.0, 0.0)]
    direct = np.array(
        [
            [float((_normalized(maps((r,))[0] @ whole @ maps((c,))[0].T) * target).sum())
             for c in cols]
            for r in rows
        ]
    )  # fmt: skip
    centred = (whole - whole.mean()).astype(np.float64)
    score, (row, col) = _best_of(centred, target.astype(np.float64), rows, cols, maps)
    k, m = np.unravel_index(int(np.argmax(direct)), direct.shape)
    assert (row, col) == (rows[int(k)], cols[int(m)])
    assert score == pytest.approx(float(direct.max()), abs=1e-5)


def test_a_cropped_texture_matches_only_at_the_fine_resolution() -> None:
    wall = brick_wall(0)
    crop = Image.open(io.BytesIO(encoded(rescaled_crop(wall, (0.02,) * 4), "JPEG", quality=85)))
    assert aligned_similarity(grey_of(wall), grey_of(crop)) < ALIGNED_MIN  # 32x32 blurs it
    assert fine_similarity(grey_of(wall), grey_of(crop)) >= FINE_MIN
    other = brick_wall(1)  # the same pattern, other bricks: another picture
    assert fine_similarity(grey_of(wall), grey_of(other)) < 0.5


def test_the_wide_band_merges_a_texture_crop_through_the_fine_greys() -> None:
    wall = brick_wall(0)
    crop = Image.open(io.BytesIO(encoded(rescaled_crop(wall, (0.02,) * 4), "JPEG", quality=85)))
    pair = [  # phashes 16 bits apart: the wide band's, beyond the plain threshold
        info("w", "0000000000000000", grey=grey_of(wall), width=512, height=512),
        info("c", "000000000000ffff", grey=grey_of(crop), width=392, height=392),
    ]
    assert group_images(pair, DEFAULT_PHASH_THRESHOLD) == {"w": "w", "c": "w"}
    coarse = [replace(image, grey=_coarse(image.grey)) for image in pair]  # as analyzed before
    assert group_images(coarse, DEFAULT_PHASH_THRESHOLD) == {"w": "w", "c": "c"}


def test_regrouping_a_manifest_merges_a_cropped_copy_through_the_stored_greys(
    tmp_path: Path,
) -> None:
    photo = Image.open(SHARED / "coffee.png").convert("RGB")
    bodies = [
        (SHARED / "coffee.png").read_bytes(),
        encoded(rescaled_crop(photo, (0.05, 0.02, 0.01, 0.04)), "JPEG", quality=80),
        (SHARED / "rocket.jpg").read_bytes(),
    ]
    images = [analysed(tmp_path, body) for body in bodies]
    assert hamming(images[0].phash, images[1].phash) > DEFAULT_PHASH_THRESHOLD
    with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
        for image, body in zip(images, bodies, strict=True):
            manifest.add_original(image.sha256, f"originals/{image.sha256}", len(body))
            manifest.record_analysis(Analysis(info=image, thumbnails=()))
        group_and_count(manifest, Settings())
        assert manifest.group_count() == (1, 2)
