"""find_posts_resolved: each post with its resolved path, found without resolving it twice."""

from __future__ import annotations

from pathlib import Path

from mediatool.discover import find_posts, find_posts_resolved


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
