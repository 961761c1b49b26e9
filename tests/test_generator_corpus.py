"""The real-posts corpus of site generators (tests/data/generators) and issue 9's targets on it.

The posts are byte-exact copies of public posts (SOURCES.tsv says where each comes from); the
expected references were written by hand (README.md there gives the conventions)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

CORPUS = Path(__file__).parent / "data" / "generators"
BENCH = Path(__file__).parents[1] / "bench" / "generator_recall.py"
SOURCE_COLUMNS = ["file", "family", "repo", "commit", "path", "license"]
FAMILIES = {"hugo", "jekyll", "hexo", "wordpress", "mirror", "mdx", "media"}
KINDS = {"remote", "local"}
MEDIA = {"image", "video", "audio", "document", "track"}


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generator_recall", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def sources() -> list[dict[str, str]]:
    with (CORPUS / "SOURCES.tsv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        assert reader.fieldnames == SOURCE_COLUMNS
        return list(reader)


def post_files() -> set[str]:
    return {
        path.relative_to(CORPUS).as_posix()
        for path in CORPUS.rglob("*")
        if path.is_file()
        and path.parent != CORPUS
        and path.relative_to(CORPUS).parts[0] != "expected"
    }


def test_sources_list_every_post_once_with_its_origin() -> None:
    rows = sources()
    files = [row["file"] for row in rows]
    assert len(files) == len(set(files))
    assert set(files) == post_files()
    for row in rows:
        assert row["family"] in FAMILIES, row
        assert row["file"].split("/")[0] == row["family"], row
        assert len(row["commit"]) == 40 and int(row["commit"], 16) >= 0, row
        assert row["repo"].count("/") == 1 and row["path"] and row["license"], row
        assert Path(row["file"]).suffix == Path(row["path"]).suffix, row


def test_corpus_is_large_and_varied_enough() -> None:
    rows = sources()
    assert len(rows) >= 48
    assert len({row["repo"] for row in rows}) >= 18
    assert {"hugo", "jekyll", "hexo", "wordpress", "mirror"} <= {row["family"] for row in rows}


def test_posts_are_the_bytes_taken_from_their_commit() -> None:
    """SHA256SUMS was written when the posts were copied with `git show <commit>:<path>`; a
    formatter or an editor touching a post (line ends, trailing spaces) makes this fail."""
    recorded = {}
    for line in (CORPUS / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        recorded[name] = digest
    assert set(recorded) == {row["file"] for row in sources()}
    for name, digest in recorded.items():
        assert hashlib.sha256((CORPUS / name).read_bytes()).hexdigest() == digest, name


def test_no_two_posts_are_the_same_bytes() -> None:
    digests = [hashlib.sha256((CORPUS / row["file"]).read_bytes()).digest() for row in sources()]
    assert len(digests) == len(set(digests))


@pytest.mark.parametrize("row", sources(), ids=lambda row: row["file"])
def test_expected_references_are_in_the_post_where_they_say(row: dict[str, str]) -> None:
    post = (CORPUS / row["file"]).read_bytes().decode("utf-8")
    lines = post.split("\n")
    expected = json.loads((CORPUS / "expected" / f"{row['file']}.json").read_text("utf-8"))
    assert isinstance(expected, list)
    for ref in expected:
        assert set(ref) <= {"line", "url", "kind", "media", "origin", "context"}, ref
        assert ref["kind"] in KINDS and ref["media"] in MEDIA, ref
        assert isinstance(ref["context"], str) and ref["context"], ref
        assert 1 <= ref["line"] <= len(lines), ref
        assert ref["url"] and ref["url"] in lines[ref["line"] - 1], ref
        assert not ref["url"].startswith("data:"), ref
        if ref["kind"] == "remote":
            assert ref["origin"].startswith(("http://", "https://")), ref
        else:
            assert "origin" not in ref, ref


def test_every_expected_file_belongs_to_a_listed_post() -> None:
    listed = {f"{row['file']}.json" for row in sources()}
    present = {
        path.relative_to(CORPUS / "expected").as_posix()
        for path in (CORPUS / "expected").rglob("*.json")
    }
    assert present == listed


def test_harness_matches_what_discover_already_finds() -> None:
    """Plain Markdown images and <img src> are found today: the harness must pair them all."""
    bench = load_bench()
    score = bench.score_corpus(CORPUS)
    plain = {id(exp) for exp in score.expected if exp.context in ("markdown", "img@src")}
    assert plain and not score.failures
    assert [exp for exp in score.missed if id(exp) in plain] == []
    assert all(got.line == exp.line for exp, got in score.matches if id(exp) in plain)


def test_scan_meets_the_issue_targets_on_the_corpus() -> None:
    bench = load_bench()
    figures = bench.headline(bench.score_corpus(CORPUS))
    assert figures["remote_recall"] >= 0.97
    assert figures["precision"] >= 0.99
    assert figures["origins_right"] >= 0.97
    assert figures["local_generator_recall"] >= 0.90
