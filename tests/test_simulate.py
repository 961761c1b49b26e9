"""The synthetic archive (mediatool.testing.simulate) and the origin's generated pictures."""

from __future__ import annotations

import io
import math
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from mediatool.config import DiscoverSettings
from mediatool.discover import read_post
from mediatool.resolve import compile_rules, resolve_reference
from mediatool.testing.origin import OriginServer, generated_image, generated_path
from mediatool.testing.simulate import (
    BOILERPLATE_HOST,
    ArchiveShape,
    calibrate,
    fit_zipf,
    write_archive,
)

pytestmark = pytest.mark.timeout(60)

REAL_LIKE = {
    "a.md": "---\nthumbnail: 'https://cors.zfour.workers.dev/?http://static.1sapp.com/a.jpg'\n"
    '---\n\n<img src="https://cors.zfour.workers.dev/?http://static.1sapp.com/a.jpg">\n'
    '<img src="https://cors.zfour.workers.dev/?http://static.1sapp.com/b.jpg">\n',
    "b.md": "![](https://wsrv.nl/?url=https://cdn-images-1.readmedium.com/x.png)\n"
    "![](https://cdn-images-1.readmedium.com/y.png)\n"
    "![](https://i1.wp.com/static.1sapp.com/c.jpg?w=748)\n",
    "c.md": "no images here\n",
}


def origins_of(folder: Path) -> Counter[str]:
    """Every remote reference below `folder`, resolved to its origin URL, as discover and
    resolve see them."""
    rules = compile_rules(())
    found: Counter[str] = Counter()
    for path in sorted(folder.rglob("*.md")):
        for ref in read_post(path, DiscoverSettings()).references:
            found[resolve_reference(ref, rules).origin_url] += 1
    return found


def test_calibrate_counts_hosts_proxies_and_repeats(tmp_path: Path) -> None:
    for name, text in REAL_LIKE.items():
        (tmp_path / name).write_text(text)
    calibration = calibrate(tmp_path)
    assert calibration.posts == 3 and calibration.references == 6
    assert calibration.hosts == (("static.1sapp.com", 4), ("cdn-images-1.readmedium.com", 2))
    assert calibration.https_hosts == {"cdn-images-1.readmedium.com"}
    assert dict(calibration.wrappings) == {
        ("cors-workers",): 3,
        ("weserv",): 1,
        ("wp-photon",): 1,
        (): 1,
    }
    assert calibration.repeats == 1  # the thumbnail repeats the first <img>
    assert sorted(calibration.refs_per_post) == [0, 3, 3]
    assert calibration.http_references == 4
    assert calibration.wrap_share(("cors-workers",)) == 3 / 4
    assert calibration.thumbnail_share == pytest.approx(1 / 3)


def test_fit_zipf_finds_the_exponent_of_exact_counts() -> None:
    for exponent in (0.7, 1.0, 1.6):
        counts = [round(100_000 * rank**-exponent) for rank in range(1, 41)]
        assert math.isclose(fit_zipf(counts), exponent, abs_tol=0.02)


def test_the_archive_holds_what_its_stats_say(tmp_path: Path) -> None:
    shape = ArchiveShape(posts=60, https_hosts=frozenset({"img1.sim.test"}), seed=3)
    stats = write_archive(shape, tmp_path / "posts")
    assert stats.posts == len(list((tmp_path / "posts").rglob("*.md"))) == 60
    found = origins_of(tmp_path / "posts")
    assert set(found) == stats.urls
    assert sum(found.values()) == stats.references
    schemes = {urlsplit(url).hostname: urlsplit(url).scheme for url in found}
    assert schemes["img1.sim.test"] == "https" and schemes["img0.sim.test"] == "http"


def test_the_archive_repeats_boilerplate_and_near_duplicates(tmp_path: Path) -> None:
    shape = ArchiveShape(posts=300, boilerplate=3, boilerplate_share=0.1, variant_share=0.2)
    stats = write_archive(shape, tmp_path)
    boilerplate = [u for u in stats.urls if urlsplit(u).hostname == BOILERPLATE_HOST]
    assert 1 <= len(boilerplate) <= 3
    assert stats.per_host[BOILERPLATE_HOST] > 3 * len(boilerplate)  # shared by many posts
    variants = [u for u in stats.urls if not u.endswith(("v0.jpg", "v0.png"))]
    assert len(variants) > 0.1 * stats.distinct_urls
    assert stats.pictures < stats.distinct_urls


def test_hosts_follow_the_zipf_law_of_the_shape(tmp_path: Path) -> None:
    shape = ArchiveShape(posts=2000, exponent=1.2, boilerplate=0, variant_share=0.0)
    stats = write_archive(shape, tmp_path)
    ranked = [stats.per_host[host] for host in shape.hosts]
    assert math.isclose(fit_zipf(ranked), 1.2, abs_tol=0.1)


def test_the_same_seed_writes_the_same_archive(tmp_path: Path) -> None:
    shape = ArchiveShape(posts=20, seed=7)
    write_archive(shape, tmp_path / "one")
    write_archive(shape, tmp_path / "two")
    write_archive(ArchiveShape(posts=20, seed=8), tmp_path / "other")
    read = lambda folder: {p.name: p.read_bytes() for p in folder.rglob("*.md")}  # noqa: E731
    assert read(tmp_path / "one") == read(tmp_path / "two") != read(tmp_path / "other")


def test_the_origin_draws_generated_pictures_on_any_host() -> None:
    path = "/media/1/" + generated_path(5, 0)
    with OriginServer(generated=True, record=False) as origin:
        with httpx.Client(proxy=origin.proxy_url, trust_env=False) as client:
            first = client.get("http://a.example.org" + path)
            again = client.get("http://b.example.net/other/" + generated_path(5, 0))
            variant = client.get("http://a.example.org/" + generated_path(5, 1))
            png = client.get("http://a.example.org/" + generated_path(6, 0, "png"))
        assert origin.requests == []
        assert origin.peaks() == {"a.example.org": 1, "b.example.net": 1}
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert first.content == again.content == generated_image(5, 0)
    assert png.headers["content-type"] == "image/png"
    original = Image.open(io.BytesIO(first.content))
    cropped = Image.open(io.BytesIO(variant.content))
    assert min(original.size) >= 64 and max(original.size) <= 320
    assert cropped.width < original.width and cropped.height < original.height


def test_variants_are_crops_rescales_and_recompressions() -> None:
    sizes = [Image.open(io.BytesIO(generated_image(9, v))).size for v in range(4)]
    (width, height), cropped, rescaled, recompressed = sizes
    assert cropped == (width - 2 * (width // 12), height - 2 * (height // 12))
    assert rescaled == (width * 7 // 10, height * 7 // 10)
    assert recompressed == (width, height) and generated_image(9, 3) != generated_image(9, 0)


def test_without_generated_the_origin_answers_404(origin: OriginServer) -> None:
    with httpx.Client(proxy=origin.proxy_url, trust_env=False) as client:
        assert client.get("http://a.example.org/" + generated_path(5, 0)).status_code == 404
