"""Merging shard manifests (mediatool.manifest.merge): every table has a rule, merges are
order-independent and idempotent (property tests over shards built through the real Manifest
API), equal a one-manifest run where that is defined, and follow their conflict rules."""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediatool.errors import UsageError
from mediatool.manifest import (
    MERGE_RULES,
    RUN_STATE_TABLES,
    SCHEMA_VERSION,
    Manifest,
    PostState,
)
from mediatool.manifest.merge import MergeRule
from mediatool.models import (
    Analysis,
    Download,
    FetchFailure,
    ImageInfo,
    Reference,
    RefKind,
    Resolution,
    Span,
    Thumbnail,
)
from mediatool.partition import Shard
from mediatool.rewrite import Generation, UndoEdit
from mediatool.store import original_relpath, thumb_relpath

TIME_COLUMNS = {"scanned_at", "checked_at", "at"}

# -- what a manifest holds, by natural keys (ids differ between manifests) -----------------


def content(path: Path, *, times: bool = True) -> dict[str, object]:
    """Every table's rows with ids replaced by natural keys; generations in their order per
    post. `times=False` leaves out the clock columns (scanned_at, checked_at, at)."""
    db = sqlite3.connect(path)
    try:
        found: dict[str, object] = {}
        for table in ("posts", "urls", "images", "thumbs"):
            found[table] = _rows(db, f"SELECT * FROM {table}", times)
        found["refs"] = _rows(
            db, "SELECT p.path, r.* FROM refs r JOIN posts p ON p.id = r.post_id", times
        )
        generations: dict[str, list[object]] = {}
        for row in db.execute("SELECT * FROM generations ORDER BY id").fetchall():
            names = [d[0] for d in db.execute("SELECT * FROM generations").description]
            record = dict(zip(names, row, strict=True))
            edits = db.execute(
                "SELECT seq, start, old, new FROM generation_edits WHERE generation=? ORDER BY seq",
                (record.pop("id"),),
            ).fetchall()
            kept = {k: v for k, v in record.items() if times or k not in TIME_COLUMNS}
            generations.setdefault(str(record["post_key"]), []).append((kept, edits))
        found["generations"] = generations
        return found
    finally:
        db.close()


def _rows(db: sqlite3.Connection, query: str, times: bool) -> list[tuple[object, ...]]:
    cursor = db.execute(query)
    names = [d[0] for d in cursor.description]
    skip = {"id", "post_id"} | (set() if times else TIME_COLUMNS)
    rows = [
        tuple(v for n, v in zip(names, row, strict=True) if n not in skip)
        for row in cursor.fetchall()
    ]
    return sorted(rows, key=repr)


# -- shards built through the Manifest API --------------------------------------------------

HOSTS = ("a.example.test", "b.example.test", "c.example.test", "d.example.test")
URLS = tuple(f"http://{host}/{n}.jpg" for host in HOSTS for n in range(2))
POSTS = ("posts/one.md", "posts/two.md", "posts/three.md")
SHAS = tuple(f"{n:x}" * 64 for n in range(1, 5))


def _reference(url: str, at: int) -> tuple[Reference, str]:
    raw = f"![]({url})"
    ref = Reference("markdown", raw, url, Span(at, at + len(raw)), 1 + at, 1, RefKind.REMOTE)
    return ref, url


def record_scan(manifest: Manifest, post: str, urls: list[str], mtime: int) -> None:
    """A post as fetch scans it: its state, references and their URLs."""
    for url in urls:
        manifest.add_resolution(Resolution(url, url, (url,), ()))
    refs = [_reference(url, n * 40) for n, url in enumerate(urls)]
    manifest.record_post(post, PostState(100 + len(urls), mtime, "fp"), "utf-8", None, refs)
    manifest.record_post_sha(post, f"sha-{post}-{mtime}-{'|'.join(urls)}")  # of its bytes


