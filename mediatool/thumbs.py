"""Thumbnails: which sizes an original needs (configured widths and the sizes posts declare),
where they live in the cache, and writing them.

Thumbnails are derived files: the same original, size and settings always give the same file,
so one that already exists (and is not empty) is not written again by `fetch`. `thumbs
--rebuild` does write each one again (`replace_existing`), after the settings changed. Every file
goes through a temporary file and a rename (files.py), so a reader never sees half a thumbnail.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, features

from mediatool import store
from mediatool.config import ImageSettings
from mediatool.dedup import has_alpha
from mediatool.errors import UsageError
from mediatool.files import publish, temp_file_in
from mediatool.models import DeclaredSize, Thumbnail

ASPECT_TOLERANCE = 0.01  # a declared W/H within 1% of the actual aspect ratio is followed
REDUCING_GAP = 3.0  # resize: box-reduce by an integer factor first, LANCZOS the last 3x
CHAIN_FACTOR = 2  # a thumbnail this many times wider may stand in for the original

# settings.thumb_format -> (Pillow format, file extension)
FORMATS = {
    "webp": ("WEBP", store.EXTENSIONS["WEBP"]),
    "png": ("PNG", store.EXTENSIONS["PNG"]),
    "jpeg": ("JPEG", store.EXTENSIONS["JPEG"]),
    "avif": ("AVIF", store.EXTENSIONS["AVIF"]),
}
FORMATS["jpg"] = FORMATS["jpeg"]

Size = tuple[int, int]


def thumbnail_sizes(
    width: int, height: int, declared: Sequence[DeclaredSize], settings: ImageSettings
) -> tuple[list[Size], list[str]]:
    """The thumbnail sizes to make for an original of width x height, smallest first, and one
    note per declared size whose aspect ratio differs from the actual one by more than 1%.

    One thumbnail per configured width below the actual width, and one at each declared width
    below it; none is larger than the original or than the size the post declares."""
    if width <= 0 or height <= 0:
        return [], []
    sizes = {(w, _height_at(w, width, height)) for w in settings.thumb_widths if 0 < w < width}
    notes: list[str] = []
    for size in declared:
        made, note = _declared_thumbnail(size, width, height)
        if made:
            sizes.add(made)
        if note and note not in notes:
            notes.append(note)
    return sorted(sizes), notes


def _declared_thumbnail(declared: DeclaredSize, width: int, height: int) -> tuple[Size | None, str]:
    """The thumbnail a declared size asks for (None when it is not below the actual width),
    and the mismatch note ("" when the aspect ratios agree or the height is not declared)."""
    d_width = declared.width if declared.width and declared.width > 0 else None
    d_height = declared.height if declared.height and declared.height > 0 else None
    agrees = d_width is None or d_height is None or _aspects_agree(d_width, d_height, width, height)
    note = ""
    if not agrees:
        assert d_width is not None and d_height is not None
        note = (
            f"declared {d_width}x{d_height} ({d_width / d_height:.3f}) differs from actual "
            f"{width}x{height} ({width / height:.3f})"
        )
    if d_width is None or d_width >= width:
        return None, note
    if agrees and d_height is not None:
        return (d_width, min(d_height, height)), note
    made = (d_width, _height_at(d_width, width, height))
    if d_height is not None and made[1] > d_height:  # fit inside the declared box
        made = (max(1, min(d_width, round(d_height * width / height))), d_height)
    return made, note


def _aspects_agree(d_width: int, d_height: int, width: int, height: int) -> bool:
    return abs((d_width / d_height) / (width / height) - 1.0) <= ASPECT_TOLERANCE


def _height_at(new_width: int, width: int, height: int) -> int:
    """The height that keeps the aspect ratio at `new_width`, at least 1 and at most `height`."""
    return min(height, max(1, round(height * new_width / width)))


def thumb_relpath(sha256: str, width: int, height: int, fmt: str) -> str:
    """Where a thumbnail of format `fmt` (a key as `thumb_format` returns it) lives inside the
    store: the store's layout (store.thumb_relpath) with the format's extension."""
    return store.thumb_relpath(sha256, width, height, FORMATS[fmt][1])


def thumb_format(settings: ImageSettings, alpha: bool) -> str:
    """The format key ("webp", "png", "jpeg") for thumbnails of an image with or without alpha:
    the configured one, except that JPEG cannot keep transparency, so that becomes PNG."""
    fmt = settings.thumb_format.lower()
    if fmt not in FORMATS:
        raise UsageError(
            f"images.thumb_format is {settings.thumb_format!r}; use one of webp, png, jpeg or avif."
        )
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt == "avif" and not avif_supported():
        raise UsageError(
            'images.thumb_format is "avif" but the installed Pillow cannot write AVIF; '
            'install Pillow 11.3 or later with AVIF support, or set images.thumb_format = "webp".'
        )
    return "png" if alpha and fmt == "jpeg" else fmt


def avif_supported() -> bool:
    """Whether the installed Pillow can encode AVIF (its AVIF plugin, built with libavif)."""
    return bool(features.check("avif"))


def make_thumbnails(
    image: Image.Image,
    sha256: str,
    sizes: Sequence[Size],
    cache_root: Path,
    settings: ImageSettings,
    *,
    replace_existing: bool = False,
) -> tuple[Thumbnail, ...]:
    """Write (or find already written) one thumbnail of `image` per size, under cache_root;
    with `replace_existing`, write each again (atomically: readers see the old or the new).

    Largest first: a smaller thumbnail is resized from a larger one at least CHAIN_FACTOR times
    its width when there is one (the same LANCZOS result within a grey level, at a fraction of
    the cost of reducing the whole original again)."""
    fmt = thumb_format(settings, has_alpha(image))
    made: dict[Size, Thumbnail] = {}
    sources: list[Image.Image] = []  # resized thumbnails, largest first
    for width, height in sorted(sizes, reverse=True):
        relpath = thumb_relpath(sha256, width, height, fmt)
        target = cache_root / relpath
        if replace_existing or not target.is_file() or target.stat().st_size == 0:
            source = _resize_source(image, sources, width)
            small = source.resize(
                (width, height), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP
            )
            sources.append(small)
            write_thumbnail(target, encode_resized(small, fmt, settings))
        made[width, height] = Thumbnail(sha256, width, height, relpath)
    return tuple(made[size] for size in sizes)


def _resize_source(image: Image.Image, made: Sequence[Image.Image], width: int) -> Image.Image:
    """The smallest of `made` still CHAIN_FACTOR times `width` wide, else the image itself."""
    wide_enough = [small for small in made if small.width >= CHAIN_FACTOR * width]
    return min(wide_enough, key=lambda small: small.width) if wide_enough else image


def write_thumbnail(target: Path, data: bytes) -> None:
    """Write a thumbnail through a temporary file and a rename, without fsync: a thumbnail is
    derived, and one that a crash left empty is made again (make_thumbnails checks the size)."""
    with temp_file_in(target.parent) as (handle, temp_path):
        handle.write(data)
        publish(temp_path, target)


def encode_thumbnail(image: Image.Image, size: Size, fmt: str, settings: ImageSettings) -> bytes:
    """The encoded bytes of `image` resized to `size` (LANCZOS, after an integer box reduce)."""
    small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    return encode_resized(small, fmt, settings)


def encode_resized(small: Image.Image, fmt: str, settings: ImageSettings) -> bytes:
    """The encoded bytes of an image already at its thumbnail size."""
    pillow_format = FORMATS[fmt][0]
    if pillow_format in ("WEBP", "AVIF"):
        small = small.convert("RGBA" if has_alpha(small) else "RGB")
    elif pillow_format == "JPEG" and small.mode != "L":
        small = small.convert("RGB")
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": settings.thumb_quality}
    if pillow_format == "WEBP":
        options["method"] = settings.thumb_method
    elif pillow_format == "PNG":
        options = {}
    small.save(buffer, pillow_format, **options)
    return buffer.getvalue()
