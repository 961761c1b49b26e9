"""Pieces every command shares."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mediatool import __version__
from mediatool.config import DiscoverSettings, Settings
from mediatool.discover import read_post
from mediatool.errors import PostError, UsageError
from mediatool.models import PostScan
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


@dataclass
class PostReader:
    """Reads posts for a command: each problem is said once and kept in `problems`.

    A post that cannot be read or decoded is skipped (counted in `unreadable`); a post that
    reads with problems (e.g. invalid YAML) is still yielded, its problems said and kept when
    `keep_post_problems`, and counted in `with_problems`."""

    settings: DiscoverSettings
    say: Say
    keep_post_problems: bool = True
    problems: list[str] = field(default_factory=list)
    unreadable: int = 0
    with_problems: int = 0

    def scans(self, posts: Iterable[Path]) -> Iterator[PostScan]:
        for path in posts:
            try:
                scan = read_post(path, self.settings)
            except PostError as exc:
                self._problem(exc.message)
                self.unreadable += 1
                continue
            if self.keep_post_problems and scan.problems:
                self.with_problems += 1
                for problem in scan.problems:
                    self._problem(problem)
            yield scan

    def _problem(self, message: str) -> None:
        self.say(message)
        self.problems.append(message)
