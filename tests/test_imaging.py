"""analyze: one decode per original, every image kind, and the errors it raises."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mediatool.config import ImageSettings
from mediatool.dedup import FINE_SIDE, aligned_similarity, grey_of, hamming, phash_of
from mediatool.errors import ImageError
from mediatool.imaging import analyze, decode, draft_scale
from mediatool.models import Analysis, AnalyzeJob, DeclaredSize

SHARED = Path(__file__).resolve().parent / "data" / "images"  # public domain (LICENSES.md)
SETTINGS = ImageSettings()

# Pinned: sha256 of the shared files and their phash (imagehash.phash of the hash base).
ROCKET_SHA = "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"
ROCKET_PHASH = "c0371bec1be51267"  # full decode, and the 1/2 draft analyze uses (320x214)
ROCKET_PHASH_EIGHTH = "c8371bec1ae51663"  # decoded at 1/8 (80x54), 4 bits off: the 128 px floor
CHELSEA_SHA = "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"
CHELSEA_PHASH = "b15fe6465121175e"
CAMERA_PHASH = "bff1c1c0434e8cbc"


def store(folder: Path, data: bytes, name: str = "original") -> AnalyzeJob:
    """A stored original (as the store would name it by sha256) and the job that analyses it."""
    sha = hashlib.sha256(data).hexdigest()
    path = folder / f"{name}-{sha[:8]}"
    path.write_bytes(data)
    return AnalyzeJob(sha256=sha, path=path, cache_root=folder / "cache")


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (600, 400)) -> Image.Image:
    """A synthetic photo-like RGB image (smooth shapes and gradients), no shared files needed."""
    y, x = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float64)
    red = 128 + 100 * np.sin(x / size[0] * 7) * np.cos(y / size[1] * 3)
    green = 255 * x / size[0]
    blue = 200 * ((x - size[0] / 3) ** 2 + (y - size[1] / 2) ** 2 < (size[1] / 4) ** 2)
    pixels = np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


# --- pinned values ------------------------------------------------------------------------


def test_pinned_hashes_of_shared_photos(tmp_path: Path) -> None:
    rocket = (SHARED / "rocket.jpg").read_bytes()
    assert hashlib.sha256(rocket).hexdigest() == ROCKET_SHA
    assert phash_of(Image.open(SHARED / "rocket.jpg")) == ROCKET_PHASH
    job = AnalyzeJob(ROCKET_SHA, SHARED / "rocket.jpg", tmp_path)
    assert decode(job, SETTINGS).image.size == (320, 214)
    assert analyze(job, SETTINGS).info.phash == ROCKET_PHASH
    eighth = Image.open(SHARED / "rocket.jpg")
    eighth.draft("RGB", (640 // 8, 427 // 8))
    assert eighth.size == (80, 54)
    assert phash_of(eighth) == ROCKET_PHASH_EIGHTH
    chelsea = (SHARED / "chelsea.png").read_bytes()
    assert hashlib.sha256(chelsea).hexdigest() == CHELSEA_SHA
    assert analyze(
        AnalyzeJob(CHELSEA_SHA, SHARED / "chelsea.png", tmp_path), SETTINGS
    ).info.phash == (CHELSEA_PHASH)
    assert phash_of(Image.open(SHARED / "camera.png")) == CAMERA_PHASH


# --- image kinds --------------------------------------------------------------------------


def test_large_jpeg_is_decoded_once_at_a_reduced_scale(tmp_path: Path) -> None:
    job = store(tmp_path, encoded(photo((2400, 1600)), "JPEG", quality=90))
    decoded = decode(job, SETTINGS)
    assert decoded.image.size == (1200, 800)  # 1/2: the smallest scale that covers 640x427
    assert draft_scale(2400, 1600, 640, 427) == 2
    result = analyze(job, SETTINGS)
    assert (result.info.format, result.info.width, result.info.height) == ("JPEG", 2400, 1600)
    assert [(t.width, t.height) for t in result.thumbnails] == [(320, 213), (640, 427)]
    full = phash_of(Image.open(job.path))
    assert hamming(result.info.phash, full) <= 4  # libjpeg's scaling is not LANCZOS: a few bits
    hash_only = decode(job, ImageSettings(thumb_widths=()))
    assert hash_only.image.size == (300, 200)  # 1/8 still covers the 128 px hash floor


def test_exif_rotated_jpeg_is_turned_upright(tmp_path: Path) -> None:
    upright = photo((600, 400))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # 400x600 on disk
    turned = analyze(store(tmp_path, encoded(stored, "JPEG", quality=95, exif=exif)), SETTINGS)
    plain = analyze(store(tmp_path, encoded(upright, "JPEG", quality=95)), SETTINGS)
    assert (turned.info.width, turned.info.height) == (600, 400)
    assert turned.info.phash == plain.info.phash
    assert [(t.width, t.height) for t in turned.thumbnails] == [(320, 213)]


def test_exif_rotated_large_jpeg_drafts_in_stored_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    stored = photo((2400, 1600)).transpose(Image.Transpose.ROTATE_270)  # 1600x2400 on disk
    job = store(tmp_path, encoded(stored, "JPEG", quality=90, exif=exif))
    decoded = decode(job, SETTINGS)
    assert (decoded.width, decoded.height) == (2400, 1600)
    assert decoded.image.size == (1200, 800)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    rgb = photo()
    result = analyze(store(tmp_path, encoded(rgb.convert("CMYK"), "JPEG", quality=95)), SETTINGS)
    assert (result.info.format, result.info.width, result.info.height) == ("JPEG", 600, 400)
    assert hamming(result.info.phash, phash_of(rgb)) <= 4
    assert Image.open(tmp_path / "cache" / result.thumbnails[0].relpath).mode == "RGB"


def test_palette_png_with_transparency_hashes_on_white(tmp_path: Path) -> None:
    palette = Image.new("P", (400, 300), 0)
    palette.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    palette.paste(1, (50, 50, 150, 150))
    data = encoded(palette, "PNG", transparency=0)
    result = analyze(store(tmp_path, data), SETTINGS)
    on_white = Image.new("RGB", (400, 300), "white")
    on_white.paste((200, 30, 30), (50, 50, 150, 150))
    assert result.info.phash == phash_of(on_white)
    assert Image.open(tmp_path / "cache" / result.thumbnails[0].relpath).mode == "RGBA"


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    eight = np.asarray(photo().convert("L"), dtype=np.uint16)
    sixteen = Image.fromarray(eight * 257)
    assert sixteen.mode == "I;16"
    result = analyze(store(tmp_path, encoded(sixteen, "PNG")), SETTINGS)
    assert result.info.phash == phash_of(Image.fromarray(eight.astype(np.uint8)))
    assert not result.info.flat  # clipping would have made it a white page


def test_rgba_png_keeps_alpha_in_thumbnails_and_drops_an_opaque_one(tmp_path: Path) -> None:
    rgba = photo().convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((600, 400)))
    result = analyze(store(tmp_path, encoded(rgba, "PNG")), SETTINGS)
    assert Image.open(tmp_path / "cache" / result.thumbnails[0].relpath).mode == "RGBA"
    opaque = analyze(store(tmp_path, encoded(photo().convert("RGBA"), "PNG")), SETTINGS)
    assert Image.open(tmp_path / "cache" / opaque.thumbnails[0].relpath).mode == "RGB"
    assert opaque.info.phash == phash_of(photo())


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    frames = [
        photo(),
        photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        Image.new("RGB", (600, 400)),
    ]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    result = analyze(store(tmp_path, data), SETTINGS)
    first = Image.open(io.BytesIO(data))
    assert getattr(first, "n_frames", 1) == 3
    assert result.info.format == "GIF"
    assert result.info.phash == phash_of(first)
    first.seek(1)
    assert hamming(result.info.phash, phash_of(first)) > 16


def test_animated_webp_uses_the_first_frame(tmp_path: Path) -> None:
    frames = [photo(), Image.new("RGB", (600, 400), "white")]
    data = encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    result = analyze(store(tmp_path, data), SETTINGS)
    assert result.info.format == "WEBP"
    assert result.info.phash == phash_of(frames[0])


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80.4"></svg>', (120, 80)),
        (
            b'\xef\xbb\xbf<?xml version="1.0"?>\n'
            b'<svg width="64px" height="32px" stroke-width="3"/>',
            (64, 32),
        ),
        (b'<svg viewBox="0 0 10 10" width="100%" stroke-width="2"></svg>', (0, 0)),
    ],
)
def test_svg_is_not_rasterised(tmp_path: Path, text: bytes, size: tuple[int, int]) -> None:
    result = analyze(store(tmp_path, text), SETTINGS)
    assert result.info.format == "SVG"
    assert (result.info.width, result.info.height) == size
    assert (result.info.phash, result.info.bytes, result.thumbnails) == ("", len(text), ())


def test_declared_sizes_make_thumbnails_and_notes(tmp_path: Path) -> None:
    job = store(tmp_path, encoded(photo((1200, 800)), "JPEG", quality=90))
    job = AnalyzeJob(
        job.sha256,
        job.path,
        job.cache_root,
        declared=(DeclaredSize(1266, 708, "width"), DeclaredSize(900, 600, "data-size")),
    )
    result = analyze(job, SETTINGS)
    assert [(t.width, t.height) for t in result.thumbnails] == [(320, 213), (640, 427), (900, 600)]
    assert result.notes == ("declared 1266x708 (1.788) differs from actual 1200x800 (1.500)",)
    assert decode(job, SETTINGS).image.size == (1200, 800)  # 900 wide needs the full scale


# --- errors -------------------------------------------------------------------------------


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    data = encoded(photo(), "JPEG", quality=90)
    job = store(tmp_path, data[: len(data) // 2])
    with pytest.raises(ImageError) as caught:
        analyze(job, SETTINGS)
    assert caught.value.reason == "corrupt_image"
    assert str(job.path) in caught.value.message
    assert "run fetch --refresh or remove the URL" in caught.value.message


def test_garbage_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as caught:
        analyze(store(tmp_path, b"<html><body>404</body></html>"), SETTINGS)
    assert caught.value.reason == "not_an_image"


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (and whose pixel data is one tiny row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0\0"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        (100_000, 100_000, 80_000_000),  # past Pillow's own hard limit: DecompressionBombError
        (10_000, 10_000, 80_000_000),  # past Pillow's warning limit and ours
        (200, 200, 10_000),  # a small image, a smaller configured limit
    ],
)
def test_too_many_pixels_is_refused_before_decoding(
    tmp_path: Path, width: int, height: int, max_pixels: int
) -> None:
    job = store(tmp_path, _png_header(width, height))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not escape
        with pytest.raises(ImageError) as caught:
            analyze(job, ImageSettings(max_pixels=max_pixels))
    assert caught.value.reason == "too_many_pixels"
    assert str(job.path) in caught.value.message


def test_image_errors_survive_the_process_pool(tmp_path: Path) -> None:
    error = pickle.loads(pickle.dumps(_raised(store(tmp_path, b"\xff\xd8\xff\xe0junk"))))
    assert isinstance(error, ImageError)
    assert error.reason == "corrupt_image"


def _raised(job: AnalyzeJob) -> ImageError:
    try:
        analyze(job, SETTINGS)
    except ImageError as exc:
        return exc
    raise AssertionError("analyze accepted junk")


def test_analyze_runs_in_a_process_pool(tmp_path: Path) -> None:
    good = store(tmp_path, encoded(photo(), "PNG"))
    bad = store(tmp_path, b"\x89PNG\r\n\x1a\nbroken")
    with ProcessPoolExecutor(max_workers=1) as pool:
        result = pool.submit(analyze, good, SETTINGS).result()
        failure = pool.submit(analyze, bad, SETTINGS).exception()
    assert isinstance(result, Analysis) and result.info.width == 600
    assert isinstance(failure, ImageError) and failure.reason in ("corrupt_image", "not_an_image")


def test_the_grey_image_for_crop_confirmation_comes_from_the_reduced_decode(
    tmp_path: Path,
) -> None:
    """A large JPEG decoded at 1/4 by draft gives the grey image of its full decode."""
    big = Image.open(SHARED / "rocket.jpg").convert("RGB").resize((2560, 1708))
    job = store(tmp_path, encoded(big, "JPEG", quality=90))
    image = analyze(job, SETTINGS).info
    full = grey_of(Image.open(job.path).convert("RGB"))
    assert draft_scale(2560, 1708, 640, 427) == 4
    assert len(image.grey) == FINE_SIDE * FINE_SIDE
    difference = np.abs(
        np.frombuffer(image.grey, np.uint8).astype(int) - np.frombuffer(full, np.uint8)
    )
    assert difference.mean() < 2.0
    assert aligned_similarity(image.grey, full) > 0.99
