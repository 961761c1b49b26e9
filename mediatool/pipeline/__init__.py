"""One function per command: wires the stages, owns the client, the manifest and progress."""

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
