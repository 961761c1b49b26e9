"""The CI job's reads and writes across the tables: check, verify, gc."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mediatool.manifest._sql import execute_in_chunks, in_chunks
from mediatool.manifest.connection import ManifestBase
from mediatool.manifest.rows import FetchedPost, StoredFile


class UpkeepTable(ManifestBase):
    """The CI job: check, verify, gc."""

    def record_post_sha(self, path: str, sha256: str | None) -> None:
        """The sha256 of a post's bytes as fetch scanned them (None: it could not be read)."""
        self.db.execute("UPDATE posts SET sha256=? WHERE path=?", (sha256, path))

    def fetched_posts(self, paths: Sequence[str]) -> dict[str, FetchedPost]:
        """What fetch recorded of each of these posts that it scanned without a problem."""
        found: dict[str, FetchedPost] = {}
        for path, size, mtime_ns, sha in in_chunks(
            self.db,
            "SELECT path, size, mtime_ns, sha256 FROM posts"
            " WHERE path IN ({marks}) AND size IS NOT NULL",
            paths,
        ):
            found[path] = FetchedPost(path, size, mtime_ns, sha)
        return found

    def rewritten_shas(self, paths: Sequence[str]) -> dict[str, set[str]]:
        """post key -> the sha256 of every state `rewrite` left it in (its recorded rewrites)."""
        found: dict[str, set[str]] = {}
        for key, sha in in_chunks(
            self.db,
            "SELECT post_key, after_sha FROM generations"
            " WHERE post_key IN ({marks}) AND after_sha IS NOT NULL",
            paths,
        ):
            found.setdefault(key, set()).add(sha)
        return found

    def post_keys(self) -> list[str]:
        """Every post the manifest knows, by key."""
        return [row[0] for row in self.db.execute("SELECT path FROM posts ORDER BY path")]

    def forget_posts(self, paths: Sequence[str]) -> int:
        """Drop these posts and their references (their undo records stay); return how many."""
        execute_in_chunks(
            self.db,
            "DELETE FROM refs WHERE post_id IN (SELECT id FROM posts WHERE path IN ({marks}))",
            paths,
        )
        return execute_in_chunks(self.db, "DELETE FROM posts WHERE path IN ({marks})", paths)

    def unused_urls(self) -> list[str]:
        """Origin URLs that no recorded reference names."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT origin_url FROM urls WHERE origin_url NOT IN"
                " (SELECT origin_url FROM refs WHERE origin_url IS NOT NULL) ORDER BY origin_url"
            )
        ]

    def forget_urls(self, origin_urls: Sequence[str]) -> None:
        execute_in_chunks(self.db, "DELETE FROM urls WHERE origin_url IN ({marks})", origin_urls)

    def local_reference_urls(self) -> list[tuple[str, int, str]]:
        """(post key, line, URL) of every recorded local reference."""
        return list(
            self.db.execute(
                "SELECT p.path, coalesce(r.line, 0), r.source_url FROM refs r"
                " JOIN posts p ON p.id=r.post_id WHERE r.kind='local' ORDER BY p.path, r.line"
            )
        )

    def stored_files(self) -> list[StoredFile]:
        """Every stored original (sha256, relpath) with the thumbnails made of it."""
        thumbs: dict[str, list[str]] = {}
        for sha, relpath in self.db.execute("SELECT sha256, relpath FROM thumbs"):
            thumbs.setdefault(sha, []).append(relpath)
        return [
            StoredFile(sha, relpath, canonical, tuple(sorted(thumbs.get(sha, ()))))
            for sha, relpath, canonical in self.db.execute(
                "SELECT sha256, relpath, canonical FROM images ORDER BY sha256"
            )
        ]

    def url_images(self) -> set[str]:
        """sha256 of every image some recorded URL downloaded."""
        return {
            row[0]
            for row in self.db.execute("SELECT DISTINCT sha256 FROM urls WHERE sha256 IS NOT NULL")
        }

    def forget_images(self, shas: Sequence[str]) -> None:
        """Drop these originals and their thumbnails (their files are the caller's)."""
        execute_in_chunks(self.db, "DELETE FROM thumbs WHERE sha256 IN ({marks})", shas)
        execute_in_chunks(self.db, "DELETE FROM images WHERE sha256 IN ({marks})", shas)

    def posts_of_urls(self, origin_urls: Iterable[str]) -> dict[str, list[str]]:
        """origin URL -> the posts (keys, sorted, once each) whose references name it."""
        found: dict[str, set[str]] = {}
        for url, path in in_chunks(
            self.db,
            "SELECT DISTINCT r.origin_url, p.path FROM refs r JOIN posts p ON p.id=r.post_id"
            " WHERE r.origin_url IN ({marks})",
            sorted(origin_urls),
        ):
            found.setdefault(url, set()).add(path)
        return {url: sorted(paths) for url, paths in found.items()}

    def posts_of_images(self, shas: Iterable[str]) -> dict[str, list[str]]:
        """sha256 -> the posts (keys, sorted) that refer to an URL whose download gave it."""
        found: dict[str, set[str]] = {}
        for sha, path in in_chunks(
            self.db,
            "SELECT DISTINCT u.sha256, p.path FROM urls u JOIN refs r ON r.origin_url="
            "u.origin_url JOIN posts p ON p.id=r.post_id WHERE u.sha256 IN ({marks})",
            sorted(shas),
        ):
            found.setdefault(sha, set()).add(path)
        return {sha: sorted(paths) for sha, paths in found.items()}
