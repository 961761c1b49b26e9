"""Stand-in image hosts for an archive: every origin URL its posts reference gets a real photo,
cropped to the size the post declares (else 4:3), written in the layout OriginServer serves.

Real hosts are unreachable from CI and many are dead; this lets the demo, the end-to-end tests and
the corpus benchmark run the whole pipeline on real posts with real (public-domain) photos.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps

from mediatool.config import DiscoverSettings
from mediatool.discover import find_posts, read_post
from mediatool.errors import PostError
from mediatool.models import RefKind
from mediatool.resolve import BUILTIN_RULES, resolve
from mediatool.testing.site import save_site

DEFAULT_SIZE = (640, 480)
MAX_SIDE = 640


def wanted_sizes(posts_root: Path) -> dict[str, tuple[int, int]]:
    """origin_url -> (width, height) to serve, in order of first appearance."""
    wanted: dict[str, tuple[int, int]] = {}
    for post in find_posts([posts_root]):
        try:
            references = read_post(post, DiscoverSettings()).references
        except PostError:
            continue
        for ref in references:
            if ref.kind is not RefKind.REMOTE:
                continue
            origin = resolve(ref.source_url, BUILTIN_RULES).origin_url
            declared = ref.declared
            if declared and declared.width and declared.height:
                wanted[origin] = (declared.width, declared.height)
            else:
                wanted.setdefault(origin, DEFAULT_SIZE)
    return wanted


def render(photo: Path, size: tuple[int, int], quality: int = 82) -> bytes:
    """`photo` cropped to the aspect ratio of `size`, at most MAX_SIDE on its long side."""
    scale = min(1.0, MAX_SIDE / max(size))
    target = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    with Image.open(photo) as image:
        fitted = ImageOps.fit(image.convert("RGB"), target, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    fitted.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def build_site(posts_root: Path, photos: Sequence[Path], out: Path, *, near_dup: bool) -> int:
    """Write a site for every origin URL of the posts below `posts_root`; return its size.

    With `near_dup`, the last URL serves the first URL's photo at half size and lower quality."""
    wanted = wanted_sizes(posts_root)
    urls = list(wanted)
    pages = {url: render(photos[i % len(photos)], wanted[url]) for i, url in enumerate(urls)}
    if near_dup and len(urls) >= 2:
        width, height = wanted[urls[0]]
        pages[urls[-1]] = render(photos[0], (width // 2, height // 2), quality=60)
    save_site(out, pages)
    return sum(len(body) for body in pages.values())
