"""An unchanged re-run of `fetch` does no needless work: no post is read or parsed again, no
worker pool or HTTP client starts, grouping is not redone, and the image, HTTP and Markdown
libraries are not even imported. Counted with hooks on the real functions, never timed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

import mediatool.dedup
import mediatool.discover._scan
import mediatool.pipeline.common
import mediatool.pipeline.fetching
from mediatool.cli import main
from mediatool.manifest import Manifest
from mediatool.testing.origin import OriginServer

HEAVY = ("PIL", "numpy", "imagehash", "httpx", "markdown_it")
BAD_YAML = "---\ntitle: [unclosed\n---\n\n![](http://img.example.test/b.png)\n"


def _png(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (shade, 90, 255 - shade)).save(out, "PNG")
    return out.getvalue()


def _archive(tmp_path: Path, origin: OriginServer) -> tuple[Path, Path]:
    origin.add("http://img.example.test/a.png", _png(10))
    origin.add("http://img.example.test/b.png", _png(200))
    posts = tmp_path / "posts"
    posts.mkdir()
    (posts / "a.md").write_text("# a\n\n![](http://img.example.test/a.png)\n")
    (posts / "sub").mkdir()
    (posts / "sub" / "b.md").write_text("![](http://img.example.test/b.png)\n")
    (posts / "bad.md").write_text(BAD_YAML)  # read with a problem: said on every run
    return posts, tmp_path / "cache"


def _fetch(posts: Path, cache: Path) -> Result:
    return CliRunner().invoke(main, ["fetch", str(posts), "--cache", str(cache), "--json"])


def _counting(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, calls: Counter[str]
) -> None:
    real: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


def _scanned_at(cache: Path) -> dict[str, float]:
    with Manifest.open(cache / "manifest.sqlite") as manifest:
        return dict(manifest.db.execute("SELECT path, scanned_at FROM posts").fetchall())


def test_an_unchanged_rerun_reads_no_post_and_starts_nothing(
    tmp_path: Path, proxy_env: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    first = _fetch(posts, cache)
    assert first.exit_code == 1  # the bad YAML
    before = _scanned_at(cache)
    calls: Counter[str] = Counter()
    _counting(monkeypatch, mediatool.discover._scan, "read_post", calls)
    _counting(monkeypatch, mediatool.pipeline.common, "WorkerPool", calls)
    _counting(monkeypatch, mediatool.dedup, "group_new_images", calls)
    _counting(monkeypatch, mediatool.pipeline.fetching, "group_and_count", calls)
    proxy_env.reset_requests()

    again = _fetch(posts, cache)

    assert calls == Counter()  # no post read, no pool, no grouping
    assert proxy_env.requests == []
    assert _scanned_at(cache) == before  # nothing recorded again
    assert again.exit_code == first.exit_code
    problems = json.loads(again.stdout)["problems"]
    assert problems == json.loads(first.stdout)["problems"]
    assert problems and problems[0].startswith(f"{posts / 'bad.md'}: front matter")
    summary, was = json.loads(again.stdout), json.loads(first.stdout)
    for key in ("posts", "references", "distinct_urls", "groups", "boilerplate_images"):
        assert summary[key] == was[key], key


def test_a_changed_post_is_the_only_one_read(
    tmp_path: Path, proxy_env: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    (posts / "sub" / "b.md").write_text("![](http://img.example.test/b.png)\n\nmore\n")
    calls: Counter[str] = Counter()
    _counting(monkeypatch, mediatool.discover._scan, "read_post", calls)
    _counting(monkeypatch, mediatool.pipeline.fetching, "group_and_count", calls)
    _counting(monkeypatch, mediatool.dedup, "full_pass_state", calls)

    _fetch(posts, cache)

    # grouping runs (incrementally: no new image, so no full pass)
    assert calls == Counter({"read_post": 1, "group_and_count": 1})


def test_a_problem_line_names_the_post_as_this_run_names_it(
    tmp_path: Path, proxy_env: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    monkeypatch.chdir(tmp_path)
    again = _fetch(Path("posts"), cache)
    assert json.loads(again.stdout)["problems"][0].startswith("posts/bad.md: front matter")
    monkeypatch.chdir(posts)
    here = _fetch(Path("."), cache)  # the default PATH
    assert json.loads(here.stdout)["problems"][0].startswith("bad.md: front matter")
    assert json.loads(here.stdout)["posts"] == 3


def test_an_unchanged_rerun_imports_no_image_http_or_markdown_library(
    tmp_path: Path, proxy_env: OriginServer
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    script = (
        "import json, sys\n"
        "from mediatool.cli import main\n"
        "try:\n"
        f"    main(['fetch', {str(posts)!r}, '--cache', {str(cache)!r}, '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stderr.splitlines()[-1]) == []
    assert json.loads(done.stdout)["posts"] == 3


def test_a_grouping_by_dedup_in_between_makes_the_next_fetch_group_again(
    tmp_path: Path, proxy_env: OriginServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts, cache = _archive(tmp_path, proxy_env)
    _fetch(posts, cache)
    dedup = CliRunner().invoke(main, ["dedup", "--cache", str(cache), "--threshold", "4"])
    assert dedup.exit_code == 0, dedup.output
    calls: Counter[str] = Counter()
    _counting(monkeypatch, mediatool.dedup, "full_pass_state", calls)
    _counting(monkeypatch, mediatool.pipeline.fetching, "group_and_count", calls)

    _fetch(posts, cache)  # groups again (in full), with the threshold of the settings
    _fetch(posts, cache)  # now nothing has changed

    assert calls == Counter({"full_pass_state": 1, "group_and_count": 1})
