"""find_posts_resolved and find_post_files: each post with its resolved path (and its stat),
found without resolving it twice, named and sorted as Path does."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediatool.discover import find_post_files, find_posts, find_posts_resolved


def test_each_post_comes_with_the_path_resolve_gives(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "a.md").write_text("a")
    (real / "sub" / "b.html").write_text("b")
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("c")
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "linked").symlink_to(real, target_is_directory=True)
    (archive / "c.md").symlink_to(elsewhere)
    (archive / "own.md").write_text("d")

    found = find_posts_resolved([archive / "linked", archive])

    assert list(found) == find_posts([archive / "linked", archive])
    assert found == {path: path.resolve() for path in found}
    assert found[archive / "c.md"] == elsewhere.resolve()
    assert found[archive / "linked" / "sub" / "b.html"] == (real / "sub" / "b.html").resolve()


def test_posts_below_the_current_folder_are_named_as_paths_name_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("a")
    (tmp_path / "sub" / "b.md").write_text("b")
    monkeypatch.chdir(tmp_path)
    found = find_post_files([Path(".")], with_stat=True)
    assert [post.name for post in found] == ["a.md", "sub/b.md"]
    assert [post.name for post in found] == [str(post.path) for post in found]
    assert found[1].real == str((tmp_path / "sub" / "b.md").resolve())
    assert found[0].size == 1 and found[0].mtime_ns == (tmp_path / "a.md").stat().st_mtime_ns


def test_posts_sort_as_paths_sort(tmp_path: Path) -> None:
    for name in ("a.md", "b-c/x.md", "b/y.md", "b.md", "B/z.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    found = find_posts([tmp_path])
    assert found == sorted(found)
    assert [post.path for post in find_post_files([tmp_path])] == found
