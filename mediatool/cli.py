"""The command line: parse flags, build settings, call the pipeline, map errors to exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mediatool import __version__, pipeline, site, texts
from mediatool.config import (
    DEFAULT_PROGRESS_EVERY,
    OBJECT_STORE_SCHEMES,
    Settings,
    find_config,
    load_settings,
    parse_duration,
)
from mediatool.errors import (
    EXIT_FAILURES,
    EXIT_FATAL,
    EXIT_OFFLINE,
    EXIT_OK,
    MediatoolError,
    UsageError,
    fatal_from_os_error,
    stop_report,
)
from mediatool.partition import Shard
from mediatool.processes import stop_on_signals

T = TypeVar("T")


class CacheType(click.ParamType[Any]):
    """--cache: a folder (a Path), or an object store URL (s3://bucket/prefix, kept as text)."""

    name = "cache"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.startswith(OBJECT_STORE_SCHEMES):
            return value
        return click.Path(file_okay=False, path_type=Path).convert(value, param, ctx)


CACHE = CacheType()
MANIFEST = click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite manifest to use  [default: CACHE/manifest.sqlite]",
)
PATHS = click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, path_type=Path), metavar="[PATH]..."
)


SCHEDULER = click.option(
    "--scheduler",
    metavar="local:N|tcp://HOST:PORT",
    help="Run downloads and analyses on a Dask cluster: N worker processes here, or a running "
    "scheduler (docs/distributed.md).",
)


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--cache",
            type=CACHE,
            default=None,
            help="Folder of the store and manifest.sqlite, or s3://BUCKET/PREFIX  [./cache]",
        ),
        MANIFEST,
        click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="mediatool.toml to use  [default: the archive root's, if any]",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON summary on stdout."),
        click.option(
            "--wait",
            is_flag=True,
            help="When another run holds the cache, wait for it instead of exiting.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mediatool")
def main() -> None:
    """Make article archives own their images.

    `fetch` finds every image reference in the posts, unwraps proxies, downloads, dedups and
    thumbnails the images into the cache; `rewrite` points the posts at the local copies."""


