"""The manifest: one SQLite file in the cache folder; this package is the only code that speaks SQL.

Shaped like its tables (`Manifest` composes one class per table, all on one connection):

    connection  opening, migrating, transactions, checkpoints, read-only and damaged files
    schema      the numbered migrations (a manifest written by a newer mediatool is refused)
    posts       posts and refs: what each post holds
    urls        urls: origin URLs, their candidates and what fetching them gave
    images      images and thumbs: stored originals, analysis, groups, thumbnails
    rewrites    generations and generation_edits: each rewrite of a post, for undo
    queries     the reads the report and rewrite make across the tables
    upkeep      the CI job's reads and writes: check, verify, gc
    marks       named values a run leaves for the next (what the last grouping was done on)
    merge       shard manifests merged into one (`mediatool merge`), on natural keys
    rows        the frozen rows handed out; keys: how posts are named
    _sql        the chunked `IN (...)` query and the effective URL state

What to fetch again is decided by `mediatool.fetch.policy`, not in SQL.
"""

from mediatool.manifest.images import ImagesTable
from mediatool.manifest.keys import archive_root, relative_key_text, relative_post_key
from mediatool.manifest.marks import MarksTable
from mediatool.manifest.merge import (
    MERGE_RULES,
    RUN_STATE_TABLES,
    MergeTable,
    ShardMerged,
    migrated_copy,
    schema_version_of,
)
from mediatool.manifest.posts import PostsTable
from mediatool.manifest.queries import QueriesTable
from mediatool.manifest.rewrites import RewritesTable
from mediatool.manifest.rows import (
    FetchedPost,
    ImageFilter,
    ImageRow,
    Localization,
    PostState,
    RecordedPost,
    StoredFile,
    UrlStatus,
)
from mediatool.manifest.schema import MIGRATIONS, SCHEMA_VERSION
from mediatool.manifest.upkeep import UpkeepTable
from mediatool.manifest.urls import UrlsTable


class Manifest(
    PostsTable,
    UrlsTable,
    ImagesTable,
    RewritesTable,
    QueriesTable,
    UpkeepTable,
    MarksTable,
    MergeTable,
):
    """A connection to manifest.sqlite with the queries the pipeline needs."""


__all__ = [
    "MERGE_RULES",
    "MIGRATIONS",
    "RUN_STATE_TABLES",
    "SCHEMA_VERSION",
    "FetchedPost",
    "ImageFilter",
    "ImageRow",
    "Localization",
    "Manifest",
    "MergeTable",
    "PostState",
    "RecordedPost",
    "ShardMerged",
    "StoredFile",
    "UrlStatus",
    "archive_root",
    "migrated_copy",
    "relative_key_text",
    "relative_post_key",
    "schema_version_of",
]
