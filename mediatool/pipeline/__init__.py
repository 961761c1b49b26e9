"""One function per command: wires the stages, owns the client, the manifest and progress."""

from mediatool.pipeline.fetching import run_fetch
from mediatool.pipeline.rewriting import run_rewrite
from mediatool.pipeline.summaries import FailedUrl, FetchSummary, LeftRemote, RewriteSummary

__all__ = [
    "FailedUrl",
    "FetchSummary",
    "LeftRemote",
    "RewriteSummary",
    "run_fetch",
    "run_rewrite",
]