def record_outcome(manifest: Manifest, url: str, outcome: str, sha: str) -> None:
    """A download (with its stored image analyzed) or a failure of `url`."""
    if outcome == "failed":
        manifest.record_failure(FetchFailure(url, "http_404", f"{url}: HTTP 404"))
        return
    relpath = original_relpath(sha, "jpg")
    download = Download(url, url, url, Path("x.part"), sha, 10, "image/jpeg", None, None)
    manifest.record_download(download, sha)
    if manifest.add_original(sha, relpath, 10):
        info = ImageInfo(sha, "JPEG", 8, 6, 10, "0" * 16, "1" * 16)
        thumb = Thumbnail(sha, 4, 3, thumb_relpath(sha, 4, 3, "webp"))
        manifest.record_analysis(Analysis(info, (thumb,)))


def record_rewrite(manifest: Manifest, post: str, run: str, before: str, after: str) -> None:
    edits = (UndoEdit(3, "http://a.example.test/0.jpg", "../cache/x.jpg"),)
    manifest.record_generation(Generation(post, before, after, edits, run))


@dataclass(frozen=True)
class Step:
    """One write a shard's run made: a scan, an URL's outcome or a rewrite."""

    kind: str
    post: str = ""
    urls: tuple[str, ...] = ()
    mtime: int = 0
    outcome: str = ""
    sha: str = ""
    run: str = ""


def apply(manifest: Manifest, step: Step) -> None:
    with manifest.transaction():
        if step.kind == "scan":
            record_scan(manifest, step.post, list(step.urls), step.mtime)
        elif step.kind == "outcome":
            if step.urls[0] not in manifest.origin_urls_of(list(POSTS)):
                record_scan(manifest, step.post, list(step.urls), step.mtime)
            record_outcome(manifest, step.urls[0], step.outcome, step.sha)
        else:
            record_rewrite(manifest, step.post, step.run, step.sha[:8], step.sha[8:16])


STEPS = st.one_of(
    st.builds(
        Step,
        kind=st.just("scan"),
        post=st.sampled_from(POSTS),
        urls=st.lists(st.sampled_from(URLS), max_size=3, unique=True).map(tuple),
        mtime=st.integers(1, 3),
    ),
    st.builds(
        Step,
        kind=st.just("outcome"),
        post=st.sampled_from(POSTS),
        urls=st.sampled_from(URLS).map(lambda url: (url,)),
        mtime=st.integers(1, 3),
        outcome=st.sampled_from(["ok", "failed"]),
        sha=st.sampled_from(SHAS),
    ),
    st.builds(
        Step,
        kind=st.just("rewrite"),
        post=st.sampled_from(POSTS),
        sha=st.sampled_from(SHAS),
        run=st.sampled_from(["run1", "run2"]),
    ),
)


@contextmanager
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mediatool-merge-") as name:
        yield Path(name)


def build(path: Path, steps: list[Step]) -> Path:
    with Manifest.open(path) as manifest:
        for step in steps:
            apply(manifest, step)
    return path


def merged(into: Path, shards: list[Path]) -> Path:
    with Manifest.open(into) as manifest:
        for shard in shards:
            manifest.merge_shard(shard)
    return into


# -- the rules cover the schema -------------------------------------------------------------


def test_every_table_has_a_merge_rule_and_every_foreign_key_is_remapped(tmp_path: Path) -> None:
    with Manifest.open(tmp_path / "m.sqlite") as manifest:
        tables = manifest.table_names() - set(RUN_STATE_TABLES)
        assert tables == set(MERGE_RULES), "a table without a merge rule"
        for table, rule in MERGE_RULES.items():
            assert manifest.foreign_key_columns(table) <= set(rule.remapped), table
            assert rule.key or rule.parent, f"{table}: neither a natural key nor a parent"


def test_every_natural_key_upserted_on_is_unique_in_the_schema(tmp_path: Path) -> None:
    build(tmp_path / "m.sqlite", [])
    with sqlite3.connect(tmp_path / "m.sqlite") as db:
        for table, rule in MERGE_RULES.items():
            if not rule.key or table == "generations":  # matched with IS, not upserted
                continue
            unique = [
                tuple(info[2] for info in db.execute(f"PRAGMA index_info('{index[1]}')"))
                for index in db.execute(f"PRAGMA index_list('{table}')")
                if index[2]
            ]
            assert rule.key in unique, f"{table}: ON CONFLICT{rule.key} needs a unique key"


