"""Build examples/archive/origin/: the images the example posts point at, for the local origin
server (python -m mediatool.testing.origin) to serve in place of hosts that are dead or out of
reach. Real public-domain photos from ../shared/images; run once, the result is committed.

    .venv/bin/python examples/make_origin.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mediatool.testing.fakesite import build_site

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent.parent / "shared" / "images"


def main() -> None:
    out = HERE / "archive" / "origin"
    shutil.rmtree(out, ignore_errors=True)
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix in (".png", ".jpg"))
    size = build_site(HERE / "archive" / "posts", photos, out, near_dup=True)
    print(f"{size / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main()
