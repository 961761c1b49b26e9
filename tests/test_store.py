"""The content-addressed store: names by sha256, writes once, survives killed runs."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from mediatool.errors import CacheNotWritable
from mediatool.fetch.sniff import image_kind
from mediatool.files import atomic_write_bytes, temp_file_in
from mediatool.store import (
    KIND_EXTENSIONS,
    MediaStore,
    ShardFolders,
    Store,
    StoredPath,
    extension_of,
    find_relpath,
    original_relpath,
    parse_relpath,
    sha256_of_file,
    thumb_relpath,
)


def _temp_with(store: Store, data: bytes) -> Path:
    with temp_file_in(store.temp_dir) as (handle, path):
        handle.write(data)
    return path


def test_put_original_names_file_by_sha256_in_shards(tmp_path: Path, jpeg_bytes: bytes) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    sha = hashlib.sha256(jpeg_bytes).hexdigest()
    relpath = store.put_original(_temp_with(store, jpeg_bytes), sha, "jpg")
    assert relpath == f"originals/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert store.path(relpath).read_bytes() == jpeg_bytes
    assert store.verify(relpath, sha)


def test_identical_bytes_are_stored_once(tmp_path: Path, jpeg_bytes: bytes) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    sha = hashlib.sha256(jpeg_bytes).hexdigest()
    first = store.put_original(_temp_with(store, jpeg_bytes), sha, "jpg")
    second_temp = _temp_with(store, jpeg_bytes)
    second = store.put_original(second_temp, sha, "jpg")
    assert first == second
    assert not second_temp.exists()
    assert len(list((tmp_path / "cache" / "originals").rglob("*.jpg"))) == 1


def test_prepare_removes_part_files_of_a_killed_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    leftover = store.temp_dir / ".mediatool-abc.part"
    leftover.write_bytes(b"half a download")
    store.prepare()
    assert not leftover.exists()


def test_unwritable_cache_is_a_clear_fatal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheNotWritable, match="not writable"):
        Store(blocker / "cache").prepare()


@pytest.mark.parametrize(
    ("head", "ext"),
    [
        (b"\xff\xd8\xff\xe0rest", "jpg"),
        (b"\x89PNG\r\n\x1a\nrest", "png"),
        (b"GIF89a....", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x1cftypavif", "avif"),
        (b"\x00\x00\x00\x18ftypheic", "heic"),
        (b"II*\x00rest", "tif"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">', "svg"),
        (b"<!doctype html><html>", "bin"),
    ],
)
def test_extension_follows_the_kind_the_fetcher_sniffs(head: bytes, ext: str) -> None:
    assert extension_of(image_kind(head) or "") == ext


def test_keep_moves_a_download_into_the_store_once(tmp_path: Path, jpeg_bytes: bytes) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    sha = hashlib.sha256(jpeg_bytes).hexdigest()
    first = store.keep(_temp_with(store, jpeg_bytes), sha, "jpeg")
    second = store.keep(_temp_with(store, jpeg_bytes), sha, "jpeg")
    assert first == second == f"originals/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert sha256_of_file(store.path(first)) == sha
    assert list(store.temp_dir.iterdir()) == []
    assert store.path(first).stat().st_mode & 0o777 == 0o644


def test_every_sniffed_kind_has_its_own_extension() -> None:
    kinds = ("jpeg", "png", "gif", "webp", "bmp", "tiff", "ico", "avif", "heif", "svg")
    assert all(KIND_EXTENSIONS.get(kind, "bin") != "bin" for kind in kinds)


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    post = tmp_path / "post.md"
    post.write_bytes(b"old")
    post.chmod(0o600)
    atomic_write_bytes(post, b"new")
    assert post.read_bytes() == b"new"
    assert post.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["post.md"]
    assert sha256_of_file(post) == hashlib.sha256(b"new").hexdigest()


def test_temp_file_in_creates_a_missing_folder_and_keeps_working_after_it_is_removed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cache" / "tmp"
    with temp_file_in(folder) as (handle, first):
        handle.write(b"one")
    assert first.parent == folder and first.read_bytes() == b"one"
    first.unlink()
    folder.rmdir()  # e.g. cleaned away while a fetch runs: the next download recreates it
    with temp_file_in(folder) as (handle, second):
        handle.write(b"two")
    assert second.parent == folder and second.read_bytes() == b"two"


def test_a_shard_folder_removed_during_a_run_is_made_again(
    tmp_path: Path, jpeg_bytes: bytes
) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    sha = hashlib.sha256(jpeg_bytes).hexdigest()
    first = store.keep(_temp_with(store, jpeg_bytes), sha, "jpeg")
    store.path(first).unlink()
    store.path(first).parent.rmdir()  # the store remembers it made this folder
    again = store.keep(_temp_with(store, jpeg_bytes), sha, "jpeg")
    assert store.path(again).read_bytes() == jpeg_bytes


def test_shard_folders_are_remembered_by_shard_and_nothing_else(tmp_path: Path) -> None:
    known = ShardFolders()
    original = tmp_path / "originals" / "ab" / "cd"
    thumbs = tmp_path / "thumbs" / "ab"
    others = [tmp_path / "originals" / "ab", tmp_path / "x" / "ab" / "cd", tmp_path / "thumbs"]
    others += [tmp_path / "originals" / "zz" / "cd", tmp_path / "thumbs" / "abc"]
    for folder in (original, thumbs, *others):
        known.add(folder)
    assert original in known and Path(str(original)) in known and thumbs in known
    assert tmp_path / "originals" / "ab" / "ce" not in known
    assert tmp_path / "thumbs" / "ac" not in known
    assert not any(folder in known for folder in others)  # never known: made each time
    assert "originals/ab/cd" not in known


def test_the_store_makes_each_shard_folder_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "cache")
    store.prepare()
    made: list[Path] = []
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("parents") and self.parent.name == "ab":  # the store's own calls
            made.append(self)
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    for n in range(6):
        data = bytes([n]) * 10
        store.keep(_temp_with(store, data), "abcd" + f"{n:060x}", "jpeg")
    store.keep(_temp_with(store, b"x"), "abce" + "0" * 60, "jpeg")
    assert made == [store.root / "originals" / "ab" / "cd", store.root / "originals" / "ab" / "ce"]


def test_the_store_names_and_recognises_its_own_paths() -> None:
    sha = "ab" + "c" * 62
    original, thumb = original_relpath(sha, "jpg"), thumb_relpath(sha, 320, 213, "webp")
    assert original == f"originals/ab/cc/{sha}.jpg"
    assert thumb == f"thumbs/ab/{sha}-320x213.webp"
    assert parse_relpath(original) == StoredPath(sha, original, thumbnail=False)
    assert parse_relpath(thumb) == StoredPath(sha, thumb, thumbnail=True)
    assert find_relpath(f"../../media/{thumb}?v=1") == StoredPath(sha, thumb, thumbnail=True)
    for other in (f"originals/ab/{sha}.jpg", f"thumbs/ab/{sha}.webp", "a/b.jpg", original + "x/"):
        assert parse_relpath(other) is None, other
    assert find_relpath("https://example.com/a.jpg") is None


def test_the_folder_store_is_a_media_store(tmp_path: Path) -> None:
    store: MediaStore = Store(tmp_path / "cache")  # mypy checks the protocol here
    store.prepare()
    assert store.temp_dir.is_dir() and not store.has("originals/ab/cd/x.jpg")


def test_a_write_leaves_no_view_of_the_callers_bytes_even_when_its_frame_outlives_it(
    tmp_path: Path,
) -> None:
    """A Dask worker's profiler holds the frames of running threads: the fetcher's block of
    body bytes must still be clearable after the write that such a frame belonged to."""
    kept: list[FrameType] = []

    def keep_frames(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            kept.append(frame)

    block = bytearray(b"body bytes " * 1000)
    with temp_file_in(tmp_path) as (handle, path):
        sys.setprofile(keep_frames)
        try:
            handle.write(block)
        finally:
            sys.setprofile(None)
    assert any(frame.f_code.co_name == "write" for frame in kept)
    block.clear()  # BufferError while a kept frame held a view of it
    block += b"more"
    assert path.read_bytes() == b"body bytes " * 1000
