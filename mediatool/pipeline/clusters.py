"""Which machines a run uses: this one, or the Dask cluster of --scheduler (settings.scheduler).

Kept apart from pipeline.distributing, the only module that imports Dask, so that a run without
--scheduler imports neither Dask nor that module."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from mediatool.config import Settings
from mediatool.pipeline.common import Say

if TYPE_CHECKING:
    from mediatool.pipeline.distributing import Cluster


def cluster_of(settings: Settings, say: Say) -> AbstractContextManager[Cluster | None]:
    """The Dask cluster of `settings.scheduler` (--scheduler), open for the run, or None."""
    if settings.scheduler is None:
        return nullcontext()
    from mediatool.pipeline.distributing import open_cluster

    return open_cluster(settings, say)
