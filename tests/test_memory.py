"""release_free_memory: the heap's free pages go back to the system (glibc)."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from mediatool.memory import release_free_memory


def _anonymous_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "malloc_trim"), reason="glibc only: nothing to release"
)
def test_freed_heap_memory_below_a_live_block_goes_back_to_the_system() -> None:
    # 80 MB in 32 KB blocks (below malloc's mmap threshold: from the heap), then one block
    # kept after them, so the heap cannot shrink from its top: freeing the 80 MB alone leaves
    # it resident, as a grouping's pages leave their temporary arrays.
    blocks = [ctypes.create_string_buffer(32 * 1024) for _ in range(2560)]
    for block in blocks:
        ctypes.memset(block, 1, len(block))  # touched: resident
    keep = ctypes.create_string_buffer(32 * 1024)
    del blocks
    before = _anonymous_mb()
    release_free_memory()
    assert before - _anonymous_mb() > 40
    assert keep.raw[:1] == b"\0"
