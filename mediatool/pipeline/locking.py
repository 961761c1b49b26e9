"""One writing run per cache: the lock around a command's run function."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from mediatool.config import Settings
from mediatool.lock import hold_cache
from mediatool.pipeline.common import existing_store, store_of

P = ParamSpec("P")
R = TypeVar("R")


def one_run_per_cache(
    command: str, *, makes_cache: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorates the run function of a command that writes to the cache: it runs holding the
    cache's lock (mediatool.lock; the cache is its `settings` argument's), so a second such run
    waits or exits with CacheBusy and never meets the first one's files half-written. A call
    with dry_run=True writes nothing and takes no lock. Unless the command `makes_cache`, a
    cache without a manifest is refused before any lock file is made."""

    def decorate(run: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(run)

        @functools.wraps(run)
        def locked(*args: P.args, **kwargs: P.kwargs) -> R:
            call = signature.bind(*args, **kwargs).arguments
            settings: Settings = call["settings"]
            if call.get("dry_run"):
                return run(*args, **kwargs)
            if not makes_cache:
                existing_store(settings)
            wait, say = settings.wait_for_lock, call.get("say")
            folder = store_of(settings).state_dir  # with s3://: beside the manifest
            with hold_cache(folder, command, wait=wait, say=say):
                return run(*args, **kwargs)

        return locked

    return decorate
