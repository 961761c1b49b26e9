"""Scale-out for CI matrices: `--manifest` (a manifest apart from the cache) and
`fetch --shard I/N`, against the real local origin server."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from mediatool.cli import main
from mediatool.config import load_settings
from mediatool.manifest import MIGRATIONS, SCHEMA_VERSION
from mediatool.partition import shard_of
from mediatool.testing.origin import OriginServer

GOOD = "http://img.example.test/good.jpg"


def _post(folder: Path, name: str, *urls: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f'<p><img src="{url}"></p>\n' for url in urls)
    path = folder / name
    path.write_bytes(f"---\ntitle: {name}\n---\n\n<div>\n{body}</div>\n".encode())
    return path


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _post_keys(manifest: Path) -> list[str]:
    with sqlite3.connect(manifest) as db:
        return [row[0] for row in db.execute("SELECT path FROM posts ORDER BY path")]


# -- --manifest ------------------------------------------------------------------------------


def test_every_cache_command_uses_the_manifest_given(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes
) -> None:
    proxy_env.add(GOOD, jpeg_bytes)
    post = _post(tmp_path / "posts", "a.html", GOOD)
    cache, manifest = tmp_path / "cache", tmp_path / "shards" / "one.sqlite"
    flags = ("--cache", str(cache), "--manifest", str(manifest))
    fetched = _invoke("fetch", str(post), *flags, "--json")
    assert fetched.exit_code == 0, fetched.stderr
    assert manifest.is_file() and not (cache / "manifest.sqlite").exists()
    assert _post_keys(manifest) == ["posts/a.html"]  # relative to the folder holding the cache
    for command in (["dedup"], ["thumbs"], ["verify"], ["gc", "--dry-run"]):
        result = _invoke(*command, *flags)
        assert result.exit_code == 0, (command, result.stderr)
    assert _invoke("report", *flags).exit_code == 0
    rewritten = _invoke("rewrite", str(post), *flags, "--json")
    assert rewritten.exit_code == 0, rewritten.stderr
    assert json.loads(rewritten.stdout)["posts_changed"] == 1
    assert GOOD not in post.read_text()
    assert not (cache / "manifest.sqlite").exists()


def test_a_missing_manifest_names_the_flag(tmp_path: Path) -> None:
    manifest = tmp_path / "none.sqlite"
    result = _invoke("dedup", "--cache", str(tmp_path / "cache"), "--manifest", str(manifest))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {manifest}: no manifest; run `mediatool fetch` first or point --manifest at "
        "the file fetch used."
    )


def test_the_config_file_names_a_manifest_beside_it(tmp_path: Path) -> None:
    config = tmp_path / "mediatool.toml"
    config.write_text('manifest_path = "state/m.sqlite"\n')
    assert load_settings(config).manifest_path == tmp_path / "state" / "m.sqlite"
    config.write_text("manifest_path = 3\n")
    with pytest.raises(Exception, match="manifest_path must be a string"):
        load_settings(config)


# -- fetch --shard I/N -----------------------------------------------------------------------


def _image(seed: int) -> bytes:
    """A small PNG of its own (a distinct pattern per seed, so no two are near-duplicates)."""
    image = Image.new("RGB", (48, 32))
    image.putdata(
        [
            ((x * seed * 7) % 256, (y * 31 + seed * 50) % 256, (x * y + seed) % 256)
            for y in range(32)
            for x in range(48)
        ]
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _hosts_by_shard(count: int, per_shard: int = 2) -> list[list[str]]:
    """Host names, `per_shard` of them for each of `count` shards (as mediatool.partition
    assigns them)."""
    parts: list[list[str]] = [[] for _ in range(count)]
    number = 0
    while any(len(part) < per_shard for part in parts):
        host = f"h{number}.example.test"
        part = parts[shard_of(host, count)]
        if len(part) < per_shard:
            part.append(host)
        number += 1
    return parts


def _archive(tmp_path: Path, origin: OriginServer, count: int) -> tuple[Path, list[list[str]]]:
    """Posts referring to one image on each host of every shard, and one missing image on the
    first host of every shard; returns the posts folder and the image URLs by shard."""
    urls: list[list[str]] = []
    for part, hosts in enumerate(_hosts_by_shard(count)):
        found = []
        for number, host in enumerate(hosts):
            url = f"http://{host}/img-{number}.png"
            origin.add(url, _image(part * 10 + number + 1))
            found.append(url)
        missing = f"http://{hosts[0]}/missing.png"
        origin.add(missing, b"gone", status=404)
        urls.append([*found, missing])
    posts = tmp_path / "site" / "posts"
    for part, found in enumerate(urls):
        _post(posts, f"p{part}.html", *found)
    _post(posts, "all.html", *(part[0] for part in urls))
    return posts, urls


def _statuses(manifest: Path) -> dict[str, str]:
    with sqlite3.connect(manifest) as db:
        return dict(db.execute("SELECT origin_url, status FROM urls"))


def test_a_shard_fetches_only_its_hosts_and_leaves_the_others_pending(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    posts, urls = _archive(tmp_path, proxy_env, 3)
    cache = tmp_path / "site" / "cache"
    result = _invoke("fetch", str(posts), "--cache", str(cache), "--shard", "2/3", "--json")
    assert result.exit_code == 1, result.stderr  # this shard's missing image
    summary = json.loads(result.stdout)
    assert (summary["shard"], summary["shard_urls"], summary["distinct_urls"]) == ("2/3", 3, 9)
    assert [f["url"] for f in summary["failed"]] == [urls[1][2]]  # only this shard's failure
    requested = {r.url for r in proxy_env.requests if r.method == "GET"}
    assert requested == set(urls[1])
    statuses = _statuses(cache / "manifest.sqlite")
    assert {u: statuses[u] for u in urls[1]} == dict(
        zip(urls[1], ["ok", "ok", "failed"], strict=True)
    )
    others = [url for part in (urls[0], urls[2]) for url in part]
    assert {statuses[url] for url in others} == {"pending"}
    text = _invoke("fetch", str(posts), "--cache", str(cache), "--shard", "2/3")
    assert "shard 2/3: 3 of 9 URLs" in text.stdout.splitlines()


@pytest.mark.parametrize("value", ["0/3", "4/3", "x", "1/0", "2", "a/b"])
def test_a_bad_shard_is_one_line_and_exit_2(tmp_path: Path, value: str) -> None:
    result = _invoke("fetch", str(tmp_path), "--cache", str(tmp_path / "c"), "--shard", value)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert (
        result.stderr.startswith("error: --shard: shard must be I/N")
        and repr(value) in result.stderr
    )
    assert not (tmp_path / "c").exists()


# -- the whole flow: shards fetched apart, merged, grouped, rewritten -------------------------


def _near_duplicates() -> tuple[bytes, bytes]:
    """A real photo and a smaller copy of it: one group for dedup."""
    photo = Path(__file__).parent / "data" / "images" / "rocket.jpg"
    image = Image.open(photo)
    out = io.BytesIO()
    image.resize((image.width // 2, image.height // 2)).save(out, "JPEG", quality=90)
    return photo.read_bytes(), out.getvalue()


def _src(post: str) -> str:
    return post.split('src="', 1)[1].split('"', 1)[0]


def _copy_posts(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for post in source.iterdir():
        (target / post.name).write_bytes(post.read_bytes())


def test_three_shards_merged_then_grouped_and_rewritten_equal_one_run(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    posts, _ = _archive(tmp_path / "source", proxy_env, 3)
    big, small = _near_duplicates()
    pair = [f"http://{hosts[1]}/photo.jpg" for hosts in _hosts_by_shard(3)[:2]]
    proxy_env.add(pair[0], big)
    proxy_env.add(pair[1], small)
    _post(posts, "photo-big.html", pair[0])
    _post(posts, "photo-small.html", pair[1])
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    _copy_posts(posts, one / "posts")
    _copy_posts(posts, sharded / "posts")

    fetched = _invoke("fetch", str(one / "posts"), "--cache", str(one / "cache"))
    assert fetched.exit_code == 1, fetched.stderr  # the missing images
    expected = _invoke("rewrite", str(one / "posts"), "--cache", str(one / "cache"))

    for number in (1, 2, 3):
        cache, manifest = sharded / f"cache{number}", sharded / "shards" / f"{number}.sqlite"
        run = ("--cache", str(cache), "--manifest", str(manifest), "--shard", f"{number}/3")
        assert _invoke("fetch", str(sharded / "posts"), *run).exit_code == 1
    cache = sharded / "cache"
    sources = [arg for n in (1, 2, 3) for arg in ("--from-cache", str(sharded / f"cache{n}"))]
    shards = [str(sharded / "shards" / f"{n}.sqlite") for n in (3, 1, 2)]
    merged = _invoke("merge", *shards, "--cache", str(cache), *sources, "--json")
    assert merged.exit_code == 0, merged.stderr
    summary = json.loads(merged.stdout)
    assert summary["urls"] == {"ok": 8, "failed": 3, "pending": 0}
    assert summary["files_copied"] > 0
    assert _invoke("dedup", "--cache", str(cache)).exit_code == 0
    rewritten = _invoke("rewrite", str(sharded / "posts"), "--cache", str(cache))

    assert rewritten.exit_code == expected.exit_code == 1  # the missing images stay remote
    for post in sorted((one / "posts").iterdir()):
        assert (sharded / "posts" / post.name).read_bytes() == post.read_bytes(), post.name
    big_post, small_post = (
        (sharded / "posts" / f"photo-{size}.html").read_text() for size in ("big", "small")
    )
    assert pair[1] not in small_post and _src(small_post) == _src(big_post)  # grouped
    assert _invoke("verify", "--cache", str(cache)).exit_code == 0


# -- mediatool merge: refusals and the files it copies --------------------------------------


def _fetched_shard(tmp_path: Path, origin: OriginServer) -> Path:
    """A cache folder that fetched one post's photo, with its thumbnails (its manifest inside
    it)."""
    origin.add(GOOD, _near_duplicates()[0])
    post = _post(tmp_path / "posts", "a.html", GOOD)
    cache = tmp_path / "shard-cache"
    assert _invoke("fetch", str(post), "--cache", str(cache)).exit_code == 0
    return cache


def test_merge_refuses_a_shard_it_cannot_migrate_in_one_line(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    shard = _fetched_shard(tmp_path, proxy_env) / "manifest.sqlite"
    for version, says in ((SCHEMA_VERSION + 1, "written by a newer mediatool"), (2, "older")):
        with sqlite3.connect(shard) as db:
            db.execute(f"PRAGMA user_version={version}")
        result = _invoke("merge", str(shard), "--cache", str(tmp_path / "cache"))
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {shard}: "), lines
        assert says in lines[0]
    itself = _invoke("merge", str(shard), "--into", str(shard), "--cache", str(tmp_path / "c"))
    assert itself.exit_code == 2
    assert "this is the manifest merged into" in itself.stderr


def _manifest_of_schema(path: Path, version: int) -> None:
    """A manifest as a mediatool of that schema version made it (its migrations alone)."""
    db = sqlite3.connect(path)
    for number, step in enumerate(MIGRATIONS[:version]):
        if isinstance(step, str):
            db.executescript(step)
        else:
            step(db, path)
        db.execute(f"PRAGMA user_version={number + 1}")
    db.commit()
    db.close()


def test_merge_migrates_an_older_shard_on_a_copy(tmp_path: Path) -> None:
    shard = tmp_path / "old.sqlite"
    _manifest_of_schema(shard, SCHEMA_VERSION - 1)
    with sqlite3.connect(shard) as db:
        db.execute(
            "INSERT INTO urls (origin_url, candidates, rules) VALUES ('http://a.test/x.jpg', '[]',"
            " '[]')"
        )
    before = shard.read_bytes()
    cache = tmp_path / "cache"
    result = _invoke("merge", str(shard), "--cache", str(cache), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == (
        f"{shard}: a manifest of schema {SCHEMA_VERSION - 1}, older than this mediatool's "
        f"{SCHEMA_VERSION}: merged from a migrated copy (the shard is left as it was)"
    )
    assert json.loads(result.stdout)["urls"] == {"ok": 0, "failed": 0, "pending": 1}
    assert shard.read_bytes() == before
    assert list((cache / "tmp").iterdir()) == []


def test_merge_copies_missing_files_never_over_one_and_refuses_damaged_ones(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    shard = _fetched_shard(tmp_path, proxy_env)
    originals = sorted((shard / "originals").rglob("*.jpg"))
    thumbs = sorted((shard / "thumbs").rglob("*.*"))
    assert len(originals) == 1 and thumbs
    cache = tmp_path / "cache"
    kept = cache / thumbs[0].relative_to(shard)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"already here")
    damaged = shard / "originals" / "00" / "00" / f"{'0' * 64}.jpg"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not the bytes this name promises")
    args = ("--cache", str(cache), "--from-cache", str(shard), "--json")
    result = _invoke("merge", str(shard / "manifest.sqlite"), *args)
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["files_copied"], summary["files_present"]) == (len(thumbs), 1)
    assert summary["problems"] == [
        f"{damaged}: damaged (its bytes do not match its sha256); not copied, fetch that shard "
        "again or run `mediatool verify --repair` after merging"
    ]
    assert kept.read_bytes() == b"already here"
    copied = cache / originals[0].relative_to(shard)
    assert copied.read_bytes() == originals[0].read_bytes()
    assert not (cache / damaged.relative_to(shard)).exists()
    assert list((cache / "tmp").iterdir()) == []
    again = _invoke("merge", str(shard / "manifest.sqlite"), *args)
    assert json.loads(again.stdout)["files_copied"] == 0


def test_in_a_site_root_the_manifest_given_replaces_the_state_folders(
    tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_env.add(GOOD, jpeg_bytes)
    root = tmp_path / "site"
    (root / "source" / "_posts").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    (root / "source" / "_posts" / "a.md").write_text(f"---\ntitle: a\n---\n\n![x]({GOOD})\n")
    monkeypatch.chdir(root)
    fetched = _invoke("fetch", "--manifest", "shards/1.sqlite")
    assert fetched.exit_code == 0, fetched.stderr
    assert _post_keys(root / "shards" / "1.sqlite") == ["source/_posts/a.md"]  # site root
    assert not (root / ".mediatool" / "manifest.sqlite").exists()
    assert list((root / "source" / "media" / "originals").rglob("*.jpg"))
    merged = _invoke("merge", "shards/1.sqlite")  # into the site's own manifest
    assert merged.exit_code == 0, merged.stderr
    lines = merged.stdout.splitlines()
    assert lines[0] == "merged             1 shards into .mediatool/manifest.sqlite"
    assert "URLs               1 ok, 0 failed, 0 pending" in lines
    assert lines[-1] == "next               mediatool dedup, then mediatool rewrite"
    assert _post_keys(root / ".mediatool" / "manifest.sqlite") == ["source/_posts/a.md"]
    rewritten = _invoke("rewrite")
    assert rewritten.exit_code == 0, rewritten.stderr
    assert "![x](/media/originals/" in (root / "source" / "_posts" / "a.md").read_text()
