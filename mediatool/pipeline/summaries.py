"""What each command reports: small frozen summaries that texts.py renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


class Summary:
    """What a command reports: `ok` while it holds no problem (a summary with more to judge
    says so itself), `as_dict` for --json. The summaries below are frozen dataclasses."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FailedUrl:
    url: str
    reason: str
    message: str
    references: int = 0  # references to it in the posts of the run
    posts: tuple[str, ...] = ()  # the posts (manifest keys) that refer to it
    earlier: bool = False  # recorded by an earlier run and not tried again in this one
    accepted: bool = False  # its reason is in [check] allow: shown, but not a failure


@dataclass(frozen=True, slots=True)
class FetchSummary(Summary):
    posts: int
    posts_failed: int
    references: int
    remote_references: int
    distinct_urls: int
    downloaded: int
    already_stored: int
    not_modified: int
    images_analyzed: int
    boilerplate_images: int
    groups: int
    grouped_images: int
    seconds: float
    failed: tuple[FailedUrl, ...] = ()
    problems: tuple[str, ...] = ()
    failed_references: int = 0  # references whose URL or image failed (now or earlier)
    downloaded_by_kind: dict[str, int] = field(default_factory=dict)  # image, video, audio...
    stored_by_kind: dict[str, int] = field(default_factory=dict)  # usable URLs of the posts
    resume_needed: bool = False  # the time budget ran out before every URL was tried
    not_started: int = 0  # URLs the time budget (or being offline) left for the next run
    offline: bool = False  # no host answered: the run stopped, nothing was marked failed
    fresh: int = 0  # stored URLs --refresh did not ask again: still fresh (Cache-Control)
    shard: str | None = None  # "I/N" of `fetch --shard`: only its hosts' URLs were fetched
    shard_urls: int = 0  # the distinct URLs of the shard (of distinct_urls)

    @property
    def ok(self) -> bool:
        return all(f.accepted for f in self.failed) and not self.problems and not self.offline


@dataclass(frozen=True, slots=True)
class LeftRemote:
    post: str
    line: int
    source_url: str
    origin_url: str
    reason: str


@dataclass(frozen=True, slots=True)
class RewriteSummary(Summary):
    posts: int
    posts_changed: int
    references: int
    references_rewritten: int
    references_retargeted: int  # already local, moved to their group's new canonical
    references_left_remote: int
    seconds: float
    dry_run: bool
    left_remote: tuple[LeftRemote, ...] = ()
    problems: tuple[str, ...] = ()
    diffs: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return not self.left_remote and not self.problems

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("diffs")
        return data


@dataclass(frozen=True, slots=True)
class ScanSummary(Summary):
    posts: int
    posts_failed: int
    references: int
    by_context: dict[str, int]
    by_host: dict[str, int]
    problems: tuple[str, ...] = ()
    by_media: dict[str, int] = field(default_factory=dict)  # image, video, audio, document, track


@dataclass(frozen=True, slots=True)
class Finding:
    """A reference that `rewrite --check` objects to."""

    post: str
    line: int
    url: str
    why: str  # "localizable", "missing file" or "failed (REASON)"
    reason: str = ""  # for a failed reference: its URL's or image's reason code


@dataclass(frozen=True, slots=True)
class CheckSummary(Summary):
    posts: int
    localizable: tuple[Finding, ...]
    missing: tuple[Finding, ...]
    problems: tuple[str, ...] = ()
    failed: tuple[Finding, ...] = ()  # remote references whose URL or image failed
    accepted: tuple[Finding, ...] = ()  # ... for a reason in [check] allow: not a failure
    unfetched: tuple[Finding, ...] = ()  # remote references fetch never tried, or cannot edit
    changed: tuple[Finding, ...] = ()  # posts whose bytes changed since fetch scanned them

    @property
    def ok(self) -> bool:
        objections = (self.localizable, self.missing, self.failed, self.unfetched, self.changed)
        return not any(objections) and not self.problems


@dataclass(frozen=True, slots=True)
class UndoSummary(Summary):
    posts: int
    posts_restored: int
    edits_undone: int
    dry_run: bool
    problems: tuple[str, ...] = ()
    diffs: tuple[str, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("diffs")
        return data


@dataclass(frozen=True, slots=True)
class MaintenanceSummary(Summary):
    """What `dedup --regroup` and `thumbs --rebuild` did."""

    images: int
    groups: int
    grouped_images: int
    boilerplate_images: int
    thumbnails: int
    seconds: float
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VerifySummary(Summary):
    """What `verify` found (after `--repair`, what is still wrong)."""

    originals: int
    thumbnails: int
    missing_originals: int
    damaged_originals: int
    missing_thumbnails: int
    missing_references: int  # localized references whose file is missing
    repaired: int
    seconds: float
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GcSummary(Summary):
    """What `gc` forgot and deleted (or would, with `--dry-run`)."""

    posts: int
    urls: int
    originals: int
    thumbnails: int
    bytes: int  # with --dry-run: the bytes the files to delete hold
    dry_run: bool
    seconds: float
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MergeSummary(Summary):
    shards: int
    manifest: str  # the manifest merged into
    taken: dict[str, int]  # rows taken from the shards, by table (new or winning a conflict)
    urls: dict[str, int]  # the merged manifest's URLs by status: ok, failed, pending
    files_copied: int  # originals and thumbnails copied from --from-cache folders
    files_present: int  # ... that the merged store had already
    seconds: float
    mixed_rewrites: tuple[str, ...] = ()  # posts with rewrite generations from several shards
    problems: tuple[str, ...] = ()