@main.command()
@PATHS
@common_options
@click.option("--concurrency", type=click.IntRange(1, 256), help="Downloads at once  [default: 16]")
@click.option(
    "--per-host", type=click.IntRange(1, 64), help="Downloads at once per host  [default: 4]"
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Processes parsing posts and images  [default: cores]",
)
@click.option("--retries", type=click.IntRange(0, 20), help="Retries per URL  [default: 3]")
@click.option("--max-wait", type=click.FloatRange(0), help="Longest Retry-After to honour, s  [60]")
@click.option("--connect-timeout", type=click.FloatRange(0.1), help="Seconds  [default: 10]")
@click.option("--read-timeout", type=click.FloatRange(0.1), help="Seconds  [default: 30]")
@click.option(
    "--max-bytes",
    type=click.IntRange(1),
    help="Largest download of any kind, bytes  [default: image 50 MB, video 2 GB, ...]",
)
@click.option("--max-pixels", type=click.IntRange(1), help="Largest image, pixels  [default: 80 M]")
@click.option(
    "--max-time", type=click.FloatRange(0.1), help="Longest one download may take, s  [300]"
)
@click.option("--user-agent", help="User-Agent header to send.")
@click.option("--retry-failed", is_flag=True, help="Also retry URLs that failed for good (404...).")
@click.option(
    "--refresh",
    is_flag=True,
    help="Revalidate stored URLs whose Cache-Control/Expires say they are stale.",
)
@click.option("--refresh-all", is_flag=True, help="Revalidate every stored URL, fresh or not.")
@click.option(
    "--wayback",
    is_flag=True,
    help="Last resort: the Internet Archive's copy nearest the post date.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow URLs on loopback/private addresses (SSRF guard off).",
)
@click.option(
    "--time-budget",
    metavar="DURATION",
    help="Start no download after this long (5h30m, 90m, 3600s); exit 0, resume needed.",
)
@click.option(
    "--cookies",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Netscape cookies.txt; its cookies go to their own hosts (.netrc is read too).",
)
@click.option(
    "--shard",
    metavar="I/N",
    help="Fetch only the URLs of hosts in shard I of N (a CI matrix job); merge afterwards.",
)
@click.option(
    "--progress-every",
    type=click.FloatRange(0, min_open=True),
    help="Seconds between plain progress lines when stderr is not a terminal  [10]",
)
@SCHEDULER
def fetch(
    paths: tuple[Path, ...],
    cache: Path | None,
    manifest: Path | None,
    config: Path | None,
    as_json: bool,
    wait: bool,
    concurrency: int | None,
    per_host: int | None,
    workers: int | None,
    retries: int | None,
    max_wait: float | None,
    connect_timeout: float | None,
    read_timeout: float | None,
    max_bytes: int | None,
    max_pixels: int | None,
    max_time: float | None,
    user_agent: str | None,
    retry_failed: bool,
    refresh: bool,
    refresh_all: bool,
    wayback: bool,
    allow_private: bool,
    time_budget: str | None,
    cookies: Path | None,
    shard: str | None,
    progress_every: float | None,
    scheduler: str | None,
) -> None:
    """Find, resolve, download, store, hash, group and thumbnail every image of PATH...

    A PATH is a post or a folder searched for .md, .markdown, .html, .htm (default: .)."""
    overrides = {
        "cache_dir": cache,
        "manifest_path": manifest,
        "wait_for_lock": wait or None,
        "workers": workers,
        "fetch.concurrency": concurrency,
        "fetch.per_host": per_host,
        "fetch.allow_private": allow_private or None,
        "fetch.wayback": wayback or None,
        "fetch.retries": retries,
        "fetch.max_wait": max_wait,
        "fetch.connect_timeout": connect_timeout,
        "fetch.read_timeout": read_timeout,
        "fetch.max_bytes": max_bytes,
        "fetch.user_agent": user_agent,
        "images.max_pixels": max_pixels,
        "fetch.max_time": max_time,
        "fetch.cookies_file": str(cookies) if cookies else None,
        "scheduler": scheduler,
    }
    targets, settings, _ = _site_settings(paths, config, overrides)
    budget = _run(lambda: parse_duration(time_budget)) if time_budget else None
    part = _run(lambda: _parse_shard(shard)) if shard else None
    terminal = sys.stderr.isatty()
    summary = _run(
        lambda: pipeline.run_fetch(
            targets,
            settings,
            say=_say,
            progress=terminal,
            retry_failed=retry_failed,
            refresh=refresh,
            refresh_all=refresh_all,
            time_budget=budget,
            progress_every=None if terminal else (progress_every or DEFAULT_PROGRESS_EVERY),
            shard=part,
        )
    )
    click.echo(texts.fetch_json(summary) if as_json else texts.fetch_summary_text(summary))
    sys.exit(EXIT_OFFLINE if summary.offline else EXIT_OK if summary.ok else EXIT_FAILURES)


@main.command()
@PATHS
@common_options
@click.option(
    "--base-url", metavar="PREFIX", help="Write PREFIX + path in the cache (e.g. /media/)."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print a unified diff (in the JSON with --json); change nothing.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing; exit 1 if a remote reference could be localized or a local file "
    "is missing.",
)
@click.option(
    "--undo", is_flag=True, help="Restore the original URLs of every post rewrite changed."
)
@click.option(
    "--srcset",
    is_flag=True,
    help="Also give each <img> of a localized image a srcset of its thumbnails and sizes.",
)
def rewrite(
    paths: tuple[Path, ...],
    cache: Path | None,
    manifest: Path | None,
    config: Path | None,
    as_json: bool,
    wait: bool,
    base_url: str | None,
    dry_run: bool,
    check: bool,
    undo: bool,
    srcset: bool,
) -> None:
    """Point every fetched image reference of PATH... at its local copy (offline).

    Only the URL text of each localized reference changes (and width/height are added to an
    <img> that has none); every other byte stays. Every edit is recorded for --undo."""
    if check and undo:
        raise click.UsageError("--check and --undo do not go together.")
    targets, settings, layout = _site_settings(
        paths, config, _cache_overrides(cache, manifest, wait)
    )
    markup_url = layout.markup_url if layout and not base_url else None
    base_url = base_url or (layout.media_url if layout else None)
    if check:
        checked = _run(lambda: pipeline.run_check(targets, settings, say=_say, base_url=base_url))
        click.echo(texts.summary_json(checked) if as_json else texts.check_summary_text(checked))
        sys.exit(EXIT_OK if checked.ok else EXIT_FAILURES)
    if undo:
        undone = _run(lambda: pipeline.run_undo(targets, settings, say=_say, dry_run=dry_run))
        if not as_json:  # with --json the diffs are in the JSON: stdout is one object
            _echo_diffs(undone.diffs)
        click.echo(texts.summary_json(undone) if as_json else texts.undo_summary_text(undone))
        sys.exit(EXIT_OK if undone.ok else EXIT_FAILURES)
    summary = _run(
        lambda: pipeline.run_rewrite(
            targets,
            settings,
            say=_say,
            base_url=base_url,
            dry_run=dry_run,
            progress=sys.stderr.isatty(),
            markup_url=markup_url,
            srcset=srcset,
        )
    )
    if not as_json:
        _echo_diffs(summary.diffs)
    click.echo(texts.rewrite_json(summary) if as_json else texts.rewrite_summary_text(summary))
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILURES)


