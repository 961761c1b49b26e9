"""Decode each stored original once: its size, perceptual hashes and thumbnails.

`analyze` is the CPU stage the pipeline runs in a process pool. It checks the pixel count from
the header before anything is decoded, asks libjpeg to decode a JPEG at the smallest scale
(1/8, 1/4, 1/2 or 1) that still covers the largest thumbnail and HASH_MIN_SIDE, 128 pixels a
side (phash itself reads a 32x32 reduction, but its bits drift when libjpeg decodes below
about 128), applies the EXIF orientation, brings every mode (CMYK, palette, 16-bit, alpha) to
8-bit L/LA/RGB/RGBA, and serves the hashes and all the thumbnails from that one decoded image.
SVG is not rasterised: it keeps its declared size and gets no hash and no thumbnails.
"""

from __future__ import annotations

import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from mediatool.config import ImageSettings
from mediatool.dedup import grey_of, has_alpha, hash_base, image_hashes
from mediatool.errors import ImageError
from mediatool.models import Analysis, AnalyzeJob, ImageInfo
from mediatool.thumbs import Size, make_thumbnails, thumbnail_sizes

HASH_MIN_SIDE = 128  # phash drifts when libjpeg decodes below ~128 px (bench_phash_threshold)
SNIFF_BYTES = 4096
DAMAGED = "the download is damaged — run fetch --refresh or remove the URL"

# What Pillow raises on bytes it cannot decode (plugins raise any of these).
_DECODE_ERRORS: tuple[type[Exception], ...] = (OSError, SyntaxError, ValueError, EOFError)
_DECODE_ERRORS += (IndexError, TypeError, KeyError, struct.error, zlib.error)

_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
_SVG_TAG = re.compile(rb"<svg\b[^>]*>", re.IGNORECASE)
_SVG_LENGTH = r"""(?<![\w:-]){name}\s*=\s*["']\s*([0-9]+(?:\.[0-9]+)?)\s*(?:px)?\s*["']"""


@dataclass
class Decoded:
    """One decoded original: the 8-bit, upright, possibly reduced image and what it needs."""

    image: Image.Image
    format: str
    width: int  # of the full original, upright
    height: int
    sizes: list[Size] = field(default_factory=list)  # thumbnails to make
    notes: list[str] = field(default_factory=list)


def analyze(job: AnalyzeJob, settings: ImageSettings) -> Analysis:
    """Hash one stored original and make its thumbnails, from a single decode. Raises
    ImageError (corrupt_image, not_an_image, too_many_pixels)."""
    size = _stored_size(job)
    with job.path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if _is_svg(head):
        return Analysis(info=_svg_info(job, size), thumbnails=())
    decoded = decode(job, settings)
    base = hash_base(decoded.image)  # the 8-bit grey image every hash is computed on
    phash, dhash, flat = image_hashes(base)
    info = ImageInfo(
        sha256=job.sha256,
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        bytes=size,
        phash=phash,
        dhash=dhash,
        flat=flat,
        grey=grey_of(base),
    )
    thumbnails = make_thumbnails(
        decoded.image,
        job.sha256,
        decoded.sizes,
        job.cache_root,
        settings,
        replace_existing=job.rewrite_thumbnails,
    )
    return Analysis(info=info, thumbnails=thumbnails, notes=tuple(decoded.notes))


def decode(job: AnalyzeJob, settings: ImageSettings) -> Decoded:
    """Open, check and decode a raster original once (reduced by JPEG draft when it can be)."""
    # Pillow's own bomb limit follows ours, so that raising images.max_pixels is enough.
    Image.MAX_IMAGE_PIXELS = settings.max_pixels
    with job.path.open("rb") as handle:  # ours, not Pillow's: closing it keeps the pixels
        image = _open(job, handle)
        fmt = image.format or "UNKNOWN"
        _check_pixels(job, image, settings)
        width, height = image.size
        if fmt in ("JPEG", "MPO"):
            _draft(image, job, settings)
        try:
            image.load()
            swapped = _orientation(image) in _SWAPPING_ORIENTATIONS
            upright = _eight_bit(_upright(image))
        except _DECODE_ERRORS as exc:
            raise _corrupt(job, f"cannot decode the {fmt} data ({exc})") from exc
    if swapped:
        width, height = height, width
    sizes, notes = thumbnail_sizes(width, height, job.declared, settings)
    return Decoded(upright, fmt, width, height, sizes, notes)


# --- opening and checking -----------------------------------------------------------------


