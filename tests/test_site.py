"""mediatool.site: which generator a site root belongs to and the layout chosen for it, on
made-up roots; and fetch/rewrite run from a site root with no PATH (real origin, real store)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mediatool.cli import main
from mediatool.config import SiteSettings, load_settings
from mediatool.errors import UsageError
from mediatool.site import detect_site, post_targets
from mediatool.store import Store
from mediatool.testing.origin import OriginServer


def _files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_hexo_root_with_source_dir_root_and_asset_folders(tmp_path: Path) -> None:
    root = _files(
        tmp_path,
        {
            "_config.yml": "title: t\nsource_dir: src\nroot: /blog/\npost_asset_folder: true\n",
            "src/_posts/a.md": "# a\n",
            "src/_posts/a/inside.html": "<p>asset, not a post</p>\n",
            "src/_posts/b.md": "# b\n",
            "node_modules/hexo/readme.md": "not a post\n",
        },
    )
    layout = detect_site(root)
    assert layout.generator == "hexo"
    assert layout.posts == (root / "src/_posts",)
    assert layout.exclude == (root / "src/_posts/a",)
    assert layout.media_dir == root / "src/media"
    assert layout.media_url == "/blog/media/"
    assert layout.markup_url == "/media/"  # hexo-renderer-marked and url_for add the root
    assert layout.state_dir == root / ".mediatool"
    assert [p.name for p in post_targets(layout)] == ["a.md", "b.md"]
    assert any("post_asset_folder" in reason for reason in layout.reasons)
    assert any("prependRoot" in reason for reason in layout.reasons)
    (root / "_config.yml").write_text(
        "source_dir: src\nroot: /blog/\nmarked:\n  prependRoot: false\n"
    )
    assert not any("prependRoot" in reason for reason in detect_site(root).reasons)
    assert detect_site(root).markup_url == "/blog/media/"


def test_hexo_defaults(tmp_path: Path) -> None:
    root = _files(tmp_path, {"_config.yml": "title: t\n", "source/_posts/a.md": "# a\n"})
    layout = detect_site(root)
    assert (layout.generator, layout.media_url, layout.markup_url) == ("hexo", "/media/", "/media/")
    assert layout.media_dir == root / "source/media"
    assert post_targets(layout) == [root / "source/_posts"]


@pytest.mark.parametrize("config", ["hugo.toml", "config.yaml", "hugo.json"])
def test_hugo_base_url_path_and_bundles(tmp_path: Path, config: str) -> None:
    text = {
        "hugo.toml": 'baseURL = "https://example.org/docs/"\n',
        "config.yaml": "baseURL: https://example.org/docs/\n",
        "hugo.json": '{"baseURL": "https://example.org/docs"}',
    }[config]
    root = _files(
        tmp_path,
        {
            config: text,
            "content/posts/a.md": "# a\n",
            "content/posts/b/index.md": "# bundle\n",
            "themes/x/layouts/_default/single.html": "{{ .Content }}",
        },
    )
    layout = detect_site(root)
    assert layout.generator == "hugo"
    assert layout.posts == (root / "content",)
    assert layout.media_dir == root / "static/media"
    assert layout.media_url == "/docs/media/"
    assert any("1 page bundle" in reason for reason in layout.reasons)


def test_hugo_static_and_content_dirs(tmp_path: Path) -> None:
    root = _files(
        tmp_path,
        {"hugo.toml": 'contentDir = "posts"\nstaticDir = "files"\n', "posts/a.md": "# a\n"},
    )
    layout = detect_site(root)
    assert (layout.posts, layout.media_dir) == ((root / "posts",), root / "files/media")
    assert layout.media_url == "/media/"


def test_jekyll_baseurl(tmp_path: Path) -> None:
    root = _files(
        tmp_path,
        {"_config.yml": "baseurl: /news\n", "_posts/2020-01-01-a.md": "# a\n", "_drafts/b.md": ""},
    )
    layout = detect_site(root)
    assert layout.generator == "jekyll"
    assert layout.posts == (root / "_posts", root / "_drafts")
    assert layout.media_dir == root / "assets/media"
    assert layout.media_url == "/news/assets/media/"


def test_plain_folder_keeps_the_cache_layout(tmp_path: Path) -> None:
    root = _files(tmp_path, {"posts/a.md": "# a\n", "_config.yml": "title: no posts here\n"})
    layout = detect_site(root)
    assert layout.is_plain
    assert (layout.media_dir, layout.media_url, layout.state_dir) == (None, None, None)
    assert "no generator found" in layout.reasons[0]


def test_site_settings_override_detection(tmp_path: Path) -> None:
    root = _files(tmp_path, {"_config.yml": "title: t\n", "source/_posts/a.md": "# a\n"})
    overrides = SiteSettings(
        generator="hexo",
        posts=("source",),
        media_dir="source/img",
        media_url="/img",
        state_dir="st",
    )
    layout = detect_site(root, overrides)
    assert layout.posts == (root / "source",)
    assert layout.media_dir == root / "source/img"
    assert layout.media_url == "/img/"
    assert layout.state_dir == root / "st"
    assert detect_site(root, SiteSettings(generator="plain")).is_plain


def test_custom_layout_from_settings_alone(tmp_path: Path) -> None:
    layout = detect_site(tmp_path, SiteSettings(media_dir="static/img", media_url="/img/"))
    assert layout.generator == "custom"
    assert (layout.media_dir, layout.media_url) == (tmp_path / "static/img", "/img/")


def test_broken_generator_config_names_the_file(tmp_path: Path) -> None:
    root = _files(tmp_path, {"hugo.toml": "baseURL = [\n", "content/a.md": "# a\n"})
    with pytest.raises(UsageError, match=r"hugo.toml: cannot read the site's config"):
        detect_site(root)


def test_site_keys_are_checked_in_the_config_file(tmp_path: Path) -> None:
    config = _files(tmp_path, {"mediatool.toml": '[site]\ngenerator = "gatsby"\n'})
    with pytest.raises(UsageError, match=r"site.generator must be one of"):
        load_settings(config / "mediatool.toml")
    (tmp_path / "mediatool.toml").write_text('[site]\nmedia_dirs = "x"\n')
    with pytest.raises(UsageError, match=r"unknown key site.media_dirs; did you mean"):
        load_settings(tmp_path / "mediatool.toml")
    (tmp_path / "mediatool.toml").write_text('[site]\nposts = ["content"]\nstate_dir = ".s"\n')
    assert load_settings(tmp_path / "mediatool.toml").site.posts == ("content",)


def test_a_split_store_keeps_temp_files_out_of_the_published_folder(tmp_path: Path) -> None:
    media, state = tmp_path / "static/media", tmp_path / ".mediatool"
    stale = media / "thumbs/ab/.mediatool-99-1.part"  # a thumbnail write a kill cut short
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    store = Store(media, state)
    store.prepare()
    assert store.manifest_path == state / "manifest.sqlite"
    assert store.temp_dir == state / "tmp" and store.temp_dir.is_dir()
    assert (media / "originals").is_dir() and not (media / "tmp").exists()
    assert not stale.exists()
    plain = Store(tmp_path / "cache")
    assert plain.manifest_path == tmp_path / "cache/manifest.sqlite"
    assert plain.temp_dir == tmp_path / "cache/tmp"


# --- fetch + rewrite from a site root -------------------------------------------------------

GOOD = "http://img.example.test/site/good.jpg"
MISSING = "http://img.example.test/site/missing.jpg"


@pytest.fixture
def in_hexo_site(tmp_path: Path, proxy_env: OriginServer, jpeg_bytes: bytes) -> Iterator[Path]:
    proxy_env.add(GOOD, body=jpeg_bytes, content_type="image/jpeg")
    root = _files(
        tmp_path / "site",
        {
            "_config.yml": "title: t\n",
            "source/_posts/a.md": f"---\ntitle: a\n---\n\n![x]({GOOD})\n![y]({MISSING})\n",
            "node_modules/pkg/readme.md": f"![z]({GOOD.replace('good', 'other')})\n",
        },
    )
    (root / "mediatool.toml").write_text("[fetch]\nallow_private = true\n")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(cwd)


def test_fetch_and_rewrite_from_a_site_root_use_the_layout(in_hexo_site: Path) -> None:
    runner = CliRunner()
    fetched = runner.invoke(main, ["fetch", "--json"])
    assert fetched.exit_code == 1, fetched.output  # the missing image failed
    assert json.loads(fetched.stdout)["posts"] == 1  # node_modules was not read
    root = in_hexo_site
    assert (root / ".mediatool/manifest.sqlite").is_file()
    assert not (root / "source/media/manifest.sqlite").exists()
    assert not (root / "source/media/tmp").exists()
    assert not (root / "cache").exists()
    originals = list((root / "source/media/originals").rglob("*.jpg"))
    assert len(originals) == 1
    rewritten = runner.invoke(main, ["rewrite"])
    assert rewritten.exit_code == 1, rewritten.output
    post = (root / "source/_posts/a.md").read_text()
    relpath = originals[0].relative_to(root / "source/media").as_posix()
    assert f"![x](/media/{relpath})" in post
    assert f"![y]({MISSING})" in post  # a failed image stays remote
    report = runner.invoke(main, ["report"])
    assert report.exit_code == 0, report.output
    assert Path(report.stdout.strip()).resolve() == (root / ".mediatool/report.html").resolve()
    undone = runner.invoke(main, ["rewrite", "--undo"])
    assert undone.exit_code == 0, undone.output
    assert f"![x]({GOOD})" in (root / "source/_posts/a.md").read_text()


def test_site_keys_survive_moving_the_site(in_hexo_site: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(main, ["fetch"])
    assert runner.invoke(main, ["rewrite"]).exit_code == 1
    moved = tmp_path / "moved"
    in_hexo_site.rename(moved)
    os.chdir(moved)
    undone = runner.invoke(main, ["rewrite", "--undo"])
    assert undone.exit_code == 0, undone.output
    assert f"![x]({GOOD})" in (moved / "source/_posts/a.md").read_text()


def test_site_command_text_and_json(in_hexo_site: Path) -> None:
    result = CliRunner().invoke(main, ["site"])
    assert result.exit_code == 0, result.output
    assert "generator: hexo" in result.stdout
    assert "media url: /media/" in result.stdout
    data = json.loads(CliRunner().invoke(main, ["site", "--json", "."]).stdout)
    assert data["generator"] == "hexo"
    assert data["state_dir"] == ".mediatool"
    assert data["posts"] == ["source/_posts"]