@main.command()
@PATHS
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="mediatool.toml to use  [default: the archive root's, if any]",
)
def scan(paths: tuple[Path, ...], config: Path | None) -> None:
    """List every image reference of PATH... as JSON lines (no network, no cache).

    Each line: post, line, column, context, kind, source_url, origin_url, rules, host.
    A summary by context and host goes to stderr."""
    targets, settings, _ = _site_settings(paths, config, {})

    def emit(record: dict[str, object]) -> None:
        click.echo(json.dumps(record, ensure_ascii=False))

    summary = _run(lambda: pipeline.run_scan(targets, settings, emit=emit, say=_say))
    _say(texts.scan_summary_text(summary))
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILURES)


@main.command()
@common_options
@click.option(
    "--regroup",
    is_flag=True,
    expose_value=False,
    help="Accepted for old scripts; dedup always regroups.",
)
@click.option("--threshold", type=click.IntRange(0, 64), help="Hamming distance  [default: 10]")
def dedup(
    cache: Path | None,
    manifest: Path | None,
    config: Path | None,
    as_json: bool,
    wait: bool,
    threshold: int | None,
) -> None:
    """Group near-duplicate images of the cache again (offline); rewrite follows the result."""
    _, settings, _ = _site_settings((), config, _cache_overrides(cache, manifest, wait))
    summary = _run(lambda: pipeline.run_regroup(settings, say=_say, threshold=threshold))
    click.echo(texts.summary_json(summary) if as_json else texts.maintenance_summary_text(summary))
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILURES)


@main.command()
@common_options
@click.option(
    "--rebuild",
    is_flag=True,
    expose_value=False,
    help="Accepted for old scripts; thumbs always rebuilds.",
)
@SCHEDULER
def thumbs(
    cache: Path | None,
    manifest: Path | None,
    config: Path | None,
    as_json: bool,
    wait: bool,
    scheduler: str | None,
) -> None:
    """Regenerate every thumbnail from the stored originals (offline)."""
    overrides = _cache_overrides(cache, manifest, wait) | {"scheduler": scheduler}
    _, settings, _ = _site_settings((), config, overrides)
    summary = _run(lambda: pipeline.run_rebuild_thumbs(settings, say=_say))
    click.echo(texts.summary_json(summary) if as_json else texts.maintenance_summary_text(summary))
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILURES)


@main.command(name="report")
@click.option(
    "--cache",
    type=CACHE,
    default=None,
    help="Folder of the store and manifest.sqlite, or s3://BUCKET/PREFIX  [./cache]",
)
@MANIFEST
def report_command(cache: Path | None, manifest: Path | None) -> None:
    """Write report.html into the cache folder: totals, failures by reason and host,
    near-duplicate groups, boilerplate images and declared-size mismatches."""
    _, settings, _ = _site_settings((), None, {"cache_dir": cache, "manifest_path": manifest})
    path = _run(lambda: pipeline.run_report(settings))
    click.echo(str(path))


@main.command(name="site")
@click.argument(
    "root", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="mediatool.toml to use  [default: the archive root's, if any]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the layout as one JSON object.")
def site_command(root: Path | None, config: Path | None, as_json: bool) -> None:
    """Show the site generator found in ROOT (default: .) and why, the posts fetch and rewrite
    read there, the media folder and URL they use and the private state folder."""
    folder = root or Path(".")
    settings = _settings([folder], config, {})
    layout = _run(lambda: site.detect_site(folder, settings.site))
    click.echo(json.dumps(layout.as_dict()) if as_json else layout.text())


@main.command()
@common_options
@click.option(
    "--repair",
    is_flag=True,
    help="Fetch missing or damaged originals again and remake missing thumbnails.",
)
def verify(
    cache: Path | None,
    manifest: Path | None,
    config: Path | None,
    as_json: bool,
    wait: bool,
    repair: bool,
) -> None:
    """Check every stored original against its sha256, every thumbnail and every localized
    reference's file; exit 1 when something is missing or damaged."""
    _, settings, _ = _site_settings((), config, _cache_overrides(cache, manifest, wait))
    summary = _run(lambda: pipeline.run_verify(settings, say=_say, repair=repair))
    click.echo(texts.summary_json(summary) if as_json else texts.verify_summary_text(summary))
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILURES)


