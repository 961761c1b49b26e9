"""Thumbnail sizes, paths, formats, and writing them once, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mediatool import thumbs
from mediatool.config import ImageSettings, load_settings
from mediatool.errors import UsageError
from mediatool.models import DeclaredSize
from mediatool.thumbs import (
    avif_supported,
    make_thumbnails,
    thumb_format,
    thumb_relpath,
    thumbnail_sizes,
)

SETTINGS = ImageSettings()  # widths 320, 640; webp
SHA = "ab" + "0" * 62


def declared(width: int | None, height: int | None) -> DeclaredSize:
    return DeclaredSize(width=width, height=height, source="width")


def test_configured_widths_below_the_actual_width_keep_the_aspect_ratio() -> None:
    assert thumbnail_sizes(1200, 800, (), SETTINGS) == ([(320, 213), (640, 427)], [])


def test_never_upscale() -> None:
    assert thumbnail_sizes(640, 480, (), SETTINGS) == ([(320, 240)], [])
    assert thumbnail_sizes(200, 100, [declared(150, 75)], SETTINGS) == ([(150, 75)], [])
    assert thumbnail_sizes(200, 100, [declared(400, 200)], SETTINGS) == ([], [])


def test_declared_size_larger_than_actual_with_other_aspect_gives_a_note_only() -> None:
    sizes, notes = thumbnail_sizes(1200, 800, [declared(1266, 708)], SETTINGS)
    assert sizes == [(320, 213), (640, 427)]
    assert notes == ["declared 1266x708 (1.788) differs from actual 1200x800 (1.500)"]


def test_declared_size_matching_actual_adds_nothing() -> None:
    assert thumbnail_sizes(1266, 708, [declared(1266, 708)], SETTINGS) == (
        [(320, 179), (640, 358)],
        [],
    )


def test_declared_smaller_size_within_one_percent_is_made_exactly() -> None:
    sizes, notes = thumbnail_sizes(1200, 800, [declared(600, 401)], SETTINGS)
    assert (600, 401) in sizes and notes == []


def test_declared_aspect_off_by_more_than_one_percent_keeps_the_actual_aspect() -> None:
    sizes, notes = thumbnail_sizes(1200, 800, [declared(900, 500)], SETTINGS)
    # 900 wide at 3:2 would be 600 high, taller than the declared 500: fit inside the box.
    assert (750, 500) in sizes
    assert notes == ["declared 900x500 (1.800) differs from actual 1200x800 (1.500)"]
    sizes, _ = thumbnail_sizes(1200, 800, [declared(600, 500)], SETTINGS)
    assert (600, 400) in sizes


def test_declared_width_alone_follows_the_actual_aspect_and_sizes_are_deduplicated() -> None:
    sizes, notes = thumbnail_sizes(
        1200, 800, [declared(500, None), declared(320, 213), declared(None, 300)], SETTINGS
    )
    assert sizes == [(320, 213), (500, 333), (640, 427)]
    assert notes == []


@given(
    width=st.integers(1, 5000),
    height=st.integers(1, 5000),
    boxes=st.lists(st.tuples(st.integers(1, 6000), st.integers(1, 6000)), max_size=4),
)
def test_no_thumbnail_exceeds_the_original_or_its_declared_box(
    width: int, height: int, boxes: list[tuple[int, int]]
) -> None:
    sizes, _ = thumbnail_sizes(width, height, [declared(w, h) for w, h in boxes], SETTINGS)
    assert len(sizes) == len(set(sizes))
    for w, h in sizes:
        assert 1 <= w < width and 1 <= h <= height
        from_box = (w, h) not in {
            (c, max(1, min(height, round(height * c / width)))) for c in (320, 640)
        }
        if from_box:
            assert any(w <= bw and h <= bh for bw, bh in boxes)


def test_thumb_relpath() -> None:
    assert thumb_relpath(SHA, 320, 213, "webp") == f"thumbs/ab/{SHA}-320x213.webp"
    assert thumb_relpath(SHA, 320, 213, "jpeg") == f"thumbs/ab/{SHA}-320x213.jpg"


def test_thumb_format() -> None:
    assert thumb_format(SETTINGS, alpha=True) == "webp"
    assert thumb_format(ImageSettings(thumb_format="jpeg"), alpha=False) == "jpeg"
    assert thumb_format(ImageSettings(thumb_format="jpeg"), alpha=True) == "png"
    assert thumb_format(ImageSettings(thumb_format="png"), alpha=False) == "png"
    with pytest.raises(UsageError, match=r"images\.thumb_format is 'gif'"):
        thumb_format(ImageSettings(thumb_format="gif"), alpha=False)


def test_avif_thumbnails_when_pillow_writes_avif(tmp_path: Path) -> None:
    assert avif_supported(), "this Pillow cannot write AVIF; the AVIF tests need one that can"
    assert thumb_format(ImageSettings(thumb_format="avif"), alpha=True) == "avif"
    assert thumb_relpath(SHA, 320, 213, "avif") == f"thumbs/ab/{SHA}-320x213.avif"
    image = Image.new("RGBA", (400, 300), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (100, 100, 300, 200))
    settings = ImageSettings(thumb_format="avif")
    (thumb,) = make_thumbnails(image, SHA, [(200, 150)], tmp_path, settings)
    assert thumb.relpath.endswith(".avif")
    written = Image.open(tmp_path / thumb.relpath)
    assert (written.format, written.size, written.mode) == ("AVIF", (200, 150), "RGBA")


def test_avif_without_pillow_support_is_a_usage_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thumbs.features, "check", lambda feature: False)
    settings = ImageSettings(thumb_format="avif")
    with pytest.raises(
        UsageError, match=r"images\.thumb_format is \"avif\" but the installed Pillow"
    ):
        make_thumbnails(Image.new("RGB", (400, 300)), SHA, [(200, 150)], tmp_path, settings)
    assert not list(tmp_path.rglob("*.avif"))


def test_avif_is_an_accepted_config_choice(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text('[images]\nthumb_format = "avif"\n')
    assert load_settings(config).images.thumb_format == "avif"


def test_thumbnails_are_written_atomically_and_never_rewritten(tmp_path: Path) -> None:
    image = Image.linear_gradient("L").resize((800, 600)).convert("RGB")
    made = make_thumbnails(image, SHA, [(320, 240), (640, 480)], tmp_path, SETTINGS)
    assert [(t.width, t.height) for t in made] == [(320, 240), (640, 480)]
    for thumb in made:
        written = Image.open(tmp_path / thumb.relpath)
        assert (written.format, written.size) == ("WEBP", (thumb.width, thumb.height))
    assert not list(tmp_path.rglob("*.part"))
    first = tmp_path / made[0].relpath
    before = first.stat().st_mtime_ns
    again = make_thumbnails(Image.new("RGB", (800, 600)), SHA, [(320, 240)], tmp_path, SETTINGS)
    assert again == made[:1]
    assert first.stat().st_mtime_ns == before


def test_alpha_survives_in_webp_and_turns_jpeg_into_png(tmp_path: Path) -> None:
    image = Image.new("RGBA", (400, 400), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (100, 100, 300, 300))
    (webp,) = make_thumbnails(image, SHA, [(200, 200)], tmp_path, SETTINGS)
    assert Image.open(tmp_path / webp.relpath).mode == "RGBA"
    jpeg_settings = ImageSettings(thumb_format="jpeg")
    (png,) = make_thumbnails(image, SHA, [(200, 200)], tmp_path, jpeg_settings)
    assert png.relpath.endswith(".png")
    (jpg,) = make_thumbnails(image.convert("RGB"), SHA, [(100, 100)], tmp_path, jpeg_settings)
    assert Image.open(tmp_path / jpg.relpath).format == "JPEG"


PHOTOS = Path(__file__).parent / "data" / "images"


def test_thumb_method_trades_encoding_effort_for_smaller_files(tmp_path: Path) -> None:
    photo = Image.open(PHOTOS / "astronaut.png").convert("RGB")
    sizes = []
    for method in (0, 6):
        settings = ImageSettings(thumb_method=method)
        (thumb,) = make_thumbnails(photo, SHA, [(320, 320)], tmp_path / str(method), settings)
        sizes.append((tmp_path / str(method) / thumb.relpath).stat().st_size)
    assert sizes[1] < sizes[0]


def test_a_smaller_thumbnail_made_from_a_larger_one_matches_one_made_from_the_original(
    tmp_path: Path,
) -> None:
    photo = Image.open(PHOTOS / "chelsea.png").convert("RGB")
    settings = ImageSettings(thumb_format="png")
    made = make_thumbnails(photo, SHA, [(100, 66), (300, 198)], tmp_path, settings)
    assert [(t.width, t.height) for t in made] == [(100, 66), (300, 198)]
    chained = np.asarray(Image.open(tmp_path / made[0].relpath), dtype=np.int16)
    direct = np.asarray(photo.resize((100, 66), Image.Resampling.LANCZOS), dtype=np.int16)
    assert np.abs(chained - direct).mean() < 1.5


def test_thumb_method_outside_0_to_6_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text("[images]\nthumb_method = 7\n")
    with pytest.raises(UsageError, match=r"images\.thumb_method"):
        load_settings(config)
    config.write_text("[images]\nthumb_method = 6\n")
    assert load_settings(config).images.thumb_method == 6
