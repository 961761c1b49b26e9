"""Pieces every command shares."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from mediatool import __version__
from mediatool.config import Settings
from mediatool.errors import UsageError
from mediatool.store import Store

Say = Callable[[str], None]


def post_key(path: Path) -> str:
    """How the manifest names a post: its absolute path."""
    return str(path.resolve())


def scan_fingerprint(settings: Settings) -> str:
    """Changes when anything that decides what discover/resolve find changes."""
    data = json.dumps(
        [
            __version__,
            list(settings.discover.frontmatter_keys),
            [asdict(rule) for rule in settings.proxy_rules],
        ]
    )
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def batches(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def existing_store(settings: Settings) -> Store:
    """The cache a previous fetch filled; a clear usage error when there is none."""
    store = Store(settings.cache_dir)
    if not store.manifest_path.is_file():
        raise UsageError(
            f"{store.manifest_path}: no manifest; run `mediatool fetch` first "
            "or point --cache at the folder fetch used."
        )
    return store