@main.command()
@common_options
@click.option("--dry-run", is_flag=True, help="List what would go; change nothing.")
def gc(
    cache: Path | None,
    manifest: Path | None,
    config: Path | None,
    as_json: bool,
    wait: bool,
    dry_run: bool,
) -> None:
    """Forget posts that are gone (deleted or renamed) with their references, then delete the
    URLs, originals and thumbnails no post uses any more."""
    _, settings, _ = _site_settings((), config, _cache_overrides(cache, manifest, wait))
    summary = _run(lambda: pipeline.run_gc(settings, say=_say, dry_run=dry_run))
    click.echo(texts.summary_json(summary) if as_json else texts.gc_summary_text(summary))
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILURES)


def _parse_shard(text: str) -> Shard:
    """`--shard I/N` as a Shard; a bad value is one usage line (exit 2)."""
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise UsageError(f"--shard: {exc}.") from None


def _cache_overrides(cache: Path | None, manifest: Path | None, wait: bool) -> dict[str, Any]:
    """The settings the options every cache command takes give (None: not given)."""
    return {"cache_dir": cache, "manifest_path": manifest, "wait_for_lock": wait or None}


@main.command()
@click.argument(
    "shards",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="SHARD.sqlite...",
)
@click.option(
    "--into",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The manifest to merge into, created if missing  [default: CACHE/manifest.sqlite]",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the merged store (where --from-cache files go)  [default: ./cache]",
)
@click.option(
    "--from-cache",
    "from_caches",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A shard's cache folder: its originals and thumbnails the store lacks are copied in "
    "(repeat it for each shard).",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="mediatool.toml to use  [default: the archive root's, if any]",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary on stdout.")
@click.option(
    "--wait",
    is_flag=True,
    help="When another run holds the cache, wait for it instead of exiting.",
)
def merge(
    shards: tuple[Path, ...],
    into: Path | None,
    cache: Path | None,
    from_caches: tuple[Path, ...],
    config: Path | None,
    as_json: bool,
    wait: bool,
) -> None:
    """Merge the manifests of `fetch --shard I/N` runs (SHARD.sqlite...) into one, in any order
    and as often as needed; then run `dedup` and `rewrite` on it (docs/shards.md)."""
    _, settings, _ = _site_settings((), config, _cache_overrides(cache, into, wait))
    summary = _run(
        lambda: pipeline.run_merge(list(shards), settings, say=_say, from_caches=from_caches)
    )
    click.echo(texts.summary_json(summary) if as_json else texts.merge_summary_text(summary))
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILURES)


def _echo_diffs(diffs: tuple[str, ...]) -> None:
    for diff in diffs:
        click.echo(diff, nl=False)


def _site_settings(
    paths: tuple[Path, ...], config: Path | None, overrides: dict[str, Any]
) -> tuple[list[Path], Settings, site.SiteLayout | None]:
    """The posts to read, the settings and the site's layout (site.run_layout)."""
    settings = _settings(list(paths) or [Path(".")], config, overrides)
    cache_given = overrides.get("cache_dir") is not None
    return _run(lambda: site.run_layout(paths, settings, cache_given=cache_given))


def _settings(targets: list[Path], config: Path | None, overrides: dict[str, Any]) -> Settings:
    return _run(lambda: load_settings(config or find_config(targets), overrides))


def _run(call: Callable[[], T]) -> T:
    """Run library code; a MediatoolError becomes its message and exit code."""
    try:
        with stop_on_signals():
            return call()
    except MediatoolError as exc:
        _say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # The reader of stdout went away (`mediatool scan | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILURES)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Stopped)
        message, code = stop_report(exc)
        with contextlib.suppress(OSError):  # a hung-up terminal takes no more lines
            _say(message)
        sys.exit(code)
    except Exception as exc:
        # A full disk or a read-only folder met outside the checks: one line naming the file.
        fatal = fatal_from_os_error(exc) if isinstance(exc, OSError) else None
        if fatal is not None:
            _say(f"error: {fatal}")
            sys.exit(fatal.exit_code)
        _say("internal error (please report it with the lines below):")
        _say(traceback.format_exc().rstrip())
        sys.exit(EXIT_FATAL)


def _say(message: str) -> None:
    click.echo(message, err=True)


if __name__ == "__main__":
    main()