def _stored_size(job: AnalyzeJob) -> int:
    try:
        return job.path.stat().st_size
    except OSError as exc:
        raise ImageError(
            "corrupt_image",
            f"{job.path}: cannot read the stored original ({exc.strerror}); "
            "run fetch --refresh or remove the URL",
        ) from exc


def _open(job: AnalyzeJob, handle: BinaryIO) -> Image.Image:
    """Image.open, with Pillow's decompression-bomb limit and junk bytes as ImageError."""
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check follows; Pillow's softer limit only warns.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(handle)
    except Image.DecompressionBombError as exc:
        raise ImageError(
            "too_many_pixels",
            f"{job.path}: {exc} Pillow refuses to decode it; if the image is genuine, raise "
            "images.max_pixels (--max-pixels) and fetch again, or remove the URL",
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            "not_an_image", f"{job.path}: not an image format mediatool can read; {DAMAGED}"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise _corrupt(job, f"cannot read the image header ({exc})") from exc


def _check_pixels(job: AnalyzeJob, image: Image.Image, settings: ImageSettings) -> None:
    """Refuse, before decoding, an image whose header claims more pixels than allowed."""
    width, height = image.size
    if width * height > settings.max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"{job.path}: {width}x{height} is {width * height:,} pixels, more than "
            f"images.max_pixels ({settings.max_pixels:,}); if the image is genuine, raise it "
            "(--max-pixels or mediatool.toml) and fetch again, or remove the URL",
        )
    if width <= 0 or height <= 0:
        raise _corrupt(job, f"the header claims a {width}x{height} image")


def _corrupt(job: AnalyzeJob, detail: str) -> ImageError:
    return ImageError("corrupt_image", f"{job.path}: {detail}; {DAMAGED}")


# --- decoding -----------------------------------------------------------------------------


def _draft(image: Image.Image, job: AnalyzeJob, settings: ImageSettings) -> None:
    """Ask libjpeg for the smallest scale that still covers every thumbnail and the hash."""
    width, height = image.size
    swapped = _orientation(image) in _SWAPPING_ORIENTATIONS
    upright = (height, width) if swapped else (width, height)
    sizes, _ = thumbnail_sizes(*upright, job.declared, settings)
    need_w = max([HASH_MIN_SIDE, *(w for w, _ in sizes)])
    need_h = max([HASH_MIN_SIDE, *(h for _, h in sizes)])
    if swapped:
        need_w, need_h = need_h, need_w
    scale = draft_scale(width, height, need_w, need_h)
    if scale > 1:
        # Pillow picks the largest scale s with width // request >= s: ask for exactly ours.
        image.draft("RGB", (max(1, width // scale), max(1, height // scale)))


def draft_scale(width: int, height: int, need_w: int, need_h: int) -> int:
    """The largest JPEG decode scale (8, 4, 2, 1) whose result is still need_w x need_h."""
    for scale in (8, 4, 2):
        if -(-width // scale) >= need_w and -(-height // scale) >= need_h:
            return scale
    return 1


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8), 1 when absent or unreadable."""
    try:
        value = image.getexif().get(0x0112, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright(image: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation (the first frame of an animation)."""
    if _orientation(image) == 1:
        return image
    turned = ImageOps.exif_transpose(image)
    return turned if turned is not None else image


def _eight_bit(image: Image.Image) -> Image.Image:
    """The image as 8-bit L, LA, RGB or RGBA; an alpha channel that is fully opaque is dropped."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return hash_base(image)
    if image.mode == "1":
        return image.convert("L")
    if has_alpha(image) and image.mode not in ("RGBA", "LA"):
        image = image.convert("LA" if image.mode in ("La", "L") else "RGBA")
    elif image.mode not in ("L", "RGB", "RGBA", "LA"):
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert(image.mode[:-1])
    return image


# --- SVG ----------------------------------------------------------------------------------


def _is_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:4].lower() == b"<svg":
        return True
    return text[:2] in (b"<?", b"<!") and _SVG_TAG.search(text) is not None


def _svg_info(job: AnalyzeJob, size: int) -> ImageInfo:
    """SVG keeps the width and height its root element declares (0 when not plain numbers)."""
    with job.path.open("rb") as handle:
        tag = _SVG_TAG.search(handle.read(1 << 16))
    attributes = tag.group(0).decode("utf-8", "replace") if tag else ""
    width, height = (_svg_length(attributes, name) for name in ("width", "height"))
    return ImageInfo(
        sha256=job.sha256, format="SVG", width=width, height=height, bytes=size, phash=""
    )


def _svg_length(attributes: str, name: str) -> int:
    match = re.search(_SVG_LENGTH.format(name=name), attributes)
    return round(float(match.group(1))) if match else 0
