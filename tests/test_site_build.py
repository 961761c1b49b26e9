"""Real sites: `mediatool fetch` + `rewrite` run from the root of a Hexo and of a Hugo site (no
PATH), then the generator's own build; every localized image the built HTML names (`<img src>`,
srcset candidates, `poster`, the front matter thumbnail the theme prints) is a file of the built
output, nothing of the state folder is published, and a failed image stays remote.

The generators come from `.ci/install-generators` (Hugo from Debian's packages, Hexo from the
npm registry into ~/.cache/mediatool-hexo/<key>); the session fixture runs it (a no-op when they
are present) and fails, never skips, when it cannot install them. The images come from the
project's local origin server through HTTP(S)_PROXY."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image

from mediatool.testing.origin import OriginServer

REPO = Path(__file__).resolve().parent.parent
HEXO_PACKAGE = REPO / "tests/data/sites/hexo-package.json"
INSTALL = REPO / ".ci/install-generators"
BUILD_TIMEOUT = 300  # seconds a generator's build may take on a busy machine

pytestmark = pytest.mark.timeout(900)

HOST = "http://img.example.test/build"
IMAGES = {  # URL -> (size, colour): distinct real images
    f"{HOST}/body.jpg": ((80, 60), (200, 30, 30)),
    f"{HOST}/small.jpg": ((40, 30), (30, 200, 30)),
    f"{HOST}/large.jpg": ((160, 120), (30, 30, 200)),
    f"{HOST}/poster.jpg": ((96, 54), (200, 200, 30)),
    f"{HOST}/thumb.jpg": ((700, 400), (30, 200, 200)),
    "https://placehold.co/350x150.jpg": ((350, 150), (120, 120, 120)),  # in a real Hexo post
}
MISSING = f"{HOST}/missing.jpg"  # the origin answers 404

POST = f"""---
title: Gallery
date: 2024-05-01 10:00:00
thumbnail: {HOST}/thumb.jpg
---

A body image in Markdown:

![body]({HOST}/body.jpg)

<p><img src="{HOST}/small.jpg" srcset="{HOST}/small.jpg 1x, {HOST}/large.jpg 2x" alt="pair"></p>

<video controls poster="{HOST}/poster.jpg"></video>

![gone]({MISSING})
"""


def _jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, colour)
    image.putpixel((0, 0), (0, 0, 0))
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def hexo_bin() -> Path:
    """The hexo command of the cached npm install (.ci/install-generators makes it)."""
    _install_generators()
    key = hashlib.sha256(HEXO_PACKAGE.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("MEDIATOOL_HEXO_CACHE", Path.home() / ".cache/mediatool-hexo"))
    binary = cache / key / "node_modules/.bin/hexo"
    assert binary.is_file(), f"{binary}: .ci/install-generators did not install hexo"
    return binary


@pytest.fixture(scope="session")
def hugo_bin() -> Path:
    _install_generators()
    found = shutil.which("hugo")
    assert found, "hugo is not on PATH after .ci/install-generators"
    return Path(found)


_installed: list[bool] = []


def _install_generators() -> None:
    if _installed:
        return
    done = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, (
        f".ci/install-generators failed (exit {done.returncode}); the real-site tests need "
        f"Hugo and Hexo:\n{done.stdout}\n{done.stderr}"
    )
    _installed.append(True)


@pytest.fixture
def images(proxy_env: OriginServer) -> OriginServer:
    for url, (size, colour) in IMAGES.items():
        proxy_env.add(url, body=_jpeg(size, colour), content_type="image/jpeg")
    proxy_env.add(MISSING, status=404, body=b"not here")
    return proxy_env


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _mediatool(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediatool.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )


def _localize(root: Path) -> None:
    """fetch + rewrite from the site root, as a user would; one image fails (404)."""
    (root / "mediatool.toml").write_text("[fetch]\nallow_private = true\nretries = 0\n")
    fetched = _mediatool(root, "fetch")
    assert fetched.returncode == 1, fetched.stderr  # exit 1: the missing image failed
    assert "missing.jpg" in fetched.stdout + fetched.stderr
    rewritten = _mediatool(root, "rewrite")
    assert rewritten.returncode == 1, rewritten.stderr  # the failed image is left remote


def _build(command: list[str], root: Path) -> None:
    built = subprocess.run(
        command, cwd=root, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    assert built.returncode == 0, (
        f"{command}: exit {built.returncode}\n{built.stdout}\n{built.stderr}"
    )


class _Urls(HTMLParser):
    """Every image URL a page names: img/source src, srcset candidates, video poster."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in ("img", "source") and values.get("src"):
            self.urls.append(values["src"])
        if tag in ("img", "source") and values.get("srcset"):
            self.urls += [c.split()[0] for c in values["srcset"].split(",") if c.strip()]
        if tag == "video" and values.get("poster"):
            self.urls.append(values["poster"])


