"""Giving the memory a long run freed back to the system.

glibc's malloc keeps freed memory in its heap for reuse, and a heap that large temporary
arrays came and went through (a grouping's pages) stays as large as its fullest moment, with
holes: the resident set creeps up page after page though what is live does not. glibc's
`malloc_trim(0)` hands every free page of the heap back (madvise), so the resident set follows
what is live. With another C library there is no such call and `release_free_memory` does
nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


def release_free_memory() -> None:
    """Return the heap's free pages to the system (glibc), between phases of a long run."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)  # the symbols the process already has: its C library's
    except (OSError, TypeError):  # pragma: no cover - no handle on the program (Windows)
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]
