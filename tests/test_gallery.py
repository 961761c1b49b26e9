"""The HTML report page: unit tests on `render_html`, and one test in a real headless Chromium.

The browser test opens the written report from the file system with Debian's chromium driven by
Selenium through /usr/bin/chromedriver (Selenium Manager is never asked for anything), and checks
that every image on the page has loaded. It skips only where chromium or its driver is missing:
`.ci/install-browser` installs them.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from mediatool.gallery import (
    Boilerplate,
    Caps,
    DupGroup,
    FailureRow,
    GalleryData,
    GalleryImage,
    Mismatch,
    display_size,
    render_html,
    write_report,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ALLOWED_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "nav"),
    *("a", "main", "section", "span", "table", "thead", "tbody", "tr", "th", "td", "ul", "li"),
    *("code", "div", "figure", "img", "figcaption", "br"),
}
EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def sha(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def image(
    seed: str,
    *,
    fmt: str = "jpeg",
    ext: str = "jpg",
    size: tuple[int, int] = (640, 480),
    nbytes: int = 12 * 1024,
    thumb: bool = True,
) -> GalleryImage:
    digest = sha(seed)
    original = f"originals/{digest[:2]}/{digest[2:4]}/{digest}.{ext}"
    relpath = f"thumbs/{digest[:2]}/{digest}-320x240.webp" if thumb else original
    return GalleryImage(digest, relpath, original, size[0], size[1], nbytes, fmt)


def data(**changes: object) -> GalleryData:
    base: dict[str, object] = {
        "title": "mediatool report",
        "generated_at": "2025-01-02T03:04:05+00:00",
        "totals": (),
        "failures": (),
        "groups": (),
        "boilerplate": (),
        "mismatches": (),
    }
    base.update(changes)
    return GalleryData(**base)  # type: ignore[arg-type]


class Tags(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def of(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, anchor
    return match.group(1)


def full_data() -> GalleryData:
    return data(
        totals=(("posts", 12345), ("images", 7), ("cache size", "3.2 MB")),
        failures=(
            FailureRow("http 404", "a.example", 5, ("https://a.example/1.png",)),
            FailureRow(
                "timeout", "b.example", 2, ("https://b.example/x.jpg", "https://b.example/y")
            ),
        ),
        groups=(
            DupGroup(image("g1"), (image("g1a", size=(320, 240)), image("g1b"))),
            DupGroup(image("g2", fmt="png", ext="png"), (image("g2a", fmt="webp", ext="webp"),)),
        ),
        boilerplate=(Boilerplate(image("logo", fmt="png", ext="png", size=(88, 31)), 41),),
        mismatches=(Mismatch(image("m1"), "declared 800×600, actual 640×480"),),
    )


# ---------------------------------------------------------------- unit tests on render_html


def test_page_is_self_contained_without_script_or_lazy_loading() -> None:
    page = render_html(full_data())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1
    assert "<script" not in page.lower()
    assert "loading=" not in page
    tags = Tags(page)
    assert not tags.of("link") and not tags.of("script") and not tags.of("iframe")
    assert "<style>" in page
    for tag, attrs in tags.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href"):
                assert value is not None and ":" not in value, (tag, name, value)


def test_every_text_value_is_escaped() -> None:
    evil_image = GalleryImage(
        sha(EVIL), f"thumbs/{EVIL}.webp", f"originals/{EVIL}.jpg", 10, 10, 100, EVIL
    )
    page = render_html(
        GalleryData(
            title=EVIL,
            generated_at=EVIL,
            totals=((EVIL, EVIL), ("n", 1)),
            failures=(FailureRow(EVIL, EVIL, 1, (f"https://x.example/{EVIL}",)),),
            groups=(DupGroup(evil_image, (evil_image,)),),
            boilerplate=(Boilerplate(evil_image, 2),),
            mismatches=(Mismatch(evil_image, EVIL),),
        )
    )
    assert "<script" not in page.lower()
    escaped = html.escape(EVIL, quote=True)
    # title x2, generated, totals label and value, reason, host, the URL, the note, and the
    # original's path in the tooltip of each of the 4 figures
    assert page.count(escaped) == 13
    assert page.count(html.escape(EVIL.upper(), quote=True)) == 8  # format: 4 captions, 4 alts
    tags = Tags(page)
    assert {t for t, _ in tags.tags} <= ALLOWED_TAGS
    assert not [(t, a) for t, attrs in tags.tags for a in attrs if a.startswith("on")]
    assert [t for t, _ in tags.tags].count("img") == 4  # group x2, boilerplate, mismatch
    for attrs in tags.of("img"):
        assert set(attrs) == {"src", "width", "height", "alt"}
        src = attrs["src"]
        assert src is not None
        assert "<" not in src and '"' not in src and " " not in src
        assert src.startswith("thumbs/%22%3E%3Cscript%3E")


def test_image_srcs_are_relative_percent_quoted_paths() -> None:
    odd = GalleryImage(
        sha("odd"), "originals/a b/c#d%e?.png", "originals/a b/c#d%e?.png", 4, 4, 9, "png"
    )
    rooted = GalleryImage(
        sha("r"), "/thumbs/ab/x.webp", "\\originals\\ab\\cd\\x.png", 4, 4, 9, "png"
    )
    page = render_html(data(mismatches=(Mismatch(odd, "n"), Mismatch(rooted, "n"))))
    tags = Tags(page)
    assert [a["src"] for a in tags.of("img")] == [
        "originals/a%20b/c%23d%25e%3F.png",
        "thumbs/ab/x.webp",
    ]
    hrefs = [a["href"] for a in tags.of("a") if not (a["href"] or "").startswith("#")]
    assert hrefs == ["originals/a%20b/c%23d%25e%3F.png", "originals/ab/cd/x.png"]


def test_thumbnail_shown_and_original_linked() -> None:
    img = image("one")
    page = render_html(data(boilerplate=(Boilerplate(img, 3),)))
    tags = Tags(page)
    assert [a["src"] for a in tags.of("img")] == [img.relpath]
    assert img.original_relpath in [a["href"] for a in tags.of("a")]


def test_images_have_capped_size_alt_and_caption() -> None:
    wide = image("wide", size=(640, 480), nbytes=12 * 1024)
    tall = image("tall", fmt="png", ext="png", size=(100, 1000), nbytes=512)
    small = image("small", fmt="webp", ext="webp", size=(88, 31), nbytes=150_000)
    page = render_html(data(groups=(DupGroup(wide, (tall, small)),)))
    imgs = Tags(page).of("img")
    assert [(a["width"], a["height"]) for a in imgs] == [
        ("160", "120"),
        ("20", "200"),
        ("88", "31"),
    ]
    assert [a["alt"] for a in imgs] == [
        "JPEG 640×480, 12 KB",
        "PNG 100×1000, 0.5 KB",
        "WEBP 88×31, 146 KB",
    ]
    assert "640×480, 12 KB, JPEG" in page
    assert "100×1000, 0.5 KB, PNG" in page
    assert "88×31, 146 KB, WEBP" in page


def test_display_size() -> None:
    assert display_size(640, 480) == (160, 120)
    assert display_size(50, 40) == (50, 40)  # never enlarged
    assert display_size(10_000, 1) == (160, 1)
    assert display_size(1, 10_000) == (1, 200)
    assert display_size(0, 0) == (160, 160)  # unknown size: a square box


def test_unknown_size_still_has_width_and_height() -> None:
    page = render_html(data(mismatches=(Mismatch(image("u", size=(0, 0)), "no size"),)))
    (img,) = Tags(page).of("img")
    assert (img["width"], img["height"]) == ("160", "160")
    assert "?×?, 12 KB, JPEG" in page


def test_only_the_canonical_is_marked_kept() -> None:
    group = DupGroup(image("c"), (image("m1"), image("m2")))
    page = render_html(data(groups=(group,)))
    groups = section(page, "groups")
    assert groups.count('class="badge">kept<') == 1
    assert groups.count('<figure class="kept">') == 1
    assert groups.count("<figure") == 3
    # the kept one comes first
    assert groups.index(group.canonical.relpath) < groups.index(group.members[0].relpath)
    assert "Group 1: 3 copies, 24 KB in the copies not kept" in groups


def test_sections_have_headings_and_counts() -> None:
    page = render_html(full_data())
    assert "(3 values)" in section(page, "totals")
    assert "12,345" in section(page, "totals")
    assert "3.2 MB" in section(page, "totals")
    failures = section(page, "failures")
    assert "(7 URLs in 2 rows)" in failures
    assert failures.count("<tr>") == 3  # header + 2
    assert "http 404" in failures and "a.example" in failures and "timeout" in failures
    assert "https://b.example/y" in failures
    assert "(2 groups, 5 images)" in section(page, "groups")
    assert section(page, "groups").count("<img") == 5
    boilerplate = section(page, "boilerplate")
    assert "(1 image)" in boilerplate
    assert "in 41 posts" in boilerplate
    mismatches = section(page, "mismatches")
    assert "(1 image)" in mismatches
    assert "declared 800×600, actual 640×480" in mismatches
    for heading in ("Totals", "Failures", "Near-duplicate groups", "Boilerplate images"):
        assert f"<h2>{heading} " in page
    assert "<title>mediatool report</title>" in page
    assert "generated 2025-01-02T03:04:05+00:00" in page
    assert "none</p>" not in page


def test_empty_sections_say_none() -> None:
    page = render_html(data())
    for anchor in ("totals", "failures", "groups", "boilerplate", "mismatches"):
        assert '<p class="none">none</p>' in section(page, anchor), anchor
    assert "<img" not in page
    assert "(0 URLs in 0 rows)" in page
    assert "(0 groups, 0 images)" in page


def test_failure_examples_capped_at_three() -> None:
    urls = tuple(f"https://h.example/{n}.png" for n in range(5))
    page = render_html(data(failures=(FailureRow("dns", "h.example", 5, urls),)))
    assert "/2.png" in page and "/3.png" not in page


def test_sections_are_capped_with_a_count_of_the_rest() -> None:
    groups = tuple(DupGroup(image(f"c{n}"), (image(f"m{n}"),)) for n in range(503))
    failures = tuple(FailureRow("http 500", f"h{n}.example", 1, ()) for n in range(205))
    boilerplate = tuple(Boilerplate(image(f"b{n}"), 2) for n in range(201))
    page = render_html(data(groups=groups, failures=failures, boilerplate=boilerplate))
    assert section(page, "groups").count('class="group"') == 500
    assert "3 more not shown" in section(page, "groups")
    assert "(503 groups, 1,006 images)" in section(page, "groups")  # counts cover all
    assert section(page, "failures").count("<tr>") == 201
    assert "5 more not shown" in section(page, "failures")
    assert "1 more not shown" in section(page, "boilerplate")
    assert "more not shown" not in section(page, "mismatches")

    small = render_html(data(groups=groups[:7]), caps=Caps(groups=5))
    assert section(small, "groups").count('class="group"') == 5
    assert "2 more not shown" in section(small, "groups")


def test_write_report_is_atomic_and_returns_path(tmp_cache: Path) -> None:
    page_data = full_data()
    path = write_report(tmp_cache, page_data)
    assert path == tmp_cache / "report.html"
    assert path.read_text("utf-8") == render_html(page_data)
    other = write_report(tmp_cache, data(title="again"), name="other.html")
    assert "<title>again</title>" in other.read_text("utf-8")
    assert sorted(p.name for p in tmp_cache.iterdir()) == ["other.html", "report.html"]


@pytest.mark.parametrize("name", ["", ".", "..", "sub/report.html", "..\\r.html"])
def test_write_report_rejects_names_outside_the_cache_root(tmp_cache: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        write_report(tmp_cache, data(), name=name)


# ---------------------------------------------------------------- in a real browser


def _save_image(cache: Path, relpath: str, fmt: str, size: tuple[int, int], seed: int) -> None:
    path = cache / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.new("RGB", size, ((seed * 70) % 256, (seed * 130) % 256, 200))
    for x in range(0, size[0], 4):
        picture.putpixel((x, size[1] // 2), (255, 255, 255))
    buffer = io.BytesIO()
    picture.save(buffer, fmt)
    path.write_bytes(buffer.getvalue())


def _real_image(cache: Path, seed: int, fmt: str, size: tuple[int, int]) -> GalleryImage:
    """An original (and, for most, a WebP thumbnail) written into the cache folder."""
    ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]
    digest = sha(f"browser-{seed}")
    original = f"originals/{digest[:2]}/{digest[2:4]}/{digest}.{ext}"
    _save_image(cache, original, fmt, size, seed)
    if seed % 3 == 2:  # no thumbnail: the original is shown
        shown = original
    else:
        thumb = (min(size[0], 80), min(size[1], 60))
        shown = f"thumbs/{digest[:2]}/{digest}-{thumb[0]}x{thumb[1]}.webp"
        _save_image(cache, shown, "WEBP", thumb, seed)
    nbytes = (cache / original).stat().st_size
    return GalleryImage(digest, shown, original, size[0], size[1], nbytes, fmt.lower())


def browser_data(cache: Path) -> GalleryData:
    """A report over real image files in `cache`; it shows 9 images."""
    shapes = [("JPEG", (200, 150)), ("PNG", (120, 90)), ("WEBP", (64, 48)), ("PNG", (40, 300))]
    imgs = [_real_image(cache, n, *shapes[n % len(shapes)]) for n in range(8)]
    # one path that needs percent-quoting (a space, '#', '%' and non-ASCII) to load at all
    odd_rel = "originals/od d/ä#1%.png"
    _save_image(cache, odd_rel, "PNG", (30, 20), 9)
    odd = GalleryImage(
        sha("odd"), odd_rel, odd_rel, 30, 20, (cache / odd_rel).stat().st_size, "png"
    )
    return GalleryData(
        title="mediatool report",
        generated_at="2025-01-02T03:04:05+00:00",
        totals=(("posts", 3), ("images", 9)),
        failures=(
            FailureRow("http 404", "a.example", 2, (f"https://a.example/{EVIL}",)),
            FailureRow("timeout", "b.example", 1, ("https://b.example/slow.jpg",)),
        ),
        groups=(DupGroup(imgs[0], (imgs[1], imgs[2])), DupGroup(imgs[3], (imgs[4],))),
        boilerplate=(Boilerplate(imgs[5], 12), Boilerplate(imgs[6], 3)),
        mismatches=(Mismatch(imgs[7], f"declared 10×10 {EVIL}"), Mismatch(odd, "odd path")),
    )


BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
)


def open_report(report: Path, profile: Path, screenshot: Path | None = None) -> dict[str, object]:
    """Open `report` from the file system in headless Chromium and measure its images."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # an explicit driver path: Selenium Manager is never run, nothing is downloaded
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(report.as_uri())
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        if screenshot is not None:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, max(800, int(height) + 200))
            driver.save_screenshot(str(screenshot))
        result: dict[str, object] = driver.execute_script(
            """
            const imgs = Array.from(document.images);
            return {
              title: document.title,
              images: imgs.map(i => ({src: i.currentSrc || i.src, complete: i.complete,
                                      natural: i.naturalWidth, width: i.width})),
              resources: performance.getEntriesByType('resource').map(e => e.name),
              scripts: document.scripts.length,
            };
            """
        )
        return result
    finally:
        driver.quit()


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("no_proxy_env")  # the driver is reached on localhost, never a proxy
def test_report_opens_in_headless_chromium_with_every_image_loaded(
    tmp_path: Path, tmp_cache: Path
) -> None:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("chromium not installed: run .ci/install-browser")
    page_data = browser_data(tmp_cache)
    report = write_report(tmp_cache, page_data)
    assert report.parent == tmp_cache

    result = open_report(report, tmp_path / "chromium-profile")

    images = result["images"]
    assert isinstance(images, list)
    assert len(images) == 9
    not_loaded = [i for i in images if not (i["complete"] and i["natural"] > 0)]
    assert not not_loaded, not_loaded
    assert all(0 < i["width"] <= 160 for i in images)
    assert all(str(i["src"]).startswith(tmp_cache.as_uri() + "/") for i in images)
    # nothing left the cache folder, and the escaped <script> in a URL did not run
    resources = result["resources"]
    assert isinstance(resources, list)
    assert all(str(r).startswith(tmp_cache.as_uri() + "/") for r in resources), resources
    assert result["scripts"] == 0
    assert result["title"] == "mediatool report"