def test_a_table_a_later_migration_adds_merges_by_its_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shard, into = tmp_path / "shard.sqlite", tmp_path / "into.sqlite"
    for path, value in ((shard, "from the shard"), (into, "ours")):
        build(path, [])
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (name TEXT PRIMARY KEY, value TEXT, at REAL)")
            db.execute("INSERT INTO notes VALUES ('a', ?, ?)", (value, len(value)))
            db.execute("INSERT INTO notes VALUES (?, 'x', 0)", (str(path),))
    rules = {**MERGE_RULES, "notes": MergeRule(("name",), "{t}.at")}
    monkeypatch.setattr("mediatool.manifest.merge.MERGE_RULES", rules)
    merged(into, [shard])
    with sqlite3.connect(into) as db:
        rows = db.execute("SELECT name, value FROM notes ORDER BY name").fetchall()
    assert rows == sorted([("a", "from the shard"), (str(shard), "x"), (str(into), "x")])


def test_a_column_a_later_migration_adds_flows_through(tmp_path: Path) -> None:
    shard, into = tmp_path / "shard.sqlite", tmp_path / "into.sqlite"
    build(shard, [Step("outcome", POSTS[0], (URLS[0],), 1, "ok", SHAS[0])])
    build(into, [])
    for path in (shard, into):
        with Manifest.open(path) as manifest:
            manifest.db.execute("ALTER TABLE urls ADD COLUMN later TEXT")
    with sqlite3.connect(shard) as db:
        db.execute("UPDATE urls SET later='kept'")
    merged(into, [shard])
    with sqlite3.connect(into) as db:
        assert db.execute("SELECT later FROM urls").fetchall() == [("kept",)]


# -- order-independent and idempotent --------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    shards=st.lists(st.lists(STEPS, max_size=8), min_size=2, max_size=3),
    data=st.data(),
)
def test_any_order_any_number_of_times_gives_the_same_manifest(
    shards: list[list[Step]], data: st.DataObject
) -> None:
    with folder() as tmp:
        paths = [build(tmp / f"shard{n}.sqlite", steps) for n, steps in enumerate(shards)]
        first = content(merged(tmp / "first.sqlite", paths))
        order = data.draw(st.permutations(paths))
        again = data.draw(st.lists(st.sampled_from(paths), max_size=3))
        other = merged(tmp / "other.sqlite", [*order, *again])
        assert content(other) == first
        assert content(merged(other, paths)) == first  # merging again changes nothing
        into_shard = merged(paths[0], paths[1:])  # into one of the shards
        assert content(into_shard) == first


@settings(max_examples=30, deadline=None)
@given(
    posts=st.lists(
        st.lists(st.sampled_from(URLS), max_size=4, unique=True), min_size=1, max_size=3
    ),
    outcomes=st.dictionaries(
        st.sampled_from(URLS), st.tuples(st.sampled_from(["ok", "failed"]), st.sampled_from(SHAS))
    ),
    count=st.integers(2, 4),
)
def test_shards_merged_equal_one_manifest_that_did_all_the_work(
    posts: list[list[str]], outcomes: dict[str, tuple[str, str]], count: int
) -> None:
    """Every shard scans every post; each URL's outcome is recorded by the shard that owns its
    host (fetch --shard); merged, they hold what one run that fetched everything holds."""
    scans = [Step("scan", POSTS[n], tuple(urls), 7) for n, urls in enumerate(posts)]
    named = {url for urls in posts for url in urls}
    results = {url: outcome for url, outcome in outcomes.items() if url in named}

    def outcome_steps(keep: Shard | None) -> list[Step]:
        return [
            Step("outcome", outcome=kind, sha=sha, urls=(url,))
            for url, (kind, sha) in sorted(results.items())
            if keep is None or keep.holds(url)
        ]

    with folder() as tmp:
        one = build(tmp / "one.sqlite", [*scans, *outcome_steps(None)])
        shards = [
            build(tmp / f"s{n}.sqlite", [*scans, *outcome_steps(Shard(n, count))])
            for n in range(count)
        ]
        assert content(merged(tmp / "m.sqlite", shards), times=False) == content(one, times=False)


# -- the conflict rules -----------------------------------------------------------------------


def _status(path: Path, url: str) -> tuple[str, str | None]:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT status, sha256 FROM urls WHERE origin_url=?", (url,)).fetchone()
        return row[0], row[1]


