"""Pieces every command shares."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

from mediatool import __version__, discover
from mediatool.config import DiscoverSettings, Settings
from mediatool.discover import PostFile, discover_signature
from mediatool.errors import PostError, UsageError
from mediatool.manifest import archive_root, relative_key_text, relative_post_key
from mediatool.models import PostScan
from mediatool.processes import WorkerPool, end_processes
from mediatool.store import MediaStore, Store

Say = Callable[[str], None]
PARALLEL_FROM = 64  # posts to read: below this, the caller's process beats starting workers
READ_CHUNK = 16  # posts per task sent to a worker
CHUNKS_AHEAD = 4  # tasks per worker in flight: bounds the scanned posts held in memory
CHECKPOINT_EVERY = 500  # manifest writes between commits in long loops (Manifest.checkpoints) ...
CHECKPOINT_SECONDS = 1.0  # ... or this often, whichever comes first


def post_key(path: Path, root: Path) -> str:
    """How the manifest names a post: its resolved path relative to the archive root
    (`archive_root(cache folder)`, the folder that holds the cache), so the keys survive moving
    the archive with its cache; the absolute path for a post outside that folder."""
    return relative_post_key(path.resolve(), root)


def scan_fingerprint(settings: Settings) -> str:
    """Changes when anything that decides what discover/resolve find changes."""
    data = json.dumps(
        [
            __version__,
            list(settings.discover.frontmatter_keys),
            [asdict(rule) for rule in settings.proxy_rules],
            discover_signature(settings.discover),
        ]
    )
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def existing_store(settings: Settings) -> MediaStore:
    """The cache a previous fetch filled; a clear usage error when there is none."""
    store = store_of(settings)
    if not store.manifest_path.is_file():
        where = "--manifest at the file" if settings.manifest_path else "--cache at the folder"
        raise UsageError(
            f"{store.manifest_path}: no manifest; run `mediatool fetch` first "
            f"or point {where} fetch used."
        )
    return store


@contextmanager
def cpu_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    # Workers start from the fork server (the fetcher's threads are running; fork would copy
    # locks), leave Ctrl-C to this process and end with it: mediatool.processes.
    others = set(multiprocessing.active_children())
    pool = WorkerPool(workers)
    try:
        yield pool
    except (KeyboardInterrupt, SystemExit):
        # Stopped: nobody wants the results. End the workers now rather than let them finish
        # every task handed out (and a Ctrl-C that landed inside the pool's own code can leave
        # it waiting forever for a worker it lost count of).
        end_processes(set(multiprocessing.active_children()) - others)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def read_posts(
    paths: Sequence[Path], settings: DiscoverSettings, workers: int
) -> Iterator[tuple[Path, PostScan | PostError]]:
    """`read_post` of each path, in order, spread over `workers` processes when there are many
    (parsing is the CPU work of scan, fetch and rewrite). At most CHUNKS_AHEAD tasks per worker
    are read ahead of the caller, so memory stays flat over a million posts."""
    if workers <= 1 or len(paths) < PARALLEL_FROM:
        for path in paths:
            yield path, read_or_error(path, settings)
        return
    remaining = iter(paths)
    with cpu_pool(workers) as pool:
        pending: deque[Future[list[tuple[Path, PostScan | PostError]]]] = deque()

        def submit_next() -> None:
            chunk = list(islice(remaining, READ_CHUNK))
            if chunk:
                pending.append(pool.submit(read_chunk, chunk, settings))

        for _ in range(workers * CHUNKS_AHEAD):
            submit_next()
        while pending:
            done = pending.popleft().result()
            submit_next()
            yield from done


def read_or_error(path: Path, settings: DiscoverSettings) -> PostScan | PostError:
    try:
        return discover.read_post(path, settings)  # the parsers load on the first post
    except PostError as exc:
        return exc


def read_chunk(
    paths: list[Path], settings: DiscoverSettings
) -> list[tuple[Path, PostScan | PostError]]:
    """One worker task: a few posts read and scanned."""
    return [(path, read_or_error(path, settings)) for path in paths]


@dataclass
class PostReader:
    """Reads posts for a command: each problem is said once and kept in `problems`.

    A post that cannot be read or decoded is skipped (counted in `unreadable`); a post that
    reads with problems (e.g. invalid YAML) is still yielded, its problems said and kept when
    `keep_post_problems`, and counted in `with_problems`."""

    settings: DiscoverSettings
    say: Say
    keep_post_problems: bool = True
    workers: int = 1
    problems: list[str] = field(default_factory=list)
    unreadable: int = 0
    with_problems: int = 0
    contexts_seen: set[str] = field(default_factory=set)

    def scans(self, posts: Sequence[Path]) -> Iterator[PostScan]:
        for _, scan in read_posts(posts, self.settings, self.workers):
            if isinstance(scan, PostError):
                self._problem(scan.message)
                self.unreadable += 1
                continue
            if self.keep_post_problems and scan.problems:
                self.with_problems += 1
                for problem in scan.problems:
                    self._problem(problem)
            self.contexts_seen.update(ref.context for ref in scan.references)
            yield scan
        for line in unmatched_key_lines(self.settings, self.contexts_seen, len(posts)):
            self.say(line)

    def _problem(self, message: str) -> None:
        self.say(message)
        self.problems.append(message)


def unmatched_key_lines(settings: DiscoverSettings, contexts: set[str], posts: int) -> list[str]:
    """One line for each configured front matter key that gave no reference in any post read
    (not a problem: the exit code stays as it is). The built-in keys are not checked: most of
    them belong to other generators."""
    if not posts or settings.frontmatter_keys == DiscoverSettings().frontmatter_keys:
        return []
    return [
        f"front matter key {key!r} (discover.frontmatter_keys) gave no reference in any of the "
        f"{posts} posts read; check its spelling and path (docs/frontmatter.md)"
        for key in dict.fromkeys(settings.frontmatter_keys)
        if f"frontmatter:{key}" not in contexts
    ]


def store_of(settings: Settings) -> MediaStore:
    """The store of the settings: all in cache_dir, or split with a site's state folder; an
    object store (store_s3) for an s3:// cache, whose manifest is the local --manifest."""
    if settings.cache_url is not None:
        return _object_store(settings.cache_url, settings.manifest_path)
    return Store(settings.cache_dir, settings.state_dir, settings.manifest_path)


