"""Build examples/archive/origin/: the images the example posts point at, served by the local
origin server (python -m mediatool.testing.origin) for hosts that are dead or unreachable.

Each origin URL in the example posts gets a real public-domain photo from ../shared/images,
cropped to the size the post declares (else 4:3) and saved small. Two URLs get the same photo at
two sizes, so the demo shows a near-duplicate group. Run once; the result is committed.

    .venv/bin/python examples/make_origin.py
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from PIL import Image, ImageOps

from mediatool.config import DiscoverSettings
from mediatool.discover import find_posts, read_post
from mediatool.models import RefKind
from mediatool.resolve import BUILTIN_RULES, resolve
from mediatool.testing.origin import OriginServer

HERE = Path(__file__).resolve().parent
POSTS = HERE / "archive" / "posts"
ORIGIN = HERE / "archive" / "origin"
PHOTOS = HERE.parent.parent / "shared" / "images"
MAX_SIDE = 640


def declared_sizes() -> dict[str, tuple[int, int]]:
    """origin_url -> (width, height) wanted, in order of first appearance."""
    wanted: dict[str, tuple[int, int]] = {}
    for post in find_posts([POSTS]):
        for ref in read_post(post, DiscoverSettings()).references:
            if ref.kind is not RefKind.REMOTE:
                continue
            origin = resolve(ref.source_url, BUILTIN_RULES).origin_url
            size = (640, 480)
            if ref.declared and ref.declared.width and ref.declared.height:
                size = (ref.declared.width, ref.declared.height)
            if origin not in wanted or size != (640, 480):
                wanted[origin] = size
    return wanted


def render(photo: Path, size: tuple[int, int], quality: int = 82) -> bytes:
    with Image.open(photo) as image:
        fitted = ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)
    scale = min(1.0, MAX_SIDE / max(size))
    if scale < 1.0:
        fitted = fitted.resize((round(size[0] * scale), round(size[1] * scale)))
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def main() -> None:
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix in (".png", ".jpg"))
    wanted = declared_sizes()
    pages: dict[str, bytes] = {}
    urls = list(wanted)
    for index, url in enumerate(urls):
        pages[url] = render(photos[index % len(photos)], wanted[url])
    if len(urls) >= 2:  # a near-duplicate: the first photo again, smaller, at the last URL
        width, height = wanted[urls[0]]
        pages[urls[-1]] = render(photos[0], (width // 2, height // 2), quality=60)
    shutil.rmtree(ORIGIN, ignore_errors=True)
    OriginServer.save_site(ORIGIN, pages)
    total = sum(len(body) for body in pages.values())
    print(f"{len(pages)} URLs, {total / 1e6:.2f} MB in {ORIGIN}")


if __name__ == "__main__":
    main()