def test_a_success_beats_a_later_failure_whatever_the_order(tmp_path: Path) -> None:
    ok = build(tmp_path / "ok.sqlite", [Step("outcome", POSTS[0], (URLS[0],), 1, "ok", SHAS[0])])
    failed = build(tmp_path / "failed.sqlite", [Step("outcome", POSTS[0], (URLS[0],), 1, "failed")])
    for n, order in enumerate(itertools.permutations([ok, failed])):
        into = merged(tmp_path / f"into{n}.sqlite", list(order))
        assert _status(into, URLS[0]) == ("ok", SHAS[0])


def test_the_newest_of_two_successes_wins(tmp_path: Path) -> None:
    old = build(tmp_path / "old.sqlite", [Step("outcome", POSTS[0], (URLS[0],), 1, "ok", SHAS[0])])
    new = build(tmp_path / "new.sqlite", [Step("outcome", POSTS[0], (URLS[0],), 1, "ok", SHAS[1])])
    for n, order in enumerate(itertools.permutations([old, new])):
        into = merged(tmp_path / f"into{n}.sqlite", list(order))
        assert _status(into, URLS[0]) == ("ok", SHAS[1])
        with sqlite3.connect(into) as db:  # both stored images stay known
            assert db.execute("SELECT count(*) FROM images").fetchone()[0] == 2


def test_the_newest_scan_of_a_post_wins_with_its_references(tmp_path: Path) -> None:
    newer = build(tmp_path / "newer.sqlite", [Step("scan", POSTS[0], (URLS[1], URLS[2]), 5)])
    older = build(tmp_path / "older.sqlite", [Step("scan", POSTS[0], (URLS[0],), 2)])
    for n, order in enumerate(itertools.permutations([older, newer])):
        into = merged(tmp_path / f"into{n}.sqlite", list(order))
        with Manifest.open(into) as manifest:
            assert manifest.origin_urls_of([POSTS[0]]) == {URLS[1], URLS[2]}
            assert manifest.post_states([POSTS[0]])[POSTS[0]].mtime_ns == 5


def test_rewrites_of_one_post_in_two_shards_are_both_kept_in_time_order(tmp_path: Path) -> None:
    first = build(tmp_path / "a.sqlite", [Step("rewrite", POSTS[0], sha=SHAS[0], run="run1")])
    second = build(tmp_path / "b.sqlite", [Step("rewrite", POSTS[0], sha=SHAS[1], run="run2")])
    into = tmp_path / "into.sqlite"
    with Manifest.open(into) as manifest:
        assert manifest.merge_shard(second).mixed_rewrites == ()
        assert manifest.merge_shard(first).mixed_rewrites == (POSTS[0],)
        assert manifest.merge_shard(first).mixed_rewrites == ()  # nothing new the second time
        runs = [generation.run for generation in manifest.generations_of(POSTS[0])]
    assert runs == ["run2", "run1"]  # newest first, as undo walks them


def test_a_shard_of_another_schema_version_is_refused_naming_it(tmp_path: Path) -> None:
    shard = build(tmp_path / "old.sqlite", [])
    with sqlite3.connect(shard) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")
    with Manifest.open(tmp_path / "into.sqlite") as manifest:
        with pytest.raises(UsageError, match=f"^{shard}: a manifest of schema") as caught:
            manifest.merge_shard(shard)
        assert "run any command on it with this mediatool to migrate it" in str(caught.value)
        with sqlite3.connect(shard) as db:
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        with pytest.raises(UsageError, match=f"^{shard}: written by a newer mediatool"):
            manifest.merge_shard(shard)
        with pytest.raises(UsageError, match="no such manifest"):
            manifest.merge_shard(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_merge_forgets_the_last_grouping_so_the_merged_images_are_grouped_anew(
    tmp_path: Path,
) -> None:
    shard = tmp_path / "shard.sqlite"
    with Manifest.open(shard):
        pass
    into = tmp_path / "into.sqlite"
    with Manifest.open(into) as manifest:
        with manifest.transaction():
            manifest.start_grouping(("rules", 10, 0, 0))
            manifest.set_grouping_mark(["inputs"])
        assert manifest.grouping_state() is not None

    merged(into, [shard])

    with Manifest.open(into) as manifest:
        assert manifest.grouping_state() is None  # the next fetch or dedup groups in full
        assert manifest.grouping_mark() is None