def _object_store(url: str, manifest: Path | None) -> MediaStore:
    from mediatool.store_s3 import S3Store  # boto3 only for those who use it

    if manifest is None:
        raise UsageError(
            f"--cache {url} keeps the manifest on this machine: give it a file with "
            "--manifest PATH (e.g. --manifest mediatool.sqlite)."
        )
    return S3Store(url, manifest)


def archive_root_of(settings: Settings) -> Path:
    """The folder post keys are relative to: a site's root (the state folder's parent), the
    manifest's folder with an s3:// cache, else the folder that holds the cache
    (manifest.archive_root)."""
    if settings.cache_url is not None and settings.manifest_path is not None:
        return settings.manifest_path.absolute().parent.resolve()
    if settings.state_dir is not None:
        return settings.state_dir.absolute().parent.resolve()
    return archive_root(settings.cache_dir)


def post_keys_of_files(found: Sequence[PostFile], root: Path) -> dict[str, str]:
    """{post path text: its manifest key} for `find_post_files`' answer, from the texts alone
    (no Path is built: see `relative_key_text`)."""
    top = str(root)
    return {post.name: relative_key_text(post.real, top) for post in found}


def sha256_hex(data: bytes) -> str:
    """The sha256 of some bytes, as hex: how posts are identified by content."""
    return hashlib.sha256(data).hexdigest()


def post_sha(scan: PostScan) -> str:
    """The sha256 of a post's bytes (its text re-encodes to them exactly: discover.decode_post)."""
    return sha256_hex(scan.text.encode(scan.encoding))
