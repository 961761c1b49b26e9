"""The error tree. Every error knows its exit code.

    MediatoolError                 exit 3 unless a subclass says otherwise
    ├── UsageError                 exit 2  bad flags, unreadable config file
    ├── FatalError                 exit 3  the run cannot go on
    │   ├── CacheNotWritable
    │   ├── ManifestTooNew
    │   ├── ManifestDamaged        manifest.sqlite is not a database, truncated or corrupt
    │   ├── NoSpace                the disk (or quota) is full
    │   ├── CacheBusy              another run holds the cache's lock (mediatool.lock)
    │   └── ObjectStoreError       an s3:// cache: no bucket, no credentials, endpoint down
    └── ItemError                  exit 1  one item failed; recorded, reported, the run goes on
        ├── PostError              a post could not be read or parsed
        └── ImageError             bytes that are not a usable image (carries a reason code)

    KeyboardInterrupt              Ctrl-C: exit 130
    └── Stopped                    SIGTERM/SIGHUP (mediatool.processes): exit 128 + signal

An URL that cannot be fetched is not an exception: the fetcher returns a FetchFailure
(models.py) with its reason code, and the run records it. When no host answers at all, `fetch`
records nothing and exits EXIT_OFFLINE (4): the machine is offline, run again later.

Reason codes (short, stable, stored in the manifest and shown by --json):
    http_NNN, not_an_image, empty_body, truncated, too_large, too_many_pixels, corrupt_image,
    timeout, connect_error, too_many_redirects, blocked_private, blocked_scheme, host_down,
    bad_url, proxy_error, too_slow, unsafe_svg
"""

from __future__ import annotations

import errno
import os
import signal

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_FATAL = 3
EXIT_OFFLINE = 4  # fetch: no host answered at all; nothing was recorded as failed, run again


class MediatoolError(Exception):
    """Base of every error mediatool raises on purpose."""

    exit_code = EXIT_FATAL


class UsageError(MediatoolError):
    """The command line or the config file is wrong; the user can fix it and run again."""

    exit_code = EXIT_USAGE


class FatalError(MediatoolError):
    """The run cannot go on at all."""

    exit_code = EXIT_FATAL


class CacheNotWritable(FatalError):
    """The cache folder cannot be created or written."""


class ManifestTooNew(FatalError):
    """The manifest was written by a newer mediatool."""


class ManifestDamaged(FatalError):
    """manifest.sqlite is not a SQLite database, or a damaged one."""


class NoSpace(FatalError):
    """A write failed because the disk or the quota is full."""


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def fatal_from_os_error(exc: OSError) -> FatalError | None:
    """The one-line fatal error for an environment fault (disk full, read-only or forbidden
    file), naming the file; None for other OS errors."""
    where = exc.filename if exc.filename is not None else "a file"
    what = exc.strerror or os.strerror(exc.errno or 0)
    if exc.errno in _NO_SPACE:
        return NoSpace(f"{where}: cannot write ({what}); free some space and run again.")
    if exc.errno in _NOT_WRITABLE:
        return FatalError(f"{where}: {what}; fix the permissions or choose another folder.")
    return None


class CacheBusy(FatalError):
    """Another run holds the cache folder's lock."""


class ObjectStoreError(FatalError):
    """The object store of an s3:// cache cannot be used: its bucket is missing, the
    credentials are missing or refused, the endpoint cannot be reached (mediatool.store_s3)."""


class ItemError(MediatoolError):
    """One post, URL or image failed; the run records it and goes on."""

    exit_code = EXIT_FAILURES

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[ItemError], tuple[str, str]]:
        # Crosses process boundaries (the image pool) with both arguments.
        return type(self), (self.reason, self.message)


class PostError(ItemError):
    """A post could not be read or parsed."""


class ImageError(ItemError):
    """Downloaded bytes are not a usable image."""


EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
STOPPED_MESSAGE = "progress so far is saved; run the same command again to continue"


class Stopped(KeyboardInterrupt):
    """A signal asked the run to stop. A KeyboardInterrupt, so everything that unwinds on Ctrl-C
    (transactions, pools, temp files) unwinds the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum


def stop_report(interrupt: KeyboardInterrupt) -> tuple[str, int]:
    """The one line to show for an interrupted run, and its exit code."""
    if isinstance(interrupt, Stopped):
        name = signal.Signals(interrupt.signum).name
        return f"stopped by {name}: {STOPPED_MESSAGE}", interrupt.exit_code
    return f"interrupted: {STOPPED_MESSAGE}", EXIT_INTERRUPTED
