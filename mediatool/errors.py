"""The error tree. Every error knows its exit code.

    MediatoolError                 exit 3 unless a subclass says otherwise
    ├── UsageError                 exit 2  bad flags, unreadable config file
    ├── FatalError                 exit 3  the run cannot go on
    │   ├── CacheNotWritable
    │   ├── ManifestTooNew
    │   ├── ManifestDamaged        manifest.sqlite is not a database, truncated or corrupt
    │   └── NoSpace                the disk (or quota) is full
    └── ItemError                  exit 1  one item failed; recorded, reported, the run goes on
        ├── PostError              a post could not be read or parsed
        ├── FetchError             an URL could not be fetched (carries a reason code)
        └── ImageError             bytes that are not a usable image (carries a reason code)

Reason codes (short, stable, stored in the manifest and shown by --json):
    http_NNN, not_an_image, empty_body, truncated, too_large, too_many_pixels, corrupt_image,
    timeout, connect_error, too_many_redirects, blocked_private, blocked_scheme, host_down,
    bad_url, proxy_error
"""

from __future__ import annotations

import errno
import os

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_FATAL = 3


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


class FetchError(ItemError):
    """An URL could not be fetched."""


class ImageError(ItemError):
    """Downloaded bytes are not a usable image."""
