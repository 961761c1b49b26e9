"""One function per command: wires the stages, owns the client, the manifest and progress.

Each `run_*` is imported from its module on first use, so a command loads only what it runs
(`fetch` on an unchanged archive never imports the image, HTTP or Markdown libraries)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediatool.pipeline.checking import run_check
    from mediatool.pipeline.collecting import run_gc
    from mediatool.pipeline.fetching import run_fetch
    from mediatool.pipeline.maintenance import run_rebuild_thumbs, run_regroup
    from mediatool.pipeline.merging import run_merge
    from mediatool.pipeline.reporting import run_report
    from mediatool.pipeline.rewriting import run_rewrite
    from mediatool.pipeline.scanning import run_scan
    from mediatool.pipeline.undoing import run_undo
    from mediatool.pipeline.verifying import run_verify

_MODULE_OF = {
    "run_check": "checking",
    "run_gc": "collecting",
    "run_fetch": "fetching",
    "run_rebuild_thumbs": "maintenance",
    "run_regroup": "maintenance",
    "run_merge": "merging",
    "run_report": "reporting",
    "run_rewrite": "rewriting",
    "run_scan": "scanning",
    "run_undo": "undoing",
    "run_verify": "verifying",
}

__all__ = [
    "run_check",
    "run_fetch",
    "run_gc",
    "run_merge",
    "run_rebuild_thumbs",
    "run_regroup",
    "run_report",
    "run_rewrite",
    "run_scan",
    "run_undo",
    "run_verify",
]


def __getattr__(name: str) -> object:
    """A `run_*` function, imported from its module when first asked for."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"mediatool.pipeline.{module}"), name)