def _page_urls(output: Path) -> dict[Path, list[str]]:
    pages = {}
    for page in sorted(output.rglob("*.html")):
        parser = _Urls()
        parser.feed(page.read_text(encoding="utf-8"))
        pages[page] = parser.urls
    return pages


def _check_built_site(output: Path, media_url: str, url_root: str) -> None:
    """Every localized URL of the built pages is a file of `output`; every image but the
    missing one was localized; nothing private was published."""
    pages = _page_urls(output)
    gallery = [urls for page, urls in pages.items() if "gallery" in page.as_posix().lower()]
    assert gallery, f"no gallery page built in {output}: {sorted(pages)}"
    local = [url for urls in pages.values() for url in urls if url.startswith(media_url)]
    # body, small + small/large srcset, poster, thumbnail; each resolves in the output
    assert len(gallery[0]) == 7, gallery[0]
    assert sum(url.startswith(media_url) for url in gallery[0]) == 6, gallery[0]
    for url in local:
        inside = unquote(urlsplit(url).path)[len(url_root) :]
        assert (output / inside).is_file(), f"{url}: no {output / inside} in the built site"
    every = [url for urls in pages.values() for url in urls]
    assert MISSING in every  # the failed image stays remote
    assert not [url for url in every if url in IMAGES], "a fetched image was left remote"
    published = [p.relative_to(output).as_posix() for p in output.rglob("*")]
    private = [
        p
        for p in published
        if p.endswith((".sqlite", ".part", "report.html")) or ".mediatool" in p or "/tmp/" in p
    ]
    assert not private, f"published state: {private}"


@pytest.mark.parametrize("url_root", ["/", "/blog/"])
def test_hexo_site_shows_every_localized_image(
    tmp_path: Path, hexo_bin: Path, images: OriginServer, url_root: str
) -> None:
    root = tmp_path / "hexo-site"
    _write(
        root,
        {
            "_config.yml": f"url: http://example.test\nroot: {url_root}\ntheme: mini\n",
            "source/_posts/gallery.md": POST,
            "themes/mini/layout/post.njk": (
                "<html><body><article>{{ page.content | safe }}</article>\n"
                '{% if page.thumbnail %}<img class="thumb" src="{{ url_for(page.thumbnail) }}">'
                "{% endif %}</body></html>\n"
            ),
            "themes/mini/layout/index.njk": "<html><body>index</body></html>\n",
        },
    )
    shutil.copy(
        REPO / "tests/data/generators/hexo/hexo-unit-test-images.md", root / "source/_posts"
    )
    shutil.copy(HEXO_PACKAGE, root / "package.json")
    (root / "node_modules").symlink_to(hexo_bin.parent.parent)
    _localize(root)
    assert "/media/originals/" in (root / "source/_posts/hexo-unit-test-images.md").read_text()
    _build([str(hexo_bin), "generate"], root)
    _check_built_site(root / "public", f"{url_root}media/", url_root)


def test_hugo_site_with_a_base_path_shows_every_localized_image(
    tmp_path: Path, hugo_bin: Path, images: OriginServer
) -> None:
    root = tmp_path / "hugo-site"
    _write(
        root,
        {
            "hugo.toml": (
                'baseURL = "http://example.test/blog/"\ntitle = "Test"\n'
                'disableKinds = ["taxonomy", "term", "RSS", "sitemap"]\n'
                "[markup.goldmark.renderer]\nunsafe = true\n"
            ),
            "content/posts/gallery.md": POST.replace("2024-05-01 10:00:00", "2024-05-01"),
            "layouts/_default/single.html": (
                "<html><body><article>{{ .Content }}</article>\n"
                '{{ with .Params.thumbnail }}<img class="thumb" src="{{ . }}">{{ end }}'
                "</body></html>\n"
            ),
            "layouts/_default/list.html": "<html><body>{{ .Title }}</body></html>\n",
            "layouts/index.html": "<html><body>home</body></html>\n",
        },
    )
    _localize(root)
    assert "/blog/media/originals/" in (root / "content/posts/gallery.md").read_text()
    _build([str(hugo_bin), "--destination", "public"], root)
    _check_built_site(root / "public", "/blog/media/", "/blog/")


# -- a run killed at any moment, then run again ---------------------------------------------

KILL_IMAGES = {f"{HOST}/kill-{n}.jpg": ((64 + 8 * n, 48), (20 * n, 90, 160)) for n in range(8)}
KILL_POSTS = 4  # each names two of KILL_IMAGES, in the body and (one) as its thumbnail


