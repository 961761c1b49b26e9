"""A post's way back is never lost: `rewrite --undo` restores every rewritten post byte for byte,
whatever was killed, when, and however often `rewrite` ran again; across a moved archive, through
symlinks, around an unwritable folder, after hand edits; and it never reports a post it never
changed. Kills are real SIGKILLs of a real `mediatool rewrite` process at exact places of its
write path (the MEDIATOOL_TEST_KILL_AT hook of mediatool/pipeline/rewriting.py)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mediatool.cli import main
from mediatool.files import atomic_write_bytes
from mediatool.manifest import MIGRATIONS, Manifest
from mediatool.pipeline.rewriting import KILL_ENV
from mediatool.pipeline.undoing import restore_text
from mediatool.rewrite import Generation, UndoEdit
from mediatool.testing.origin import OriginServer

JPEG_A = "http://img.example.test/a.jpg"
JPEG_B = "https://cdn.example.test/b.jpg"
PNG = "http://img.example.test/c.png"
GONE = "http://img.example.test/gone.jpg"
DECLARED = '<p><img src="{url}" width="64" height="48"></p>\n'  # 64x48: the JPEG's own size,
# so this declared size is the very text rewrite inserts into an <img> without one


@dataclass
class Archive:
    """An archive folder holding `posts/` and the `cache/` that fetch filled."""

    root: Path
    originals: dict[str, bytes]

    @property
    def posts(self) -> Path:
        return self.root / "posts"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def contents(self) -> dict[str, bytes]:
        return {p.relative_to(self.posts).as_posix(): p.read_bytes() for p in _files(self.posts)}


def _files(folder: Path) -> list[Path]:
    """The posts below `folder`; not the temporary files a killed run leaves mid-write (the
    next run's start-up removes those)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".part"))


def _post_text(rng: random.Random, number: int) -> bytes:
    thumbnail = f"thumbnail: {JPEG_B}\n" if rng.random() < 0.3 else ""
    blocks = [f"---\ntitle: post {number}\n{thumbnail}---\n\n"]
    for index in range(rng.randint(1, 4)):
        url = rng.choice([JPEG_A, JPEG_B, PNG, GONE])
        blocks.append(
            rng.choice(
                [
                    DECLARED.format(url=JPEG_A),
                    f'<p><img src="{url}" alt="{index}"></p>\n',
                    f"![image {index}]({url})\n",
                    f"Some text {rng.randrange(1000)} about nothing.\n",
                ]
            )
        )
    text = "".join(blocks)
    return (text.replace("\n", "\r\n") if number % 7 == 3 else text).encode()


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _make_archive(root: Path, origin: OriginServer, jpeg: bytes, png: bytes, posts: int) -> Archive:
    origin.add(JPEG_A, jpeg)
    origin.add(JPEG_B, jpeg)
    origin.add(PNG, png)
    origin.add(GONE, b"gone", status=404)
    rng = random.Random(posts)
    folder = root / "posts"
    for number in range(posts):
        post = folder / f"part{number % 3}" / f"post-{number:03}.md"
        post.parent.mkdir(parents=True, exist_ok=True)
        post.write_bytes(_post_text(rng, number))
    archive = Archive(root, {})
    archive.originals = archive.contents()
    fetched = _cli("fetch", str(archive.posts), "--cache", str(archive.cache))
    assert fetched.exit_code in (0, 1), fetched.output
    return archive


@pytest.fixture(scope="module")
def fetched(
    tmp_path_factory: pytest.TempPathFactory,
    _origin_server: OriginServer,
    jpeg_bytes: bytes,
    png_bytes: bytes,
) -> Archive:
    """One archive fetched through the local origin (as the `proxy_env` fixture sets it up)."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_DIR"):
            env.delenv(name, raising=False)
            env.delenv(name.lower(), raising=False)
        env.setenv("HTTP_PROXY", _origin_server.proxy_url)
        env.setenv("HTTPS_PROXY", _origin_server.proxy_url)
        env.setenv("SSL_CERT_FILE", str(_origin_server.ca_path))
        _origin_server.reset()
        root = tmp_path_factory.mktemp("fetched") / "archive"
        archive = _make_archive(root, _origin_server, jpeg_bytes, png_bytes, posts=30)
        _origin_server.reset()
    return archive


@pytest.fixture
def archive(fetched: Archive, tmp_path: Path) -> Archive:
    """A copy of the fetched archive, posts and cache (its manifest names posts relative to the
    archive, so the copy is an archive of its own)."""
    root = tmp_path / "archive"
    shutil.copytree(fetched.root, root, symlinks=True)
    return Archive(root, fetched.originals)


def _rewrite(archive: Archive, *extra: str) -> Result:
    return _cli("rewrite", str(archive.posts), "--cache", str(archive.cache), *extra)


def _undo(posts: Path, cache: Path) -> Result:
    return _cli("rewrite", str(posts), "--cache", str(cache), "--undo", "--json")


def _killed_run(archive: Archive, kill_at: str, *extra: str) -> int:
    """Run `mediatool rewrite` in its own process, SIGKILLed by itself at `kill_at`; its code."""
    command = [sys.executable, "-m", "mediatool.cli", "rewrite", str(archive.posts)]
    command += ["--cache", str(archive.cache), *extra]
    env = {**os.environ, KILL_ENV: kill_at}
    done = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode in (-signal.SIGKILL, 0, 1), done.stderr.decode()
    return done.returncode


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".mediatool-*.part") if "cache" not in p.parts]


def test_undo_restores_every_post_however_often_rewrite_was_killed(archive: Archive) -> None:
    rng = random.Random(20261204)
    kills = 0
    for _ in range(3):
        for _ in range(rng.randint(1, 3)):
            # point 1: the records are committed; point n: n - 1 posts written, others mid-write
            kills += _killed_run(archive, f"write:{rng.randint(1, 12)}") == -signal.SIGKILL
        if rng.random() < 0.5:
            assert _rewrite(archive).exit_code == 1  # GONE stays remote
        if rng.random() < 0.5:
            undo_kill = f"undo:{rng.randint(1, 5)}"
            kills += _killed_run(archive, undo_kill, "--undo") == -signal.SIGKILL
        undone = _undo(archive.posts, archive.cache)
        assert (undone.exit_code, undone.stderr) == (0, "")  # no failure, false or true
        assert archive.contents() == archive.originals
    assert kills >= 5, kills


def test_a_run_killed_after_recording_then_run_again_is_undone_exactly(archive: Archive) -> None:
    assert _killed_run(archive, "write:1") == -signal.SIGKILL  # records committed, nothing written
    dry = _cli("rewrite", str(archive.posts), "--cache", str(archive.cache), "--undo", "--dry-run")
    assert (dry.exit_code, dry.stderr) == (0, "") and "+++" not in dry.stdout
    straight_after = _undo(archive.posts, archive.cache)
    assert (straight_after.exit_code, straight_after.stderr) == (0, "")
    assert json.loads(straight_after.stdout)["posts_restored"] == 0
    assert _killed_run(archive, "write:1") == -signal.SIGKILL
    assert _killed_run(archive, "write:9") == -signal.SIGKILL
    _rewrite(archive)
    assert archive.contents() != archive.originals
    with Manifest.open(archive.cache / "manifest.sqlite") as manifest:
        keys = manifest.rewritten_post_keys()
        assert all(len(manifest.generations_of(key)) == 1 for key in keys)  # unwritten dropped
    undone = _undo(archive.posts, archive.cache)
    assert (undone.exit_code, undone.stderr) == (0, ""), undone.stderr
    assert archive.contents() == archive.originals


def test_records_a_killed_run_never_wrote_are_no_failure_after_hand_edits(
    archive: Archive,
) -> None:
    assert _killed_run(archive, "write:1") == -signal.SIGKILL  # records committed, nothing written
    lead = b"Written by hand.\n"
    for post in _files(archive.posts):
        post.write_bytes(lead + post.read_bytes())
    undone = _undo(archive.posts, archive.cache)
    assert (undone.exit_code, undone.stderr) == (0, ""), undone.stderr
    assert archive.contents() == {name: lead + data for name, data in archive.originals.items()}


def test_undo_finds_the_posts_of_an_archive_moved_with_its_cache(
    archive: Archive, tmp_path: Path
) -> None:
    _rewrite(archive)
    rewritten = archive.contents()
    moved = Archive(tmp_path / "elsewhere" / "moved", archive.originals)
    moved.root.parent.mkdir()
    archive.root.rename(moved.root)
    undone = _undo(moved.posts, moved.cache)
    assert undone.exit_code == 0, undone.stderr
    assert json.loads(undone.stdout)["posts_restored"] == sum(
        rewritten[name] != archive.originals[name] for name in rewritten
    )
    assert moved.contents() == archive.originals


def test_undo_finds_posts_moved_without_their_cache_by_their_bytes(archive: Archive) -> None:
    _rewrite(archive)
    away = archive.root / "moved-posts"  # the keys say posts/..., the posts are elsewhere
    archive.posts.rename(away)
    undone = _undo(away, archive.cache)
    assert (undone.exit_code, undone.stderr) == (0, ""), undone.stderr
    away.rename(archive.posts)
    assert archive.contents() == archive.originals


def test_undo_says_when_rewritten_posts_are_not_where_they_were(archive: Archive) -> None:
    _rewrite(archive)
    rewritten = archive.contents()
    changed = sorted(name for name in rewritten if rewritten[name] != archive.originals[name])
    edited, deleted = archive.posts / changed[0], archive.posts / changed[1]
    edited.write_bytes(edited.read_bytes() + b"Edited by hand.\n")
    deleted.unlink()
    away = archive.root / "moved-posts"
    archive.posts.rename(away)
    lost = _undo(away, archive.cache)
    assert lost.exit_code == 1
    lines = lost.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("2 rewritten post(s)"), lines
    assert f"posts/{changed[0]}" in lines[0] and "--undo" in lines[0]
    assert json.loads(lost.stdout)["posts_restored"] == len(changed) - 2
    away.rename(archive.posts)
    again = _undo(archive.posts, archive.cache)
    assert again.exit_code == 1 and again.stderr.startswith("1 rewritten post(s)")
    assert f"posts/{changed[1]}" in again.stderr  # deleted: said on every undo, never hidden
    expected = {
        **archive.originals,
        changed[0]: archive.originals[changed[0]] + b"Edited by hand.\n",
    }
    del expected[changed[1]]
    assert archive.contents() == expected


def test_undo_of_one_folder_leaves_the_others_alone_without_a_word(archive: Archive) -> None:
    _rewrite(archive)
    rewritten = archive.contents()
    part = archive.posts / "part1"
    undone = _undo(part, archive.cache)
    assert (undone.exit_code, undone.stderr) == (0, ""), undone.stderr
    for name, data in archive.contents().items():
        expected = archive.originals if name.startswith("part1/") else rewritten
        assert data == expected[name], name


def test_a_symlinked_post_stays_a_link_through_rewrite_and_undo(archive: Archive) -> None:
    shared = archive.root / "shared" / "linked.md"
    shared.parent.mkdir()
    original = f'<img src="{JPEG_A}">\n'.encode()
    shared.write_bytes(original)
    link = archive.posts / "link.md"
    link.symlink_to(Path("..") / "shared" / "linked.md")
    assert _rewrite(archive).exit_code == 1
    assert link.is_symlink() and b"../cache/originals/" in shared.read_bytes()
    undone = _undo(archive.posts, archive.cache)
    assert (undone.exit_code, undone.stderr) == (0, ""), undone.stderr
    assert link.is_symlink() and shared.read_bytes() == original
    assert archive.contents() == {**archive.originals, "link.md": original}


@contextmanager
def _unwritable(folder: Path) -> Iterator[None]:
    """`folder` refuses new files: mode 0555, or (as root, whom modes do not stop) immutable."""
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_one_unwritable_folder_is_one_line_and_the_other_posts_are_rewritten(
    archive: Archive,
) -> None:
    locked = archive.posts / "locked"
    locked.mkdir()
    post = locked / "stuck.md"
    original = f'<img src="{JPEG_A}">\n'.encode()
    post.write_bytes(original)
    with _unwritable(locked):
        rewritten = _rewrite(archive, "--json")
        on_disk = archive.contents()
        undone = _undo(archive.posts, archive.cache)
    assert rewritten.exit_code == 1
    about = [line for line in rewritten.stderr.splitlines() if "stuck.md" in line]
    assert len(about) == 1 and "cannot write" in about[0] and "writable" in about[0]
    assert post.read_bytes() == original and _temp_files(archive.root) == []
    before = {**archive.originals, "locked/stuck.md": original}
    changed = sum(data != before[name] for name, data in on_disk.items())
    assert json.loads(rewritten.stdout)["posts_changed"] == changed  # the stuck one not counted
    assert json.loads(undone.stdout)["posts_restored"] > 0  # the others were rewritten
    assert (undone.exit_code, undone.stderr) == (0, "")  # the locked post was never changed
    assert archive.contents() == {**archive.originals, "locked/stuck.md": original}


def test_a_second_rewrite_after_hand_edits_is_undone_keeping_the_edits(archive: Archive) -> None:
    assert _killed_run(archive, "write:1") == -signal.SIGKILL  # records of a run never written
    _rewrite(archive)
    lead, tail = b"Written by hand.\n", f"\n![added by hand]({PNG})\n".encode()
    for post in _files(archive.posts):
        post.write_bytes(lead + post.read_bytes())
    post = archive.posts / "part0" / "post-000.md"
    post.write_bytes(post.read_bytes() + tail)
    assert _rewrite(archive).exit_code in (0, 1)
    assert PNG.encode() not in post.read_bytes()  # the second run localized the new reference
    undone = _undo(archive.posts, archive.cache)
    assert (undone.exit_code, undone.stderr) == (0, ""), undone.stderr
    expected = {name: lead + data for name, data in archive.originals.items()}
    expected["part0/post-000.md"] += tail
    assert archive.contents() == expected


def test_records_of_an_older_manifest_are_migrated_and_undone(tmp_path: Path) -> None:
    root = tmp_path / "blog"
    post, cache = root / "posts" / "a.md", root / "cache"
    post.parent.mkdir(parents=True)
    cache.mkdir()
    original, local = f'<img src="{JPEG_A}">\n', "../cache/originals/x.jpg"
    post.write_text(original.replace(JPEG_A, local))
    db = sqlite3.connect(cache / "manifest.sqlite", isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:2]):
        db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number + 1};\nCOMMIT;")
    for path in (post.resolve(), Path("/somewhere/else.md")):
        db.execute("INSERT INTO rewrites (post_path, at, start, old, new) VALUES (?,1,10,?,?)",
                   (str(path), JPEG_A, local))  # fmt: skip
        db.execute("INSERT INTO posts (path) VALUES (?)", (str(path),))
    db.close()
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        assert manifest.rewritten_post_keys() == {"posts/a.md", "/somewhere/else.md"}
        keys = {row[0] for row in manifest.db.execute("SELECT path FROM posts")}
        assert keys == {"posts/a.md", "/somewhere/else.md"}
    undone = _undo(post.parent, cache)
    assert post.read_text() == original
    assert undone.exit_code == 1  # /somewhere/else.md is not there: said, not hidden
    assert undone.stderr.startswith("1 rewritten post(s)") and "/somewhere/else.md" in undone.stderr


def test_undo_that_cannot_write_says_so_and_keeps_the_records(archive: Archive) -> None:
    _rewrite(archive)
    rewritten = archive.contents()
    with _unwritable(archive.posts / "part2"):
        blocked = _undo(archive.posts, archive.cache)
    assert blocked.exit_code == 1
    lines = blocked.stderr.splitlines()
    assert lines and all("part2" in line and "cannot write" in line for line in lines)
    assert len(lines) == sum(
        rewritten[n] != archive.originals[n] for n in rewritten if n.startswith("part2/")
    )
    undone = _undo(archive.posts, archive.cache)
    assert (undone.exit_code, undone.stderr) == (0, ""), undone.stderr
    assert archive.contents() == archive.originals


def test_atomic_write_keeps_a_symlink_and_removes_its_temp_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "real" / "post.md"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    blocked = tmp_path / "folder.md"
    (blocked / "inside").mkdir(parents=True)  # a folder that is not empty cannot be replaced
    with pytest.raises(OSError):
        atomic_write_bytes(blocked, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.md", "link.md", "real"]


def test_a_post_that_comes_back_to_an_earlier_state_is_undone_through_every_rewrite(
    tmp_path: Path,
) -> None:
    """The canonical copy of a group can move and move back: A -> B -> C -> B -> C. A rerun drops
    only the newest records that start from the post's bytes (a killed run's), never the older
    ones in effect that happen to start from the same bytes."""
    url, x, y = "http://img.example.test/1.jpg", "../cache/x.jpg", "../cache/y.jpg"
    a = f'<img src="{url}">'
    b, c = a.replace(url, x), a.replace(url, y)
    steps = [(a, b, url, x), (b, c, x, y), (c, b, y, x), (b, c, x, y)]
    cache = tmp_path / "cache"
    cache.mkdir()

    def generation(before: str, after: str, old: str, new: str) -> Generation:
        edit = UndoEdit(10, old, new)
        return Generation("posts/a.md", _sha(before), _sha(after), (edit,))

    with Manifest.open(cache / "manifest.sqlite") as manifest:
        for step in steps:  # as write_rewritten records them
            manifest.forget_unwritten("posts/a.md", _sha(step[0]))
            manifest.record_generation(generation(*step))
        assert restore_text(c, "utf-8", manifest.generations_of("posts/a.md")) == (a, 4)
        manifest.record_generation(generation(c, b, y, x))  # killed before it wrote: still c
        manifest.forget_unwritten("posts/a.md", _sha(c))  # the rerun drops that one only
        manifest.record_generation(generation(c, b, y, x))
        generations = manifest.generations_of("posts/a.md")
    assert len(generations) == 5
    assert restore_text(b, "utf-8", generations) == (a, 5)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