def _kill_site(root: Path) -> dict[str, str]:
    """A Hugo site whose posts name KILL_IMAGES; post name -> text."""
    urls = sorted(KILL_IMAGES)
    posts = {}
    for n in range(KILL_POSTS):
        first, second = urls[2 * n], urls[2 * n + 1]
        posts[f"content/posts/p{n}.md"] = (
            f"---\ntitle: Post {n}\ndate: 2024-05-0{n + 1}\nthumbnail: {second}\n---\n\n"
            f'![a]({first})\n\n<p><img src="{second}" alt="b"></p>\n'
        )
    _write(
        root,
        {
            "hugo.toml": (
                'baseURL = "http://example.test/"\ntitle = "Test"\n'
                'disableKinds = ["taxonomy", "term", "RSS", "sitemap"]\n'
                "[markup.goldmark.renderer]\nunsafe = true\n"
            ),
            **posts,
            "layouts/_default/single.html": (
                "<html><body><article>{{ .Content }}</article>\n"
                '{{ with .Params.thumbnail }}<img class="thumb" src="{{ . }}">{{ end }}'
                "</body></html>\n"
            ),
            "layouts/_default/list.html": "<html><body>{{ .Title }}</body></html>\n",
            "layouts/index.html": "<html><body>home</body></html>\n",
            "mediatool.toml": "[fetch]\nallow_private = true\nretries = 0\nconcurrency = 2\n",
        },
    )
    return posts


def _fetch_killed_when(root: Path, originals: int) -> int:
    """Start `mediatool fetch` and SIGKILL it once `originals` originals are published (or
    once the manifest exists, for 0); a run that ends first is simply done."""
    media = root / "static/media/originals"
    process = subprocess.Popen(
        [sys.executable, "-m", "mediatool.cli", "fetch"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while process.poll() is None:
            stored = len(list(media.rglob("*.jpg"))) if media.is_dir() else 0
            started = (root / ".mediatool/manifest.sqlite").is_file()
            if started and stored >= originals:
                process.kill()
                break
            time.sleep(0.005)  # polling the files, not waiting for an outcome
    finally:
        process.wait(timeout=BUILD_TIMEOUT)
    return process.returncode


def _rewrite_killed_at(root: Path, point: int) -> int:
    """`mediatool rewrite` with the test hook: SIGKILL at its `point`th write kill point."""
    env = {**os.environ, "MEDIATOOL_TEST_KILL_AT": f"write:{point}"}
    done = subprocess.run(
        [sys.executable, "-m", "mediatool.cli", "rewrite"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode in (-signal.SIGKILL, 0, 1), done.stderr
    return done.returncode


def test_runs_killed_at_any_moment_then_run_again_leave_a_site_showing_every_image(
    tmp_path: Path, hugo_bin: Path, proxy_env: OriginServer
) -> None:
    for url, (size, colour) in KILL_IMAGES.items():  # slow bodies: kills land mid-download
        body = _jpeg(size, colour)
        proxy_env.add(url, body, content_type="image/jpeg", chunk_size=256, body_delay=0.01)
    root = tmp_path / "hugo-site"
    posts = _kill_site(root)
    fetches = [_fetch_killed_when(root, 0), _fetch_killed_when(root, 1)]
    _rewrite_killed_at(root, 2)  # of what the killed fetches recorded, if anything
    fetches.append(_fetch_killed_when(root, 4))
    fetched = _mediatool(root, "fetch")
    assert fetched.returncode == 0, fetched.stderr
    rewrites = [
        _rewrite_killed_at(root, 1),  # undo records committed, no post written
        _rewrite_killed_at(root, 2),  # one post written
        _rewrite_killed_at(root, 4),  # three posts written (when three are left to write)
    ]
    assert fetches.count(-signal.SIGKILL) >= 2, fetches
    # The first two always die at their point; the third dies unless the rewrite killed before
    # the last fetch had already written enough posts that fewer than three were left.
    assert rewrites[:2] == [-signal.SIGKILL] * 2 and rewrites[2] in (-signal.SIGKILL, 0), rewrites
    rewritten = _mediatool(root, "rewrite")
    assert rewritten.returncode == 0, rewritten.stderr
    texts = {name: (root / name).read_text() for name in posts}
    assert _mediatool(root, "rewrite").returncode == 0
    assert {name: (root / name).read_text() for name in posts} == texts  # nothing left to do
    _build([str(hugo_bin), "--destination", "public"], root)
    pages = _page_urls(root / "public")
    every = [url for urls in pages.values() for url in urls]
    assert not [url for url in every if url in KILL_IMAGES], "a fetched image was left remote"
    local = [url for url in every if url.startswith("/media/")]
    assert len(local) == 3 * KILL_POSTS, every  # body, <img>, thumbnail of each post
    for url in local:
        assert (root / "public" / unquote(url).lstrip("/")).is_file(), f"{url}: not built"
    shown = {(root / "public" / unquote(url).lstrip("/")).read_bytes() for url in local}
    assert len(shown) == len(KILL_IMAGES)  # each image, whole, once
    bodies = {_jpeg(size, colour) for size, colour in KILL_IMAGES.values()}
    assert shown == bodies
